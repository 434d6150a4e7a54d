"""Hand-built NPU programs used by the end-to-end tests."""

from __future__ import annotations

import numpy as np

import quant
from npu_sim import isa
from npu_sim.program import Program
from quant.rounding import requantize


class ParamAlloc:
    """Places int32/float32 tables in DRAM and loads them into the param buffer."""

    def __init__(self, prog: Program):
        self.prog = prog
        self.next = 0
        self.loads = []

    def table(self, name, values, dtype="int32") -> int:
        arr = np.asarray(values, dtype=dtype).reshape(-1)
        self.prog.add_region(name, arr)
        addr = self.next
        self.loads.append(isa.Load(buf="param", sram_addr=addr, dram_addr=self.prog.addr(name),
                                   rows=1, cols=arr.size))
        self.next += arr.size
        return addr

    def scratch(self, n) -> int:
        addr = self.next
        self.next += n
        return addr


def epilogue(n, rng, acc_scale=2.0 ** -9):
    bias = rng.integers(-2000, 2000, n)
    ms = [quant.quantize_multiplier(acc_scale * float(f)) for f in rng.uniform(0.5, 2.0, n)]
    return bias, np.array([m for m, _ in ms]), np.array([s for _, s in ms])


def mlp_program(rng, *, m=4, k=96, n1=40, n2=10, g1=32, g2=16):
    """x -> GEMM(4/8) + bias + requant + ReLU -> GEMM(dynamic 4/8) + bias + requant -> y."""
    x = rng.integers(-128, 128, (m, k)) >> rng.integers(0, 4, k)
    w1 = rng.integers(-127, 128, (n1, k)) >> rng.integers(0, 4, (n1, 1))
    w2 = rng.integers(-127, 128, (n2, n1)) >> rng.integers(0, 4, (n2, 1))
    b1, m1, s1 = epilogue(n1, rng)
    b2, m2, s2 = epilogue(n2, rng)
    prog = Program(inputs=["x"], outputs=["y"])
    prog.add_region("x", x.astype(np.int8))
    prog.add_region("w1", w1.astype(np.int8))
    prog.add_region("w2", w2.astype(np.int8))
    prog.add_region("y", shape=(m, n2), dtype="int8")
    r1, r2 = prog.max4_reg("fc1"), prog.max4_reg("fc2")
    l1, l2 = prog.layer_id("fc1"), prog.layer_id("fc2")
    # compiler-side shift tables for every group (ratio independent: the sets are nested)
    plan1 = quant.plan_shifts(x[None], w1, k, group_size=g1)
    plan2 = quant.plan_shifts(np.zeros((1, 1, n1), np.int64), w2, n1, group_size=g2)
    pa = ParamAlloc(prog)
    a_b1, a_m1, a_s1 = pa.table("b1", b1), pa.table("m1", m1), pa.table("s1", s1)
    a_xs1 = pa.table("xs1", plan1.x_shift)
    a_ws1 = pa.table("ws1", plan1.w_shift.T)
    a_b2, a_m2, a_s2 = pa.table("b2", b2), pa.table("m2", m2), pa.table("s2", s2)
    a_ws2 = pa.table("ws2", plan2.w_shift.T)
    a_or2 = pa.scratch(-(-n1 // g2))
    loads = [isa.Load(buf="inp", sram_addr=0, dram_addr=prog.addr("x"), rows=m, cols=k),
             isa.Load(buf="wgt", sram_addr=0, dram_addr=prog.addr("w1"), rows=n1, cols=k),
             isa.Load(buf="wgt", sram_addr=8192, dram_addr=prog.addr("w2"), rows=n2, cols=n1)]
    loads += pa.loads
    loads[-1].signal = ("compute",)
    for ld in loads:
        prog.emit(ld)
    prog.emit(isa.Gemm(inp_addr=0, in_h=m, in_c=k, w_addr=0, n=n1, acc_addr=0, max4_reg=r1,
                       group_size=g1, xs_addr=a_xs1, ws_addr=a_ws1, layer=l1,
                       wait=("load",), signal=("vector",)))
    prog.emit(isa.Requant(src_addr=0, dst_addr=4096, rows=m, cols=n1, bias_addr=a_b1,
                          mult_addr=a_m1, shift_addr=a_s1, lo=0, hi=255, or_addr=a_or2,
                          or_group=g2, or_reset=True, layer=l1,
                          wait=("compute",), signal=("compute",)))
    prog.emit(isa.Gemm(inp_addr=4096, in_h=m, in_c=n1, w_addr=8192, n=n2, acc_addr=1024,
                       max4_reg=r2, group_size=g2, x_signed=False, xs_addr=a_or2, dynamic=True,
                       ws_addr=a_ws2, layer=l2, wait=("vector",), signal=("vector",)))
    prog.emit(isa.Requant(src_addr=1024, dst_addr=6144, rows=m, cols=n2, bias_addr=a_b2,
                          mult_addr=a_m2, shift_addr=a_s2, lo=-128, hi=127, layer=l2,
                          wait=("compute",), signal=("store",)))
    prog.emit(isa.Store(buf="inp", sram_addr=6144, dram_addr=prog.addr("y"), rows=m, cols=n2,
                        wait=("vector",)))
    prog.emit(isa.Finish())
    for r, (a, b) in {0.0: (0, 0), 0.5: (64, 16), 1.0: (k, n1)}.items():
        prog.set_max4_table(r, [a, b])

    def reference(n4s):
        acc1 = quant.mixed_gemm(x, w1, n4s[0], group_size=g1) + b1
        h = requantize(acc1, m1, s1, 0, 255)
        acc2 = quant.mixed_linear(h[None], w2, n4s[1], group_size=g2, x_signed=False,
                                  dynamic=True)[0] + b2
        return requantize(acc2, m2, s2, -128, 127)

    return prog, x, reference
