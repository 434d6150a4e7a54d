"""`flexiq select MODEL -o sel.json` and `flexiq finetune MODEL -o model.pt`.

select: quantize MODEL (any model reference, experiments/model_ref.py) on its calibration data
(a registry model: its training split; else ``--calib-data``) and search nested 4-bit
channel selections for a ladder of ratios (quant.select); the JSON it writes is what
`flexiq compile --selection` and QuantizedModel.attach_selection read. An evolutionary
search checkpoints every generation next to the output (OUT.search.json); `--resume`
continues an interrupted search from there with the same result.

finetune: dual-forward finetuning (quant/finetune.py) at the ratios of a selection; writes
the finetuned float state dict (the model's own keys) and prints the accuracy per ratio.
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
    p.add_argument("--population", type=int, default=50)
    p.add_argument("--generations", type=int, default=50)
    p.add_argument("--fitness-batch", type=int, default=64, help="calibration images the fitness uses")
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
    f.add_argument("model", help="registry name (Fashion-MNIST models)")
    f.add_argument("-o", "--output", required=True, help="state dict file (.pt) to write")
    f.add_argument("--selection", help="selection JSON (default: range priority)")
    f.add_argument("--steps", type=int, default=300)
    f.add_argument("--batch", type=int, default=64)
    f.add_argument("--lr", type=float, default=1e-4)
    f.add_argument("--train-images", type=int, default=4096, help="training images to cycle over")
    f.add_argument("--eval", type=int, default=2000, help="test images for the accuracy printout")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--threads", type=int, default=None)
    f.add_argument("--quiet", action="store_true")
    f.set_defaults(func=run_finetune)


def _setup(args):
    import torch

    if args.threads:
        torch.set_num_threads(int(args.threads))


def _model(name, random_weights=False):
    import models

    return models.get(name, pretrained=not random_weights)


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
    ckpt = args.output + ".search.json" if args.method == "evolutionary" else None
    if ckpt and os.path.exists(ckpt) and not args.resume:
        raise ConfigError(f"a search checkpoint {ckpt!r} exists: pass --resume to continue it, "
                          "or delete it to start over")
    t0 = time.perf_counter()
    sel = quant.select(qm, calib, method=args.method, ratios=ratios, seed=args.seed,
                       budget=args.budget, population=args.population,
                       generations=args.generations, fitness_batch=args.fitness_batch,
                       checkpoint=ckpt, resume=args.resume, progress=not args.quiet)
    sel.meta.update(model=ref.name, model_ref=str(args.model), calib_data=source.key,
                    wall_seconds=round(time.perf_counter() - t0, 2))
    sel.save(args.output)
    print(sel.summary())
    print(f"wrote {args.output} ({time.perf_counter() - t0:.1f} s)")
    return 0


def run_finetune(args) -> int:
    import torch

    import quant
    from experiments.data import calibration_batches
    from models.datasets import fashion_mnist_loader
    from quant.finetune import finetune

    _setup(args)
    model = _model(args.model)
    calib = calibration_batches(args.model, 256)
    qm = quant.quantize(model, calib, progress=not args.quiet)
    if args.selection:
        qm.attach_selection(quant.Selection.load(args.selection))
    train = list(fashion_mnist_loader("train", args.batch, limit=args.train_images, shuffle=True,
                                      seed=args.seed))
    qm2 = finetune(qm, train, model=model, calib_data=calib, steps=args.steps,
                                  lr=args.lr, seed=args.seed, progress=not args.quiet)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    tmp = args.output + f".tmp.{os.getpid()}"
    torch.save(qm2.finetune_result.model.state_dict(), tmp)
    os.replace(tmp, args.output)
    test = list(fashion_mnist_loader("test", 500, limit=args.eval))
    ratios = qm.selection.ratios if qm.selection is not None else [0.0, 0.25, 0.5, 0.75, 1.0]
    for r in ratios:
        accs = []
        for q in (qm, qm2):
            q.set_ratio(r)
            correct = sum(int((q(x).argmax(-1) == y).sum()) for x, y in test)
            accs.append(correct / sum(len(y) for _, y in test))
        print(f"ratio {r:.2f}: accuracy {accs[0]:.4f} -> {accs[1]:.4f}")
    print(f"wrote {args.output}")
    return 0
