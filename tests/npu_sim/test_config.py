import pytest

from npu_sim import NPUConfig
from quant.errors import ConfigError, FlexiQError


def test_defaults_follow_spec():
    c = NPUConfig()
    assert (c.rows, c.cols, c.clock_ghz, c.group_size, c.vector_lanes) == (32, 32, 1.0, 64, 32)
    assert c.double_buffer and c.timing == "default"
    assert c.group_size == 2 * c.rows  # a 4-bit fold holds one group


def test_round_trip_dict_and_toml(tmp_path):
    c = NPUConfig(rows=16, cols=8, dram_latency=7, vector_costs={"gelu": 9})
    assert NPUConfig.from_dict(c.to_dict()) == c
    p = tmp_path / "npu.toml"
    p.write_text("[npu]\nrows = 16\ncols = 8\ndram_latency = 7\ntiming = 'scalesim'\n"
                 "[npu.vector_costs]\ngelu = 9\n")
    t = NPUConfig.from_toml(p)
    assert (t.rows, t.cols, t.dram_latency, t.timing, t.vector_costs["gelu"]) == \
        (16, 8, 7, "scalesim", 9)
    assert t.vector_costs["requant"] == 1
    assert not t.effective_double_buffer


@pytest.mark.parametrize("body, field", [
    ("rows = 0", "rows"),
    ("cols = 'x'", "cols"),
    ("bogus = 1", "bogus"),
    ("timing = 'fast'", "timing"),
    ("double_buffer = 1", "double_buffer"),
    ("clock_ghz = -1.0", "clock_ghz"),
    ("[vector_costs]\nsqrt = 1", "sqrt"),
    ("[vector_costs]\ngelu = -1", "gelu"),
])
def test_schema_errors_name_the_field(tmp_path, body, field):
    p = tmp_path / "bad.toml"
    p.write_text(body + "\n")
    with pytest.raises(ConfigError, match=field):
        NPUConfig.from_toml(p)


def test_unreadable_toml_is_a_config_error(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("rows = = 3")
    with pytest.raises(FlexiQError):
        NPUConfig.from_toml(p)
    with pytest.raises(ConfigError):
        NPUConfig.from_toml(tmp_path / "missing.toml")
