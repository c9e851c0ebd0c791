"""The papercuts a new user met (issue 24), each checked on the real command or function."""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from clbias.api import audit_corpus
from clbias.cli import main
from clbias.io import atomic_dir, portable_path
from corpus_factory import parallel_corpus

ROOT = Path(__file__).resolve().parents[1]


def test_embed_says_it_embeds_passages_and_names_the_ids_file(tiny_model_dir: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    texts = tmp_path / "texts.jsonl"
    texts.write_text('{"_id": "a", "text": "the cat sleeps"}\n{"_id": "b", "text": "trains leave"}\n')
    assert main(["embed", str(texts), "--model", str(tiny_model_dir), "--out", str(tmp_path / "vectors.npy"),
                 "--no-cache"]) == 0
    err = capsys.readouterr().err
    assert "embedded as passages" in err and "--kind query" in err
    assert (tmp_path / "vectors.ids.json").is_file() and "vectors.ids.json" in err
    with pytest.raises(SystemExit):
        main(["embed", "--help"])
    help_text = re.sub(r"\s+", " ", capsys.readouterr().out)
    assert "vectors.npy -> vectors.ids.json" in help_text and "passages (default)" in help_text


def test_a_file_given_as_the_corpus_names_its_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = parallel_corpus(tmp_path / "corpus")
    assert main(["audit", str(corpus / "corpus.jsonl"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is a file; expected a corpus directory" in err and f"give its directory, {corpus}" in err
    assert "not found" not in err


def test_a_comma_joined_scenario_gets_a_hint_not_the_usage_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["audit", "corpus", "--scenario", "multi,mono-same"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "hint: give one value per option and repeat it: --scenario multi --scenario mono-same" in err
    assert "usage:" not in err and len(err.splitlines()) <= 3


def test_a_misspelt_option_gets_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["audit", "corpus", "--jsn", "out.json"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "--jsn: did you mean --json?" in err and "usage:" not in err


def test_the_shortfall_of_train_data_reads_as_a_share_not_a_count(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    corpus = parallel_corpus(tmp_path / "corpus")
    units = [{"parallel_id": f"t{i}", "texts": {"en": f"English passage {i}", "de": f"Deutscher Text {i}",
                                                 **({"fr": f"Texte français {i}"} if i < 2 else {})},
              "queries": {"en": f"question {i}"}} for i in range(6)]
    (corpus / "train.jsonl").write_text("".join(json.dumps(u) + "\n" for u in units))
    assert main(["train", "data", "--from", str(corpus), "--n", "8", "--out", str(tmp_path / "t.jsonl")]) == 0
    err = re.sub(r"\s+", " ", capsys.readouterr().err)
    assert "too few training units for an equal share of the 8 triplets asked (--n): fr made 2 of its 4" in err


def test_reports_and_manifests_record_no_absolute_source_paths(tiny_model_dir: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert portable_path("models/e5-aligned") == "models/e5-aligned"
    assert portable_path("/home/someone/work/models/e5-aligned") == "e5-aligned"
    parallel_corpus(tmp_path / "corpus")
    monkeypatch.chdir(tmp_path)
    report = audit_corpus("corpus", [tiny_model_dir], bootstrap=20, cache_dir=tmp_path / "cache",
                          scenarios=["multi"])
    assert report.corpus["path"] == "corpus"
    from clbias.report.html import to_html

    assert str(tmp_path) not in to_html(report)


def test_files_written_private_get_the_usual_mode_in_a_model_directory(tmp_path: Path) -> None:
    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "config.json").write_text("{}")
        private = tmp / "model.safetensors"
        fd = os.open(private, os.O_WRONLY | os.O_CREAT, 0o600)  # as safetensors' save_file leaves it
        os.close(fd)
        os.chmod(private, 0o600)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "model").iterdir()}
    assert modes["model.safetensors"] == modes["config.json"] != 0o600


def test_models_list_fits_120_columns_and_never_cuts_a_name(tiny_model_dir: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    name = "multilingual-e5-small-aligned-on-help-pages"
    target = tmp_path / "exported" / name
    shutil.copytree(tiny_model_dir, target)
    manifest = json.loads((target / "clbias.json").read_text())
    manifest["name"] = name
    (target / "clbias.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("CLBIAS_EXPORTED", str(tmp_path / "exported"))
    monkeypatch.setenv("COLUMNS", "120")
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 120
    assert re.search(rf"^{name}\s+model\.onnx ✓", out, re.M), out
    assert "model.int8.onnx" in out and "…" not in out


def test_train_threads_help_mentions_a_busy_machine(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = re.sub(r"\s+", " ", capsys.readouterr().out)
    assert "--threads 1 can be several times faster" in text


def test_a_misspelt_required_output_option_gets_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["embed", "texts.jsonl", "--model", "m", "--ot", "vectors.npy"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "required: --out" in err and "--ot: did you mean --out?" in err and "usage:" not in err
