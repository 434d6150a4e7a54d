"""Hypothesis strategies: random mixed-GEMM/conv problems covering the numeric contract's options."""

import numpy as np
from hypothesis import strategies as st

OPTIONS = dict(
    x_signed=st.booleans(),
    dynamic=st.booleans(),
    extraction=st.sampled_from(["effective", "naive"]),
    weight_shift=st.sampled_from(["group", "weight"]),
    group_size=st.sampled_from([16, 32, 64]),
)


def _codes(rng, shape, signed, spread):
    """Codes of a chosen spread (small spreads make 4-bit-exact groups, big ones saturate)."""
    if signed:
        v = rng.integers(-spread, spread, shape)
        return np.clip(v, -128, 127)
    return rng.integers(0, min(spread, 256), shape)


@st.composite
def gemm_problems(draw, max_m=70, max_k=200, max_n=24):
    opts = {name: draw(s) for name, s in OPTIONS.items()}
    m = draw(st.one_of(st.just(1), st.integers(0, 4), st.integers(1, max_m)))
    k = draw(st.integers(1, max_k))
    n = draw(st.integers(1, max_n))
    g = opts["group_size"]
    n4 = draw(st.sampled_from(sorted(set(list(range(0, k + 1, g)) + [k]))))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    spread = draw(st.sampled_from([2, 9, 40, 256]))
    x = _codes(rng, (m, k), opts["x_signed"], spread)
    w = _codes(rng, (n, k), True, draw(st.sampled_from([8, 60, 129])))
    x_range = None
    if not opts["dynamic"] and draw(st.booleans()):
        # calibration narrower or wider than the data: static extraction may saturate
        cal = _codes(rng, (2, k), opts["x_signed"], draw(st.sampled_from([4, 40, 256])))
        x_range = np.sort(cal, axis=0)
    return x, w, n4, dict(opts, x_range=x_range)


@st.composite
def conv_problems(draw):
    opts = {name: draw(s) for name, s in OPTIONS.items()}
    b = draw(st.integers(1, 3))
    c = draw(st.integers(1, 40))
    o = draw(st.integers(1, 8))
    kh, kw = draw(st.sampled_from([(1, 1), (3, 3), (1, 3), (2, 2)]))
    stride, padding, dilation = draw(st.integers(1, 2)), draw(st.integers(0, 2)), draw(st.integers(1, 2))
    h = draw(st.integers(max(dilation * (kh - 1) + 1 - 2 * padding, 1), 8))
    wd = draw(st.integers(max(dilation * (kw - 1) + 1 - 2 * padding, 1), 8))
    g = opts["group_size"]
    n4 = draw(st.sampled_from(sorted(set(list(range(0, c + 1, g)) + [c]))))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = _codes(rng, (b, c, h, wd), opts["x_signed"], draw(st.sampled_from([9, 60, 256])))
    w = _codes(rng, (o, c, kh, kw), True, 129)
    order = rng.permutation(c) if draw(st.booleans()) else None
    x_range = None
    if not opts["dynamic"] and draw(st.booleans()):
        x_range = np.sort(_codes(rng, (2, c), opts["x_signed"], 40), axis=0)
    return x, w, n4, dict(opts, x_range=x_range, order=order, stride=stride,
                          padding=padding, dilation=dilation)


def quant_gemm(x, w, n4, return_plan=False, **kw):
    """``quant.mixed_gemm``, except for M = 0 with ``dynamic=True``, which quant cannot do
    (reshape of an empty array, reported to its owner): there the answer is [0, N] zeros and
    a plan without rows."""
    import quant
    from quant.mixed_gemm import ShiftPlan

    if x.shape[0] or not kw.get("dynamic"):
        return quant.mixed_gemm(x, w, n4, return_plan=return_plan, **kw)
    acc = np.zeros((0, w.shape[0]), dtype=np.int64)
    if not return_plan:
        return acc
    _, plan = quant.mixed_gemm(np.zeros((1, x.shape[1]), dtype=np.int64), w, n4,
                               return_plan=True, **kw)
    return acc, ShiftPlan(plan.bounds, plan.x_shift[:0], plan.w_shift, plan.weight_shift)
