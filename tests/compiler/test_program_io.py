import numpy as np

import compiler
import npu_sim


def test_save_load_disassemble_roundtrip(make_qmodel, tmp_path):
    qm, x = make_qmodel("conv")
    prog = compiler.compile(qm, x[:1], name="small")
    path = tmp_path / "p.npz"
    prog.save(path)
    back = npu_sim.Program.load(path)
    xin = compiler.encode_input(prog, x[:1])
    a = npu_sim.simulate(prog, xin, ratio=1.0)
    b = npu_sim.simulate(back, xin, ratio=1.0)
    assert a.cycles == b.cycles
    np.testing.assert_array_equal(a.output, b.output)
    text = back.disassemble()
    assert "GEMM" in text and "REQUANT" in text and "max4[ratio=1]" in text
    assert back.meta["model"] == "small"
    assert sorted(back.max4_tables, key=float) == ["0", "0.25", "0.5", "0.75", "1"]


def test_ratio_switch_changes_registers_only(make_qmodel):
    qm, x = make_qmodel("conv")
    prog = compiler.compile(qm, x[:1])
    m = npu_sim.Machine(prog)
    xin = compiler.encode_input(prog, x[:1])
    r0 = m.run(xin)
    cost = m.set_ratio(1.0)
    r1 = m.run(xin)
    assert cost == len(prog.max4_regs) * m.cfg.max4_write_cycles
    assert r1.switch_cycles == cost and r1.cycles < r0.cycles
    assert not np.array_equal(r0.output, r1.output)
