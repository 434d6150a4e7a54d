"""`flexiq info`: versions, defaults and what is installed."""

from __future__ import annotations

import json
import platform


def register(sub) -> None:
    p = sub.add_parser("info", help="show versions, NPU defaults and available models/data")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def collect() -> dict:
    import numba
    import numpy
    import torch

    info = {
        "flexiq_npu": _version(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__,
        "cuda_available": bool(torch.cuda.is_available()),
    }
    try:
        from npu_sim import NPUConfig

        info["npu_defaults"] = NPUConfig().to_dict()
    except Exception:  # the simulator may be absent in a partial install
        pass
    try:
        import models

        info["models"] = models.names()
    except Exception:
        pass
    return info


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("flexiq-npu")
    except PackageNotFoundError:
        return "unknown (not installed)"


def run(args) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        for k, v in info.items():
            print(f"{k:>16}: {v}")
    return 0
