"""compiler/schedule.py: dependency tokens of the double-buffered pipelines balance, so
every signal is consumed and no queue waits for a token nobody sends."""

from collections import Counter

import pytest

import compiler
from npu_sim import isa


@pytest.mark.parametrize("kind", ["conv", "vit"])
@pytest.mark.parametrize("cfg", [{}, {"dynamic": True}])
def test_tokens_balance_and_are_never_awaited_before_sent(make_qmodel, kind, cfg):
    qm, x = make_qmodel(kind, **cfg)
    prog = compiler.compile(qm, x[:1])
    sent, waited = Counter(), Counter()
    for ins in prog.instructions:
        for q in ins.wait:
            waited[(q, ins.queue)] += 1
            # in program order a queue's waits never outrun the signals issued so far
            assert waited[(q, ins.queue)] <= sent[(q, ins.queue)], ins
        for q in ins.signal:
            sent[(ins.queue, q)] += 1
    assert sent == waited
    assert isinstance(prog.instructions[-1], isa.Finish)
