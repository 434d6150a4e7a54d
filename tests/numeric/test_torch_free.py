"""The numeric core and the simulator load no torch; models and gpu_ref load no quant.

One fresh interpreter imports them in turn and reports what each import brought in.
"""

import json
import subprocess
import sys

_PROBE = """
import importlib, json, sys
seen = {}
for name in ("numeric", "numeric.float_ops", "npu_sim", "models", "gpu_ref"):
    importlib.import_module(name)
    seen[name] = {"torch": "torch" in sys.modules,
                  "quant": sorted(m for m in sys.modules if m == "quant" or m.startswith("quant."))}
print(json.dumps(seen))
"""


def test_core_and_simulator_load_no_torch_and_nothing_loads_quant():
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    for name in ("numeric", "numeric.float_ops", "npu_sim"):
        assert not seen[name]["torch"], f"importing {name} loaded torch"
    assert seen["models"]["torch"]  # the probe is live: models does use torch itself
    for name, what in seen.items():
        assert what["quant"] == [], f"importing {name} loaded {what['quant']}"
