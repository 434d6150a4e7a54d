"""Fingerprint what the code computes, so a refactor can prove it changed nothing.

Writes one JSON object: for each case (model, extraction, selection) the SHA-256 of the
compiled program's bytes, of the integer runtime's output codes, of the float fake-quant
outputs and of the simulator's output codes, plus the simulated cycles, at several ratios.
Run it before and after a change and compare the two files (they must be equal):

    python scripts/behaviour_fingerprint.py -o /tmp/before.json
    ... change ...
    python scripts/behaviour_fingerprint.py -o /tmp/after.json && cmp /tmp/before.json /tmp/after.json

``--quick`` skips the ImageNet-size models (about 1 minute instead of several).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import compiler  # noqa: E402
import models  # noqa: E402
import npu_sim  # noqa: E402
import quant  # noqa: E402
from quant.fake_quant import FakeQuantModel  # noqa: E402
from quant.select import Selection  # noqa: E402

RATIOS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _sha(a) -> str:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    if isinstance(a, (bytes, bytearray)):
        return hashlib.sha256(a).hexdigest()[:16]
    a = np.ascontiguousarray(a)
    return hashlib.sha256(a.dtype.str.encode() + str(a.shape).encode() + a.tobytes()).hexdigest()[:16]


def _program_bytes(prog) -> bytes:
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "p.flexiq"
        prog.save(str(p))
        return p.read_bytes()


def _case(name, net, calib, x, *, dynamic, selection, sim_ratios, group_size=None):
    torch.manual_seed(0)
    cfg = quant.QuantConfig(dynamic=dynamic) if group_size is None else \
        quant.QuantConfig(dynamic=dynamic, group_size=group_size)
    qm = quant.quantize(net, [calib], cfg, progress=False)
    if selection == "range":
        sel = quant.select(qm, calib, method="range", ratios=RATIOS, progress=False)
        qm.attach_selection(sel)
    elif selection is not None:
        qm.attach_selection(Selection.load(selection))
    out = {"program": _sha(_program_bytes(compiler.compile(qm, x[:1], name=name)))}
    prog = compiler.compile(qm, x[:1], name=name)
    xin = compiler.encode_input(prog, x[:1])
    fq = FakeQuantModel(qm)
    for r in RATIOS:
        qm.set_ratio(r)
        row = {"codes": _sha(qm.run(x).codes)}
        with torch.no_grad():
            row["fake_quant"] = _sha(fq(x))
        if r in sim_ratios:
            res = npu_sim.simulate(prog, xin, ratio=r)
            row["sim"] = _sha(np.asarray(res.output))
            row["cycles"] = int(res.cycles)
            t = npu_sim.simulate(prog, xin, ratio=r, values=False)
            row["timing_cycles"] = int(t.cycles)
        out[f"r{r:g}"] = row
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    from models.datasets import load_fashion_mnist, normalize_images
    train, _ = load_fashion_mnist("train")
    test, _ = load_fashion_mnist("test")
    calib, x = normalize_images(train[:64]), normalize_images(test[:4])
    result = {}
    for name in ("resnet20_fmnist", "mobilenet_v2_fmnist", "vit_tiny_fmnist"):
        net = models.get(name, pretrained=True)
        for dynamic in (False, True):
            for sel in (None, "range"):
                key = f"{name}/{'dynamic' if dynamic else 'static'}/{sel or 'uniform'}"
                print(key, flush=True)
                result[key] = _case(name, net, calib, x, dynamic=dynamic, selection=sel,
                                    sim_ratios=(0.0, 0.5, 1.0))
    key = "resnet20_fmnist/static/range/g32"
    print(key, flush=True)
    result[key] = _case("resnet20_fmnist", models.get("resnet20_fmnist", pretrained=True), calib, x,
                        dynamic=False, selection="range", sim_ratios=(0.5,), group_size=32)
    if not a.quick:
        lite_sel = ROOT / "results/lite/lite0/selections/efficientnet_lite0__evolutionary.json"
        torch.manual_seed(0)
        xin = models.example_input("efficientnet_lite0", batch=2, seed=0)
        lcal = models.example_input("efficientnet_lite0", batch=16, seed=1)
        net = models.get("efficientnet_lite0", pretrained=True)
        for dynamic in (False, True):
            key = f"efficientnet_lite0/{'dynamic' if dynamic else 'static'}/evolutionary"
            print(key, flush=True)
            result[key] = _case("efficientnet_lite0", net, lcal, xin, dynamic=dynamic,
                                selection=str(lite_sel), sim_ratios=(0.5,))
        for name in ("resnet18", "mobilenet_v2", "vit_s_16", "swin_t"):
            key = f"{name}/static/range/random-init"
            print(key, flush=True)
            torch.manual_seed(0)
            net = models.get(name, pretrained=False)
            xin = models.example_input(name, batch=1, seed=0)
            cal = models.example_input(name, batch=4, seed=1)
            result[key] = _case(name, net, cal, xin, dynamic=False, selection="range", sim_ratios=())
    text = json.dumps(result, indent=1, sort_keys=True) + "\n"
    Path(a.out).write_text(text)
    print(f"wrote {a.out}: {len(result)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
