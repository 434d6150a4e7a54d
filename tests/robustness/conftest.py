import json

import numpy as np
import pytest
import torch

import compiler
import quant
from npu_sim.program import _digest
from tests.quant.nets import SmallConvNet, init_bn


@pytest.fixture(scope="session")
def small_program(tmp_path_factory):
    """A compiled program of the small test CNN (range-priority selection) and its path."""
    torch.manual_seed(0)
    m, x = init_bn(SmallConvNet()), torch.randn(8, 1, 12, 12)
    qm = quant.quantize(m, [x], progress=False)
    sel = quant.select(qm, [x], method="range", ratios=[0, 0.5, 1], progress=False)
    qm.attach_selection(sel)
    prog = compiler.compile(qm, x[:1], ratios=sel.ratios, name="small")
    path = tmp_path_factory.mktemp("prog") / "small.npz"
    prog.save(path)
    return qm, x, prog, path


def rewrite_program(src, dst, edit_header=None, drop=(), fix_checksum=True):
    """Copy a program file, editing its JSON header and dropping archive members;
    the checksum is recomputed unless ``fix_checksum`` is false."""
    with np.load(src) as z:
        members = {k: z[k] for k in z.files}
    head = json.loads(str(members["__program__"]))
    if edit_header:
        edit_header(head)
    header = json.dumps(head)
    members["__program__"] = np.array(header)
    for k in drop:
        members.pop(k, None)
    regions = []
    while f"region_{len(regions)}" in members:
        regions.append(members[f"region_{len(regions)}"])
    if fix_checksum:
        members["__sha256__"] = np.array(_digest(header, regions))
    with open(dst, "wb") as f:
        np.savez_compressed(f, **members)
    return dst
