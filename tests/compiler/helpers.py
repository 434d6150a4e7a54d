"""Shared by the lowering tests: quantize a small model and check that the simulator,
running its compiled program, gives the quant runtime's integers."""

import numpy as np
import torch

import compiler
import npu_sim
import quant
from compiler.memory import from_phys


def quantize(model, x, **cfg):
    """``model`` quantized (calibrated on ``x``, seed 0); ``cfg``: ``QuantConfig`` fields."""
    torch.manual_seed(0)
    return quant.quantize(model.eval(), [x], quant.QuantConfig(**cfg), progress=False)


def assert_bit_exact(qm, x, ratios=(0.0, 1.0), config=None, **compile_kw):
    """Compile ``qm`` for ``x``, simulate at each ratio, and require the runtime's codes
    (a 4-d output is taken for a feature map, stored NHWC). Returns the program."""
    if config is None:
        config = npu_sim.NPUConfig(group_size=int(qm.config.group_size))
    prog = compiler.compile(qm, x, config=config, ratios=ratios, **compile_kw)
    xin = compiler.encode_input(prog, x)
    try:
        for r in ratios:
            qm.set_ratio(r)
            ref = qm.run(x).codes.numpy()
            out = npu_sim.simulate(prog, xin, ratio=r).output
            if ref.ndim == 4:  # a feature map comes back NHWC
                b, c, h, w = ref.shape
                out = from_phys(out.reshape(b, h, w, c), None, True)
            np.testing.assert_array_equal(out.reshape(ref.shape), ref, err_msg=f"ratio {r}")
    finally:
        qm.set_ratio(0.0)
    return prog


def layer_instructions(prog, name, cls=None):
    """The instructions of layer ``name`` (of class ``cls``, if given)."""
    lid = prog.layers.index(name)
    return [i for i in prog.instructions
            if i.layer == lid and (cls is None or isinstance(i, cls))]
