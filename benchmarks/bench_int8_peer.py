"""The 8-bit model against PyTorch's own INT8 post-training quantization, on real photos.

Peer: ``torch.ao.quantization`` FX graph mode with the x86 backend's default configuration
(per-channel symmetric int8 weights, histogram-calibrated uint8 activations), calibrated on
the same calibration photos. Ours: ``quant.quantize`` with the default 8-bit contract
(per-channel weights, one min/max scale per tensor), run on the integer runtime (the
simulator is bit-exact with it). Both are compared with the FP32 model on the evaluation
side of the photo pool: top-1 agreement with a 95 % bootstrap interval over photos, mean KL
from the FP32 softmax, and top-1 accuracy on the 20 labelled ImageNet photos.

    PYTHONPATH=$PWD flock /tmp/flexiq-cpu.lock python benchmarks/bench_int8_peer.py \
        --model efficientnet_lite0 --out results/lite/int8_peer_lite0.json
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
import warnings

import numpy as np
import torch


def _batched(fn, x, batch):
    with torch.no_grad():
        return np.concatenate([np.asarray(fn(x[i:i + batch]), dtype=np.float64)
                               for i in range(0, len(x), batch)])


def torch_int8(model, calib, example):
    """PyTorch's FX-mode INT8 PTQ of ``model`` (x86 backend), calibrated on ``calib``."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(copy.deepcopy(model).eval(), get_default_qconfig_mapping("x86"),
                              example_inputs=(example,))
        with torch.no_grad():
            for x in calib:
                prepared(x)
        return convert_fx(prepared)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--calib-images", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="JSON file for the figures")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    import models
    import quant
    from experiments import metrics
    from experiments.data import calibration_batches, evaluation_set

    model = models.get(args.model)
    calib = calibration_batches(args.model, args.calib_images, seed=args.seed)
    ev = evaluation_set(args.model, seed=args.seed)
    pool, groups = ev.fidelity_x, ev.fidelity_groups
    print(f"[int8-peer] {args.model}: calibration {sum(len(c) for c in calib)} views, "
          f"evaluation {len(pool)} views of {ev.n_units} photos ({ev.name})", flush=True)

    t = time.time()
    fp32 = _batched(model, pool, args.batch)
    fp32_lab = _batched(model, ev.x, args.batch)
    t_fp32 = time.time() - t

    t = time.time()
    peer = torch_int8(model, calib, calib[0][:1])
    peer_logits = _batched(peer, pool, args.batch)
    peer_lab = _batched(peer, ev.x, args.batch)
    t_peer = time.time() - t

    t = time.time()
    qm = quant.quantize(model, calib, quant.QuantConfig(), progress=False)

    def ours_fn(x):
        q = qm.run(x)
        return q.codes.numpy().astype(np.float64) * q.scale

    ours_logits = _batched(ours_fn, pool, args.batch)
    ours_lab = _batched(ours_fn, ev.x, args.batch)
    t_ours = time.time() - t

    rows = {}
    for name, logits, lab in (("fp32", fp32, fp32_lab), ("torch_int8_x86", peer_logits, peer_lab),
                              ("flexiq_8bit", ours_logits, ours_lab)):
        agree = (metrics.top1(logits) == metrics.top1(fp32)).astype(np.float64)
        lo, hi = metrics.bootstrap_ci(agree, groups, seed=args.seed)
        rows[name] = {"agree_fp32": float(agree.mean()), "agree_fp32_lo": lo, "agree_fp32_hi": hi,
                      "kl_fp32": metrics.mean_kl(logits, fp32),
                      "accuracy20": metrics.accuracy(lab, ev.labels)}
    print(f"| model | agree FP32 (95 % CI over {ev.n_units} photos) | KL from FP32 | top-1 on 20 labelled |")
    print("|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {100 * r['agree_fp32']:.1f} % [{100 * r['agree_fp32_lo']:.1f}, "
              f"{100 * r['agree_fp32_hi']:.1f}] | {r['kl_fp32']:.4f} | {100 * r['accuracy20']:.0f} % |")
    print(f"[int8-peer] seconds: fp32 {t_fp32:.0f}, torch int8 (calibrate + run) {t_peer:.0f}, "
          f"ours (quantize + integer runtime) {t_ours:.0f}")
    if args.out:
        from experiments.io import write_json

        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        write_json(args.out, {"model": args.model, "eval_set": ev.name, "n_views": len(pool),
                              "n_photos": ev.n_units, "calib_views": sum(len(c) for c in calib),
                              "seed": args.seed, "torch": torch.__version__,
                              "peer": "torch.ao.quantization FX, get_default_qconfig_mapping('x86')",
                              "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
