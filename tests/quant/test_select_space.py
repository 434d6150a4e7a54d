"""Selection search space and ladders: budget to one group, nesting, valid orders."""

import numpy as np
import pytest
import torch
import torch.nn as nn

import quant
from quant.select.heuristics import nested_ladder
from quant.select.space import SearchSpace, decode, encode

RATIOS = (0.0, 0.25, 0.5, 0.75, 1.0)


pytestmark = pytest.mark.usefixtures("one_thread")



class GroupedNet(nn.Module):
    """Convs wide enough for several 4-bit groups of 32, one with a short (partial) group."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 96, 3, padding=1)
        self.c3 = nn.Conv2d(96, 80, 3, padding=1)
        self.c4 = nn.Conv2d(80, 64, 1)
        self.fc = nn.Linear(64, 96)
        self.head = nn.Linear(96, 10)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.relu(self.c2(x))
        x = torch.nn.functional.max_pool2d(torch.relu(self.c3(x)), 2)
        x = torch.relu(self.c4(x))
        x = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.head(torch.relu(self.fc(x)))


def make_case(seed=0, n=48):
    torch.manual_seed(seed)
    m = GroupedNet().eval()
    with torch.no_grad():  # spread the channel ranges so that lowering matters
        for mod in m.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                mod.weight.mul_(torch.rand(mod.weight.shape[0], 1, *mod.weight.shape[2:]) * 2 + 0.2)
    x = torch.randn(n, 1, 10, 10) * (torch.rand(1, 1, 10, 10) + 0.5)
    qm = quant.quantize(m, [x[: n // 2], x[n // 2:]], quant.QuantConfig(group_size=32), progress=False)
    return m, qm, x


@pytest.fixture(scope="module")
def case():
    return make_case()


@pytest.mark.parametrize("budget", ["macs", "channels"])
def test_budget_respected_to_one_group(case, budget):
    _, qm, _ = case
    sp = SearchSpace(qm, budget=budget)
    assert sp.partial.any()  # c3's input has 96 = 3 x 32, c4's 80 = 2 x 32 + 16
    rng = np.random.default_rng(0)
    for prefer in (np.arange(sp.n), rng.permutation(sp.n), np.arange(sp.n)[::-1]):
        ladder = nested_ladder(sp, RATIOS, prefer)
        for r, flags in zip(RATIOS, ladder):
            t = sp.target(r)
            got = sp.achieved(flags)
            assert got <= t + 1e-6 * sp.total
            assert t - got < sp.weight.max() + 1e-6 * sp.total
            assert sp.valid(flags)
        assert not ladder[0].any() and ladder[-1].all()
    # random repair from any start lands within one group as well
    for _ in range(20):
        flags = rng.random(sp.n) < 0.5
        for r in RATIOS:
            out = sp.repair(flags, sp.target(r), sp.empty(), rng)
            assert sp.valid(out)
            assert sp.target(r) - sp.weight.max() - 1e-6 < sp.achieved(out) <= sp.target(r) + 1e-6


def test_nested_orders_are_prefixes_in_whole_groups(case):
    _, qm, _ = case
    sp = SearchSpace(qm)
    rng = np.random.default_rng(3)
    ladder = nested_ladder(sp, RATIOS, rng.permutation(sp.n))
    orders = sp.nested_orders(ladder)
    prev = None
    for flags in ladder:
        table = sp.max4(flags)
        plan = sp.layer_plan(flags)
        for name, n4 in table.items():
            L = qm.layers[name]
            assert n4 % L.group_size == 0 or n4 == L.in_channels
            assert sorted(orders[name].tolist()) == list(range(L.in_channels))
            # the 4-bit set at this ratio is the order's prefix
            assert set(orders[name][:n4].tolist()) == set(plan[name][0][:n4].tolist())
        sets = {k: set(orders[k][:n].tolist()) for k, n in table.items()}
        if prev is not None:
            assert all(prev[k] <= sets[k] for k in sets)
        prev = sets


def test_flag_codec_round_trip():
    rng = np.random.default_rng(1)
    for n in (1, 7, 8, 9, 61):
        f = rng.random(n) < 0.5
        assert np.array_equal(decode(encode(f), n), f)


def test_bad_budget_rejected(case):
    _, qm, _ = case
    with pytest.raises(quant.ConfigError, match="budget"):
        SearchSpace(qm, budget="cycles")
