"""An unlabelled pool of real photos for calibration and fidelity metrics on ImageNet models.

The files are listed, one per line with what they show, in ``photo_list.txt`` next to this
module (the files left out are listed there too, with the reason). They come from installed
packages and are read as files (no package is imported): the Debian package ``opencv-doc``
(``/usr/share/doc/opencv-doc/examples``), scikit-image, scikit-learn, matplotlib's sample
data, foolbox's 20 labelled ImageNet photos, and the photographs that the Debian package
``gcompris-qt-data`` keeps inside Qt resource archives (a list entry ``ARCHIVE.rcc!/MEMBER``,
read by ``qt_resources``). A missing source is skipped (``pool_status`` names it in one
line); no source at all raises ``DataMissingError``.

Each photo gives several views (``views``): the model's centre eval crop, its mirror image,
and the four corner crops of the same scale, each mirrored or not by a coin seeded with
``(seed, photo)``. Fidelity metrics use the first ``EVAL_VIEWS`` views of each evaluation
photo (the centre crop, its mirror and one corner crop): the intervals resample photos, so
more photos narrow them and further views of the same photo add little but run time.
``split_of`` assigns whole scenes (a photo and its near-duplicates) to the
calibration or the evaluation side by a seeded hash, so no photo is on both sides and a
missing source does not move the others; foolbox's labelled photos are always evaluation.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
from dataclasses import dataclass

import numpy as np
import torch

from .._packages import package_dir
from . import qt_resources
from ._missing import missing
from .preprocess import resize_crop, to_normalized_tensor

LIST_FILE = os.path.join(os.path.dirname(__file__), "photo_list.txt")
OPENCV_SAMPLES = os.environ.get("FLEXIQ_OPENCV_SAMPLES", "/usr/share/doc/opencv-doc/examples")
GCOMPRIS_RCC = os.environ.get("FLEXIQ_GCOMPRIS_RCC", "/usr/share/gcompris-qt/rcc")
MEMBER_SEP = "!"  # ARCHIVE.rcc!/MEMBER: a file inside a Qt resource archive

#: source -> (how to find its root, sub-directory)
SOURCES = {
    "opencv": ("dir", OPENCV_SAMPLES, ""),
    "skimage": ("pkg", "skimage", "data"),
    "sklearn": ("pkg", "sklearn", os.path.join("datasets", "images")),
    "mpl": ("pkg", "matplotlib", os.path.join("mpl-data", "sample_data")),
    "foolbox": ("pkg", "foolbox", "data"),
    "bg": ("dir", "/usr/share/backgrounds", ""),
    "desktop": ("dir", "/usr/share/desktop-base", ""),
    "gcompris": ("dir", GCOMPRIS_RCC, ""),
}
#: the install hint per source, for the one-line "missing" message
INSTALL = {
    "opencv": "apt-get install opencv-doc", "skimage": "pip install scikit-image",
    "sklearn": "pip install scikit-learn", "mpl": "pip install matplotlib",
    "foolbox": "pip install --no-deps foolbox==3.3.4",
    "gcompris": "apt-get install gcompris-qt-data",
}
ALWAYS_EVAL = ("foolbox",)  # the labelled accuracy photos never calibrate
EVAL_FRACTION = 0.6
MAX_EVAL_SCENE = 4  # a scene with more photos (the 26 chessboard shots of one room) calibrates
N_VIEWS = 6
EVAL_VIEWS = 3  # views per evaluation photo in the fidelity metrics


@dataclass(frozen=True)
class Photo:
    source: str
    path: str  # relative to the source root
    kind: str
    scene: str

    @property
    def id(self) -> str:
        return f"{self.source}:{self.path}"


def read_photo_list(path: str = LIST_FILE) -> tuple[list[Photo], list[tuple[str, str]]]:
    """``(kept photos, [(file, reason), ...] left out)`` from the list file, in file order."""
    kept, excluded = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) < 2 or ":" not in parts[0]:
                raise ValueError(f"{path}: bad line {line!r} (want SOURCE:PATH KIND [SCENE])")
            ident, kind = parts[0], parts[1]
            if kind == "exclude":
                excluded.append((ident, " ".join(parts[2:])))
                continue
            source, rel = ident.split(":", 1)
            if source not in SOURCES:
                raise ValueError(f"{path}: unknown source {source!r} in line {line!r}")
            scene = f"{source}:{parts[2]}" if len(parts) > 2 else ident
            kept.append(Photo(source, rel, kind, scene))
    return kept, excluded


def source_root(source: str) -> str | None:
    how, where, sub = SOURCES[source]
    root = where if how == "dir" else package_dir(where)
    if root is None or not os.path.isdir(os.path.join(root, sub)):
        return None
    return os.path.join(root, sub)


def pool_status() -> tuple[list[tuple[Photo, str]], str]:
    """``([(photo, file path), ...] installed, one line naming missing sources or "")``."""
    photos, _ = read_photo_list()
    roots = {s: source_root(s) for s in {p.source for p in photos}}
    found, missing_files = [], {}
    for p in photos:
        f = os.path.join(roots[p.source], p.path) if roots[p.source] else None
        if f and _installed(f):
            found.append((p, f))
        else:
            missing_files[p.source] = missing_files.get(p.source, 0) + 1
    note = ""
    if missing_files:
        note = "photo pool: missing " + ", ".join(
            f"{s} ({n} photos; {INSTALL.get(s, 'see photo_list.txt')})"
            for s, n in sorted(missing_files.items()))
    return found, note


def _installed(f: str) -> bool:
    """A plain file, or a member of an installed Qt resource archive (``ARCHIVE!/MEMBER``)."""
    if MEMBER_SEP not in f:
        return os.path.isfile(f)
    archive, member = f.split(MEMBER_SEP, 1)
    if not os.path.isfile(archive):
        return False
    try:
        return member in qt_resources.list_files(archive)
    except qt_resources.QtResourceError:
        return False


def open_photo(f: str):
    """``PIL.Image.open`` of a pool file: a plain file or ``ARCHIVE!/MEMBER``."""
    from PIL import Image

    if MEMBER_SEP not in f:
        return Image.open(f)
    archive, member = f.split(MEMBER_SEP, 1)
    return Image.open(io.BytesIO(qt_resources.read_file(archive, member)))


def load_photo(f: str):
    """The RGB image of a pool file (a plain file or ``ARCHIVE!/MEMBER``)."""
    with open_photo(f) as im:
        return im.convert("RGB")


def photo_pool_files() -> list[str]:
    """Paths of the pool photos that are installed; DataMissingError when there are none."""
    found, note = pool_status()
    if not found:
        raise missing("photos", note or "no pool photos are installed")
    return [f for _, f in found]


def _unit(*parts) -> float:
    """A number in [0, 1) from a hash of ``parts`` (stable across runs and machines)."""
    h = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


@functools.lru_cache(maxsize=1)
def _scene_sizes() -> dict:
    photos, _ = read_photo_list()
    sizes: dict = {}
    for p in photos:
        sizes[p.scene] = sizes.get(p.scene, 0) + 1
    return sizes


def split_of(photo: Photo, seed: int = 0, eval_fraction: float = EVAL_FRACTION) -> str:
    """"calib" or "eval" for this photo's scene (seeded hash of the scene id). Foolbox's
    labelled photos are always "eval"; a scene of more than ``MAX_EVAL_SCENE`` photos is
    always "calib" (on the evaluation side it would outweigh everything else)."""
    if photo.source in ALWAYS_EVAL:
        return "eval"
    if _scene_sizes().get(photo.scene, 1) > MAX_EVAL_SCENE:
        return "calib"
    return "eval" if _unit("split", seed, photo.scene) < eval_fraction else "calib"


def _five_crop_boxes(w: int, h: int, side: int) -> list[tuple[int, int, int, int]]:
    cx, cy = (w - side) // 2, (h - side) // 2
    corners = [(0, 0), (w - side, 0), (0, h - side), (w - side, h - side)]
    return [(x, y, x + side, y + side) for x, y in [(cx, cy), *corners]]


def _views(image, meta, n_views: int, seed: int, photo_id: str) -> list[np.ndarray]:
    """Centre eval crop, its mirror, then the corner crops each mirrored by a seeded coin."""
    size, resize = meta["input_size"], meta["resize"] or meta["input_size"]
    centre = resize_crop(image, size, resize, meta["interpolation"])
    out = [centre, centre[:, ::-1]]
    w, h = image.size
    side = round(min(w, h) * size / resize)
    for i, box in enumerate(_five_crop_boxes(w, h, side)[1:]):
        v = resize_crop(image.crop(box), size, size, meta["interpolation"])
        out.append(v[:, ::-1] if _unit("flip", seed, photo_id, i) < 0.5 else v)
    return out[:n_views]


@dataclass
class PhotoBatch:
    """Views of pool photos: ``x`` [N, 3, H, W], ``photo`` [N] index into ``photos``,
    ``view`` [N] which view of its photo (0 = the centre eval crop)."""

    x: torch.Tensor
    photo: np.ndarray
    view: np.ndarray
    photos: list

    def view_major(self) -> PhotoBatch:
        """The same views ordered view by view (every photo's centre crop first), so that a
        prefix of any length spreads over all photos."""
        idx = np.lexsort((self.photo, self.view))
        return PhotoBatch(self.x[torch.as_tensor(idx)], self.photo[idx], self.view[idx],
                          self.photos)

    @property
    def n_photos(self) -> int:
        return len(self.photos)


def photo_views(model_name: str, split: str = "all", *, views: int = N_VIEWS,
                seed: int = 0) -> PhotoBatch:
    """Preprocessed views of the pool photos on one side of the split ("calib", "eval",
    "all"), photo by photo in list order, with each view's photo index (for bootstraps)."""
    from ..registry import info

    if split not in ("all", "calib", "eval"):
        raise ValueError(f"split must be 'all', 'calib' or 'eval', got {split!r}")
    if not 1 <= int(views) <= N_VIEWS:
        raise ValueError(f"views must lie in [1, {N_VIEWS}], got {views!r}")
    meta = info(model_name)
    if meta["channels"] != 3:
        raise ValueError(f"{model_name} takes {meta['channels']}-channel input, not RGB photos")
    found, note = pool_status()
    chosen = [(p, f) for p, f in found if split == "all" or split_of(p, seed) == split]
    if not chosen:
        raise missing("photos", note or f"no pool photos on the {split} side")
    arrays, index, view = [], [], []
    for i, (p, f) in enumerate(chosen):
        vs = _views(load_photo(f), meta, int(views), seed, p.id)
        arrays += vs
        index += [i] * len(vs)
        view += range(len(vs))
    x = to_normalized_tensor(np.stack(arrays), meta["mean"], meta["std"])
    return PhotoBatch(x, np.asarray(index, dtype=np.int64), np.asarray(view, dtype=np.int64),
                      [p for p, _ in chosen])


def photo_pool(model_name: str, crops: str = "center") -> torch.Tensor:
    """Preprocessed pool photos for ``model_name``: float32 [N, 3, H, W], no labels.

    ``crops="center"`` gives one image per photo (the model's eval crop); ``crops="five"`` adds
    the four corner crops of the same scale (5 per photo).
    """
    from ..registry import info

    if crops not in ("center", "five"):
        raise ValueError(f"crops must be 'center' or 'five', got {crops!r}")
    meta = info(model_name)
    size, resize = meta["input_size"], meta["resize"] or meta["input_size"]
    out = []
    for path in photo_pool_files():
        image = load_photo(path)
        if crops == "center":
            out.append(resize_crop(image, size, resize, meta["interpolation"]))
            continue
        w, h = image.size
        side = round(min(w, h) * size / resize)
        for box in _five_crop_boxes(w, h, side):
            out.append(resize_crop(image.crop(box), size, size, meta["interpolation"]))
    return to_normalized_tensor(np.stack(out), meta["mean"], meta["std"])
