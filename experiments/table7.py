"""Paper Table 7 analogue: what each step of FlexiQ adds, at 75 % 4-bit MACs.

Rows, per Fashion-MNIST model (each adds one thing to the row above):

    random_naive   random channel selection, naive extraction (top 4 bits)
    random         random selection, effective extraction
    greedy         greedy selection (measured per-group error)
    evolutionary   evolutionary selection (seeded from range priority)
    dynamic        + dynamic extraction (the evolutionary selection, per-image shifts)
    finetune       + dual-forward finetuning (then re-quantized)

    python -m experiments.table7 [--models resnet20_fmnist,...] [--ratio 0.75] [--out results]

Writes ``OUT/table7.csv`` and ``OUT/table7.md`` (atomically, after every row; rows already
in the CSV are skipped, so an interrupted run resumes), selections under ``OUT/table7/``.
Calibration, fitness and finetuning data come from the training split only; accuracy is on
the Fashion-MNIST test set (10k unless ``--test-limit``). Accuracy is computed with the fast
fake-quant path in its precise mode (quant/fake_quant.py); column ``exact_agree`` is its
top-1 agreement with the exact integer runtime on the first ``--exact-check`` test images.
``agree_8bit``/``kl_8bit``: fidelity to the 8-bit model, which separates methods better than
accuracy on a data set this easy (docs/experiments.md, "`flexiq sweep`", "Why the fidelity columns"). ``--weights NAME=PATH`` evaluates a model with
other weights (a state dict, or a training checkpoint holding one under "model").
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import time
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

ROWS = ["random_naive", "random", "greedy", "evolutionary", "dynamic", "finetune"]
FIELDS = ["model", "row", "method", "extraction", "dynamic", "finetuned", "ratio", "accuracy",
          "acc_8bit", "agree_8bit", "kl_8bit", "fitness", "mac_share", "budget_share",
          "exact_agree", "search_s", "weights"]
FMNIST = ("resnet20_fmnist", "mobilenet_v2_fmnist", "vit_tiny_fmnist")


def _atomic_write(path, text):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _read(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def _write(out_dir, rows):
    models_seen = list(dict.fromkeys(r["model"] for r in rows))
    rows.sort(key=lambda r: (models_seen.index(r["model"]), r["weights"],
                             ROWS.index(r["row"]) if r["row"] in ROWS else len(ROWS)))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=FIELDS)
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in FIELDS})
    _atomic_write(os.path.join(out_dir, "table7.csv"), buf.getvalue())
    lines = ["| model | weights | row | accuracy | 8-bit acc. | agree 8-bit | KL 8-bit | fitness | "
             "4-bit MAC share | exact agree |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['weights']} | {r['row']} | {float(r['accuracy']):.4f} | "
                     f"{float(r['acc_8bit']):.4f} | "
                     f"{float(r['agree_8bit']):.4f} | {float(r['kl_8bit']):.5f} | {r['fitness']} | "
                     f"{float(r['mac_share']):.3f} | {r['exact_agree']} |")
    _atomic_write(os.path.join(out_dir, "table7.md"), "\n".join(lines) + "\n")


def _outputs(fq, x, plan=None, batch=500):
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            outs.append(fq(x[i:i + batch], plan=plan))
    return torch.cat(outs)


def evaluate(qm, test_x, test_y, exact_n):
    """(accuracy, acc_8bit, agree_8bit, kl_8bit, exact_agree) at qm's current ratio."""
    from quant.fake_quant import FakeQuantModel

    fq = FakeQuantModel(qm, precise=True)
    mixed = _outputs(fq, test_x)
    eight = _outputs(fq, test_x, plan={k: (L.order, 0) for k, L in qm.layers.items()})
    acc = float((mixed.argmax(-1) == test_y).float().mean())
    acc8 = float((eight.argmax(-1) == test_y).float().mean())
    agree = float((mixed.argmax(-1) == eight.argmax(-1)).float().mean())
    kl = float(F.kl_div(mixed.log_softmax(-1), eight.log_softmax(-1), log_target=True,
                        reduction="batchmean"))
    exact = ""
    if exact_n:
        with torch.no_grad():
            ye = qm(test_x[:exact_n])
        exact = f"{float((ye.argmax(-1) == mixed[:exact_n].argmax(-1)).float().mean()):.4f}"
    return acc, acc8, agree, kl, exact


def run_model(name, args, done, rows, out_dir, weights):
    import quant
    from experiments.data import calibration_batches
    from experiments.model_ref import load_registry_model
    from models.datasets import fashion_mnist_loader, load_fashion_mnist, normalize_images
    from quant.finetune import finetune

    model = load_registry_model(name, weights=weights)
    wsrc = "shipped" if weights is None else weights
    tag = "shipped" if weights is None else "w" + hex(zlib.crc32(os.path.abspath(weights).encode()))[2:]
    tag += f".g{args.group_size}"
    wsrc = wsrc if args.group_size == 64 else f"{wsrc} (G={args.group_size})"
    calib = calibration_batches(name, args.calib, seed=args.seed)
    images, labels = load_fashion_mnist("test")
    n = len(images) if args.test_limit is None else min(args.test_limit, len(images))
    test_x = normalize_images(images[:n])
    test_y = torch.as_tensor(labels[:n].astype(np.int64))
    sel_dir = os.path.join(out_dir, "table7")
    os.makedirs(sel_dir, exist_ok=True)
    ratios = [args.ratio]
    qms = {}

    def qmodel(extraction, dynamic):
        key = (extraction, dynamic)
        if key not in qms:
            cfg = quant.QuantConfig(extraction=extraction, dynamic=dynamic, group_size=args.group_size)
            qms[key] = quant.quantize(model, calib, cfg, progress=False)
        return qms[key]

    def selection(method, extraction):
        # the fitness batch changes greedy and evolutionary selections (64: the default)
        fb = f".fb{args.fitness_batch}" if method in ("greedy", "evolutionary") \
            and args.fitness_batch != 64 else ""
        path = os.path.join(sel_dir, f"{name}.{tag}.{method}.{extraction}.r{args.ratio:g}{fb}.json")
        if os.path.exists(path):
            return quant.Selection.load(path), 0.0
        t0 = time.perf_counter()
        sel = quant.select(qmodel(extraction, False), calib, method=method, ratios=ratios,
                           seed=args.seed, population=args.population, generations=args.generations,
                           fitness_batch=args.fitness_batch, progress=not args.quiet,
                           search="exhaustive",  # the shipped Table 7 rows (docs/selection.md)
                           checkpoint=path + ".search.json")
        sel.save(path)
        return sel, time.perf_counter() - t0

    plan = {
        "random_naive": ("random", "naive", False, False),
        "random": ("random", "effective", False, False),
        "greedy": ("greedy", "effective", False, False),
        "evolutionary": ("evolutionary", "effective", False, False),
        "dynamic": ("evolutionary", "effective", True, False),
        "finetune": ("evolutionary", "effective", True, True),
    }
    for row in args.rows:
        if (name, row, wsrc) in done:
            continue
        method, extraction, dynamic, ft = plan[row]
        sel, secs = selection(method, extraction)
        qm = qmodel(extraction, dynamic)
        qm.attach_selection(sel)
        if ft:
            train = list(fashion_mnist_loader("train", args.ft_batch, limit=args.ft_images,
                                              shuffle=True, seed=args.seed))
            qm = finetune(qm, train, model=model, calib_data=calib, steps=args.ft_steps,
                          batch_size=None,  # keep --ft-batch (the shipped rows)
                          lr=args.ft_lr, seed=args.seed, progress=not args.quiet)
            from experiments.io import atomic_path

            with atomic_path(os.path.join(sel_dir, f"{name}.{tag}.finetuned.pt")) as tmp:
                torch.save(qm.finetune_result.model.state_dict(), tmp)
        qm.set_ratio(args.ratio)
        acc, acc8, agree, kl, exact = evaluate(qm, test_x, test_y, args.exact_check)
        lv = sel.level(args.ratio)
        rows.append({"model": name, "row": row, "method": method, "extraction": extraction,
                     "dynamic": dynamic, "finetuned": ft, "ratio": args.ratio,
                     "accuracy": f"{acc:.4f}", "acc_8bit": f"{acc8:.4f}", "agree_8bit": f"{agree:.4f}",
                     "kl_8bit": f"{kl:.6f}", "fitness": f"{lv['fitness']:.6f}",
                     "mac_share": f"{qm.four_bit_mac_share():.4f}",
                     "budget_share": f"{lv['budget_share']:.4f}", "exact_agree": exact,
                     "search_s": f"{secs:.1f}", "weights": wsrc})
        done.add((name, row, wsrc))
        _write(out_dir, rows)
        tqdm.write(f"{name} {row}: accuracy {acc:.4f} (8-bit {acc8:.4f}), agree {agree:.4f}, "
                   f"KL {kl:.5f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(FMNIST))
    p.add_argument("--rows", default=",".join(ROWS))
    p.add_argument("--ratio", type=float, default=0.75)
    p.add_argument("--out", default="results")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--group-size", type=int, default=64, help="4-bit channel group size G")
    p.add_argument("--calib", type=int, default=256)
    p.add_argument("--population", type=int, default=50)
    p.add_argument("--generations", type=int, default=50)
    p.add_argument("--fitness-batch", type=int, default=64)
    p.add_argument("--ft-steps", type=int, default=300)
    p.add_argument("--ft-lr", type=float, default=1e-4)
    p.add_argument("--ft-batch", type=int, default=64)
    p.add_argument("--ft-images", type=int, default=8192)
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument("--exact-check", type=int, default=200)
    p.add_argument("--weights", action="append", default=[], help="NAME=PATH (other weights)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    args.rows = [r for r in args.rows.split(",") if r]
    bad = [r for r in args.rows if r not in ROWS]
    if bad:
        p.error(f"unknown rows {bad}; known: {ROWS}")
    if args.threads:
        torch.set_num_threads(args.threads)
    weights = dict(w.split("=", 1) for w in args.weights)
    os.makedirs(args.out, exist_ok=True)
    rows = _read(os.path.join(args.out, "table7.csv"))
    done = {(r["model"], r["row"], r["weights"]) for r in rows}
    from quant.errors import FlexiQError

    for name in [m for m in args.models.split(",") if m]:
        try:
            run_model(name, args, done, rows, args.out, weights.get(name))
        except FlexiQError as exc:  # e.g. weights not shipped yet, or an unsupported op
            print(f"{name}: skipped: {exc}")
    _write(args.out, rows)
    print(open(os.path.join(args.out, "table7.md")).read())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
