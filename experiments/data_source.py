"""Where a model's calibration (and evaluation) inputs come from: ``resolve_data(spec, ref)``.

``spec`` is one of

* ``auto``: a registry model's own data set (``experiments/data.py``); a user model has
  none, so it must name one of the others;
* ``synthetic``: seeded N(0, 1) noise of the model's input shape (no labels);
* a registry data set, ``fashion-mnist`` (1x28x28 inputs) or ``imagenet`` (3xHxW: the
  photo pool to calibrate on, the labelled ImageNet photos when the model has 1000
  outputs), preprocessed with ``Preprocess`` (mean/std default to the data set's);
* a folder of images (``.png``/``.jpg``/``.jpeg``/``.bmp``/``.webp``, searched
  recursively): each image's shorter side resized to ``resize`` (default: the input
  size), centre-cropped to H x W, scaled to [0, 1], then ``(x - mean) / std``. A folder
  whose images sit in one sub-folder per class is labelled (classes in sorted order);
* a ``.npy`` array or ``.pt`` tensor of shape [N, *input_shape], or a ``.pt`` dict with
  ``"x"`` and optional ``"y"`` labels.

Calibration and evaluation never share a sample: a folder or tensor file is split once,
by a seeded permutation of its samples (files), into an evaluation part (a quarter, at least
one sample) and a calibration part (the rest); ``imagenet`` calibrates on the photo pool's
calibration photos and measures fidelity on its evaluation photos (split by photo,
``models/datasets/photo_pool.py``). Calibration takes the first ``n`` samples of its part;
evaluation (sweep/pipeline) the first ``limit`` of its part. Labels are optional: without
them the sweep reports fidelity to the 8-bit model only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch

from quant.errors import ConfigError, DataMissingError

from .data import EvalSet

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
DATASETS = ("fashion-mnist", "imagenet")


@dataclass
class Preprocess:
    mean: tuple | None = None  # per channel, on [0, 1] pixels
    std: tuple | None = None
    resize: int | None = None  # shorter side before the centre crop

    def describe(self) -> str:
        return ",".join(f"{k}={v}" for k, v in
                        (("mean", self.mean), ("std", self.std), ("resize", self.resize))
                        if v is not None)


def parse_floats(text, what: str) -> tuple | None:
    if text is None:
        return None
    try:
        vals = tuple(float(t) for t in str(text).split(",") if t.strip())
    except ValueError:
        vals = ()
    if not vals:
        raise ConfigError(f"--{what} must be comma-separated numbers, got {text!r}")
    if what == "std" and any(v <= 0 for v in vals):
        raise ConfigError(f"--std must be positive, got {text!r}")
    return vals


@dataclass
class DataSource:
    kind: str  # registry | synthetic | fashion-mnist | imagenet | folder | tensor
    spec: str
    shape: tuple
    registry: str | None = None  # the registry model whose data "registry" reads
    prep: Preprocess = field(default_factory=Preprocess)
    path: str | None = None

    @property
    def key(self) -> str:
        """What identifies this data in sweep resume checks."""
        extra = self.prep.describe()
        base = "auto" if self.kind == "registry" else self.spec
        return base + (f"[{extra}]" if extra else "")

    # ------------------------------------------------------------------ public
    def calibration(self, n: int = 256, *, seed: int = 0, batch: int = 64) -> list[torch.Tensor]:
        if self.kind == "registry":
            from .data import calibration_batches

            return calibration_batches(self.registry, n, batch=batch, seed=seed)
        if self.kind == "synthetic":
            g = torch.Generator().manual_seed(1000 + seed)
            x = torch.randn(n, *self.shape, generator=g)
        elif self.kind == "fashion-mnist":
            from models.datasets import load_fashion_mnist

            images, _ = load_fashion_mnist("train")
            idx = np.sort(np.random.default_rng(seed).permutation(len(images))[:n])
            x = self._fmnist(images[idx])
        elif self.kind == "imagenet":
            x = self._images(_pool_side("calib")[:n])
        else:
            x = self._part("calib")[0][:n]
        return [x[i:i + batch] for i in range(0, len(x), batch)]

    def evaluation(self, limit: int | None = None, *, seed: int = 0,
                   num_outputs: int | None = None) -> EvalSet:
        if self.kind == "registry":
            from .data import evaluation_set

            return evaluation_set(self.registry, limit=limit, seed=seed)
        if self.kind == "synthetic":
            if self.registry is not None:  # seeded random labels too, as before
                from .data import evaluation_set

                return evaluation_set(self.registry, limit=limit, data="synthetic", seed=seed)
            g = torch.Generator().manual_seed(2000 + seed)
            return EvalSet("synthetic", torch.randn(limit or 32, *self.shape, generator=g), None)
        if self.kind == "fashion-mnist":
            from models.datasets import load_fashion_mnist

            images, labels = load_fashion_mnist("test")
            n = len(images) if limit is None else min(int(limit), len(images))
            y = torch.as_tensor(labels[:n].astype("int64")) if num_outputs in (None, 10) else None
            return EvalSet("fashion-mnist-test" + (f"[:{n}]" if n < len(images) else ""),
                           self._fmnist(images[:n]), y)
        if self.kind == "imagenet":
            from models.datasets import imagenet_photo_files

            files = imagenet_photo_files()
            x = self._images([p for p, _ in files])
            y = torch.tensor([lbl for _, lbl in files], dtype=torch.int64)
            if limit is not None:
                x, y = x[:limit], y[:limit]
            return EvalSet("imagenet-photos", x, y if num_outputs in (None, 1000) else None,
                           pool=self._images(_pool_side("eval")))
        x, y = self._part("eval")
        if limit is not None:
            x, y = x[:limit], (None if y is None else y[:limit])
        return EvalSet(f"{self.kind}:{os.path.basename(os.path.normpath(self.path))}", x, y)

    # ----------------------------------------------------------------- helpers
    def _fmnist(self, images_u8) -> torch.Tensor:
        from models.registry import FMNIST_MEAN, FMNIST_STD

        x = torch.from_numpy(np.array(images_u8, dtype=np.float32)).div_(255.0).unsqueeze(1)
        return _normalize(x, self.prep.mean or FMNIST_MEAN, self.prep.std or FMNIST_STD)

    def _images(self, paths) -> torch.Tensor:
        from PIL import Image

        from models.datasets.photo_pool import open_photo
        from models.datasets.preprocess import resize_crop
        from models.registry import IMAGENET_MEAN, IMAGENET_STD

        c, h, w = self.shape
        default_mean, default_std = ((IMAGENET_MEAN, IMAGENET_STD) if self.kind == "imagenet"
                                     else ((0.0,) * c, (1.0,) * c))
        resize = self.prep.resize or (round(max(h, w) * 256 / 224) if self.kind == "imagenet"
                                      else max(h, w))
        out = []
        for p in paths:
            try:
                with open_photo(p) as im:  # a file, or a photo inside a Qt resource archive
                    im = im.convert("L" if c == 1 else "RGB")
                    if h == w:
                        a = resize_crop(im, h, resize)
                    else:  # scaled to cover H x W, then the centre crop
                        iw, ih = im.size
                        k = max(w / iw, h / ih)
                        nw, nh = max(w, round(iw * k)), max(h, round(ih * k))
                        im = im.resize((nw, nh), Image.Resampling.BILINEAR)
                        left, top = (nw - w) // 2, (nh - h) // 2
                        a = np.asarray(im.crop((left, top, left + w, top + h)), dtype=np.uint8)
            except Exception as exc:
                raise ConfigError(f"{p}: cannot read the image ({exc})") from None
            out.append(a.reshape(h, w, c))
        x = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float().div_(255.0)
        return _normalize(x, self.prep.mean or default_mean, self.prep.std or default_std)

    def _part(self, side: str):
        """(x, labels or None) of one side ("calib" or "eval") of a folder or tensor file."""
        x, y = self._samples()
        idx = split_indices(len(x))[side]
        return x[idx], (None if y is None else y[idx])

    def _samples(self):
        """(x, labels or None) of a folder or a tensor file."""
        if self.kind == "folder":
            files, labels = _image_files(self.path)
            return self._images(files), labels
        return _tensor_file(self.path, self.shape)


EVAL_SHARE = 0.25  # of a user's folder or tensor file, held out for evaluation


def split_indices(n: int, seed: int = 0) -> dict:
    """Sample indices of the two disjoint sides of ``n`` samples: ``{"calib", "eval"}``."""
    if n < 2:
        raise ConfigError(f"the data has {n} sample(s): at least 2 are needed to keep "
                          "calibration and evaluation samples apart")
    perm = np.random.default_rng(seed).permutation(n)
    k = max(1, int(round(n * EVAL_SHARE)))
    return {"eval": torch.as_tensor(np.sort(perm[:k])), "calib": torch.as_tensor(np.sort(perm[k:]))}


def _pool_side(side: str) -> list[str]:
    """Installed photo-pool files on one side of the split by photo."""
    from models.datasets._missing import missing
    from models.datasets.photo_pool import pool_status, split_of

    found, note = pool_status()
    files = [f for p, f in found if split_of(p) == side]
    if not files:
        raise missing("photos", note or f"no {side} photos of the pool are installed")
    return files


def _normalize(x, mean, std) -> torch.Tensor:
    c = x.shape[1]
    mean, std = tuple(mean), tuple(std)
    if len(mean) == 1:
        mean = mean * c
    if len(std) == 1:
        std = std * c
    if len(mean) != c or len(std) != c:
        raise ConfigError(f"--mean/--std need 1 or {c} values, got {len(mean)} and {len(std)}")
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - m) / s


def _image_files(folder: str):
    subdirs = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    top = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTS))
    files, labels = [], []
    if subdirs and not top:  # one sub-folder per class
        for k, d in enumerate(subdirs):
            for root, _, names in sorted(os.walk(os.path.join(folder, d))):
                for f in sorted(names):
                    if f.lower().endswith(IMAGE_EXTS):
                        files.append(os.path.join(root, f))
                        labels.append(k)
    else:
        for root, _, names in sorted(os.walk(folder)):
            files += [os.path.join(root, f) for f in sorted(names) if f.lower().endswith(IMAGE_EXTS)]
        labels = None
    if not files:
        raise DataMissingError(f"{folder}: no image files ({', '.join(IMAGE_EXTS)})")
    return files, (torch.tensor(labels, dtype=torch.int64) if labels is not None else None)


def _tensor_file(path: str, shape: tuple):
    y = None
    try:
        if path.endswith(".npy"):
            x = torch.from_numpy(np.load(path, allow_pickle=False))
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(obj, dict):
                if "x" not in obj:
                    raise ConfigError(f"{path}: a dict of calibration data needs key 'x' "
                                      f"(and optionally 'y'), has {sorted(obj)}")
                x, y = obj["x"], obj.get("y")
            elif isinstance(obj, (tuple, list)) and len(obj) == 2:
                x, y = obj
            else:
                x = obj
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{path}: cannot read calibration data ({str(exc).strip().splitlines()[0]})") from None
    if not isinstance(x, torch.Tensor):
        raise ConfigError(f"{path}: holds a {type(x).__name__}, not a tensor")
    if tuple(x.shape[1:]) != tuple(shape) or x.shape[0] == 0:
        raise ConfigError(f"{path}: samples of shape {tuple(x.shape)} do not match "
                          f"[N, {', '.join(map(str, shape))}]")
    x = x.float()
    if not torch.isfinite(x).all():
        raise ConfigError(f"{path}: holds non-finite values")
    if y is not None:
        y = torch.as_tensor(y).long().reshape(-1)
        if len(y) != len(x):
            raise ConfigError(f"{path}: {len(y)} labels for {len(x)} samples")
    return x, y


def resolve_data(spec: str | None, ref, prep: Preprocess | None = None) -> DataSource:
    """The data source ``spec`` for the model reference ``ref`` (``model_ref.ModelRef``)."""
    spec = "auto" if spec in (None, "") else str(spec)
    prep = prep or Preprocess()
    shape = tuple(ref.input_shape)
    if spec == "auto":
        if ref.registry is None:
            raise ConfigError(f"model {ref.name} is not a registry model: name its calibration "
                              "data with --calib-data (a folder of images, a .npy/.pt tensor, "
                              f"{' or '.join(DATASETS)}, or synthetic)")
        return DataSource("registry", ref.registry, shape, registry=ref.registry, prep=prep)
    if spec == "synthetic":
        return DataSource("synthetic", spec, shape, registry=ref.registry, prep=prep)
    if spec in DATASETS:
        if spec == "fashion-mnist" and shape != (1, 28, 28):
            raise ConfigError(f"fashion-mnist images are 1,28,28; model {ref.name} takes "
                              f"{','.join(map(str, shape))}")
        if spec == "imagenet" and (len(shape) != 3 or shape[0] != 3):
            raise ConfigError(f"imagenet photos are RGB (3,H,W); model {ref.name} takes "
                              f"{','.join(map(str, shape))}")
        return DataSource(spec, spec, shape, prep=prep)
    if os.path.isdir(spec):
        if len(shape) != 3 or shape[0] not in (1, 3):
            raise ConfigError(f"a folder of images needs a 1,H,W or 3,H,W input shape; model "
                              f"{ref.name} takes {','.join(map(str, shape))}")
        return DataSource("folder", spec, shape, prep=prep, path=spec)
    if spec.endswith((".npy", ".pt", ".pth")):
        if not os.path.isfile(spec):
            raise DataMissingError(f"calibration data {spec}: no such file")
        return DataSource("tensor", spec, shape, prep=prep, path=spec)
    raise ConfigError(f"--calib-data {spec!r}: not a folder, a .npy/.pt file, "
                      f"{', '.join(DATASETS)}, synthetic or auto")
