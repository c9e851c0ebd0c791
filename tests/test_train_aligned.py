"""`clbias models build multilingual-e5-small-aligned` (clbias.train.aligned) on the tiny-model path: the default
recipe trains from a probe set's train.jsonl and exports with its recipe in the manifest, which `models list`
shows; the real command differs only in fetching the base and the man pages itself."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from clbias.train.aligned import aligned_recipe, build_aligned
from clbias.train.config import DEFAULT_RECIPE, RECIPES

pytest.importorskip("torch")
pytest.importorskip("transformers")

from test_train_terms import UNITS  # noqa: E402


@pytest.fixture()
def probe(tmp_path: Path) -> Path:
    root = tmp_path / "probe"
    root.mkdir()
    rows = [{"parallel_id": f"u{i}", "texts": {"en": en, "de": de, "fr": fr}, "queries": {"en": q, "de": q_de}}
            for i, (en, q, de, q_de, fr) in enumerate(UNITS)]
    (root / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return root


def test_the_default_recipe_is_the_train_default():
    config = aligned_recipe()
    for key, value in RECIPES[DEFAULT_RECIPE].items():
        assert getattr(config, key) == value
    assert config.loss == "jsd+nce" and config.batch_size == 32


def test_build_trains_exports_and_lists_its_recipe(tiny_exported_dir: Path, tiny_hf_dir: Path, probe: Path,
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]):
    logged: list[str] = []
    config = aligned_recipe(batch_size=4, steps=2, max_length=32, save_every=2)
    out = build_aligned(tmp_path / "models", tmp_path / "exported", tmp_path / "cache", log=logged.append,
                        probe=probe, base_hf=tiny_hf_dir, config=config, name="tiny-aligned", export_int8=False)
    manifest = json.loads((out / "clbias.json").read_text())
    assert manifest["source"]["recipe"]["name"] == DEFAULT_RECIPE and manifest["source"]["recipe"]["steps"] == 2
    assert "clbias train --recipe paper" in manifest["source"]["description"]
    assert manifest["prefixes"] == {"query": "query: ", "passage": "passage: "}
    assert (tmp_path / "models" / "tiny-aligned" / "model.safetensors").is_file()
    assert logged and logged[-1].startswith(f"built {out} in ") and "train" in logged[-1]
    from clbias.cli import main

    monkeypatch.setenv("CLBIAS_EXPORTED", str(tmp_path / "exported"))
    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert any(r["name"] == "tiny-aligned" and "recipe paper" in r["source"] for r in listed)
    # a second call resumes nothing and rebuilds the export from the finished checkpoint
    again = build_aligned(tmp_path / "models", tmp_path / "exported2", tmp_path / "cache", log=logged.append,
                          probe=probe, base_hf=tiny_hf_dir, config=config, name="tiny-aligned", export_int8=False)
    assert json.loads((again / "clbias.json").read_text())["files"] == manifest["files"]


def test_models_build_knows_the_aligned_model():
    from clbias.models.build import BUILDABLE

    assert "multilingual-e5-small-aligned" in BUILDABLE
