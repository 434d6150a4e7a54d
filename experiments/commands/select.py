"""`flexiq select MODEL -o sel.json` and `flexiq finetune MODEL -o model.pt`.

select: quantize MODEL (any model reference, experiments/model_ref.py) on its calibration data
(a registry model: its training split; else ``--calib-data``) and search nested 4-bit
channel selections for a ladder of ratios (quant.select); the JSON it writes is what
`flexiq compile --selection` and QuantizedModel.attach_selection read. A greedy or
evolutionary search checkpoints as it goes next to the output (OUT.search.json, removed
when it finishes); `--resume` continues an interrupted search from there with the same
result.

finetune: dual-forward finetuning (quant/finetune.py) at the ratios of a selection, on the
labelled training set where there is one, else distilled from the 8-bit model on the
unlabelled calibration photos; writes the finetuned float state dict (the model's own keys),
checkpoints every 10 steps (OUT.ckpt, `--resume`) and prints the agreement per ratio.
"""

from __future__ import annotations

import os
import time

from quant.errors import ConfigError


def register(sub) -> None:
    from experiments.commands.model_args import add_model_args

    p = sub.add_parser("select", help="search nested 4-bit channel selections for a model")
    add_model_args(p)
    p.add_argument("-o", "--output", required=True, help="selection JSON to write")
    p.add_argument("--method", default="evolutionary", choices=["random", "range", "greedy", "evolutionary"])
    p.add_argument("--ratios", default="0,0.25,0.5,0.75,1", help="comma-separated 4-bit ratios")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget", default="macs", choices=["macs", "channels"],
                   help="what the ratio counts: 4-bit MACs (default) or channels")
    p.add_argument("--search", default="fast", choices=["fast", "exhaustive"],
                   help="fast (default): sensitivity table + surrogate-screened evolution; "
                        "exhaustive: every candidate measured (docs/selection.md)")
    p.add_argument("--population", type=int, default=None, help="default 16 (fast) / 50 (exhaustive)")
    p.add_argument("--generations", type=int, default=None, help="default 20 (fast) / 50 (exhaustive)")
    p.add_argument("--fitness-batch", type=int, default=None,
                   help="calibration images the fitness uses (default: 16-256 by model size "
                        "(fast), 64 (exhaustive))")
    p.add_argument("--fitness", default=None, choices=["kl", "l2"],
                   help="fitness: KL divergence from the 8-bit soft labels (fast default) or their "
                        "L2 distance (exhaustive default)")
    p.add_argument("--no-layer-seed", action="store_true",
                   help="fast evolutionary search: do not seed with the layer-wise ladder")
    p.add_argument("--calib", type=int, default=256, help="calibration images for quantization")
    p.add_argument("--resume", action="store_true", help="resume from OUTPUT.search.json if present")
    p.add_argument("--extraction", default="effective", choices=["effective", "naive"])
    p.add_argument("--dynamic", action="store_true", help="dynamic (per-image) extraction")
    p.add_argument("--random-weights", action="store_true", help="random weights (timing studies)")
    p.add_argument("--arch", help="registry architecture for a state-dict checkpoint")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run_select)

    f = sub.add_parser("finetune", help="finetune a model for mixed 4/8 bits (dual forward pass)")
    f.add_argument("model", help="registry name")
    f.add_argument("-o", "--output", required=True, help="state dict file (.pt) to write")
    f.add_argument("--selection", help="selection JSON (default: range priority)")
    f.add_argument("--steps", type=int, default=None,
                   help="default: 300 with labelled training data (Fashion-MNIST), else sized by "
                        "the model's MACs (quant.finetune.auto_budget)")
    f.add_argument("--batch", type=int, default=None, help="default: 64 labelled, else automatic")
    f.add_argument("--lr", type=float, default=None, help="default 1e-4 labelled, 1e-5 distillation")
    f.add_argument("--train-images", type=int, default=4096, help="training images to cycle over")
    f.add_argument("--calib", type=int, default=256,
                   help="calibration images (also the unlabelled training images without a "
                        "labelled training set: distillation from the 8-bit model)")
    f.add_argument("--eval", type=int, default=2000, help="test images for the accuracy printout")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--threads", type=int, default=None)
    f.add_argument("--resume", action="store_true",
                   help="resume from OUTPUT.ckpt (written every 10 steps) if present")
    f.add_argument("--quiet", action="store_true")
    f.set_defaults(func=run_finetune)


def _setup(args):
    import torch

    if args.threads:
        torch.set_num_threads(int(args.threads))


def run_select(args) -> int:
    import quant
    from experiments.commands.compile import parse_ratios
    from experiments.commands.model_args import resolve_args

    _setup(args)
    ratios = parse_ratios(args.ratios)
    cfg = quant.QuantConfig(extraction=args.extraction, dynamic=args.dynamic)
    ref, source = resolve_args(args)
    calib = source.calibration(args.calib)
    qm = quant.quantize(ref.module, calib, cfg, progress=not args.quiet)
    ckpt = args.output + ".search.json" if args.method in ("greedy", "evolutionary") else None
    if ckpt and os.path.exists(ckpt) and not args.resume:
        raise ConfigError(f"a search checkpoint {ckpt!r} exists: pass --resume to continue it, "
                          "or delete it to start over")
    t0 = time.perf_counter()
    sel = quant.select(qm, calib, method=args.method, ratios=ratios, seed=args.seed,
                       budget=args.budget, search=args.search, population=args.population,
                       generations=args.generations, fitness_batch=args.fitness_batch,
                       checkpoint=ckpt, resume=args.resume, progress=not args.quiet,
                       metric=args.fitness, layer_seed=False if args.no_layer_seed else None)
    sel.meta.update(model=ref.name, model_ref=str(args.model), calib_data=source.key,
                    wall_seconds=round(time.perf_counter() - t0, 2))
    sel.save(args.output)
    if ckpt and os.path.exists(ckpt):  # done: a leftover checkpoint would block the next run
        os.remove(ckpt)
    print(sel.summary())
    print(f"wrote {args.output} ({time.perf_counter() - t0:.1f} s)")
    return 0


def run_finetune(args) -> int:
    import torch

    import quant
    from experiments.data import calibration_batches, dataset_of, evaluation_set
    from experiments.model_ref import load_registry_model
    from quant.finetune import finetune

    _setup(args)
    model = load_registry_model(args.model)
    calib = calibration_batches(args.model, args.calib)
    qm = quant.quantize(model, calib, progress=not args.quiet)
    if args.selection:
        qm.attach_selection(quant.Selection.load(args.selection))
    if dataset_of(args.model) == "fashion-mnist":
        from models.datasets import fashion_mnist_loader

        batch = args.batch or 64
        train = list(fashion_mnist_loader("train", batch, limit=args.train_images, shuffle=True,
                                          seed=args.seed))
        steps, how = (args.steps or 300), "labelled Fashion-MNIST training images"
    else:  # no labelled training set: distill from the 8-bit model on the unlabelled photos
        batch, train = args.batch or "auto", calib
        steps, how = (args.steps or "auto"), f"{sum(len(x) for x in calib)} unlabelled calibration images"
    ckpt = args.output + ".ckpt"
    if os.path.exists(ckpt) and not args.resume:
        raise ConfigError(f"a finetune checkpoint {ckpt!r} exists: pass --resume to continue it, "
                          "or delete it to start over")
    print(f"finetuning on {how}")
    t0 = time.perf_counter()
    qm2 = finetune(qm, train, model=model, calib_data=calib, steps=steps, batch_size=batch,
                   lr=args.lr, seed=args.seed, progress=not args.quiet, checkpoint=ckpt)
    h = qm2.finetune_result.history
    print(f"{len(h)} steps ({h[0]['mode'] if h else '-'}) in {time.perf_counter() - t0:.1f} s")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    tmp = args.output + f".tmp.{os.getpid()}"
    torch.save(qm2.finetune_result.model.state_dict(), tmp)
    os.replace(tmp, args.output)
    ev = evaluation_set(args.model, limit=args.eval)
    qm.set_ratio(0.0)
    ref = [qm(ev.x[a:a + 250]).argmax(-1) for a in range(0, len(ev.x), 250)]
    ratios = qm.selection.ratios if qm.selection is not None else [0.0, 0.25, 0.5, 0.75, 1.0]
    for r in ratios:
        line = []
        for q in (qm, qm2):
            q.set_ratio(r)
            top = [q(ev.x[a:a + 250]).argmax(-1) for a in range(0, len(ev.x), 250)]
            agree = sum(int((t == u).sum()) for t, u in zip(top, ref)) / len(ev.x)
            acc = (None if ev.labels is None else
                   float((torch.cat(top) == ev.labels[:len(ev.x)]).float().mean()))
            line.append((acc, agree))
        accs = "" if line[0][0] is None else f"accuracy {line[0][0]:.4f} -> {line[1][0]:.4f}, "
        print(f"ratio {r:.2f}: {accs}top-1 agreement with 8 bits {line[0][1]:.4f} -> "
              f"{line[1][1]:.4f} ({len(ev.x)} images of {ev.name})")
    print(f"wrote {args.output}")
    return 0
