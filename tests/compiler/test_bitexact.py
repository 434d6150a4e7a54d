"""The simulator running the compiled program gives the quant runtime's integers."""

import numpy as np
import pytest

import compiler
import npu_sim

RATIOS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _check(qm, x, ratios=RATIOS):
    prog = compiler.compile(qm, x)
    cycles = []
    for r in ratios:
        qm.set_ratio(r)
        ref = qm.run(x).codes.numpy()
        res = npu_sim.simulate(prog, compiler.encode_input(prog, x), ratio=r)
        np.testing.assert_array_equal(res.output.reshape(ref.shape), ref, err_msg=f"ratio {r}")
        cycles.append(res.cycles)
    qm.set_ratio(0.0)
    return prog, cycles


@pytest.mark.parametrize("kind", ["conv", "vit"])
@pytest.mark.parametrize("cfg", [{}, {"dynamic": True}, {"extraction": "naive"},
                                 {"weight_shift": "weight"}])
def test_small_nets_bit_exact(make_qmodel, kind, cfg):
    qm, x = make_qmodel(kind, **cfg)
    _, cycles = _check(qm, x[:2])
    assert cycles[-1] < cycles[0]  # 4-bit folds are cheaper
    assert all(b <= a for a, b in zip(cycles, cycles[1:]))


def test_batch_of_four(make_qmodel):
    qm, x = make_qmodel("conv", dynamic=True)
    _check(qm, x[:4], ratios=(1.0,))


def test_decode_output_matches_runtime(make_qmodel):
    qm, x = make_qmodel("conv")
    prog = compiler.compile(qm, x[:2])
    qm.set_ratio(0.5)
    res = npu_sim.simulate(prog, compiler.encode_input(prog, x[:2]), ratio=0.5)
    np.testing.assert_allclose(compiler.decode_output(prog, res.output), qm(x[:2]).numpy(),
                               rtol=0, atol=1e-6)
    qm.set_ratio(0.0)
