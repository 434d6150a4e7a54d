"""Fast versus exhaustive channel selection: held-out fidelity and search time, in one run.

For each model, quantize on 256 training images, then run greedy and evolutionary
selection both ways (quant.select ``search="exhaustive"``: today's searches, every
candidate measured, evolutionary 50 x 50 on a 64-image fitness batch; ``search="fast"``:
the defaults, docs/selection.md) and measure, on held-out test images, the top-1 agreement
with the 8-bit model and KL(8-bit || mixed) at every nontrivial ratio, through the precise
fake-quant path (bit-identical to the integer runtime on these models). Timings are wall
seconds of ``quant.select`` in this process; run it alone, e.g.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD flock /tmp/flexiq-cpu.lock python benchmarks/bench_selection.py

``--models`` / ``--ratios`` / ``--eval`` / ``--threads`` change the setup.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F


def held_out(qm, sel, x, ratios, batch=500):
    from quant.fake_quant import FakeQuantModel

    qm.attach_selection(sel)
    fq = FakeQuantModel(qm, precise=True)
    eight = {k: (L.order, 0) for k, L in qm.layers.items()}
    ref = torch.cat([fq(x[a:a + batch], plan=eight) for a in range(0, len(x), batch)])
    out = {}
    for r in ratios:
        qm.set_ratio(r)
        y = torch.cat([fq(x[a:a + batch]) for a in range(0, len(x), batch)])
        agree = float((y.argmax(-1) == ref.argmax(-1)).float().mean())
        kl = float(F.kl_div(y.log_softmax(-1), ref.softmax(-1), reduction="batchmean", log_target=False))
        out[r] = (agree, kl)
    qm.set_ratio(0.0)
    return out


def main(argv=None) -> int:
    import models
    import quant
    from experiments.data import calibration_batches, evaluation_set

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet20_fmnist,mobilenet_v2_fmnist")
    p.add_argument("--ratios", default="0,0.25,0.5,0.75,1")
    p.add_argument("--eval", type=int, default=2000, help="held-out test images")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--methods", default="greedy,evolutionary")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ratios = [float(r) for r in args.ratios.split(",")]
    inner = [r for r in ratios if 0 < r < 1]
    rows = []
    for name in args.models.split(","):
        model = models.get(name, pretrained=True)
        calib = calibration_batches(name, 256)
        qm = quant.quantize(model, calib, progress=False)
        ev = evaluation_set(name, limit=args.eval)
        for method in args.methods.split(","):
            for search in ("exhaustive", "fast"):
                t0 = time.perf_counter()
                sel = quant.select(qm, calib, method=method, ratios=ratios, search=search, progress=False)
                secs = time.perf_counter() - t0
                fid = held_out(qm, sel, ev.x, inner)
                rows.append((name, method, search, secs, sel.meta["fitness_evaluations"],
                             sel.meta["fitness_batch"], fid))
                print(f"{name} {method} {search}: {secs:.1f} s, "
                      f"{sel.meta['fitness_evaluations']} evaluations, " +
                      ", ".join(f"r={r:g} agree {a:.4f} KL {k:.5f}" for r, (a, k) in fid.items()),
                      flush=True)
    print()
    head = "| model | method | search | seconds | evaluations | fitness batch | " + \
        " | ".join(f"agree@{r:g} | KL@{r:g}" for r in inner) + " | mean agree | mean KL |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, method, search, secs, evals, fb, fid in rows:
        cells = " | ".join(f"{a:.4f} | {k:.5f}" for a, k in fid.values())
        ma = sum(a for a, _ in fid.values()) / len(fid)
        mk = sum(k for _, k in fid.values()) / len(fid)
        print(f"| {name} | {method} | {search} | {secs:.1f} | {evals} | {fb} | {cells} | {ma:.4f} | {mk:.5f} |")
    print()
    for name in dict.fromkeys(r[0] for r in rows):
        for method in args.methods.split(","):
            sub = {r[2]: r for r in rows if r[0] == name and r[1] == method}
            if len(sub) == 2:
                ex, fa = sub["exhaustive"], sub["fast"]
                ma = [sum(a for a, _ in r[6].values()) / len(inner) for r in (ex, fa)]
                mk = [sum(k for _, k in r[6].values()) / len(inner) for r in (ex, fa)]
                print(f"{name} {method}: fast/exhaustive time {fa[3] / ex[3]:.3f}, mean held-out agreement "
                      f"{ma[1]:.4f} vs {ma[0]:.4f}, mean KL {mk[1]:.5f} vs {mk[0]:.5f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
