"""The binary instruction format is pinned by a committed golden file.

``scripts/make_isa_golden.py`` wrote ``golden/isa_all_instructions.bin`` from one instance
of every instruction class (every field away from its default). Encoding the same list
must give the same bytes, and decoding the file must give the list back: a renumbered
opcode, a reordered or retyped field or a changed word encoding fails here.
"""

import dataclasses
import importlib.util
import pathlib
import re
import struct

from npu_sim import isa

ROOT = pathlib.Path(__file__).resolve().parents[2]
GOLDEN = pathlib.Path(__file__).parent / "golden" / "isa_all_instructions.bin"


def _script():
    spec = importlib.util.spec_from_file_location(
        "make_isa_golden", ROOT / "scripts" / "make_isa_golden.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


INSTRUCTIONS = _script().INSTRUCTIONS


def test_golden_covers_every_class_with_every_field_set():
    assert sorted(type(x).OP for x in INSTRUCTIONS) == sorted(isa.CLASSES)
    for ins in INSTRUCTIONS:
        for f in dataclasses.fields(ins):
            if f.default is not dataclasses.MISSING:
                assert getattr(ins, f.name) != f.default, (ins.OP, f.name)


def test_encoding_matches_golden_bytes():
    assert isa.encode_binary(INSTRUCTIONS) == GOLDEN.read_bytes()


def test_golden_decodes_to_the_instructions():
    decoded = isa.decode_binary(GOLDEN.read_bytes())
    assert decoded == INSTRUCTIONS
    assert [type(x) for x in decoded] == [type(x) for x in INSTRUCTIONS]


def test_golden_opcode_bytes():
    """Walk the file by hand: magic, count, then opcode byte + 8 bytes per field."""
    blob = GOLDEN.read_bytes()
    assert blob[:6] == b"FQNPU1"
    (count,) = struct.unpack_from("<I", blob, 6)
    assert count == len(INSTRUCTIONS)
    pos, codes = 10, []
    for ins in INSTRUCTIONS:
        codes.append(blob[pos])
        pos += 1 + 8 * len(dataclasses.fields(ins))
    assert pos == len(blob)
    assert codes == list(range(14))  # NOP=0, LOAD=1, ..., FINISH=13 (docs/isa.md)
    assert codes == [isa.OPCODES[x.OP] for x in INSTRUCTIONS]


def test_docs_opcode_table_matches_the_classes():
    """docs/isa.md's opcode table lists every class with its number, name and queue."""
    text = (ROOT / "docs" / "isa.md").read_text()
    rows = re.findall(r"^\| (\d+) \| ([A-Z0-9]+) \| ([^|]+?) \| `(\w+)` \|$", text, re.M)
    table = {int(code): (op, queue, name) for code, op, queue, name in rows}
    assert table == {code: (cls.OP, cls.QUEUE or "`on` (default compute)", cls.__name__)
                     for code, cls in isa.BY_CODE.items()}
