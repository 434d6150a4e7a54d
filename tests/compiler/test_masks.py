"""Dynamic extraction: the OR masks that writers build for a 4-bit consumer.

A depthwise conv writes its output in channel tiles as wide as the PE array (32), while a
dynamic 4-bit group is 64 channels wide: the tile that starts inside a group must add to the
group's mask, not clear it (clearing it gave EfficientNet-Lite0 shifts from half a group).
"""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import compiler
import npu_sim
import quant
from compiler.memory import from_phys
from npu_sim import isa


class ExpandDwProject(nn.Module):
    """1x1 expand (identity weights) -> ReLU -> depthwise -> ReLU6 -> 1x1 project -> head,
    the MBConv shape: the depthwise output feeds the dynamic 4-bit project conv."""

    def __init__(self, c, stride=1, kernel=3, pool=False):
        super().__init__()
        self.pw = nn.Conv2d(c, c, 1)
        with torch.no_grad():
            self.pw.weight.copy_(torch.eye(c).reshape(c, c, 1, 1))
        self.dw = nn.Conv2d(c, c, kernel, stride, kernel // 2, groups=c)
        self.pool = nn.MaxPool2d(2) if pool else None
        self.proj = nn.Conv2d(c, 16, 1)
        self.head = nn.Conv2d(16, 8, 1)

    def forward(self, x):
        x = nn.functional.relu6(self.dw(torch.relu(self.pw(x))))
        if self.pool is not None:
            x = self.pool(x)
        return self.head(torch.relu(self.proj(x)))


def _build(c, seed, stride=1, kernel=3, pool=False, batch=1, hw=6, group_size=64):
    """Run the quantized model on an input whose large channels are those the project conv's
    priority order puts in the first half of each 4-bit group, the rest small: a mask ORed
    from only the later part of a group then gives a smaller shift than the whole group's."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    m = ExpandDwProject(c, stride, kernel, pool).eval()
    with torch.no_grad():
        m.dw.weight.abs_()  # positive taps: a large input channel stays large
    xc = torch.randn(8, c, hw, hw, generator=g).abs()
    qm = quant.quantize(m, [xc], quant.QuantConfig(dynamic=True, group_size=group_size),
                        progress=False)
    L = qm.layers["proj"]
    big = L.order[np.arange(c) % L.group_size < L.group_size // 2]
    scale = torch.full((1, c, 1, 1), 0.03)
    scale[0, torch.from_numpy(big)] = 1.0
    x = torch.randn(batch, c, hw, hw, generator=g).abs() * scale
    return qm, x


def _mismatches(qm, x, prog, ratios):
    out = {}
    for r in ratios:
        qm.set_ratio(r)
        ref = qm.run(x).codes.numpy()
        sim = npu_sim.simulate(prog, compiler.encode_input(prog, x), ratio=r).output
        b, c, h, w = ref.shape
        sim = from_phys(sim.reshape(b, h, w, c), None, True)
        out[r] = int(np.count_nonzero(sim != ref))
    qm.set_ratio(0.0)
    return out


def _check_mask_resets(prog):
    """Every mask word is cleared by the first instruction that ORs into it and never again."""
    seen = set()
    writers = 0
    for ins in prog.instructions:
        if getattr(ins, "or_addr", -1) < 0:
            continue
        writers += 1
        cols = getattr(ins, "cols", None) or ins.c  # POOL writes c channels
        groups = {(ins.or_ch0 + j) // ins.or_group for j in range(cols)}
        words = {ins.or_addr + gi for gi in groups}
        if ins.or_reset:
            assert ins.or_ch0 % ins.or_group == 0, f"reset mid-group: {ins}"
            assert not words & seen, f"reset of a mask already ORed into: {ins}"
        else:
            assert words <= seen, f"OR into a mask never reset: {ins}"
        seen |= words
    return writers


def test_depthwise_tiles_narrower_than_group_bit_exact():
    qm, x = _build(128, seed=1)
    prog = compiler.compile(qm, x)
    assert _check_mask_resets(prog) >= 4  # four 32-channel depthwise tiles OR into the masks
    assert _mismatches(qm, x, prog, (0.0, 0.5, 1.0)) == {0.0: 0, 0.5: 0, 1.0: 0}


@settings(max_examples=12, deadline=None)
@given(c=st.sampled_from([40, 80, 96, 112, 136]), stride=st.sampled_from([1, 2]),
       kernel=st.sampled_from([3, 5]), batch=st.integers(1, 2), pool=st.booleans(),
       group_size=st.sampled_from([32, 48, 64]), seed=st.integers(0, 2**16))
def test_dynamic_masks_bit_exact_over_shapes(c, stride, kernel, batch, pool, group_size, seed):
    qm, x = _build(c, seed, stride, kernel, pool, batch, hw=8, group_size=group_size)
    prog = compiler.compile(qm, x)
    _check_mask_resets(prog)
    assert _mismatches(qm, x, prog, (0.0, 0.5, 1.0)) == {0.0: 0, 0.5: 0, 1.0: 0}


def test_pool_writer_tiles_start_groups():
    """A max pool whose channel tile (bounded by its SRAM slot) is not a multiple of G."""
    qm, x = _build(112, seed=3, pool=True, hw=32)  # a 32x32 plane: 96 channels fit a slot
    prog = compiler.compile(qm, x)
    pools = [i for i in prog.instructions if isinstance(i, isa.Pool) and i.or_addr >= 0]
    assert pools
    _check_mask_resets(prog)
    assert _mismatches(qm, x, prog, (1.0,)) == {1.0: 0}


def test_mask_areas_fit_the_reserved_param_area_and_do_not_overlap():
    """``mask_entries`` reserves exactly what the dynamic GEMMs read: every GEMM's mask
    words lie in the persistent area at the top of 'param', one area per tensor and image."""
    from compiler.lower.masks import mask_entries

    qm, x = _build(80, seed=5, batch=2, group_size=32)
    g = compiler.build_graph(qm, x)
    prog = compiler.compile(qm, x, graph=g)
    cfg = npu_sim.NPUConfig(**prog.config)
    param = cfg.buffer_elems("param")
    entries = mask_entries(g, qm.config)
    used = {}
    for ins in prog.instructions:
        if isinstance(ins, isa.Gemm) and ins.dynamic:
            used[ins.xs_addr] = -(-ins.in_c // ins.group_size)
    assert used and sum(used.values()) == entries
    spans = sorted((a, a + n) for a, n in used.items())
    assert spans[0][0] == param - entries and spans[-1][1] == param
    assert all(b0 <= a1 for (_, b0), (a1, _) in zip(spans, spans[1:]))


class FlattenThenLinear(nn.Module):
    """A dynamic 4-bit Linear whose input is a gather (flatten of a feature map): no vector
    instruction writes it, so a copy pass makes its masks."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        z = torch.relu(self.c1(x)).permute(0, 2, 3, 1).flatten(1)
        return self.head(torch.relu(self.fc(z)))


def test_gathered_input_gets_a_mask_copy_pass():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 4)
    qm = quant.quantize(FlattenThenLinear().eval(), [x],
                        quant.QuantConfig(dynamic=True, group_size=32), progress=False)
    prog = compiler.compile(qm, x[:2])
    copies = [i for i in prog.instructions if isinstance(i, isa.Clamp)
              and prog.layers[i.layer] == "fc.dynin"]
    assert copies and all(c.or_addr >= 0 for c in copies)
    # the head's input is written by fc's REQUANT, which ORs as it writes: no copy
    assert "head.dynin" not in prog.layers
    for r in (0.0, 1.0):
        qm.set_ratio(r)
        out = npu_sim.simulate(prog, compiler.encode_input(prog, x[:2]), ratio=r).output
        np.testing.assert_array_equal(out.reshape(2, 4), qm.run(x[:2]).codes.numpy())
    qm.set_ratio(0.0)
