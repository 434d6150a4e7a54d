"""compiler/lower/graph_io.py and compiler/codes.py: the input and output regions of a
program and the codes that go in and come out."""

import numpy as np

import compiler
import npu_sim


def test_input_region_is_the_feature_map_stored_nhwc(make_qmodel):
    qm, x = make_qmodel("conv")
    prog = compiler.compile(qm, x[:2])
    b, c, h, w = x[:2].shape
    assert prog.inputs == ["input"]
    codes = compiler.encode_input(prog, x[:2])
    assert codes.shape == (b, h, w, c) and prog.meta["input"]["fmap"] is True
    # channel k of pixel (i, j) is the NCHW element [.., k, i, j]
    ref = np.round(x[:2].numpy() / prog.meta["input"]["scale"]).clip(-128, 127)
    np.testing.assert_array_equal(codes[1, 2, 3], ref[1, :, 2, 3])


def test_output_region_holds_the_model_output(make_qmodel):
    qm, x = make_qmodel("vit")
    prog = compiler.compile(qm, x[:2])
    assert len(prog.outputs) == 1 and prog.outputs[0].startswith("t:")
    assert prog.meta["output"]["shape"] == list(qm.run(x[:2]).codes.shape)
    res = npu_sim.simulate(prog, compiler.encode_input(prog, x[:2]), ratio=0.0)
    np.testing.assert_allclose(compiler.decode_output(prog, res.output),
                               qm.run(x[:2]).codes.numpy() * prog.meta["output"]["scale"])


def test_wrong_input_shape_is_refused(make_qmodel):
    qm, x = make_qmodel("conv")
    prog = compiler.compile(qm, x[:2])
    try:
        compiler.encode_input(prog, x[:1])
    except compiler.CompileError as e:
        assert "input shape [1, 1, 12, 12] != the program's [2, 1, 12, 12]" in str(e)
    else:
        raise AssertionError("a wrong input shape was accepted")
