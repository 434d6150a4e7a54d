"""What a program carries besides its instructions: the ``max4`` register values per
ratio, and the meta data that ``encode_input`` / ``decode_output``, the reports and the
CLI read."""

from __future__ import annotations

DEFAULT_RATIOS = (0.0, 0.25, 0.5, 0.75, 1.0)


def program_ratios(qmodel, ratios=None) -> list:
    """The ratios a program gets tables for: ``ratios`` (default ``DEFAULT_RATIOS``) and
    every ratio of the model's selection."""
    out = list(ratios) if ratios is not None else list(DEFAULT_RATIOS)
    sel = getattr(qmodel, "selection", None)
    if sel is not None and hasattr(sel, "ratios"):
        out = sorted(set(out) | {float(r) for r in sel.ratios})
    return out


def write_max4_tables(program, qmodel, ratios=None) -> None:
    """One ``max4`` table per ratio: the model's value for each of the program's registers."""
    regs = program.max4_regs
    for r in program_ratios(qmodel, ratios):
        table = qmodel.max4_for_ratio(r)
        program.set_max4_table(r, [table[n] for n in regs])


def write_meta(program, g, out_tensor, name, qcfg) -> None:
    """The program's ``meta``: model name, batch, input and output quantization and
    layout, REORDER nodes, GEMM layers, the quantization config."""
    nodes = g.nodes
    inp = next(n for n, d in nodes(data=True) if d["kind"] == "input")
    program.meta.update({
        "model": name,
        "batch": int(g.graph["batch"]),
        "input": {"shape": list(nodes[inp]["shape"]), "scale": nodes[inp]["scale"],
                  "signed": nodes[inp]["signed"], "fmap": bool(nodes[inp]["fmap"])},
        "output": {"shape": list(out_tensor.shape), "scale": out_tensor.scale,
                   "signed": out_tensor.signed},
        "reorder_layers": [n for n, d in nodes(data=True) if d["kind"] == "reorder"],
        "gemm_layers": {n: {"channels": int(d["layer"].in_channels),
                            "group_size": int(d["layer"].group_size),
                            "eligible": bool(d["layer"].eligible)}
                        for n, d in nodes(data=True) if "layer" in d},
        "quant": qcfg.to_dict(),
    })
