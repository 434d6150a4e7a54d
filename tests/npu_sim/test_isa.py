import dataclasses
import json
import struct

import pytest

from npu_sim import isa
from npu_sim.errors import ISAError

ALL = [
    isa.Nop(on="vector", wait=("compute",)),
    isa.Load(buf="inp", sram_addr=3, dram_addr=64, rows=2, cols=5, pad_top=1, pad_left=2,
             signal=("compute",)),
    isa.Store(buf="acc", sram_addr=0, dram_addr=128, rows=1, cols=4, wait=("vector",)),
    isa.Gemm(inp_addr=0, in_h=4, in_w=4, in_c=8, kh=3, kw=3, w_addr=0, n=5, acc_addr=0,
             max4_reg=2, xs_addr=1, ws_addr=7, dynamic=True, weight_shift="weight", layer=1),
    isa.SetMax4(reg=1, value=64),
    isa.Requant(src_addr=0, dst_addr=4, rows=2, cols=3, mult_addr=0, shift_addr=3, lo=0,
                hi=255, or_addr=9, or_reset=True),
    isa.Clamp(src_addr=0, dst_addr=0, rows=1, cols=8, lo=0, hi=42),
    isa.Add(a_addr=0, b_addr=8, dst_addr=16, rows=2, cols=4, ma=3, mb=-5, s=7, lo=-128, hi=127),
    isa.Pool(kind="avg", src_addr=0, dst_addr=100, h=4, w=4, c=3, kh=2, kw=2, stride=2, m=5,
             s=3),
    isa.Reorder(src_addr=0, dst_addr=50, rows=3, cols=4, perm_addr=11),
    isa.LayerNorm(src_addr=0, dst_addr=9, rows=2, cols=6, gamma_addr=0, beta_addr=6,
                  in_scale=0.1, out_scale=0.02, eps=1e-6),
    isa.Softmax(src_addr=0, dst_addr=9, rows=2, cols=6, in_scale=0.1, out_scale=1 / 255),
    isa.Gelu(src_addr=0, dst_addr=9, rows=2, cols=6, in_scale=0.1, out_scale=0.05),
    isa.Finish(),
]


def test_every_opcode_round_trips_json_and_binary():
    assert {x.OP for x in ALL} == set(isa.CLASSES)
    assert isa.decode_json(isa.encode_json(ALL)) == ALL
    assert isa.decode_binary(isa.encode_binary(ALL)) == ALL
    for x in ALL:
        assert x.OP in isa.format_instr(x)


def test_bad_opcode_json_names_index():
    data = json.loads(isa.encode_json(ALL[:3]))
    data[2]["op"] = "FROB"
    with pytest.raises(ISAError, match="instruction 2.*FROB"):
        isa.decode_json(json.dumps(data))


def test_bad_opcode_binary_names_index():
    blob = bytearray(isa.encode_binary(ALL[:2]))
    blob[len(b"FQNPU1") + 4] = 200  # first opcode byte
    with pytest.raises(ISAError, match="instruction 0: unknown opcode 200"):
        isa.decode_binary(bytes(blob))


def test_truncated_and_foreign_binary():
    blob = isa.encode_binary(ALL[:3])
    with pytest.raises(ISAError, match="truncated"):
        isa.decode_binary(blob[:-5])
    with pytest.raises(ISAError, match="magic"):
        isa.decode_binary(b"XXXXXX" + struct.pack("<I", 0))


@pytest.mark.parametrize("obj, match", [
    ({"op": "LOAD", "buf": "inp", "sram_addr": -1, "dram_addr": 0, "rows": 1, "cols": 1},
     "sram_addr"),
    ({"op": "LOAD", "buf": "l2", "sram_addr": 0, "dram_addr": 0, "rows": 1, "cols": 1}, "buf"),
    ({"op": "LOAD", "buf": "inp", "sram_addr": 0, "dram_addr": 0, "rows": 0, "cols": 1}, "rows"),
    ({"op": "GEMM", "inp_addr": 0, "in_h": 1, "in_c": 1, "w_addr": 0, "n": 1}, "acc_addr"),
    ({"op": "FINISH", "colour": 3}, "colour"),
    ({"op": "CLAMP", "src_addr": 0, "dst_addr": 0, "rows": 1, "cols": 1, "lo": 0, "hi": 1.5},
     "hi"),
    ({"op": "STORE", "buf": "inp", "sram_addr": 0, "dram_addr": 0, "rows": 1, "cols": 1,
      "wait": ["store"]}, "own queue"),
    ({"op": "NOP", "signal": ["dma"]}, "signal"),
])
def test_bad_fields_are_named(obj, match):
    with pytest.raises(ISAError, match=match):
        isa.decode_json(json.dumps([{"op": "FINISH"}, obj]))
    with pytest.raises(ISAError, match="instruction 1"):
        isa.decode_json(json.dumps([{"op": "FINISH"}, obj]))


def test_declarations_are_the_dataclass_fields():
    for cls in isa.CLASSES.values():
        fields = dataclasses.fields(cls)
        assert [f.name for f in cls.ALL_FIELDS] == [f.name for f in fields]
        assert [f.default for f in cls.ALL_FIELDS] == [f.default for f in fields]
        assert cls.ALL_FIELDS[:3] == isa.Instr.ALL_FIELDS  # wait, signal, layer first


BAD = {isa.Size: 0, isa.Natural: -1, isa.Int: 1.5, isa.Bool: 1, isa.Float: "x",
       isa.Enum: "nope", isa.Tokens: ("dma",)}


@pytest.mark.parametrize("ins", ALL, ids=lambda x: x.OP)
def test_every_declared_field_is_checked_by_its_kind(ins):
    for f in ins.ALL_FIELDS:
        bad = dataclasses.replace(ins, **{f.name: BAD[type(f)]})
        with pytest.raises(ISAError, match=rf"instruction 4 \({ins.OP}\): field {f.name} "):
            isa.validate_instr(bad, 4)


def test_opcodes_and_names_cannot_be_reused():
    with pytest.raises(TypeError, match="taken"):
        class Again(isa.Instr):
            OP, OPCODE, QUEUE = "AGAIN", 3, "compute"
    with pytest.raises(TypeError, match="taken"):
        class Gemm2(isa.Instr):
            OP, OPCODE, QUEUE = "GEMM", 200, "compute"
    assert isa._REGISTRY[3] is isa.Gemm and 200 not in isa._REGISTRY
