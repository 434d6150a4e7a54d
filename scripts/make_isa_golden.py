"""Write the golden binary instruction stream that pins the NPU binary format.

``INSTRUCTIONS`` holds one instance of every instruction class of ``npu_sim/isa.py``.
Every field of every instance is set away from its default, with values distinct from
each other (negative numbers, a value above 2^32, fractional floats, every enum; token
lists in queue order, as decoding gives them back), so a reordered field, a renumbered opcode or a changed word encoding changes the bytes.
``tests/npu_sim/test_isa_golden.py`` encodes the list and compares it byte for byte with
the committed file, and decodes the file back to the list.

    python scripts/make_isa_golden.py           # rewrite the golden file
    python scripts/make_isa_golden.py --check   # exit 1 if the file differs

Rewrite the file only on purpose: a changed golden file is a changed binary format, and
docs/isa.md must say what changed.
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "npu_sim", "golden", "isa_all_instructions.bin")
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from npu_sim import isa  # noqa: E402

INSTRUCTIONS = [
    isa.Nop(on="store", wait=("load", "vector"), signal=("compute",), layer=7),
    isa.Load(buf="wgt", sram_addr=11, dram_addr=(1 << 33) + 8, rows=13, cols=17,
             dram_stride=19, sram_stride=23, pad_top=1, pad_bottom=2, pad_left=3,
             pad_right=4, pad_value=-5, wait=("compute",), signal=("vector", "store"),
             layer=2),
    isa.Store(buf="acc", sram_addr=29, dram_addr=8192, rows=31, cols=37, sram_stride=41,
              dram_stride=43, wait=("vector",), signal=("load",), layer=3),
    isa.Gemm(inp_buf="param", inp_addr=47, in_h=5, in_w=6, in_c=70, kh=3, kw=2, stride=2,
             dilation=3, w_buf="inp", w_addr=53, w_layout="kn", n=9, acc_addr=59,
             acc_stride=61, accumulate=True, x_signed=False, max4_reg=2, ch_offset=64,
             group_size=32, xs_addr=67, ws_addr=71, dynamic=True, naive=True,
             weight_shift="weight", wait=("load", "vector"), signal=("store",), layer=4),
    isa.SetMax4(reg=5, value=96, wait=("load",), signal=("vector",), layer=5),
    isa.Requant(dst_buf="acc", dst_addr=73, dst_stride=79, rows=83, cols=89, or_addr=97,
                or_group=16, or_ch0=101, or_reset=True, src_buf="wgt", src_addr=103,
                src_stride=107, bias_addr=109, mult_addr=113, shift_addr=127, lo=-100,
                hi=120, wait=("compute",), signal=("store",), layer=6),
    isa.Clamp(dst_buf="wgt", dst_addr=131, dst_stride=137, rows=139, cols=149, or_addr=151,
              or_group=8, or_ch0=157, or_reset=True, src_buf="acc", src_addr=163,
              src_stride=167, lo=3, hi=99, wait=("load",), signal=("compute",), layer=8),
    isa.Add(dst_buf="param", dst_addr=173, dst_stride=179, rows=181, cols=191, or_addr=193,
            or_group=2, or_ch0=197, or_reset=True, a_buf="acc", a_addr=199, a_stride=211,
            b_buf="wgt", b_addr=223, b_stride=227, ma=-7, mb=11, s=13, lo=-90, hi=91,
            wait=("store",), signal=("load", "compute"), layer=9),
    isa.Pool(kind="avg", src_buf="acc", src_addr=229, dst_buf="param", dst_addr=233, h=7,
             w=10, c=21, kh=3, kw=4, stride=2, pad=1, m=77, s=9, lo=-60, hi=61, or_addr=239,
             or_group=4, or_ch0=241, or_reset=True, wait=("compute", "store"),
             signal=("load",), layer=10),
    isa.Reorder(dst_buf="acc", dst_addr=251, dst_stride=257, rows=263, cols=269,
                or_addr=271, or_group=32, or_ch0=277, or_reset=True, src_buf="wgt",
                src_addr=281, src_stride=283, perm_addr=293, wait=("load",),
                signal=("store",), layer=11),
    isa.LayerNorm(dst_buf="wgt", dst_addr=307, dst_stride=311, rows=313, cols=317,
                  or_addr=331, or_group=128, or_ch0=337, or_reset=True, src_buf="acc",
                  src_addr=347, src_stride=349, gamma_addr=353, beta_addr=359, eps=1e-6,
                  in_scale=1 / 3, out_scale=2.0 ** -9, out_signed=False,
                  wait=("compute",), signal=("load",), layer=12),
    isa.Softmax(dst_buf="acc", dst_addr=367, dst_stride=373, rows=379, cols=383,
                or_addr=389, or_group=6, or_ch0=397, or_reset=True, src_buf="param",
                src_addr=401, src_stride=409, in_scale=1 / 7, out_scale=1 / 255,
                out_signed=True, wait=("store",), signal=("compute",), layer=13),
    isa.Gelu(dst_buf="param", dst_addr=419, dst_stride=421, rows=431, cols=433,
             or_addr=439, or_group=3, or_ch0=443, or_reset=True, src_buf="wgt",
             src_addr=449, src_stride=457, in_scale=0.1, out_scale=1e-3, out_signed=False,
             wait=("compute", "store"), signal=("load",), layer=14),
    isa.Finish(wait=("load", "vector", "store"), signal=("vector",), layer=15),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="compare with the committed file instead of writing it")
    args = ap.parse_args(argv)
    blob = isa.encode_binary(INSTRUCTIONS)
    if args.check:
        with open(GOLDEN, "rb") as f:
            same = f.read() == blob
        print(f"{GOLDEN}: {'identical' if same else 'DIFFERS'} ({len(blob)} bytes)")
        return 0 if same else 1
    tmp = GOLDEN + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, GOLDEN)
    print(f"wrote {GOLDEN} ({len(blob)} bytes, {len(INSTRUCTIONS)} instructions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
