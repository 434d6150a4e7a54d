"""The timing-only run (``values=False``) gives the full simulation's cycles, stall counts,
per-layer table, statistics and event trace, field for field, on every registry model
(random weights) at ratios 0, 0.5 and 1.

Models are built at a reduced input size where the registry builder takes one (the layer
structure, widths and depths are the registry's), so the full simulation stays fast."""

import numpy as np
import pytest
import torch

import compiler
import models
import npu_sim
import quant

# input size per model family for this test (the builders' size keyword, if any)
SIZE_KW = {"vit_torchvision": "image_size", "vit_timm": "img_size", "swin": "image_size",
           "efficientnet_lite": "image_size"}
RATIOS = (0.0, 0.5, 1.0)


def _build(name):
    info = models.info(name)
    module = info["builder"].split(":")[0]
    size = info["input_size"]
    kwargs = {}
    if size > 64:
        size = 32 if info["family"] == "vit" else 64
        if module in SIZE_KW:
            kwargs[SIZE_KW[module]] = size
        if module == "swin":  # stage resolutions 16, 8, 4, 2: windows of 2 tile them
            kwargs["window_size"] = 2
    torch.manual_seed(0)
    model = models.get(name, pretrained=False, **kwargs)
    x = torch.randn(2, info["channels"], size, size, generator=torch.Generator().manual_seed(1))
    return model, x


def _assert_same(full, timing, where):
    assert timing.values is False and timing.outputs == {}
    assert timing.cycles == full.cycles, where
    assert timing.switch_cycles == full.switch_cycles, where
    assert timing.layers == full.layers, where
    assert timing.stats == full.stats, where
    assert timing.events == full.events, where


HEAVY = {"vit_b_16", "deit_b", "swin_t", "swin_s", "swin_b"}  # 9-25 s each here


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n
                                  for n in models.names()])
def test_timing_equals_full_simulation(name):
    model, x = _build(name)
    qm = quant.quantize(model, [x], quant.QuantConfig(), progress=False)
    prog = compiler.compile(qm, x[:1], ratios=RATIOS, name=name)
    xin = compiler.encode_input(prog, x[:1])
    machine = npu_sim.Machine(prog)  # one machine, reused: registers persist between runs
    cycles = []
    for r in RATIOS:
        full = npu_sim.simulate(prog, xin, ratio=r)
        machine.set_ratio(r)
        timing = machine.run(values=False)
        _assert_same(full, timing, f"{name} at ratio {r}")
        cycles.append(timing.cycles)
    assert cycles[-1] < cycles[0]  # the ratio reaches the timing (not a constant)


@pytest.mark.parametrize("name", ["resnet20_fmnist", "vit_tiny_fmnist"])
def test_timing_equals_full_simulation_dynamic_extraction(name):
    """No cost of the machine depends on a value, so dynamic extraction (shifts from the
    producer's OR masks) times the same without values too."""
    model, x = _build(name)
    qm = quant.quantize(model, [x], quant.QuantConfig(dynamic=True), progress=False)
    prog = compiler.compile(qm, x[:1], ratios=RATIOS, name=name)
    xin = compiler.encode_input(prog, x[:1])
    for r in (0.5, 1.0):
        _assert_same(npu_sim.simulate(prog, xin, ratio=r),
                     npu_sim.simulate(prog, None, ratio=r, values=False), f"{name} at {r}")


def test_timing_run_leaves_program_untouched_and_checks_bounds():
    model, x = _build("resnet20_fmnist")
    qm = quant.quantize(model, [x], quant.QuantConfig(), progress=False)
    prog = compiler.compile(qm, x[:1], ratios=RATIOS)
    before = {n: r.array.copy() for n, r in prog.regions.items()}
    npu_sim.simulate(prog, ratio=1.0, values=False)
    for n, r in prog.regions.items():
        np.testing.assert_array_equal(r.array, before[n], err_msg=n)
    # a buffer too small for the program fails the same way with and without values
    small = npu_sim.NPUConfig(inp_kib=1)
    xin = compiler.encode_input(prog, x[:1])
    with pytest.raises(npu_sim.errors.SRAMOverflowError) as full:
        npu_sim.simulate(prog, xin, config=small)
    with pytest.raises(npu_sim.errors.SRAMOverflowError) as timing:
        npu_sim.simulate(prog, config=small, values=False)
    assert str(full.value) == str(timing.value)


def test_timing_only_in_scalesim_mode_equals_scalesim():
    """``timing="scalesim"``: the timing-only run equals the full one, and every 8-bit GEMM's
    array cycles are SCALE-Sim's ``ceil(K/R) ceil(N/C) (2R + C + M - 2)``."""
    model, x = _build("resnet20_fmnist")
    qm = quant.quantize(model, [x], quant.QuantConfig(), progress=False)
    cfg = npu_sim.NPUConfig(timing="scalesim", rows=16, cols=16)
    prog = compiler.compile(qm, x[:1], config=cfg, ratios=RATIOS)
    xin = compiler.encode_input(prog, x[:1])
    full = npu_sim.simulate(prog, xin, ratio=0.0, config=cfg)
    timing = npu_sim.simulate(prog, ratio=0.0, config=cfg, values=False)
    _assert_same(full, timing, "scalesim")
    gemms = [e for e in timing.events if e["track"] == "array"]
    assert gemms
    expect = 0
    for ins in prog.instructions:
        if isinstance(ins, npu_sim.isa.Gemm):
            oh = (ins.in_h - ins.dilation * (ins.kh - 1) - 1) // ins.stride + 1
            ow = (ins.in_w - ins.dilation * (ins.kw - 1) - 1) // ins.stride + 1
            expect += npu_sim.scalesim_cycles(ins.kh * ins.kw * ins.in_c, ins.n, oh * ow,
                                              cfg.rows, cfg.cols)
    assert timing.stats["gemm"]["array_cycles"] == expect


@pytest.mark.parametrize("channels,group,rows,kpos", [(64, 64, 32, 1), (96, 32, 16, 9),
                                                      (200, 64, 32, 9), (48, 16, 8, 3),
                                                      (130, 32, 64, 1)])
def test_fold_counts_equal_the_built_plan(channels, group, rows, kpos):
    from npu_sim.folds import fold_counts, plan_counts

    for n4 in sorted({0, group, channels - channels % group, channels}):
        if n4 % group and n4 != channels:
            continue
        built = plan_counts(npu_sim.plan_folds(channels, n4, group_size=group, rows=rows,
                                               kpos=kpos))
        assert fold_counts(channels, n4, group_size=group, rows=rows, kpos=kpos) == built
