"""Argument checks shared by every `flexiq` command.

Numbers, output paths, input files and thread counts are checked here, before any work
starts, and every problem is a ``FlexiQError`` subclass (the CLI prints one line and exits
2). Output paths: a missing parent folder is created when the file is written; a path that
is a directory, lies under a file, or cannot be written is refused up front.
"""

from __future__ import annotations

import argparse
import os

from quant.errors import ConfigError, InputError, OutputPathError

#: Default thread count per command (BLAS, OpenMP and torch intra-op threads). Simulating
#: and compiling run many small array ops: extra threads only add contention (one competing
#: process made `compile` 3x slower with the BLAS default). Training uses every core.
DEFAULT_THREADS = {"train": "all", "finetune": "all"}


# ------------------------------------------------------------------ numbers
def positive_int(text) -> int:
    """argparse ``type=`` for counts that must be >= 1."""
    v = _int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return v


def nonneg_int(text) -> int:
    """argparse ``type=`` for counts that may be 0."""
    v = _int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return v


def ratio(text) -> float:
    """argparse ``type=`` for one 4-bit ratio in [0, 1]."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {text}")
    return v


def _int(text) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


# --------------------------------------------------------------- output paths
def check_output_file(path, option: str = "-o") -> str:
    """Refuse an output file path that cannot be written; returns it unchanged."""
    if path is None:
        return path
    p = os.path.abspath(os.fspath(path))
    if os.path.isdir(p):
        raise OutputPathError(f"{option} {path}: is a directory, not a file")
    if os.path.exists(p) and not os.access(p, os.W_OK):
        raise OutputPathError(f"{option} {path}: the file exists and is not writable")
    _check_parent(path, os.path.dirname(p), option)
    return path


def check_output_dir(path, option: str = "-o") -> str:
    """Refuse an output directory that is a file, lies under a file or cannot be written."""
    p = os.path.abspath(os.fspath(path))
    if os.path.exists(p):
        if not os.path.isdir(p):
            raise OutputPathError(f"{option} {path}: exists and is not a directory")
        _check_parent(path, p, option)
        return path
    _check_parent(path, os.path.dirname(p), option)
    return path


def _check_parent(path, parent: str, option: str) -> None:
    """The nearest existing ancestor must be a writable directory (missing ones get made)."""
    d = parent
    while not os.path.exists(d):
        up = os.path.dirname(d)
        if up == d:
            break
        d = up
    if not os.path.isdir(d):
        raise OutputPathError(f"{option} {path}: {d} is a file, not a directory")
    if not os.access(d, os.W_OK | os.X_OK):
        raise OutputPathError(f"{option} {path}: cannot write in {d} (permission denied)")
    import tempfile

    try:  # the real test (root ignores permission bits; some file systems refuse files)
        with tempfile.TemporaryFile(dir=d):
            pass
    except OSError as e:
        raise OutputPathError(f"{option} {path}: cannot write in {d} ({e.strerror})") from None


# ---------------------------------------------------------------- input files
def load_input_array(path, option: str = "--input"):
    """A float array from a ``.npy`` file; ``InputError`` for anything else."""
    import numpy as np

    if not os.path.isfile(path):
        raise InputError(f"{option} {path}: no such file")
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as e:  # text, pickles (object arrays), damaged files
        raise InputError(f"{option} {path}: not a numeric .npy array "
                         f"({type(e).__name__}: {e})") from None
    if not isinstance(x, np.ndarray):
        raise InputError(f"{option} {path}: holds several arrays; save one array with np.save")
    if x.dtype.kind not in "biuf":
        raise InputError(f"{option} {path}: dtype {x.dtype} is not numeric")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise InputError(f"{option} {path}: contains NaN or infinite values")
    return x


# -------------------------------------------------------------------- threads
def add_threads_option(parser) -> None:
    """Give ``parser`` a ``--threads`` option unless it has one."""
    if any("--threads" in a.option_strings for a in parser._actions):
        return
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads for BLAS/OpenMP/torch (default: 1; training: all)")


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_threads(command: str) -> int:
    return available_cpus() if DEFAULT_THREADS.get(command) == "all" else 1


THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def apply_threads(n, command: str = ""):
    """Use ``n`` CPU threads (or the command's default, unless ``OMP_NUM_THREADS`` is set):
    environment variables for libraries not loaded yet, threadpoolctl for the BLAS/OpenMP
    pools already loaded, and torch's intra-op threads. Returns the thread count."""
    import sys

    if n is None:
        if os.environ.get("OMP_NUM_THREADS", "").strip().isdigit():
            return int(os.environ["OMP_NUM_THREADS"])
        n = default_threads(command)
    n = int(n)
    if n < 1:
        raise ConfigError(f"--threads must be a positive integer, got {n}")
    for k in THREAD_ENV:
        os.environ[k] = str(n)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return n


# ------------------------------------------------------------------ preflight
#: Counts that must be >= 1 / >= 0, by argparse attribute name (any command).
POSITIVE = ("batch", "calib", "limit", "fitness_batch", "population", "generations",
            "calib_images", "steps", "train_images", "eval", "top", "epochs", "requests",
            "step", "threads")
NON_NEGATIVE = ("check_images", "sim_images", "hysteresis", "seed", "stop_after")
#: Commands whose -o is a file (the others' is a directory).
FILE_OUTPUT = ("compile", "select", "finetune")


def preflight(args) -> None:
    """Check every argument that can be checked before the work starts (numbers, paths,
    NPU config, selection file); raises a ``FlexiQError`` subclass naming the option."""
    cmd = getattr(args, "command", "")
    for name in POSITIVE + NON_NEGATIVE:
        v = getattr(args, name, None)
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        flag = "--" + name.replace("_", "-")
        if v != v or v in (float("inf"), float("-inf")):
            raise ConfigError(f"{flag} must be a finite number, got {v}")
        if name in POSITIVE and v < 1 and not (name == "requests" and v > 0):
            raise ConfigError(f"{flag} must be a positive integer, got {v}")
        if name in NON_NEGATIVE and v < 0:
            raise ConfigError(f"{flag} must be >= 0, got {v}")
    if cmd == "compile" and args.batch > args.calib:
        raise ConfigError(f"--batch {args.batch} exceeds --calib {args.calib}: the program's "
                          "example batch is taken from the calibration images; raise --calib")
    out = getattr(args, "output", None) or getattr(args, "out", None)
    if out is not None:
        (check_output_file if cmd in FILE_OUTPUT else check_output_dir)(out)
    if getattr(args, "trace", None):
        check_output_file(args.trace, "--trace")
    if getattr(args, "topology_csv", None):
        check_output_file(args.topology_csv, "--topology-csv")
    if getattr(args, "input", None):
        load_input_array(args.input)
    if cmd == "simulate" and getattr(args, "ratio", None) is not None \
            and not 0.0 <= args.ratio <= 1.0:
        raise ConfigError(f"--ratio must lie in [0, 1], got {args.ratio}")
    cfg = None
    if getattr(args, "npu_config", None):
        from npu_sim import NPUConfig

        cfg = NPUConfig.from_toml(args.npu_config)
        from quant import QuantConfig

        try:  # the compiler quantizes with the NPU's G: it must be one the quantizer takes
            QuantConfig(group_size=cfg.group_size)
        except ConfigError as e:
            raise ConfigError(f"--npu-config {args.npu_config}: group_size = {cfg.group_size}: "
                              f"{e}") from None
    if getattr(args, "selection", None):
        from quant.select.selection import Selection

        sel = Selection.load(args.selection)
        check_selection_meta(sel, args.selection, model=getattr(args, "model", None),
                             extraction=getattr(args, "extraction", None),
                             group_size=cfg.group_size if cfg else None)
        if cmd == "compile" and args.ratios:
            from experiments.commands.compile import parse_ratios
            from quant.errors import RatioError

            ladder = {round(float(r), 12) for r in sel.ratios}
            off = [r for r in parse_ratios(args.ratios) if round(r, 12) not in ladder]
            if off:
                raise RatioError(f"--ratios {', '.join(f'{r:g}' for r in off)} not on the "
                                 f"selection's ladder ({', '.join(f'{r:g}' for r in sorted(ladder))})")


def check_selection_meta(sel, path, *, model=None, extraction=None, group_size=None) -> None:
    """A selection made for another model, extraction or group size is refused."""
    from quant.errors import SelectionFileError

    meta = sel.meta if isinstance(sel.meta, dict) else {}
    qc = meta.get("quant_config") if isinstance(meta.get("quant_config"), dict) else {}
    made_for = meta.get("model")
    # a registry name is compared with the name the selection records; a file reference
    # (path, path.py:factory, .pt2, .onnx) names its model only once loaded (or by --name)
    spec = str(model) if model else ""
    is_file_ref = os.path.exists(spec) or any(c in spec for c in "/:.")
    if spec and made_for and not is_file_ref and spec != made_for:
        raise SelectionFileError(f"--selection {path}: made for model {made_for!r}, not "
                                 f"{model!r}")
    if extraction and qc.get("extraction") and qc["extraction"] != extraction:
        raise SelectionFileError(f"--selection {path}: made with {qc['extraction']} extraction, "
                                 f"this run uses {extraction} (--extraction)")
    if group_size and qc.get("group_size") and int(qc["group_size"]) != int(group_size):
        raise SelectionFileError(f"--selection {path}: made with group size G = "
                                 f"{qc['group_size']}, the NPU config has {group_size}")
