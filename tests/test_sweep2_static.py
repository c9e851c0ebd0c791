"""Issue 19 item 8: the static checks `.ci/run` runs can fail, and the tree passes them. mypy itself runs in
`.ci/run` (tens of seconds); here only the fast checks run."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / ".ci"))
from check_type_ignores import findings  # noqa: E402


def test_the_type_ignore_check_flags_bare_and_unexplained_ignores(tmp_path):
    (tmp_path / "m.py").write_text("a = 1  # type: ignore\nb = 2  # type: ignore[assignment]\n"
                                   "c = 3  # type: ignore[assignment]  # numpy's stubs lag\n")
    found = findings([tmp_path])
    assert len(found) == 2 and "m.py:1" in found[0] and "without an error code" in found[0]
    assert "m.py:2" in found[1] and "without a reason" in found[1]


def test_every_type_ignore_in_clbias_has_a_code_and_a_reason():
    assert findings([ROOT / "clbias"]) == []


def _ruff() -> list[str]:
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.skip("ruff is not installed (pip install -e \".[dev]\")")


def test_ruff_finds_an_undefined_name_and_the_tree_is_clean(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    return m.dim\n")  # the bug issue 19 found in runtime/embed.py
    result = subprocess.run([*_ruff(), "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(bad)],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "F821" in result.stdout
    clean = subprocess.run([*_ruff(), "check", "--no-cache", "clbias", "tests"], cwd=ROOT, capture_output=True,
                           text=True)
    assert clean.returncode == 0, clean.stdout
