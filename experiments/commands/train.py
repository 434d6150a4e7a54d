"""`flexiq train NAME`: train a Fashion-MNIST model on CPU (seeded, resumable, tqdm progress)."""

from __future__ import annotations

FMNIST_MODELS = ("resnet20_fmnist", "mobilenet_v2_fmnist", "vit_tiny_fmnist")


def add_arguments(p) -> None:
    p.add_argument("name", choices=FMNIST_MODELS, help="registry name of a Fashion-MNIST model")
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epoch count")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="run directory (default runs/NAME)")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="start over even if OUT/state.pt exists")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="stop after N epochs of this invocation (resume later)")
    p.add_argument("--ship", action="store_true",
                   help="copy the weights into models/checkpoints and update the model card")


def register(sub) -> None:
    p = sub.add_parser("train", help="train a Fashion-MNIST model (resnet20_fmnist, ...) on CPU")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from experiments.train import run as run_training  # torch is imported only when training

    return run_training(args)
