"""GPU latency of the mixed 4/8-bit GEMM per 4-bit ratio, beside int8 and fp16 GEMMs.

    python -m experiments.gpu_bench -o runs/gpu_bench.json          # needs a CUDA device
    python -m experiments.gpu_bench --cpu-smoke -o /tmp/smoke.json  # plumbing check, CPU

For each GEMM shape (ResNet-20/Fashion-MNIST convs as im2col GEMMs, ViT-B/16 linears at
batch 16) and each ratio it times, with CUDA events and in the same run:
``mixed_kernel`` (the one-launch Triton kernel, when Triton is importable; under
``--cpu-smoke`` its torch emulation), ``mixed_ref``
(``gpu_ref.mixed_gemm``, the torch reference path), ``int8`` (``torch._int_mm``) and
``fp16`` (``torch.matmul``). It checks the kernel's output against ``gpu_ref.mixed_gemm``
and measures the ratio-switch cost: a ``max4`` write plus a launch, against a launch alone.
Results go to a JSON file with the GPU's name.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

RATIOS = (0.0, 0.25, 0.5, 0.75, 1.0)


def resnet20_fmnist_shapes(batch: int) -> list[dict]:
    """im2col GEMMs of ResNet-20 (width 16, 28x28 input): M = batch*H*W, K = kh*kw*Cin, N = Cout.

    ``x_signed``: False after a ReLU. ``group_size``: min(64, Cin), at least 16 (docs/numeric_contract.md:
    narrow layers use 16 or 32), counted in K columns: one block is one group at one kernel
    position (the kernel's timing is the same whichever shifts the blocks hold).
    """
    def conv(layer, hw, cin, cout, k, signed=False):
        return dict(model="resnet20_fmnist", layer=layer, M=batch * hw * hw, K=k * k * cin,
                    N=cout, group_size=max(16, min(64, cin)), x_signed=signed)

    return [
        conv("conv1 (3x3, 1->16, kept 8-bit)", 28, 1, 16, 3, signed=True),
        conv("layer1.*.conv (3x3, 16->16) x6", 28, 16, 16, 3),
        conv("layer2.0.conv1 (3x3 s2, 16->32)", 14, 16, 32, 3),
        conv("layer2.0.shortcut (1x1 s2, 16->32)", 14, 16, 32, 1),
        conv("layer2.*.conv (3x3, 32->32) x5", 14, 32, 32, 3),
        conv("layer3.0.conv1 (3x3 s2, 32->64)", 7, 32, 64, 3),
        conv("layer3.0.shortcut (1x1 s2, 32->64)", 7, 32, 64, 1),
        conv("layer3.*.conv (3x3, 64->64) x5", 7, 64, 64, 3),
        dict(model="resnet20_fmnist", layer="fc (64->10)", M=batch, K=64, N=10,
             group_size=64, x_signed=False),
    ]


def vit_b16_shapes(batch: int = 16) -> list[dict]:
    """ViT-B/16 linear layers: 197 tokens per image, inputs after LayerNorm/GELU (signed)."""
    m = 197 * batch
    return [dict(model="vit_b_16", layer=name, M=m, K=k, N=n, group_size=64, x_signed=True)
            for name, k, n in [("attn.qkv", 768, 2304), ("attn.proj", 768, 768),
                               ("mlp.fc1", 768, 3072), ("mlp.fc2", 3072, 768)]]


def smoke_shapes() -> list[dict]:
    return [dict(model="smoke", layer="tiny-signed", M=32, K=96, N=16, group_size=32, x_signed=True),
            dict(model="smoke", layer="tiny-unsigned", M=17, K=64, N=8, group_size=16,
                 x_signed=False)]


def n4_for(ratio: float, k: int, g: int) -> int:
    """Leading 4-bit columns for a ratio: whole groups, rounded down; all of K at 1."""
    return k if ratio >= 1.0 else int(ratio * k) // g * g


def random_codes(shape: dict, device, seed: int = 0):
    gen = torch.Generator(device="cpu").manual_seed(seed)
    m, k, n = shape["M"], shape["K"], shape["N"]
    if shape["x_signed"]:
        x = torch.randint(-128, 128, (m, k), generator=gen)
    else:
        x = torch.randint(0, 256, (m, k), generator=gen)
    w = torch.randint(-127, 128, (n, k), generator=gen)
    return x.to(device), w.to(device)


def cuda_timer(fn, iters: int, warmup: int) -> float:
    """Mean µs per call of ``fn``, from CUDA events around ``iters`` back-to-back calls."""
    for _ in range(warmup):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1000.0 / iters


def cpu_timer(fn, iters: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) * 1e6 / iters


def _pad_int8(x, w):
    """int8 operands padded to ``torch._int_mm``'s CUDA rules (M > 16, K, N multiples of 8)."""
    import torch.nn.functional as F

    m, k = x.shape
    n = w.shape[0]
    kp, np_ = -(-k // 8) * 8, -(-n // 8) * 8
    a = F.pad(x.clamp(-128, 127).to(torch.int8), (0, kp - k, 0, max(m, 17) - m)).contiguous()
    b = F.pad(w.to(torch.int8), (0, kp - k, 0, np_ - n)).contiguous().t()
    return a, b


def bench_shape(shape, ratios, *, device, timer, iters, warmup, use_kernel, use_ref):
    import gpu_ref

    x, w = random_codes(shape, device)
    g, signed = shape["group_size"], shape["x_signed"]
    a8, b8 = _pad_int8(x, w)
    fdt = torch.float16 if device.type == "cuda" else torch.float32
    xf, wf = x.to(fdt), w.to(fdt).t().contiguous()
    base = dict(shape)
    base["int8_us"] = timer(lambda: torch._int_mm(a8, b8), iters, warmup)
    base[f"{'fp16' if fdt == torch.float16 else 'fp32'}_us"] = timer(lambda: xf @ wf, iters, warmup)
    rows, switch = [], None
    kernel = None
    if use_kernel:
        from gpu_ref import triton_mixed as tm

        packed = tm.pack_weights(w, group_size=g)
        xk = x.to(torch.int8 if signed else torch.uint8)
        ex = tm.activation_shift_table(x, group_size=g, x_signed=signed)
        max4 = torch.zeros(1, dtype=torch.int32, device=device)
        out = torch.empty((shape["M"], shape["N"]), dtype=torch.int32, device=device)

        if device.type == "cuda":
            def kernel():
                return tm.launch(xk, packed, max4, ex, x_signed=signed, out=out)
        else:  # --cpu-smoke: the kernel's arithmetic emulated in torch (plumbing only)
            def kernel():
                return tm.emulate(xk, packed, int(max4), ex, x_signed=signed)
    for r in ratios:
        n4 = n4_for(r, shape["K"], g)
        row = dict(base, ratio=r, n4=n4)
        if use_ref:
            row["mixed_ref_us"] = timer(
                lambda n4=n4: gpu_ref.mixed_gemm(x, w, n4, group_size=g, x_signed=signed),
                max(1, iters // 10), 1)
        if kernel is not None:
            max4.fill_(n4)
            row["mixed_kernel_us"] = timer(kernel, iters, warmup)
            ref = gpu_ref.mixed_gemm(x, w, n4, group_size=g, x_signed=signed)
            row["exact"] = bool(torch.equal(kernel().to(torch.int64), ref))
        rows.append(row)
    if kernel is not None:
        lo_n4, hi_n4 = n4_for(ratios[0], shape["K"], g), n4_for(ratios[-1], shape["K"], g)
        state = {"i": 0}

        def switching():
            state["i"] ^= 1
            max4.fill_(hi_n4 if state["i"] else lo_n4)
            kernel()

        same = timer(kernel, iters, warmup)
        alt = timer(switching, iters, warmup)
        t0 = time.perf_counter()
        for i in range(iters):
            max4.fill_(hi_n4 if i & 1 else lo_n4)
        host = (time.perf_counter() - t0) * 1e6 / iters
        if device.type == "cuda":
            torch.cuda.synchronize()
        switch = dict(model=shape["model"], layer=shape["layer"], launch_us=same,
                      switch_and_launch_us=alt, switch_us=alt - same, host_enqueue_fill_us=host)
    return rows, switch


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-o", "--out", default="runs/gpu_bench.json")
    p.add_argument("--ratios", default=",".join(str(r) for r in RATIOS))
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--resnet-batch", type=int, default=64)
    p.add_argument("--vit-batch", type=int, default=16)
    p.add_argument("--no-ref", action="store_true", help="skip timing gpu_ref.mixed_gemm")
    p.add_argument("--cpu-smoke", action="store_true",
                   help="tiny shapes on the CPU: checks the script's plumbing, no GPU numbers")
    args = p.parse_args(argv)
    ratios = sorted(float(r) for r in args.ratios.split(","))

    if args.cpu_smoke:
        device, timer = torch.device("cpu"), cpu_timer
        shapes, use_kernel, iters, warmup = smoke_shapes(), True, 2, 1
        gpu_name = "cpu-smoke (no GPU)"
    else:
        if not torch.cuda.is_available():
            print("gpu_bench: no CUDA device is available (torch.cuda.is_available() is False); "
                  "run it on a machine with an NVIDIA GPU, or pass --cpu-smoke to check the "
                  "script on the CPU.", file=sys.stderr)
            return 2
        import gpu_ref

        device, timer = torch.device("cuda"), cuda_timer
        shapes = resnet20_fmnist_shapes(args.resnet_batch) + vit_b16_shapes(args.vit_batch)
        use_kernel, iters, warmup = gpu_ref.triton_ready(), args.iters, args.warmup
        gpu_name = torch.cuda.get_device_name(0)

    results, switches = [], []
    for shape in shapes:
        rows, sw = bench_shape(shape, ratios, device=device, timer=timer, iters=iters,
                               warmup=warmup, use_kernel=use_kernel, use_ref=not args.no_ref)
        results += rows
        if sw:
            switches.append(sw)
        for row in rows:
            print(json.dumps({k: v for k, v in row.items() if k not in ("model",)}), flush=True)
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    kernel = ("triton" if device.type == "cuda" else "emulated") if use_kernel else None
    doc = dict(gpu=gpu_name, device=device.type, torch=torch.__version__,
               cuda=torch.version.cuda, triton=triton_version, kernel=kernel,
               iters=iters, warmup=warmup, ratios=ratios, results=results, switch=switches)
    from experiments import io

    io.write_json(args.out, doc, indent=1)
    print(f"wrote {args.out} ({len(results)} rows, GPU: {gpu_name})")
    if use_kernel and not all(r.get("exact", True) for r in results):
        print("gpu_bench: the mixed kernel disagreed with gpu_ref.mixed_gemm", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
