"""Read the files packed in a Qt resource archive (``.rcc``, magic ``qres``).

Some Debian packages ship their images inside such archives (gcompris-qt-data keeps its
photographs in ``/usr/share/gcompris-qt/rcc/<activity>.rcc``). The layout, versions 1-3:

* header: ``qres``, then four big-endian uint32: format version, and the offsets of the
  tree, the data and the names sections;
* tree: fixed-size nodes (14 bytes, 22 from version 2 on: a last-modified time follows),
  node 0 is the root directory: uint32 name offset, uint16 flags (1 zlib-compressed,
  2 directory, 4 zstd-compressed), then for a directory uint32 child count and index of
  its first child, for a file uint16 country, uint16 language and uint32 data offset;
* names: uint16 length, uint32 hash, the name in UTF-16 big-endian;
* data: uint32 length, then the bytes; zlib entries start with the uncompressed size
  (uint32) before the zlib stream.

Only what the photo pool needs: list the files and return one file's bytes (zstd entries
are listed but cannot be read here).
"""

from __future__ import annotations

import functools
import struct
import zlib

from numeric.errors import FlexiQError

MAGIC = b"qres"
COMPRESSED, DIRECTORY, COMPRESSED_ZSTD = 1, 2, 4


class QtResourceError(FlexiQError):
    """Not a Qt resource archive, a damaged one, or a member it does not hold (a user-facing
    error: the command line answers it in one line, exit code 2)."""


@functools.lru_cache(maxsize=8)
def _index(path: str) -> tuple[bytes, dict]:
    with open(path, "rb") as f:
        blob = f.read()
    if blob[:4] != MAGIC or len(blob) < 20:
        raise QtResourceError(f"{path}: not a Qt resource archive (no 'qres' header)")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    node = 22 if version >= 2 else 14
    files: dict = {}

    def name_at(off):
        (n,) = struct.unpack_from(">H", blob, names + off)
        return blob[names + off + 6:names + off + 6 + 2 * n].decode("utf-16-be")

    def walk(i, prefix, depth):
        if depth > 64:
            raise QtResourceError(f"{path}: directory tree deeper than 64 levels")
        off = tree + i * node
        name_off, flags = struct.unpack_from(">IH", blob, off)
        name = name_at(name_off) if i else ""
        if flags & DIRECTORY:
            count, first = struct.unpack_from(">II", blob, off + 6)
            for j in range(first, first + count):
                walk(j, f"{prefix}{name}/", depth + 1)
        else:
            (data_off,) = struct.unpack_from(">I", blob, off + 10)
            files[f"{prefix}{name}"] = (data + data_off, flags)

    try:
        walk(0, "", 0)
    except (struct.error, UnicodeDecodeError, RecursionError) as exc:
        raise QtResourceError(f"{path}: damaged Qt resource archive ({exc})") from None
    return blob, files


def list_files(path: str) -> list[str]:
    """The archive's files, as absolute resource paths (``/dir/name``), in tree order."""
    return list(_index(path)[1])


def read_file(path: str, member: str) -> bytes:
    """The bytes of ``member`` (a resource path such as ``/gcompris/src/x.webp``)."""
    blob, files = _index(path)
    if member not in files:
        raise QtResourceError(f"{path}: no member {member!r}")
    off, flags = files[member]
    (size,) = struct.unpack_from(">I", blob, off)
    raw = blob[off + 4:off + 4 + size]
    if flags & COMPRESSED_ZSTD:
        raise QtResourceError(f"{path}: member {member!r} is zstd-compressed (not supported)")
    if flags & COMPRESSED:
        try:
            return zlib.decompress(raw[4:])
        except zlib.error as exc:
            raise QtResourceError(f"{path}: member {member!r}: {exc}") from None
    return raw
