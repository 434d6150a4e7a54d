"""Lowering of pooling and means: max pool, average pool (windowed or over the whole
plane) and ``mean`` over the spatial axes or the tokens, as POOL instructions over
channel tiles of one image's plane."""

from __future__ import annotations

from npu_sim import isa
from quant.rounding import quantize_multiplier

from ..errors import CompileError, TilingError
from .op_args import avgpool_window, maxpool_args, mean_dims

#: clamp bounds of a max pool: wider than any code, so the result is never clamped
NO_CLAMP = 1 << 40


def lower_pool(ctx, name, x, y, *, kind, kh, kw, stride, pad, m=1, s=0, lo=-128, hi=127):
    """Max/avg pool of a [B, H, W, C] (or [B, T, C] as H=T, W=1) tensor, channel tiles."""
    bsz = x.shape[0]
    ph = x.phys
    h, w = (ph[1], ph[2]) if len(ph) == 4 else (ph[1], 1)
    c = x.channels
    oh = (h + 2 * pad - kh) // stride + 1
    ow = (w + 2 * pad - kw) // stride + 1
    sp = ctx.sram
    c_t = ctx.mask_tile(y.name, min(c, sp.in_slot // (h * w), sp.out_slot // (oh * ow)))
    if c_t < 1:
        raise TilingError(f"layer '{name}': a {h}x{w} plane does not fit the 'inp' buffer "
                          f"slot ({sp.in_slot} bytes)")
    pipe = ctx.em.pipeline(name, ("load", "vector", "store"))
    i = 0
    for b in range(bsz):
        for c0 in range(0, c, c_t):
            cc = min(c_t, c - c0)
            slot = i % 2
            ld = isa.Load(buf="inp", sram_addr=sp.in_addr[slot],
                          dram_addr=ctx.addr(x, b * h * w * c + c0), rows=h * w, cols=cc,
                          dram_stride=c)
            pool = isa.Pool(kind=kind, src_addr=sp.in_addr[slot], dst_addr=sp.out_addr[slot],
                            h=h, w=w, c=cc, kh=kh, kw=kw, stride=stride, pad=pad, m=m, s=s,
                            lo=lo, hi=hi, **ctx.or_fields(y.name, b, c0, True))
            st = isa.Store(buf="inp", sram_addr=sp.out_addr[slot],
                           dram_addr=ctx.addr(y, b * oh * ow * c + c0), rows=oh * ow, cols=cc,
                           dram_stride=c)
            pipe.tile(load=[ld], vector=[pool], store=[st])
            i += 1
    pipe.close()


def mean_tables(x_scale, count, q):
    """(multiplier, shift) that requantize a sum of ``count`` codes at ``x_scale`` to the
    mean at ``q``'s scale."""
    m, s = quantize_multiplier(x_scale / (count * q.scale))
    return m, s


# ---------------------------------------------------------------- nodes
def lower_maxpool_node(ctx, name, d):
    x = ctx.read(name, ctx.first_input(name))
    kk, ss, pp, dd, ceil = maxpool_args(ctx.qm, d["fx"])
    if kk[0] != kk[1] or ss[0] != ss[1] or pp[0] != pp[1] or dd != (1, 1) or ceil:
        raise CompileError(f"maxpool at '{name}' ({d['source']}): only square windows, "
                           "no dilation, floor mode")
    y = ctx.new_tensor(name, d["shape"], x.signed, x.scale, x.perm)
    lower_pool(ctx, name, x, y, kind="max", kh=kk[0], kw=kk[0], stride=ss[0],
               pad=pp[0], lo=-NO_CLAMP, hi=NO_CLAMP)
    ctx.env[name] = y


def lower_avgpool_node(ctx, name, d):
    x = ctx.read(name, ctx.first_input(name))
    q = d["q"]
    window = avgpool_window(ctx.qm, d["fx"])
    y = ctx.new_tensor(name, d["shape"], q.signed, q.scale, x.perm)
    if window is not None:
        kk, ss, pp = window
        m, s = quantize_multiplier(x.scale / (kk[0] * kk[1] * q.scale))
        lower_pool(ctx, name, x, y, kind="avg", kh=kk[0], kw=kk[1], stride=ss[0],
                   pad=pp[0], m=m, s=s, lo=q.lo, hi=q.hi)
    else:
        _, _, h, w = x.shape
        m, s = mean_tables(x.scale, h * w, q)
        lower_pool(ctx, name, x, y, kind="avg", kh=h, kw=w, stride=1, pad=0, m=m,
                   s=s, lo=q.lo, hi=q.hi)
    ctx.env[name] = y


def lower_mean_node(ctx, name, d):
    x = ctx.read(name, ctx.first_input(name))
    q = d["q"]
    nd = len(x.shape)
    dims = mean_dims(d["fx"], nd)
    if nd == 3 and dims == (1,):
        count, hw = x.shape[1], (x.shape[1], 1)
    elif nd == 4 and dims == (2, 3):
        count, hw = x.shape[2] * x.shape[3], (x.shape[2], x.shape[3])
    else:
        raise CompileError(f"mean over dims {dims} of a {nd}-d tensor at '{name}' "
                           f"({d['source']}) is not supported")
    m, s = mean_tables(x.scale, count, q)
    y = ctx.new_tensor(name, d["shape"], q.signed, q.scale, x.perm)
    lower_pool(ctx, name, x, y, kind="avg", kh=hw[0], kw=hw[1], stride=1, pad=0,
               m=m, s=s, lo=q.lo, hi=q.hi)
    ctx.env[name] = y
