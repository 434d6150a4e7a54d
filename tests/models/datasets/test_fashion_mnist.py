from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from models.datasets import fashion_mnist_loader, load_fashion_mnist
from quant.errors import DataMissingError


def _write_idx(path, arr: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.fixture
def tiny_root(tmp_path):
    rng = np.random.default_rng(0)
    for stem, n, compress in (("train", 12, True), ("t10k", 5, False)):
        _write_idx(tmp_path / f"{stem}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), compress)
        _write_idx(tmp_path / f"{stem}-labels-idx1-ubyte", np.arange(n) % 10, compress)
    return str(tmp_path)


def test_user_root_gz_and_raw(tiny_root):
    x, y = load_fashion_mnist("train", root=tiny_root)
    assert x.shape == (12, 28, 28) and x.dtype == np.uint8
    assert y.tolist() == [i % 10 for i in range(12)]
    x, y = load_fashion_mnist("test", root=tiny_root)
    assert x.shape == (5, 28, 28) and y.tolist() == [0, 1, 2, 3, 4]


def test_loader_batches_and_normalization(tiny_root):
    batches = list(fashion_mnist_loader("train", 5, root=tiny_root))
    assert [len(y) for _, y in batches] == [5, 5, 2]
    x, y = batches[0]
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    raw, _ = load_fashion_mnist("train", root=tiny_root)
    expect = (torch.from_numpy(raw[:5].astype(np.float32)) / 255 - 0.2860) / 0.3530
    torch.testing.assert_close(x[:, 0], expect)
    x01, _ = next(fashion_mnist_loader("train", 5, normalize=False, root=tiny_root))
    assert float(x01.min()) >= 0 and float(x01.max()) <= 1


def test_loader_limit_and_seeded_shuffle(tiny_root):
    ys = lambda **kw: torch.cat([y for _, y in fashion_mnist_loader("train", 4, root=tiny_root, **kw)])  # noqa: E731
    assert ys(limit=7).tolist() == list(range(7))
    a, b = ys(shuffle=True, seed=3), ys(shuffle=True, seed=3)
    assert a.tolist() == b.tolist() and a.tolist() != list(range(10)) + [0, 1]
    assert sorted(a.tolist()) == sorted(ys().tolist())


def test_missing_data_says_how_to_install(tmp_path):
    with pytest.raises(DataMissingError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("test", root=str(tmp_path))


def test_bad_split():
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("val")


def test_installed_dataset_is_complete():
    xtr, ytr = load_fashion_mnist("train")
    xte, yte = load_fashion_mnist("test")
    assert xtr.shape == (60000, 28, 28) and xte.shape == (10000, 28, 28)
    assert np.bincount(yte).tolist() == [1000] * 10 and np.bincount(ytr).tolist() == [6000] * 10
    x = xtr.astype(np.float64) / 255
    assert x.mean() == pytest.approx(0.2860, abs=1e-4) and x.std() == pytest.approx(0.3530, abs=1e-4)
