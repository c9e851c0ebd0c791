"""Export-then-deploy: a second, fresh venv with the core install only (no torch, transformers, optimum)
audits with the model exported in this environment and gets the same metrics."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clbias.cli import main

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def test_core_only_venv_reproduces_the_audit(e5_model_dir, tmp_path):
    venv = tmp_path / "core-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(REPO)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    heavy = subprocess.run([str(python), "-c", "import importlib.util as u; "
                            "print([m for m in ('torch', 'transformers', 'optimum') if u.find_spec(m)])"],
                           capture_output=True, text=True, check=True)
    assert heavy.stdout.strip() == "[]"

    args = ["audit", str(REPO / "examples" / "udhr"), "--model", str(e5_model_dir), "--onnx", "int8",
            "--scenario", "multi", "--langs", "de,zh,ar,hi", "--threads", "2", "--bootstrap", "200", "--no-cache",
            "--quiet"]
    edge = subprocess.run([str(venv / "bin" / "clbias"), *args, "--json", str(tmp_path / "edge.json")],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""}, cwd=tmp_path)
    assert edge.returncode == 0, edge.stderr[-2000:]
    assert main([*args, "--json", str(tmp_path / "here.json")]) == 0

    edge_report = json.loads((tmp_path / "edge.json").read_text())
    here_report = json.loads((tmp_path / "here.json").read_text())
    assert edge_report["model"]["sha256"] == here_report["model"]["sha256"]
    assert len(edge_report["scenarios"]) == 8
    assert edge_report["scenarios"] == here_report["scenarios"]
    assert edge_report["gaps"] == here_report["gaps"]
