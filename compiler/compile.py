"""``compile(qmodel, example_input)``: a quantized model -> an NPU ``Program``.

Pipeline: IR capture (compiler/ir.py) -> feature maps (compiler/passes/fmap.py) ->
channel orders and REORDER insertion (compiler/passes/channel_order.py,
compiler/reorder.py) -> the dynamic-extraction mask plan (compiler/lower/masks.py) ->
every node lowered in topological order by the function the lowering table
(compiler/lower/registry.py) has for its kind, tiled to the buffers and scheduled as
double-buffered pipelines (compiler/schedule.py) -> max4 tables per ratio and the
program's meta (compiler/program_meta.py). The program's integers equal the quant
runtime's (tests/compiler prove it).
"""

from __future__ import annotations

import networkx as nx

from npu_sim import NPUConfig, Program
from quant.errors import ConfigError, UnsupportedOpError

from .codes import decode_output, encode_input  # noqa: F401  (npu_sim.machine imports them here)
from .ir import build_ir
from .lower.context import LoweringContext
from .lower.masks import mask_entries, plan_masks
from .lower.registry import LOWERED, LOWERINGS  # noqa: F401
from .passes.channel_order import assign_channel_orders
from .passes.fmap import assign_fmaps
from .program_meta import DEFAULT_RATIOS, write_max4_tables, write_meta  # noqa: F401
from .schedule import finish


def build_graph(qmodel, example_input) -> nx.DiGraph:
    """The IR after the layout passes: everything of a compile that does not depend on the
    NPU configuration (it runs the integer runtime once). Lowering only reads it, so one
    graph serves any number of ``compile(..., graph=g)`` calls for other configurations."""
    return assign_channel_orders(assign_fmaps(build_ir(qmodel, example_input)))


def _npu_config(qmodel, config) -> NPUConfig:
    """``config``, or the default NPU with the model's own G (a given config must match it)."""
    cfg = config or NPUConfig(group_size=int(qmodel.config.group_size))
    if int(qmodel.config.group_size) != cfg.group_size:
        raise ConfigError(f"the model was quantized with group size G = "
                          f"{qmodel.config.group_size} but the NPU config has group_size = "
                          f"{cfg.group_size}: quantize with QuantConfig(group_size="
                          f"{cfg.group_size})")
    return cfg


def _check_lowerable(g) -> None:
    for n, d in g.nodes(data=True):
        if d["kind"] not in LOWERINGS:
            raise UnsupportedOpError(f"the NPU compiler cannot lower op '{d['kind']}' at node "
                                     f"'{n}' ({d['source']})")


def lowering_order(g, fx_graph) -> list:
    """Nodes in topological order, ties broken by the model's own op order; a REORDER
    comes right after the node it reorders."""
    fx_pos = {n.name: i for i, n in enumerate(fx_graph.nodes)}

    def key(n):
        if g.nodes[n]["kind"] == "reorder":
            return (fx_pos[next(iter(g.predecessors(n)))], 1, n)
        return (fx_pos[n], 0, n)

    return list(nx.lexicographical_topological_sort(g, key=key))


def compile(qmodel, example_input, *, config: NPUConfig | None = None, ratios=None,
            name: str = "model", graph: nx.DiGraph | None = None) -> Program:
    """Compile ``qmodel`` (from ``quant.quantize``) for inputs shaped like ``example_input``.

    ``graph``: ``build_graph(qmodel, example_input)`` made once, to compile the same model
    for several NPU configurations (design-space sweeps); the program is the same.
    ``config``: the NPU (default: the default NPU with the model's group size G); its
    ``group_size`` must be the G the model was quantized with (``ConfigError`` otherwise)."""
    cfg = _npu_config(qmodel, config)
    g = graph if graph is not None else build_graph(qmodel, example_input)
    _check_lowerable(g)
    prog = Program(config=cfg.to_dict())
    ctx = LoweringContext(prog, cfg, qmodel, g, mask_entries(g, qmodel.config))
    plan_masks(ctx)
    for n in lowering_order(g, qmodel.gm.graph):
        d = g.nodes[n]
        LOWERINGS[d["kind"]](ctx, n, d)
    finish(ctx.em)
    write_max4_tables(prog, qmodel, ratios)
    write_meta(prog, g, ctx.out_tensor, name, qmodel.config)
    return prog
