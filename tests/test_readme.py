"""The README's Python code blocks run as written."""

import os
import re

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _python_blocks():
    with open(README, encoding="utf-8") as f:
        text = f.read()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_a_python_example():
    assert _python_blocks()


@pytest.mark.parametrize("i", range(len(_python_blocks())))
def test_readme_python_block_runs(i, capsys):
    exec(compile(_python_blocks()[i], f"README.md block {i}", "exec"), {})
    assert "cycles" in capsys.readouterr().out
