import json

import numpy as np
import pytest

import quant
from npu_sim import NPUConfig, isa, simulate
from npu_sim.errors import DeadlockError, DRAMAddressError, ProgramError, SRAMOverflowError
from npu_sim.folds import count_folds, fold_cycles
from npu_sim.machine import Machine
from npu_sim.program import Program
from quant.errors import AccumulatorOverflowError
from quant.rounding import requantize

from .builders import ParamAlloc, epilogue, mlp_program


def _dma(cfg, nbytes):
    return cfg.instr_issue_cycles + cfg.dram_latency + -(-nbytes // cfg.dram_bytes_per_cycle)


def _vec(cfg, op, elems):
    return cfg.instr_issue_cycles + cfg.vector_startup + \
        -(-elems // cfg.vector_lanes) * cfg.vector_costs[op]


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_mlp_values_and_cycles_at_every_ratio(mode):
    rng = np.random.default_rng(0)
    prog, x, reference = mlp_program(rng)
    cfg = NPUConfig()
    m, k, n1, n2 = 4, 96, 40, 10
    load_bytes = sum(_dma(cfg, r.array.nbytes) for name, r in prog.regions.items()
                     if name != "y")
    for ratio in (0, 0.5, 1):
        max4 = prog.max4_for_ratio(ratio)
        res = simulate(prog, x, ratio=ratio, mode=mode)
        assert np.array_equal(res.output, reference(max4))
        f1 = count_folds(k, max4[0], group_size=32, rows=32)
        f2 = count_folds(n1, max4[1], group_size=16, rows=32)
        g1 = cfg.instr_issue_cycles + fold_cycles(f1 * 2, m, 32, 32)
        g2 = cfg.instr_issue_cycles + fold_cycles(f2, m, 32, 32)
        expect = (load_bytes + g1 + _vec(cfg, "requant", m * n1) + g2
                  + _vec(cfg, "requant", m * n2) + _dma(cfg, m * n2))
        assert res.cycles == expect
        assert res.layer_cycles["fc1"] == g1 + _vec(cfg, "requant", m * n1)
        assert res.switch_cycles == 2 * cfg.max4_write_cycles


def test_ratio_switch_changes_folds_without_a_new_program():
    rng = np.random.default_rng(1)
    prog, x, reference = mlp_program(rng, k=128, n1=64, g1=64, g2=32)
    for r, t in {0: (0, 0), 0.5: (64, 32), 1: (128, 64)}.items():
        prog.set_max4_table(r, t)
    machine = Machine(prog)
    seen = []
    for ratio in (0, 1, 0.5, 0):
        cost = machine.set_ratio(ratio)
        res = machine.run(x)
        assert cost == res.switch_cycles == 2 * NPUConfig().max4_write_cycles
        assert np.array_equal(res.output, reference(prog.max4_for_ratio(ratio)))
        seen.append((res.stats["gemm"]["folds4"], res.stats["gemm"]["folds"], res.cycles))
    assert seen[0] == seen[3]
    assert seen[0][0] == 0 and seen[1][0] == seen[1][1]  # all 8-bit, all 4-bit
    assert seen[1][2] < seen[2][2] < seen[0][2]
    with pytest.raises(ProgramError, match="ratio 0.3"):
        machine.set_ratio(0.3)


def test_setmax4_instruction_is_counted():
    rng = np.random.default_rng(2)
    prog, x, reference = mlp_program(rng)
    prog.instructions.insert(0, isa.SetMax4(reg=0, value=96))
    res = simulate(prog, x)
    assert np.array_equal(res.output, reference([96, 0]))
    assert res.stats["by_op"]["SETMAX4"]["cycles"] == 1 + NPUConfig().max4_write_cycles


def _conv_program(rng, *, c=20, h=6, o=12, g=8):
    x = rng.integers(-128, 128, (1, h, h, c)) >> rng.integers(0, 4, c)
    w = rng.integers(-127, 128, (o, 3, 3, c)) >> rng.integers(0, 4, (o, 1, 1, 1))
    bias, mul, sh = epilogue(o, rng)
    prog = Program(inputs=["x"], outputs=["y"])
    prog.add_region("x", x.astype(np.int8))
    prog.add_region("w", w.astype(np.int8))
    prog.add_region("y", shape=(h // 2, h // 2, o), dtype="uint8")
    reg = prog.max4_reg("conv")
    lid = prog.layer_id("conv")
    pa = ParamAlloc(prog)
    xs_tab = quant.extraction.shift_for_range(
        np.array([x[..., a:a + g].min() for a in range(0, c, g)]),
        np.array([x[..., a:a + g].max() for a in range(0, c, g)]), True)
    plan = quant.plan_shifts(np.zeros((1, 1, 9 * c)), w.reshape(o, -1), 0)  # shapes only
    del plan
    ws_tab = np.stack([quant.extraction.shift_for_range(w[..., a:a + g].reshape(o, -1).min(1),
                                                        w[..., a:a + g].reshape(o, -1).max(1),
                                                        True)
                       for a in range(0, c, g)])
    a_b, a_m, a_s = pa.table("b", bias), pa.table("m", mul), pa.table("s", sh)
    a_xs, a_ws = pa.table("xs", xs_tab), pa.table("ws", ws_tab)
    hp = h + 2
    prog.emit(isa.Load(buf="inp", sram_addr=0, dram_addr=prog.addr("x"), rows=h, cols=h * c,
                       pad_top=1, pad_bottom=1, pad_left=c, pad_right=c))
    prog.emit(isa.Load(buf="wgt", sram_addr=0, dram_addr=prog.addr("w"), rows=1, cols=w.size))
    for ld in pa.loads:
        prog.emit(ld)
    prog.instructions[-1].signal = ("compute",)
    prog.emit(isa.Gemm(inp_addr=0, in_h=hp, in_w=hp, in_c=c, kh=3, kw=3, w_addr=0, n=o,
                       acc_addr=0, max4_reg=reg, group_size=g, xs_addr=a_xs, ws_addr=a_ws,
                       layer=lid, wait=("load",), signal=("vector",)))
    out0 = hp * hp * c
    prog.emit(isa.Requant(src_addr=0, dst_addr=out0, rows=h * h, cols=o, bias_addr=a_b,
                          mult_addr=a_m, shift_addr=a_s, lo=0, hi=255, layer=lid,
                          wait=("compute",)))
    prog.emit(isa.Pool(kind="max", src_addr=out0, dst_addr=out0 + h * h * o, h=h, w=h, c=o,
                       kh=2, kw=2, stride=2, signal=("store",)))
    prog.emit(isa.Store(buf="inp", sram_addr=out0 + h * h * o, dram_addr=prog.addr("y"),
                        rows=1, cols=(h // 2) ** 2 * o, wait=("vector",)))
    prog.emit(isa.Finish())
    prog.set_max4_table(0, [0])
    prog.set_max4_table(1, [c])

    def reference(n4):
        acc = quant.mixed_conv2d(x.transpose(0, 3, 1, 2), w.transpose(0, 3, 1, 2), n4,
                                 group_size=g, padding=1)
        y = requantize(acc + bias.reshape(1, -1, 1, 1), mul.reshape(1, -1, 1, 1),
                       sh.reshape(1, -1, 1, 1), 0, 255)[0].transpose(1, 2, 0)
        return y.reshape(h // 2, 2, h // 2, 2, o).max(axis=(1, 3))

    return prog, x, reference


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_tiny_conv_with_padding_dma_and_maxpool(mode):
    rng = np.random.default_rng(3)
    prog, x, reference = _conv_program(rng)
    cfg = NPUConfig()
    for ratio, n4 in ((0, 0), (1, 20)):
        res = simulate(prog, x, ratio=ratio, mode=mode)
        assert np.array_equal(res.output, reference(n4))
        folds = count_folds(20, n4, group_size=8, rows=32, kpos=9)
        assert res.stats["gemm"]["folds"] == folds
        assert res.stats["by_op"]["GEMM"]["cycles"] == 1 + fold_cycles(folds, 36, 32, 32)
        assert res.stats["by_op"]["POOL"]["cycles"] == _vec(cfg, "pool", 9 * 12 * 4)


def test_program_save_load_disassemble(tmp_path):
    rng = np.random.default_rng(4)
    prog, x, reference = mlp_program(rng)
    p = tmp_path / "mlp.npz"
    prog.save(p)
    back = Program.load(p)
    assert back.instructions == prog.instructions
    assert back.max4_tables == prog.max4_tables and back.layers == prog.layers
    for name, r in prog.regions.items():
        assert back.regions[name].addr == r.addr
        assert np.array_equal(back.regions[name].array, r.array)
        assert back.regions[name].array.dtype == r.array.dtype
    a = simulate(prog, x, ratio=0.5)
    b = simulate(back, x, ratio=0.5)
    assert np.array_equal(a.output, b.output) and a.cycles == b.cycles
    text = back.disassemble()
    assert "GEMM" in text and "fc2" in text and "max4[ratio=0.5]" in text
    (tmp_path / "junk.npz").write_bytes(b"nope")
    with pytest.raises(ProgramError, match="junk"):
        Program.load(tmp_path / "junk.npz")


def test_trace_and_stats(tmp_path):
    rng = np.random.default_rng(5)
    prog, x, _ = mlp_program(rng)
    res = simulate(prog, x, ratio=1)
    path = tmp_path / "trace.json"
    res.write_trace(path)
    ev = json.loads(path.read_text())["traceEvents"]
    tracks = {e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"load", "compute", "vector", "store", "array"} <= tracks
    spans = [e for e in ev if e["ph"] == "X"]
    assert max(e["ts"] + e["dur"] for e in spans) == pytest.approx(res.latency_us)
    st = res.stats
    assert st["by_queue"]["compute"]["stall_token"] > 0  # compute waits for the loads
    assert st["dram_read_bytes"] == sum(r.array.nbytes for n, r in prog.regions.items()
                                        if n != "y")
    assert st["dram_write_bytes"] == 40 and 0 < st["array_utilization"] < 1
    assert res.to_json()["total_cycles"] == res.cycles


def _one(instrs, **regions):
    prog = Program(outputs=[])
    for k, v in regions.items():
        prog.add_region(k, v)
    for i in instrs:
        prog.emit(i)
    return prog


def test_deadlock_is_detected_and_names_queues():
    prog = _one([isa.Load(buf="inp", sram_addr=0, dram_addr=64, rows=1, cols=4,
                          wait=("compute",)),
                 isa.Gemm(inp_addr=0, in_h=1, in_c=4, w_addr=0, n=1, acc_addr=0,
                          wait=("load",), signal=("load",))], a=np.zeros(4, np.int8))
    with pytest.raises(DeadlockError, match="queue 'load' at instruction 0.*'compute'.*"
                                            "queue 'compute' at instruction 1.*'load'"):
        simulate(prog)


def test_missing_token_deadlocks_not_hangs():
    prog = _one([isa.Store(buf="inp", sram_addr=0, dram_addr=64, rows=1, cols=4,
                           wait=("vector",))], a=np.zeros(4, np.int8))
    with pytest.raises(DeadlockError, match="store"):
        simulate(prog)


def test_sram_overflow_names_buffer_and_instruction():
    big = np.zeros(300 * 1024, np.int8)
    prog = _one([isa.Load(buf="inp", sram_addr=0, dram_addr=64, rows=1, cols=big.size)], a=big)
    with pytest.raises(SRAMOverflowError, match="instruction 0 \\(LOAD\\).*'inp'.*256 KiB"):
        simulate(prog)
    prog = _one([isa.Gemm(inp_addr=0, in_h=4, in_c=8, w_addr=0, n=4, acc_addr=65534)])
    with pytest.raises(SRAMOverflowError, match="'acc'"):
        simulate(prog)


def test_dram_out_of_range_is_named():
    prog = _one([isa.Load(buf="inp", sram_addr=0, dram_addr=64, rows=2, cols=4)],
                a=np.zeros(4, np.int8))
    with pytest.raises(DRAMAddressError, match="past the end of DRAM region 'a'"):
        simulate(prog)
    prog = _one([isa.Load(buf="inp", sram_addr=0, dram_addr=10_000, rows=1, cols=4)],
                a=np.zeros(4, np.int8))
    with pytest.raises(DRAMAddressError, match="10000"):
        simulate(prog)


def test_accumulator_overflow_is_named():
    k = 140_000  # 127 * 127 * k leaves int32
    a = np.full(k, 127, np.int8)
    prog = _one([isa.Load(buf="inp", sram_addr=0, dram_addr=64, rows=1, cols=k),
                 isa.Load(buf="wgt", sram_addr=0, dram_addr=64, rows=1, cols=k,
                          signal=("compute",)),
                 isa.Gemm(inp_addr=0, in_h=1, in_c=k, w_addr=0, n=1, acc_addr=0,
                          wait=("load",))], a=a)
    prog.instructions[2].layer = prog.layer_id("fcX")
    with pytest.raises(AccumulatorOverflowError, match="fcX"):
        simulate(prog)
    prog.regions["a"].array[:] = 1
    assert simulate(prog).cycles > 0


def test_bad_inputs_are_named():
    rng = np.random.default_rng(6)
    prog, x, _ = mlp_program(rng)
    with pytest.raises(ProgramError, match="shape"):
        simulate(prog, x[:2])
    with pytest.raises(ProgramError, match="missing program input 'x'"):
        simulate(prog, {})
    with pytest.raises(ProgramError, match="'z'"):
        simulate(prog, {"x": x, "z": x})
