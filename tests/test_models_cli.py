"""`clbias models list` and an export killed midway (the next run must rebuild cleanly)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from clbias.cli import main


def test_models_list_shows_graphs_sizes_hashes_and_quantisation(tiny_model_dir, tmp_path, monkeypatch, capsys):
    root = tmp_path / "exported"
    shutil.copytree(tiny_model_dir, root / "tiny")
    monkeypatch.setenv("CLBIAS_EXPORTED", str(root))
    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    manifest = json.loads((root / "tiny" / "clbias.json").read_text())
    assert {r["onnx"] for r in rows} == {"model.onnx", "model.int8.onnx"}
    for row in rows:
        assert row["sha256"] == manifest["files"][row["onnx"]]
        assert row["default"] == (row["onnx"] == manifest["onnx"])
        assert row["size_mb"] > 0
    assert next(r for r in rows if r["onnx"] == "model.int8.onnx")["min_cosine"] is not None
    assert main(["models", "list"]) == 0 and "tiny" in capsys.readouterr().out


def test_export_killed_midway_leaves_nothing_and_the_next_run_rebuilds(tiny_hf_dir, tmp_path):
    out_root = tmp_path / "exported"
    cmd = [sys.executable, "-m", "clbias", "export", str(tiny_hf_dir), "--name", "tiny", "--out-root", str(out_root),
           "--int8"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not any(out_root.glob(".tiny.partial-*/*")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert any(out_root.glob(".tiny.partial-*")), "the export was not caught midway"
    assert not (out_root / "tiny").exists()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (out_root / "tiny" / "clbias.json").is_file()
    assert not list(out_root.glob(".tiny.partial-*"))  # the killed run's leftovers were cleaned up
    assert main(["audit", str(Path(__file__).parent.parent / "examples" / "udhr"), "--model", str(out_root / "tiny"),
                 "--scenario", "multi", "--langs", "de", "--no-cache", "--quiet", "--bootstrap", "10"]) == 0
