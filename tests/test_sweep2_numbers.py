"""Issue 19 item 4: no silent wrong number. Non-finite vectors are refused, `compare` refuses audits of other
data, queries are read like documents, unscored query languages are noted, run-file names never collide,
texts that tokenise to nothing are noted, manifest values are checked."""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from clbias.api import audit_corpus, load_model
from clbias.cli import main
from clbias.corpus import load_corpus
from clbias.errors import ModelError
from clbias.io import sha256_file
from clbias.runtime.embed import embed_texts
from clbias.runtime.manifest import load_manifest
from corpus_factory import parallel_corpus, write_corpus


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def _rehash(model: Path) -> None:
    """Re-record the sha256 of every file in the manifest after a test changed one."""
    data = json.loads((model / "clbias.json").read_text())
    data["files"] = {name: sha256_file(model / name) for name in data["files"]}
    (model / "clbias.json").write_text(json.dumps(data))


def _edit_manifest(model: Path, **changes) -> None:
    data = json.loads((model / "clbias.json").read_text())
    data.update(changes)
    (model / "clbias.json").write_text(json.dumps(data))


@pytest.fixture()
def nan_model(tiny_model_dir, tmp_path) -> Path:
    """The tiny model with NaN word embeddings: every vector it emits is NaN."""
    import onnx
    from tiny_onnx import build_graph, build_tokenizer, tiny_weights

    model = tmp_path / "nan-model"
    shutil.copytree(tiny_model_dir, model)
    weights = tiny_weights(build_tokenizer().get_vocab_size())
    weights["word_embeddings"][:] = np.nan
    onnx.save(build_graph(weights), str(model / "model.onnx"))
    _rehash(model)
    return model


# --------------------------------------------------------------------------- non-finite vectors

@pytest.mark.parametrize("cache", [False, True])
def test_a_model_emitting_nan_is_refused_naming_it(nan_model, tmp_path, capsys, cache):
    corpus = parallel_corpus(tmp_path / "c")
    argv = ["audit", str(corpus), "--model", str(nan_model), "--quiet", "--bootstrap", "10",
            "--json", str(tmp_path / "r.json")]
    argv += ["--cache-dir", str(tmp_path / "cache")] if cache else ["--no-cache"]
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert str(nan_model / "model.onnx") in line and "non-finite" in line
    assert not (tmp_path / "r.json").exists()
    assert not list((tmp_path / "cache").rglob("*.npy"))  # nothing non-finite is cached either


def test_embed_refuses_nan_vectors(nan_model, tmp_path, capsys):
    texts = tmp_path / "t.jsonl"
    texts.write_text('{"_id": "a", "text": "hello"}\n{"_id": "b", "text": "world"}\n')
    assert main(["embed", str(texts), "--model", str(nan_model), "--no-cache", "--out", str(tmp_path / "v.npy")]) == 2
    assert "2 of 2 texts" in _one_error_line(capsys)
    assert not (tmp_path / "v.npy").exists()


def test_a_checksum_valid_shard_with_nan_is_dropped_naming_it(tiny_model_dir, tmp_path, caplog):
    encoder = load_model(tiny_model_dir)
    texts = ["the cat sleeps", "trains leave often", "bread is baked"]
    fresh, _ = embed_texts(encoder, texts, "passage", tmp_path)
    vec_file = next(tmp_path.rglob("*.vecs.npy"))
    poisoned = fresh.copy()
    poisoned[1, 0] = np.nan
    np.save(vec_file, poisoned, allow_pickle=False)
    sums_file = vec_file.with_name(vec_file.name.replace(".vecs.npy", ".sum.json"))
    sums = json.loads(sums_file.read_text())
    sums["sha256"]["vecs"] = hashlib.sha256(vec_file.read_bytes()).hexdigest()  # "checksum-valid" damage
    sums_file.write_text(json.dumps(sums))
    with caplog.at_level(logging.WARNING, logger="clbias.cache"):
        again, _ = embed_texts(load_model(tiny_model_dir), texts, "passage", tmp_path)
    assert np.isfinite(again).all() and np.allclose(again, fresh)
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "non-finite" in warning and vec_file.name.removesuffix(".vecs.npy") in warning


def test_an_empty_text_list_embeds_with_the_cache_on(tiny_model_dir, tmp_path):
    """The undefined name of issue 19 (runtime/embed.py): no texts with the cache on crashed."""
    encoder = load_model(tiny_model_dir)
    vectors, stats = embed_texts(encoder, [], "passage", tmp_path)
    assert vectors.shape == (0, encoder.manifest.dim) and len(stats.n_tokens) == 0


def test_label_free_corpus_with_the_cache_on(tiny_model_dir, tmp_path):
    docs = [{"_id": f"{u}-{lang}", "text": f"text {u} {lang}", "lang": lang} for u in range(4) for lang in ("en", "de")]
    root = write_corpus(tmp_path / "c", docs)
    report = audit_corpus(root, [tiny_model_dir], bootstrap=10, cache_dir=tmp_path / "cache")
    again = audit_corpus(root, [tiny_model_dir], bootstrap=10, cache_dir=tmp_path / "cache")
    assert report.neighbours is not None and report.neighbours == again.neighbours


# --------------------------------------------------------------------------- compare: same data, one model

def _audit_json(corpus: Path, model: Path, out: Path, *extra: str) -> Path:
    assert main(["audit", str(corpus), "--model", str(model), "--no-cache", "--quiet", "--bootstrap", "20",
                 "--scenario", "multi", "--json", str(out), *extra]) == 0
    return out


def test_compare_refuses_audits_of_different_qrels(tiny_model_dir, tmp_path, capsys):
    a_corpus = parallel_corpus(tmp_path / "a")
    b_corpus = parallel_corpus(tmp_path / "b")
    qrels = b_corpus / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text().replace("q-u1-de\tu1-de", "q-u1-de\tu2-de"))  # same names, same sizes
    a = _audit_json(a_corpus, tiny_model_dir, tmp_path / "a.json")
    b = _audit_json(b_corpus, tiny_model_dir, tmp_path / "b.json")
    assert main(["compare", str(a), str(b), "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert "different data" in line and "test.tsv" in line
    assert main(["compare", str(a), str(a), "--quiet"]) == 0


def test_compare_refuses_a_different_depth(tiny_model_dir, tmp_path, capsys):
    corpus = parallel_corpus(tmp_path / "c")
    a = _audit_json(corpus, tiny_model_dir, tmp_path / "a.json")
    b = _audit_json(corpus, tiny_model_dir, tmp_path / "b.json", "--depth", "3")
    assert main(["compare", str(a), str(b), "--quiet"]) == 2
    assert "depth" in _one_error_line(capsys)


def test_compare_asks_which_model_of_several(tiny_model_dir, tmp_path, capsys):
    corpus = parallel_corpus(tmp_path / "c")
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    _edit_manifest(other, name="other")
    two = _audit_json(corpus, tiny_model_dir, tmp_path / "two.json", "--model", str(other))
    one = _audit_json(corpus, other, tmp_path / "one.json")
    assert main(["compare", str(two), str(one), "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert "holds 2 models (tiny, other)" in line and "--a-model" in line
    assert main(["compare", str(two), str(one), "--quiet", "--a-model", "nope"]) == 2
    assert "no model 'nope'" in _one_error_line(capsys)
    md = tmp_path / "c.md"
    assert main(["compare", str(two), str(one), "--quiet", "--a-model", "other", "--markdown", str(md)]) == 0
    # the same model's numbers on both sides: every paired difference is exactly zero
    assert main(["compare", str(two), str(one), "--quiet", "--a-model", "tiny"]) == 0
    assert md.is_file()


# --------------------------------------------------------------------------- queries and languages

def test_a_query_with_a_title_is_read_like_a_document(tmp_path):
    root = parallel_corpus(tmp_path / "c")
    lines = [json.loads(x) for x in (root / "queries.jsonl").read_text().splitlines()]
    lines[0] = {**lines[0], "title": lines[0]["text"], "text": ""}
    lines[1] = {**lines[1], "title": "Katzen"}
    (root / "queries.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    queries = load_corpus(root).queries
    assert queries[0].text == lines[0]["title"]
    assert queries[1].text == f"Katzen. {lines[1]['text']}"


@pytest.mark.parametrize("case", ["script-variant", "english-only-pool"])
def test_judged_queries_without_a_pool_are_noted_with_counts(tiny_model_dir, tmp_path, case):
    if case == "script-variant":
        docs = [{"_id": f"d{i}-{lang}", "text": f"text {i} {lang}", "lang": lang}
                for i in range(3) for lang in ("en", "zh-Hant")]
        queries = [{"_id": f"q{i}", "text": f"query {i}", "lang": "zh"} for i in range(3)]
        qrels = [(f"q{i}", f"d{i}-zh-Hant", 1) for i in range(3)]
        expected = ["3 judged zh queries not scored", "zh-Hant share its base language"]
    else:
        docs = [{"_id": f"d{i}", "text": f"text {i}", "lang": "en"} for i in range(3)]
        queries = [{"_id": f"q{i}", "text": f"consulta {i}", "lang": "es"} for i in range(2)]
        queries.append({"_id": "q-en", "text": "query", "lang": "en"})
        qrels = [("q0", "d0", 1), ("q1", "d1", 1), ("q-en", "d2", 1)]
        expected = ["2 judged es queries not scored", "no scenario has a pool in its language"]
    root = write_corpus(tmp_path / "c", docs, queries, qrels)
    report = audit_corpus(root, [tiny_model_dir], bootstrap=10)
    notes = " | ".join(report.notes)
    assert all(e in notes for e in expected), report.notes


def test_run_files_of_models_whose_names_fold_together_stay_apart(tiny_model_dir, tmp_path):
    corpus = parallel_corpus(tmp_path / "c")
    models = []
    for name in ("e5 small", "e5_small", "E5_SMALL"):
        model = tmp_path / name.replace(" ", "-")
        shutil.copytree(tiny_model_dir, model)
        _edit_manifest(model, name=name)
        models += ["--model", str(model)]
    runs = tmp_path / "runs"
    assert main(["audit", str(corpus), *models, "--no-cache", "--quiet", "--bootstrap", "10", "--scenario",
                 "mono-same", "--runs", str(runs), "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    files = sorted(p.name for p in runs.iterdir())
    assert len(files) == len(report["scenarios"]) * 3 == len({f.lower() for f in files})
    assert sorted(Path(p).name for p in report["run_files"]) == files


def test_texts_empty_after_tokenisation_are_noted(tiny_model_dir, tmp_path):
    """A zero-width space passes every text check but the real XLM-R tokenizer drops it; the tiny model is
    given the same normaliser so that the note is tested on a real tokenizer."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    tok = json.loads((model / "tokenizer.json").read_text())
    tok["normalizer"] = {"type": "Replace", "pattern": {"String": "\u200b"}, "content": ""}
    (model / "tokenizer.json").write_text(json.dumps(tok))
    _rehash(model)
    root = parallel_corpus(tmp_path / "c")
    lines = [json.loads(x) for x in (root / "corpus.jsonl").read_text().splitlines()]
    lines[3]["text"] = "\u200b\u200b"
    (root / "corpus.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    report = audit_corpus(root, [model], bootstrap=10)
    notes = [n for n in report.notes if "empty after tokenisation" in n]
    assert len(notes) == 1 and f"'{lines[3]['_id']}'" in notes[0] and "1 documents" in notes[0], report.notes
    plain = audit_corpus(parallel_corpus(tmp_path / "plain"), [model], bootstrap=10)
    assert not [n for n in plain.notes if "empty after tokenisation" in n]


@pytest.mark.parametrize("change, field", [
    ({"max_length": 0}, "max_length"), ({"max_length": "512"}, "max_length"), ({"max_length": True}, "max_length"),
    ({"normalize": "yes"}, "normalize"), ({"prefixes": {"query": 5}}, "prefixes.query"),
    ({"prefixes": {"qurey": "query: "}}, "prefixes"), ({"dim": -3}, "dim"), ({"name": ""}, "name")])
def test_manifest_values_are_range_and_type_checked(tiny_model_dir, tmp_path, change, field):
    model = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model)
    _edit_manifest(model, **change)
    with pytest.raises(ModelError) as info:
        load_manifest(model)
    assert f"field '{field}'" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["../outside.onnx", "/etc/hostname", "sub/../../x"])
def test_manifest_files_cannot_point_outside_the_model(tiny_model_dir, tmp_path, name):
    model = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model)
    data = json.loads((model / "clbias.json").read_text())
    data["files"][name] = "0" * 64
    (model / "clbias.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="not a file inside the model directory"):
        load_manifest(model)


@pytest.mark.slow
def test_zero_width_texts_are_noted_with_the_real_model(e5_model_dir, tmp_path):
    """XLM-R's normaliser drops zero-width characters: such a document is read as its prefix alone."""
    root = parallel_corpus(tmp_path / "c")
    lines = [json.loads(x) for x in (root / "corpus.jsonl").read_text().splitlines()]
    lines[1]["text"] = "\u200b\u200d"
    (root / "corpus.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    report = audit_corpus(root, [e5_model_dir], bootstrap=10, scenarios=["multi"])
    notes = [n for n in report.notes if "empty after tokenisation" in n]
    assert len(notes) == 1 and f"'{lines[1]['_id']}'" in notes[0] and "1 documents" in notes[0], report.notes
