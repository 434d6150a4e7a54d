"""Fuzzing the files users hand us: program files, selection JSON and NPU config TOML.
Whatever the bytes, loading gives a valid object or a named FlexiQError, never another
exception."""

import copy
import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import npu_sim
from npu_sim.program import _digest
from quant.errors import ConfigError, FlexiQError, SelectionFileError
from quant.select.selection import Selection

from .conftest import rewrite_program

FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 40)), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


def _load_or_named(path):
    try:
        prog = npu_sim.Program.load(path)
    except FlexiQError:
        return None
    prog.validate()
    return prog


@FUZZ
@given(data=st.data())
def test_mutated_program_bytes(small_program, tmp_path_factory, data):
    raw = bytearray(small_program[3].read_bytes())
    op = data.draw(st.sampled_from(["flip", "truncate", "splice"]))
    if op == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= data.draw(st.integers(1, 255))
    elif op == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        i = data.draw(st.integers(0, len(raw)))
        raw[i:i] = data.draw(st.binary(min_size=1, max_size=32))
    path = tmp_path_factory.mktemp("fz") / "p.npz"
    path.write_bytes(bytes(raw))
    prog = _load_or_named(path)
    if prog is not None:  # a mutation the zip layer absorbed: the program is the original
        assert len(prog.instructions) == len(small_program[2].instructions)


@FUZZ
@given(data=st.data())
def test_mutated_program_header_with_a_valid_checksum(small_program, tmp_path_factory, data):
    """A deliberate edit (checksum recomputed): structure checks still hold."""
    good = small_program[3]
    with np.load(good) as z:
        head = json.loads(str(z["__program__"]))
    keys = ["instructions", "regions", "layers", "max4_regs", "max4_tables", "inputs",
            "outputs", "meta", "config", "n_instructions", "format"]
    key = data.draw(st.sampled_from(keys))
    how = data.draw(st.sampled_from(["delete", "replace", "inner"]))
    value = data.draw(json_values)

    def edit(h):
        if how == "delete":
            h.pop(key, None)
        elif how == "replace" or not isinstance(h.get(key), (list, dict)) or not h[key]:
            h[key] = value
        elif isinstance(h[key], list):
            h[key][data.draw(st.integers(0, len(h[key]) - 1))] = value
        else:
            k = data.draw(st.sampled_from(sorted(h[key])))
            h[key][k] = value

    path = rewrite_program(good, tmp_path_factory.mktemp("fz") / "p.npz", edit_header=edit)
    _load_or_named(path)
    assert head  # the fixture's header itself was untouched


@pytest.fixture(scope="module")
def selection_dict(small_program):
    import quant

    qm, x, _, _ = small_program
    sel = quant.select(qm, [x], method="range", ratios=[0, 0.5, 1], progress=False)
    return sel.to_dict()


@FUZZ
@given(data=st.data())
def test_mutated_selection_json(selection_dict, data):
    d = copy.deepcopy(selection_dict)
    for _ in range(data.draw(st.integers(1, 3))):
        path = [data.draw(st.sampled_from(sorted(d)))]
        node = d
        while isinstance(node.get(path[-1]) if isinstance(node, dict) else None, (dict, list)) \
                and data.draw(st.booleans()):
            child = node[path[-1]]
            if isinstance(child, dict) and child:
                k = data.draw(st.sampled_from(sorted(child)))
            elif isinstance(child, list) and child:
                k = data.draw(st.integers(0, len(child) - 1))
            else:
                break
            node, path = child, path + [k]
            if not isinstance(node, dict):
                break
        target = path[-1]
        if isinstance(node, dict) and data.draw(st.booleans()):
            node.pop(target, None)
        elif isinstance(node, (dict, list)):
            try:
                node[target] = data.draw(json_values)
            except (IndexError, TypeError):
                pass
    try:
        sel = Selection.from_dict(d)
    except SelectionFileError:
        return
    sel.check()


@FUZZ
@given(value=json_values)
def test_any_json_value_as_a_selection(value):
    try:
        Selection.from_dict(value)
    except SelectionFileError:
        pass


FIELDS = list(npu_sim.NPUConfig().to_dict())
toml_scalars = (st.integers(-2**40, 2**40) | st.floats(allow_nan=True, allow_infinity=True)
                | st.booleans() | st.text(max_size=6))


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(FIELDS + ["bogus"]),
                              toml_scalars | st.lists(st.integers(0, 9), max_size=3)
                              | st.dictionaries(st.text(max_size=6), toml_scalars, max_size=3),
                              max_size=5))
def test_npu_config_fields(fields):
    try:
        cfg = npu_sim.NPUConfig.from_dict(fields)
    except ConfigError:
        return
    cfg.validate()
    assert 0 < cfg.rows <= 1024 and 0 < cfg.group_size <= 4096


@FUZZ
@given(text=st.text(max_size=80))
def test_npu_config_toml_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("toml") / "npu.toml"
    path.write_text("[npu]\n" + text, encoding="utf-8")
    try:
        npu_sim.NPUConfig.from_toml(path)
    except ConfigError:
        pass


def test_digest_covers_every_region(small_program):
    _, _, prog, good = small_program
    with np.load(good) as z:
        header = str(z["__program__"])
        regions = [z[f"region_{i}"] for i in range(len(prog.regions))]
    base = _digest(header, regions)
    regions[-1] = regions[-1].copy()
    regions[-1].reshape(-1)[0] ^= 1
    assert _digest(header, regions) != base
