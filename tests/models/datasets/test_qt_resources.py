"""Qt resource archives (models/datasets/qt_resources.py) and the pool photos read from them.

The archives here are written by ``write_rcc`` below, a minimal writer of the format the
reader documents (version 3: 22-byte tree nodes), so the tests need no Qt and no Debian
package."""

import importlib
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from models.datasets import qt_resources as qr
from quant.errors import FlexiQError

pp = importlib.import_module("models.datasets.photo_pool")


def write_rcc(path, files: dict, compress=()):
    """A version-3 archive holding ``files`` {"/dir/sub/name": bytes}; members named in
    ``compress`` are stored zlib-compressed (uncompressed size first, as Qt does)."""
    tree: dict = {}
    for p, data in files.items():
        node = tree
        *dirs, leaf = p.strip("/").split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[leaf] = (p, data)
    names, name_off = bytearray(), {}

    def name(n):
        if n not in name_off:
            name_off[n] = len(names)
            enc = n.encode("utf-16-be")
            names.extend(struct.pack(">HI", len(n), 0) + enc)
        return name_off[n]

    data_blob = bytearray()
    nodes = [None]  # index 0: the root; children of a directory get consecutive indices

    def place(children) -> int:
        first = len(nodes)
        nodes.extend([None] * len(children))
        for k, (n, v) in enumerate(sorted(children.items())):
            if isinstance(v, dict):
                nodes[first + k] = (name(n), 2, len(v), place(v))
            else:
                p, raw = v
                flags = 0
                if p in compress:
                    raw, flags = struct.pack(">I", len(raw)) + zlib.compress(raw), 1
                off = len(data_blob)
                data_blob.extend(struct.pack(">I", len(raw)) + raw)
                nodes[first + k] = (name(n), flags, None, off)
        return first

    nodes[0] = (0, 2, len(tree), 0)
    nodes[0] = (0, 2, len(tree), place(tree))
    tree_blob = bytearray()
    for name_o, flags, count, x in nodes:
        if flags & 2:
            tree_blob += struct.pack(">IHII", name_o, flags, count, x)
        else:
            tree_blob += struct.pack(">IHHHI", name_o, flags, 0, 0, x)
        tree_blob += struct.pack(">Q", 0)  # last modified (version >= 2)
    tree_at = 24
    data_at = tree_at + len(tree_blob)
    names_at = data_at + len(data_blob)
    head = b"qres" + struct.pack(">IIIII", 3, tree_at, data_at, names_at, 0)
    with open(path, "wb") as f:
        f.write(head + bytes(tree_blob) + bytes(data_blob) + bytes(names))


def _webp(seed, size=(300, 260)) -> bytes:
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    buf = io.BytesIO()
    im.save(buf, format="WEBP", lossless=True)
    return buf.getvalue()


def test_reader_lists_and_reads_plain_and_compressed_members(tmp_path):
    files = {"/a/b/one.webp": _webp(0), "/a/two.txt": b"hello" * 50, "/top.bin": b"\x00\x01"}
    path = tmp_path / "x.rcc"
    write_rcc(path, files, compress={"/a/two.txt"})
    qr._index.cache_clear()
    assert sorted(qr.list_files(str(path))) == sorted(files)
    for member, data in files.items():
        assert qr.read_file(str(path), member) == data
    with pytest.raises(qr.QtResourceError, match="no member"):
        qr.read_file(str(path), "/a/three.webp")


def test_reader_refuses_what_is_not_an_archive(tmp_path):
    bad = tmp_path / "bad.rcc"
    bad.write_bytes(b"PK\x03\x04 not a Qt archive")
    with pytest.raises(qr.QtResourceError, match="qres"):
        qr.list_files(str(bad))
    cut = tmp_path / "cut.rcc"
    write_rcc(cut, {"/d/x.webp": _webp(1)})
    cut.write_bytes(cut.read_bytes()[:40])  # the tree points past the end
    with pytest.raises(qr.QtResourceError, match="damaged"):
        qr.list_files(str(cut))
    broken = tmp_path / "broken.rcc"  # an intact index over a corrupt compressed member
    write_rcc(broken, {"/d/y.txt": b"x" * 100}, compress={"/d/y.txt"})
    blob = bytearray(broken.read_bytes())
    blob[blob.index(zlib.compress(b"x" * 100)) + 2] ^= 0xFF
    broken.write_bytes(bytes(blob))
    qr._index.cache_clear()
    with pytest.raises(FlexiQError, match="y.txt"):  # what the command line reports in one line
        qr.read_file(str(broken), "/d/y.txt")


def test_pool_reads_listed_photos_from_an_archive(tmp_path, monkeypatch):
    """A listed gcompris photo is found inside its archive, loads as RGB, gets views, and
    keeps its own scene; the other photos' split does not move."""
    kept, _ = pp.read_photo_list()
    ours = [p for p in kept if p.source == "gcompris"]
    assert ours and all(pp.MEMBER_SEP in p.path for p in ours)
    first = ours[0]
    archive, member = first.path.split(pp.MEMBER_SEP, 1)
    write_rcc(tmp_path / archive, {member: _webp(2)})
    qr._index.cache_clear()
    before = {p.id: pp.split_of(p) for p in kept if p.source != "gcompris"}
    monkeypatch.setitem(pp.SOURCES, "gcompris", ("dir", str(tmp_path), ""))
    found, note = pp.pool_status()
    got = [f for p, f in found if p.source == "gcompris"]
    assert got == [str(tmp_path / archive) + pp.MEMBER_SEP + member]
    assert "gcompris (" in note  # the other listed archives are missing, and said so
    im = pp.load_photo(got[0])
    assert im.mode == "RGB" and im.size == (300, 260)
    with pp.open_photo(got[0]) as raw:
        assert raw.format == "WEBP"
    assert {p.id: pp.split_of(p) for p in kept if p.source != "gcompris"} == before
    side = pp.split_of(first)
    b = pp.photo_views("efficientnet_lite0", side, views=2)
    i = [k for k, p in enumerate(b.photos) if p.id == first.id]
    assert len(i) == 1 and (b.photo == i[0]).sum() == 2
