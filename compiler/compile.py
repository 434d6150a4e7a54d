"""``compile(qmodel, example_input)``: a quantized model -> an NPU ``Program``.

Pipeline: IR capture (compiler/ir.py) -> channel-layout assignment and REORDER insertion
(compiler/passes/layout.py) -> lowering of every node in topological order
(compiler/lower/*) with tiling to the buffers and double-buffered scheduling
(compiler/pipeline.py) -> max4 tables per ratio. The program's integers equal the quant
runtime's (tests/compiler prove it).
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import torch
from torch.fx.node import map_arg

from npu_sim import NPUConfig, Program
from numeric.checks import pair as _pair
from quant.errors import ConfigError, UnsupportedOpError
from quant.rounding import quantize_float

from .errors import CompileError
from .ir import build_ir
from .lower import gemm as lg
from .lower import layout as ll
from .lower import vector as lv
from .lower.context import LoweringContext
from .memory import Tensor, to_phys
from .passes.fmap import assign_fmaps
from .passes.layout import assign_layouts
from .pipeline import finish

DEFAULT_RATIOS = (0.0, 0.25, 0.5, 0.75, 1.0)
LOWERED = {"input", "output", "const", "shape", "layout", "pad", "conv", "linear", "add", "sub",
           "mul", "relu", "relu6", "hardtanh", "fused", "maxpool", "avgpool", "mean",
           "softmax", "gelu", "layernorm", "matmul", "cat", "reorder"}


class _Compiler:
    def __init__(self, qmodel, example_input, config, ratios, name, graph=None):
        self.qm = qmodel
        # no config: the default NPU with the model's own G (a given config must match it)
        self.cfg = config or NPUConfig(group_size=int(qmodel.config.group_size))
        if int(qmodel.config.group_size) != self.cfg.group_size:
            raise ConfigError(f"the model was quantized with group size G = "
                              f"{qmodel.config.group_size} but the NPU config has group_size = "
                              f"{self.cfg.group_size}: quantize with QuantConfig(group_size="
                              f"{self.cfg.group_size})")
        self.g = graph if graph is not None else build_graph(qmodel, example_input)
        for n, d in self.g.nodes(data=True):
            if d["kind"] not in LOWERED:
                raise UnsupportedOpError(f"the NPU compiler cannot lower op '{d['kind']}' at node "
                                         f"'{n}' ({d['source']})")
        self.batch = int(self.g.graph["batch"])
        self.prog = Program(config=self.cfg.to_dict())
        mask_entries = 0
        if qmodel.config.dynamic:
            for _, d in self.g.nodes(data=True):
                L = d.get("layer")
                if L is not None and L.eligible:
                    mask_entries += self.batch * math.ceil(L.in_channels / L.group_size)
        self.ctx = LoweringContext(self.prog, self.cfg, qmodel.config, self.g, mask_entries)
        self.env: dict = {}
        self.pads: dict = {}
        self.ratios = ratios
        self.name = name

    # ------------------------------------------------------------------ helpers
    def order(self):
        fx_pos = {n.name: i for i, n in enumerate(self.qm.gm.graph.nodes)}

        def key(n):
            d = self.g.nodes[n]
            if d["kind"] == "reorder":
                return (fx_pos[next(iter(self.g.predecessors(n)))], 1, n)
            return (fx_pos[n], 0, n)

        return list(nx.lexicographical_topological_sort(self.g, key=key))

    def _src(self, name, arg):
        d = self.g.nodes[name]
        return d.get("input_map", {}).get(arg, arg)

    def tensor(self, name, arg, any_order=False) -> Tensor:
        """The materialized tensor that node ``name`` reads as its input ``arg``.

        A layout view that is its base's memory as it stands is aliased; if the reader
        wants another channel order than the base's, a REORDER follows (cheaper than an
        element-wise gather). ``any_order``: the reader takes any channel order."""
        src = self._src(name, arg)
        v = self.env[src]
        if isinstance(v, ll.IndexMap):
            d = self.g.nodes[src]
            fmap = bool(d.get("fmap"))
            want = d.get("perm")
            ap = ll.alias_perm(v, fmap) if (v.base.fmap == fmap) else None
            if ap is not None:
                ap = None if isinstance(ap, str) else ap
                alias = Tensor(src, v.base.region, tuple(d["shape"]), d["signed"], d["scale"], ap, fmap)
                if any_order or _same(ap, want):
                    v = alias
                else:
                    y = self.ctx.new_tensor(f"reorder_{src}", d["shape"], d["signed"], d["scale"],
                                            want, fmap=fmap)
                    lv.lower_reorder(self.ctx, f"reorder_{src}", alias, y)
                    v = y
            elif want is not None and not any_order and (
                    ll.block_count(v, want, fmap) > 2 * ll.block_count(v, None, fmap) + 4):
                # gather in logical order (long DMA runs), then one REORDER
                t = ll.materialize(self.ctx, src, v, d["shape"], None, d["signed"], d["scale"], fmap)
                y = self.ctx.new_tensor(f"reorder_{src}", d["shape"], d["signed"], d["scale"],
                                        want, fmap=fmap)
                lv.lower_reorder(self.ctx, f"reorder_{src}", t, y)
                v = y
            else:
                v = ll.materialize(self.ctx, src, v, d["shape"], None if any_order else want,
                                   d["signed"], d["scale"], fmap)
            self.env[src] = v
        if not isinstance(v, Tensor):
            raise CompileError(f"node '{name}' ({self.g.nodes[name]['source']}) reads '{arg}', "
                               "which is not an activation tensor")
        return v

    def new(self, name, **kw) -> Tensor:
        d = self.g.nodes[name]
        perm = kw.pop("perm", d.get("out_perm", d.get("perm")))
        return self.ctx.new_tensor(name, d["shape"], d["signed"], d["scale"], perm, **kw)

    def _first_input(self, name):
        fx = self.g.nodes[name]["fx"]
        for a in fx.all_input_nodes:
            if self.g.nodes[a.name]["kind"] not in ("const", "shape"):
                return a.name
        raise CompileError(f"node '{name}' has no activation input")

    # ---------------------------------------------------------------- lowering
    def run(self) -> Program:
        for name in self.order():
            d = self.g.nodes[name]
            getattr(self, "k_" + d["kind"])(name, d)
        finish(self.ctx.em)
        self._tables()
        return self.prog

    def _prepare_masks(self, name, x: Tensor, L) -> Tensor:
        """Dynamic extraction: make sure ``x`` has OR masks (a copy pass if its writer could
        not produce them)."""
        if (x.name, 0) in self.ctx.masks:
            return x
        ng = math.ceil(L.in_channels / L.group_size)
        y = self.ctx.new_tensor(f"{name}.dynin", x.shape, x.signed, x.scale, x.perm, fmap=x.fmap)
        self.ctx.alloc_masks(y.name, self.batch, ng, L.group_size)
        lo, hi = (-128, 127) if x.signed else (0, 255)
        lv.lower_clamp(self.ctx, f"{name}.dynin", x, y, lo, hi)
        return y

    def _plan_masks(self):
        """Writers of dynamic 4-bit GEMM inputs OR-reduce as they write (set up up front)."""
        if not self.qm.config.dynamic:
            return
        alias = ("fused", "mul", "pad")
        for n, d in self.g.nodes(data=True):
            L = d.get("layer")
            if L is None or not L.eligible:
                continue
            src = self._src(n, self._first_input(n))
            while self.g.nodes[src]["kind"] in alias:
                src = self._src(src, self._first_input(src))
            kind = self.g.nodes[src]["kind"]
            if kind in ("input", "layout", "cat"):
                continue  # a copy pass makes the masks (_prepare_masks)
            ng = math.ceil(L.in_channels / L.group_size)
            if src not in self.ctx.mask_group:
                self.ctx.alloc_masks(src, self.batch, ng, L.group_size)

    def k_input(self, name, d):
        self._plan_masks()
        t = Tensor("input", "input", d["shape"], d["signed"], d["scale"], None, bool(d["fmap"]))
        self.prog.add_region("input", shape=t.phys, dtype=t.dtype)
        self.prog.inputs.append("input")
        self.env[name] = t

    def k_const(self, name, d):
        self.env[name] = d.get("const")

    def k_shape(self, name, d):
        self.env[name] = d.get("value")

    def _args(self, name):
        fx = self.g.nodes[name]["fx"]

        def val(n):
            src = self._src(name, n.name)
            v = self.env[src]
            if isinstance(v, Tensor):
                return ll.base_map(v)
            if isinstance(v, np.ndarray):
                return torch.from_numpy(v)
            return v

        return map_arg(fx.args, val), map_arg(fx.kwargs, val)

    def _call(self, op, target, args, kwargs):
        if op == "call_function":
            return target(*args, **kwargs)
        if op == "call_method":
            return getattr(args[0], target)(*args[1:], **kwargs)
        if op == "call_module":
            return self.qm._mods[target](*args, **kwargs)
        raise CompileError(f"cannot evaluate {op} {target}")

    def k_layout(self, name, d):
        if "const" in d:
            self.env[name] = d["const"]
            return
        args, kwargs = self._args(name)
        self.env[name] = ll.apply_layout(d["fx"], self._call, args, kwargs)

    def k_pad(self, name, d):
        """Zero padding in front of a conv: the conv's DMA pads (no data is moved)."""
        mod = self.qm.module(d["fx"])
        pads = tuple(int(p) for p in mod.padding)  # (left, right, top, bottom)
        for u in self.g.successors(name):
            L = self.g.nodes[u].get("layer")
            if L is None or L.kind != "conv":
                raise CompileError(f"zero padding at '{name}' ({d['source']}) must feed convs only")
        self.pads[name] = pads
        self.env[name] = self.tensor(name, self._first_input(name))

    def k_reorder(self, name, d):
        src = next(iter(self.g.predecessors(name)))
        x = self.tensor(name, src)
        y = self.ctx.new_tensor(name, d["shape"], d["signed"], d["scale"], d["dst_perm"])
        lv.lower_reorder(self.ctx, name, x, y)
        self.env[name] = y

    def k_fused(self, name, d):
        self.env[name] = self.env[self._src(name, self._first_input(name))]

    def k_mul(self, name, d):
        x = self.tensor(name, self._first_input(name))
        c = [a for a in d["fx"].args if isinstance(a, (int, float))][0]
        self.env[name] = Tensor(x.name, x.region, x.shape, x.signed, x.scale * float(c), x.perm,
                                x.fmap)

    def k_conv(self, name, d):
        L = d["layer"]
        src = self._first_input(name)
        extra = self.pads.get(self._src(name, src), (0, 0, 0, 0))
        x = self.tensor(name, src, any_order=not L.eligible)
        if L.groups != 1:
            if not (L.groups == L.in_channels == L.out_channels):
                raise CompileError(f"layer '{name}': grouped conv with {L.groups} groups is not "
                                   "supported (only dense and depthwise)")
            y = self.new(name, perm=d.get("perm"))
            lg.lower_depthwise(self.ctx, name, d, x, y, extra)
        else:
            if self.qm.config.dynamic and L.eligible:
                x = self._prepare_masks(name, x, L)
            y = self.new(name)
            lg.lower_dense(self.ctx, name, d, x, y, extra)
        self.env[name] = y

    k_linear = k_conv

    def _operands(self, name):
        out = []
        for a in d_args(self.g.nodes[name]["fx"]):
            src = self._src(name, a.name) if hasattr(a, "name") else None
            if src is None:
                raise UnsupportedOpError(f"node '{name}': operand {a!r} is a Python number")
            v = self.env[src]
            if isinstance(v, np.ndarray):
                out.append(v)
            else:
                out.append(self.tensor(name, a.name))
        return out

    def k_add(self, name, d, sign=1):
        ops = self._operands(name)
        y = self.new(name)
        lv.lower_add(self.ctx, name, d, ops, y, sign)
        self.env[name] = y

    def k_sub(self, name, d):
        self.k_add(name, d, sign=-1)

    def _clamp(self, name, d, lo, hi_fn):
        x = self.tensor(name, self._first_input(name))
        y = self.ctx.new_tensor(name, d["shape"], False, x.scale, x.perm)
        lv.lower_clamp(self.ctx, name, x, y, lo, hi_fn(x))
        self.env[name] = y

    def k_relu(self, name, d):
        self._clamp(name, d, 0, lambda x: 255 if not x.signed else 127)

    def k_relu6(self, name, d):
        self._clamp(name, d, 0, lambda x: int(round(6.0 / x.scale)))

    k_hardtanh = k_relu6

    def k_maxpool(self, name, d):
        x = self.tensor(name, self._first_input(name))
        mod = self.qm.module(d["fx"])
        if mod is not None:
            k, s, p, dil, ceil = mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.ceil_mode
        else:
            args = list(d["fx"].args[1:]) + [None] * 5
            kw = d["fx"].kwargs
            k = kw.get("kernel_size", args[0])
            s = kw.get("stride", args[1]) or k
            p = kw.get("padding", args[2] if args[2] is not None else 0)
            dil = kw.get("dilation", args[3] if args[3] is not None else 1)
            ceil = kw.get("ceil_mode", bool(args[4]))
        kk, ss, pp, dd = _pair(k), _pair(s), _pair(p), _pair(dil)
        if kk[0] != kk[1] or ss[0] != ss[1] or pp[0] != pp[1] or dd != (1, 1) or ceil:
            raise CompileError(f"maxpool at '{name}' ({d['source']}): only square windows, "
                               "no dilation, floor mode")
        y = self.ctx.new_tensor(name, d["shape"], x.signed, x.scale, x.perm)
        lv.lower_pool(self.ctx, name, x, y, kind="max", kh=kk[0], kw=kk[0], stride=ss[0],
                      pad=pp[0], lo=-(1 << 40), hi=1 << 40)
        self.env[name] = y

    def k_avgpool(self, name, d):
        x = self.tensor(name, self._first_input(name))
        q = d["q"]
        mod = self.qm.module(d["fx"])
        y = self.ctx.new_tensor(name, d["shape"], q.signed, q.scale, x.perm)
        if mod is not None and not hasattr(mod, "output_size"):
            kk, ss, pp = _pair(mod.kernel_size), _pair(mod.stride or mod.kernel_size), _pair(mod.padding)
            m, s = lv.quantize_multiplier(x.scale / (kk[0] * kk[1] * q.scale))
            lv.lower_pool(self.ctx, name, x, y, kind="avg", kh=kk[0], kw=kk[1], stride=ss[0],
                          pad=pp[0], m=m, s=s, lo=q.lo, hi=q.hi)
        else:
            _, _, h, w = x.shape
            m, s = lv.mean_tables(x.scale, h * w, q)
            lv.lower_pool(self.ctx, name, x, y, kind="avg", kh=h, kw=w, stride=1, pad=0, m=m,
                          s=s, lo=q.lo, hi=q.hi)
        self.env[name] = y

    def k_mean(self, name, d):
        x = self.tensor(name, self._first_input(name))
        q = d["q"]
        fx = d["fx"]
        dims = fx.kwargs.get("dim", fx.args[1] if len(fx.args) > 1 else None)
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        nd = len(x.shape)
        dims = tuple(sorted(a % nd for a in dims))
        if nd == 3 and dims == (1,):
            count, hw = x.shape[1], (x.shape[1], 1)
        elif nd == 4 and dims == (2, 3):
            count, hw = x.shape[2] * x.shape[3], (x.shape[2], x.shape[3])
        else:
            raise CompileError(f"mean over dims {dims} of a {nd}-d tensor at '{name}' "
                               f"({d['source']}) is not supported")
        m, s = lv.mean_tables(x.scale, count, q)
        y = self.ctx.new_tensor(name, d["shape"], q.signed, q.scale, x.perm)
        lv.lower_pool(self.ctx, name, x, y, kind="avg", kh=hw[0], kw=hw[1], stride=1, pad=0,
                      m=m, s=s, lo=q.lo, hi=q.hi)
        self.env[name] = y

    def k_softmax(self, name, d):
        self._float(name, d, "softmax")

    def k_gelu(self, name, d):
        self._float(name, d, "gelu")

    def _float(self, name, d, kind):
        x = self.tensor(name, self._first_input(name))
        y = self.new(name, perm=x.perm if kind == "gelu" else None)
        lv.lower_float_op(self.ctx, name, d, x, y, kind)
        self.env[name] = y

    def k_layernorm(self, name, d):
        x = self.tensor(name, self._first_input(name))
        y = self.new(name, perm=None)
        lv.lower_layernorm(self.ctx, name, d, x, y)
        self.env[name] = y

    def k_matmul(self, name, d):
        fx = d["fx"]
        a_node, b_node = fx.args[0], fx.args[1]
        a = self.tensor(name, a_node.name)
        b_src = self._src(name, b_node.name)
        bd = self.g.nodes[b_src]
        nk = False
        if bd["kind"] == "layout" and _is_last_two_transpose(bd["fx"]):
            inner = bd["fx"].args[0]
            b = self.tensor(b_src, inner.name)
            nk = True
        else:
            b = self.tensor(name, b_node.name)
        y = self.new(name, perm=None)
        lg.lower_matmul(self.ctx, name, d, a, b, y, nk)
        self.env[name] = y

    def k_cat(self, name, d):
        q = d["q"]
        fx = d["fx"]
        parts = fx.args[0]
        dim = fx.args[1] if len(fx.args) > 1 else fx.kwargs.get("dim", 0)
        shape = d["shape"]
        dim %= len(shape)
        # initial DRAM image: constant parts quantized at the cat's scale
        init = np.zeros(shape, dtype=np.int64)
        y_index = np.arange(int(np.prod(shape))).reshape(shape)
        off = 0
        acts = []
        for p in parts:
            v = self.env[self._src(name, p.name)]
            size = (v.shape if isinstance(v, (np.ndarray, Tensor)) else tuple(v.index.shape))[dim]
            sl = [slice(None)] * len(shape)
            sl[dim] = slice(off, off + size)
            if isinstance(v, np.ndarray):
                init[tuple(sl)] = quantize_float(v, q.scale, q.signed)
            else:
                acts.append((p.name, y_index[tuple(sl)]))
            off += size
        fmap = bool(d.get("fmap"))
        y = self.ctx.new_tensor(name, shape, q.signed, q.scale, None, init=to_phys(init, None, fmap))
        phys_pos = to_phys(y_index, None, fmap).reshape(-1)
        where = np.empty_like(phys_pos)
        where[phys_pos] = np.arange(phys_pos.size)  # logical flat -> physical flat
        for k, (pname, logical_idx) in enumerate(acts):
            x = self.tensor(name, pname)
            dst = where[to_phys(logical_idx, x.perm, x.fmap).reshape(x.rows, x.channels)]
            if x.channels > 1 and not np.all(np.diff(dst, axis=1) == 1):
                raise CompileError(f"cat at '{name}' ({d['source']}): this concatenation "
                                   "does not keep channels contiguous")
            lv.lower_cat_part(self.ctx, name, k, x, y, q, dst[:, 0])
        self.env[name] = y

    def k_output(self, name, d):
        fx = d["fx"]
        arg = fx.args[0]
        if not hasattr(arg, "name"):
            raise CompileError("the model must return a single tensor to compile it")
        t = self.tensor(name, arg.name)
        if t.perm is not None:
            raise CompileError("output tensor is not in logical channel order (layout pass bug)")
        self.prog.outputs.append(t.region)
        self.out_tensor = t

    # --------------------------------------------------------------- tables
    def _tables(self):
        regs = self.prog.max4_regs
        ratios = list(self.ratios) if self.ratios is not None else list(DEFAULT_RATIOS)
        sel = getattr(self.qm, "selection", None)
        if sel is not None and hasattr(sel, "ratios"):
            ratios = sorted(set(ratios) | {float(r) for r in sel.ratios})
        for r in ratios:
            table = self.qm.max4_for_ratio(r)
            self.prog.set_max4_table(r, [table[n] for n in regs])
        t_in, t_out = self.g.nodes, self.out_tensor
        inp = next(n for n, d in t_in(data=True) if d["kind"] == "input")
        self.prog.meta.update({
            "model": self.name,
            "batch": self.batch,
            "input": {"shape": list(t_in[inp]["shape"]), "scale": t_in[inp]["scale"],
                      "signed": t_in[inp]["signed"], "fmap": bool(t_in[inp]["fmap"])},
            "output": {"shape": list(t_out.shape), "scale": t_out.scale, "signed": t_out.signed},
            "reorder_layers": [n for n, d in self.g.nodes(data=True) if d["kind"] == "reorder"],
            "gemm_layers": {n: {"channels": int(d["layer"].in_channels),
                                "group_size": int(d["layer"].group_size),
                                "eligible": bool(d["layer"].eligible)}
                            for n, d in self.g.nodes(data=True) if "layer" in d},
            "quant": self.qm.config.to_dict(),
        })


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return np.array_equal(a, b)


def d_args(fx):
    return [a for a in fx.args if hasattr(a, "name")]


def _is_last_two_transpose(fx) -> bool:
    if fx.op == "call_method" and fx.target == "transpose" or (
            fx.op == "call_function" and fx.target is torch.transpose):
        dims = tuple(fx.args[1:3])
        return dims in ((-2, -1), (-1, -2))
    return False


def build_graph(qmodel, example_input) -> nx.DiGraph:
    """The IR after the layout passes: everything of a compile that does not depend on the
    NPU configuration (it runs the integer runtime once). Lowering only reads it, so one
    graph serves any number of ``compile(..., graph=g)`` calls for other configurations."""
    return assign_layouts(assign_fmaps(build_ir(qmodel, example_input)))


def compile(qmodel, example_input, *, config: NPUConfig | None = None, ratios=None,
            name: str = "model", graph: nx.DiGraph | None = None) -> Program:
    """Compile ``qmodel`` (from ``quant.quantize``) for inputs shaped like ``example_input``.

    ``graph``: ``build_graph(qmodel, example_input)`` made once, to compile the same model
    for several NPU configurations (design-space sweeps); the program is the same.
    ``config``: the NPU (default: the default NPU with the model's group size G); its
    ``group_size`` must be the G the model was quantized with (``ConfigError`` otherwise)."""
    return _Compiler(qmodel, example_input, config, ratios, name, graph).run()


def encode_input(program: Program, x) -> np.ndarray:
    """Float model input -> the program's input codes (physical layout)."""
    meta = program.meta["input"]
    x = np.asarray(torch.as_tensor(x).detach().float().numpy())
    if list(x.shape) != meta["shape"]:
        raise CompileError(f"input shape {list(x.shape)} != the program's {meta['shape']}")
    return to_phys(quantize_float(x, meta["scale"], meta["signed"]), None, meta.get("fmap", False))


def decode_output(program: Program, codes) -> np.ndarray:
    """The program's output codes -> float values (logical layout)."""
    meta = program.meta["output"]
    return np.asarray(codes, dtype=np.float64).reshape(meta["shape"]) * meta["scale"]
