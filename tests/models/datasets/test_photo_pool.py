"""The listed photo pool: the list file, the split by scene, seeded views, missing sources."""

import importlib

import numpy as np
import pytest

from quant.errors import DataMissingError

pp = importlib.import_module("models.datasets.photo_pool")


def test_list_is_explicit_and_consistent():
    kept, excluded = pp.read_photo_list()
    ids = [p.id for p in kept]
    assert len(ids) == len(set(ids)) >= 100  # no file twice
    assert all(reason for _, reason in excluded)  # every exclusion says why
    assert not set(ids) & {f for f, _ in excluded}
    assert all(p.kind.isalpha() or "-" in p.kind for p in kept)
    assert {p.source for p in kept} >= {"opencv", "skimage", "sklearn", "foolbox"}


def test_split_is_by_scene_disjoint_and_seeded():
    kept, _ = pp.read_photo_list()
    for seed in (0, 1):
        side = {p.id: pp.split_of(p, seed) for p in kept}
        calib = {p.scene for p in kept if side[p.id] == "calib"}
        evals = {p.scene for p in kept if side[p.id] == "eval"}
        assert calib and evals and not calib & evals  # no scene (so no photo) on both sides
        assert all(side[p.id] == "eval" for p in kept if p.source == "foolbox")
    assert [pp.split_of(p, 0) for p in kept] == [pp.split_of(p, 0) for p in kept]
    assert [pp.split_of(p, 0) for p in kept] != [pp.split_of(p, 1) for p in kept]


def _installed_or_skip():
    found, note = pp.pool_status()
    if not found:
        pytest.skip(f"no pool photos installed: {note}")
    return found


def test_views_are_disjoint_deterministic_and_grouped():
    _installed_or_skip()
    c = pp.photo_views("efficientnet_lite0", "calib", views=3)
    e = pp.photo_views("efficientnet_lite0", "eval", views=3)
    assert not {p.id for p in c.photos} & {p.id for p in e.photos}
    assert c.x.shape[1:] == (3, 224, 224) and len(c.x) == 3 * c.n_photos
    assert np.array_equal(np.bincount(e.photo), np.full(e.n_photos, 3))
    # view 1 is the mirror image of view 0
    assert np.allclose(e.x[1].numpy(), e.x[0].numpy()[:, :, ::-1])
    e2 = pp.photo_views("efficientnet_lite0", "eval", views=3)
    assert e.x.numpy().tobytes() == e2.x.numpy().tobytes()
    v = c.view_major()
    assert list(v.view[:c.n_photos]) == [0] * c.n_photos
    assert sorted(v.photo[:c.n_photos]) == list(range(c.n_photos))


def test_missing_source_is_named_in_one_line(monkeypatch):
    _installed_or_skip()
    real = pp.source_root
    monkeypatch.setattr(pp, "source_root", lambda s: None if s == "opencv" else real(s))
    found, note = pp.pool_status()
    assert "\n" not in note and "opencv" in note and "apt-get install opencv-doc" in note
    assert all(p.source != "opencv" for p, _ in found)
    if found:
        assert len(pp.photo_views("efficientnet_lite0", "all", views=1).x) == len(found)


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        pp.photo_views("efficientnet_lite0", "train")
    with pytest.raises(ValueError, match="1-channel"):
        pp.photo_views("resnet20_fmnist", "eval")


def test_nothing_installed_raises_data_missing(monkeypatch):
    mod = importlib.import_module("models.datasets.photo_pool")
    monkeypatch.setattr(mod, "source_root", lambda s: None)
    with pytest.raises(DataMissingError, match="photo pool: missing"):
        mod.photo_views("efficientnet_lite0", "eval")
