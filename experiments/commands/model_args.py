"""The model reference and calibration-source options every model command shares.

``add_model_args(p)`` adds the MODEL argument and ``--input-shape``, ``--name``,
``--calib-data``, ``--mean``, ``--std``, ``--resize``; ``resolve_args(args)`` turns them into
a ``ModelRef`` (experiments/model_ref.py) and a ``DataSource`` (experiments/data_source.py).
"""

from __future__ import annotations

MODEL_HELP = ("registry name (see `flexiq info`), path/to/file.py:factory (a function "
              "returning the nn.Module), a torch.export .pt2 file, an .onnx file, or a .pt "
              "file holding a whole module (or a state dict: then give --arch)")


def add_model_args(p, *, dest: str = "model", positional: bool = True) -> None:
    if positional:
        p.add_argument(dest, metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--input-shape", default=None,
                   help="per-sample input shape of a user model, e.g. 3,32,32 (.pt2 and ONNX "
                        "files record theirs)")
    p.add_argument("--name", dest="label", default=None,
                   help="label of the model in programs and tables (default: the factory's "
                        "name or the file's stem; a registry model's name)")
    p.add_argument("--calib-data", "--data", dest="calib_data", default="auto",
                   help="calibration data: auto (a registry model's data set), synthetic, "
                        "fashion-mnist, imagenet, a folder of images, or a .npy/.pt tensor "
                        "[N, *input_shape]")
    p.add_argument("--mean", default=None, help="per-channel mean for image data (on [0, 1])")
    p.add_argument("--std", default=None, help="per-channel std for image data (on [0, 1])")
    p.add_argument("--resize", type=int, default=None,
                   help="image data: shorter side resized to this before the centre crop")


def resolve_args(args, *, dest: str = "model", weights: str | None = None,
                 random_fallback: bool = False):
    """(ModelRef, DataSource) from parsed arguments."""
    from experiments.data_source import Preprocess, parse_floats, resolve_data
    from experiments.model_ref import resolve
    from quant.errors import ConfigError

    if args.resize is not None and args.resize <= 0:
        raise ConfigError(f"--resize must be positive, got {args.resize}")
    ref = resolve(getattr(args, dest), input_shape=args.input_shape, name=args.label,
                  arch=getattr(args, "arch", None),
                  random_weights=bool(getattr(args, "random_weights", False)), weights=weights,
                  random_fallback=random_fallback)
    prep = Preprocess(parse_floats(args.mean, "mean"), parse_floats(args.std, "std"), args.resize)
    return ref, resolve_data(args.calib_data, ref, prep)
