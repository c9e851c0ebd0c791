"""End to end on the tiny exported model: library call, CLI, reports, cache, gates, bad input."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clbias.api import audit_corpus, embed, load_model
from clbias.cli import main
from clbias.runtime.encoder import Encoder
from corpus_factory import parallel_corpus, write_corpus

SCHEMA_KEYS = {"max_r", "max_r_norm", "complete@10", "ndcg@10", "recall@10", "mrr@10", "eir", "en_exposure@10"}


@pytest.fixture()
def corpus_dir(tmp_path):
    return parallel_corpus(tmp_path / "corpus")


def run_cli(*argv, cache=None):
    args = [str(a) for a in argv]
    return main(args)


def test_library_audit_report(corpus_dir, tiny_model_dir, tmp_path):
    report = audit_corpus(corpus_dir, [tiny_model_dir], bootstrap=200, cache_dir=tmp_path / "cache")
    names = [s.name for s in report.scenarios]
    assert "multi [en+de] q=de" in names and "mono-cross [de] q=en" in names
    multi = next(s for s in report.scenarios if s.name == "multi [en+de] q=de")
    assert multi.n_queries == 4 and multi.pool_size == 8
    assert SCHEMA_KEYS <= set(multi.metrics)
    assert 2 <= multi.metrics["max_r"] <= 8
    lo, hi = multi.ci["max_r"]
    assert lo <= multi.metrics["max_r"] <= hi
    english = next(s for s in report.scenarios if s.name == "multi [en+de] q=en")
    assert english.metrics["eir"] is None and multi.metrics["eir"] is not None
    # the queries carry no parallel_id: each is paired by the parallel unit of its relevant document
    gap = report.gaps[0]
    assert (gap.kind, gap.paired, gap.pairs, gap.n["max_r_norm"]) == ("multi", True, 4, 4)
    assert report.model.prefixes == {"query": "query: ", "passage": "passage: "}


def test_cli_audit_writes_json_markdown_runs_and_reruns_identically(corpus_dir, tiny_model_dir, tmp_path):
    cache = tmp_path / "cache"
    out1, out2 = tmp_path / "a.json", tmp_path / "b.json"
    assert run_cli("audit", corpus_dir, "--model", tiny_model_dir, "--json", out1, "--markdown", tmp_path / "r.md",
                   "--runs", tmp_path / "runs", "--cache-dir", cache, "--bootstrap", 200) == 0
    assert run_cli("audit", corpus_dir, "--model", tiny_model_dir, "--json", out2, "--cache-dir", cache,
                   "--bootstrap", 200, "--quiet") == 0
    a, b = json.loads(out1.read_text()), json.loads(out2.read_text())
    assert a["schema"] == "clbias.audit/1"
    assert {"name", "sha256", "prefixes", "pooling"} <= set(a["model"])
    assert {"kind", "params", "recall_vs_exact"} <= set(a["index"])
    for s in a["scenarios"]:
        assert {"name", "pool_langs", "query_lang", "n_queries", "pool_size", "metrics", "ci"} <= set(s)
        assert SCHEMA_KEYS <= set(s["metrics"]) and SCHEMA_KEYS <= set(s["ci"])
    a.pop("timings"), b.pop("timings")
    runs = sorted((tmp_path / "runs").glob("*.run"))
    assert sorted(a.pop("run_files")) == [str(p) for p in runs] and b.pop("run_files") == []  # only --runs differs
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert "| multi [en+de] q=de |" in (tmp_path / "r.md").read_text()
    assert len(runs) == len(a["scenarios"])


def test_trec_runs_reproduce_ndcg_with_ranx(corpus_dir, tiny_model_dir, tmp_path):
    ranx = pytest.importorskip("ranx")
    out = tmp_path / "a.json"
    assert run_cli("audit", corpus_dir, "--model", tiny_model_dir, "--json", out, "--runs", tmp_path / "runs",
                   "--scenario", "multi", "--no-cache", "--quiet") == 0
    report = json.loads(out.read_text())
    scenario = next(s for s in report["scenarios"] if s["name"] == "multi [en+de] q=de")
    run_file = next((tmp_path / "runs").glob("multi_en_de_q_de*.run"))
    run = {}
    for line in run_file.read_text().splitlines():
        qid, _, doc, _, score, _ = line.split()
        run.setdefault(qid, {})[doc] = float(score)
    qrels = {q: {f"{q.split('-')[1]}-en": 1, f"{q.split('-')[1]}-de": 1} for q in run}
    value = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), "ndcg@10")
    assert scenario["metrics"]["ndcg@10"] == pytest.approx(100 * value, abs=1e-3)


def test_warm_cache_skips_the_model(corpus_dir, tiny_model_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cold = audit_corpus(corpus_dir, [tiny_model_dir], bootstrap=100, cache_dir=cache)

    def boom(self, rows):
        raise AssertionError("the model ran although every text was cached")

    monkeypatch.setattr(Encoder, "_run", boom)
    warm = audit_corpus(corpus_dir, [tiny_model_dir], bootstrap=100, cache_dir=cache)
    assert cold.metrics_only() == warm.metrics_only()


def test_fail_if_gate_exit_codes(corpus_dir, tiny_model_dir, capsys):
    base = ("audit", corpus_dir, "--model", tiny_model_dir, "--no-cache", "--quiet", "--bootstrap", 50)
    assert run_cli(*base, "--fail-if", "max_r>=1") == 1
    assert "bias gate broken" in capsys.readouterr().err
    assert run_cli(*base, "--fail-if", "max_r>1000") == 0
    assert run_cli(*base, "--fail-if", "eir>>3") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--fail-if" in err[0]


def test_two_models_side_by_side_with_paired_stats(corpus_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "two.json"
    assert run_cli("audit", corpus_dir, "--model", tiny_model_dir, "--model", tiny_model_dir, "--onnx", "int8",
                   "--json", out, "--no-cache", "--quiet", "--bootstrap", 100) == 0
    data = json.loads(out.read_text())
    assert len(data["models"]) == 2
    comp = data["scenarios"][0]["comparisons"][0]
    assert comp["metrics"]["max_r"]["wins"] + comp["metrics"]["max_r"]["ties"] + comp["metrics"]["max_r"]["losses"] \
        == data["scenarios"][0]["n_queries"]


def test_truncation_is_reported_per_language(tmp_path, tiny_model_dir):
    long_text = " ".join(["Katze Fensterbank Nachmittag"] * 200)
    root = write_corpus(tmp_path / "c", [{"_id": "a", "text": long_text, "lang": "de"},
                                         {"_id": "b", "text": "short English text", "lang": "en"}])
    report = audit_corpus(root, [tiny_model_dir], bootstrap=10)
    assert report.truncation[report.model.name]["passage"] == {"de": 1, "en": 0}


def test_embed_cli_and_library_agree(tmp_path, tiny_model_dir):
    texts = tmp_path / "t.jsonl"
    rows = [{"_id": f"t{i}", "text": t} for i, t in enumerate(["short", "a much longer text about trains", "Katze"])]
    texts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert run_cli("embed", texts, "--model", tiny_model_dir, "--kind", "query", "--out", tmp_path / "v.npy",
                   "--no-cache") == 0
    vectors = np.load(tmp_path / "v.npy", allow_pickle=False)
    assert json.loads((tmp_path / "v.ids.json").read_text()) == ["t0", "t1", "t2"]
    expected = embed([r["text"] for r in rows], load_model(tiny_model_dir), kind="query")
    assert np.allclose(vectors, expected, atol=1e-6)
    single = embed(["a much longer text about trains"], tiny_model_dir, kind="query")
    assert np.allclose(vectors[1], single[0], atol=1e-5)  # batching/padding does not change a vector
    assert not np.allclose(expected, embed([r["text"] for r in rows], tiny_model_dir, kind="passage"))


def bad_model_dirs(tiny_model_dir, tmp_path):
    no_manifest = tmp_path / "no-manifest"
    shutil.copytree(tiny_model_dir, no_manifest)
    (no_manifest / "clbias.json").unlink()
    tampered = tmp_path / "tampered"
    shutil.copytree(tiny_model_dir, tampered)
    with open(tampered / "tokenizer.json", "a") as fh:
        fh.write(" ")
    missing = tmp_path / "missing-file"
    shutil.copytree(tiny_model_dir, missing)
    (missing / "model.int8.onnx").unlink()
    return {"clbias.json": no_manifest, "sha256": tampered, "missing": missing}


def test_bad_models_are_one_line_errors(corpus_dir, tiny_model_dir, tmp_path, capsys):
    for expected, directory in bad_model_dirs(tiny_model_dir, tmp_path).items():
        assert run_cli("audit", corpus_dir, "--model", directory, "--no-cache", "--quiet") == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(directory) in err[0] and (expected in err[0] or "manifest" in err[0]), err


def test_graph_inputs_that_do_not_fit_a_tokenizer(tiny_model_dir, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    from clbias.errors import ModelError
    from clbias.io import sha256_file

    bad = tmp_path / "bad"
    shutil.copytree(tiny_model_dir, bad)
    node = helper.make_node("Identity", ["pixel_values"], ["last_hidden_state"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [1, 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), bad / "model.onnx")
    manifest = json.loads((bad / "clbias.json").read_text())
    manifest["files"]["model.onnx"] = sha256_file(bad / "model.onnx")
    (bad / "clbias.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="do not fit a tokenizer"):
        Encoder.load(bad, onnx="model.onnx")


@pytest.mark.parametrize("case", ["bad-json", "missing-lang", "unknown-qrel", "empty"])
def test_bad_corpus_from_a_real_process_has_no_traceback(case, tmp_path, tiny_model_dir):
    root = parallel_corpus(tmp_path / "c")
    if case == "bad-json":
        with open(root / "corpus.jsonl", "a") as fh:
            fh.write("{not json\n")
    elif case == "missing-lang":
        (root / "queries.jsonl").write_text('{"_id": "q1", "text": "hello"}\n')
    elif case == "unknown-qrel":
        with open(root / "qrels" / "test.tsv", "a") as fh:
            fh.write("q-u1-en\tghost\t1\n")
    else:
        (root / "corpus.jsonl").write_text("")
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "clbias", "audit", str(root), "--model", str(tiny_model_dir),
                           "--json", str(out), "--no-cache"], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr and str(root) in lines[0], proc.stderr
    assert not out.exists()


def test_hnsw_audit_reports_recall_and_keeps_deep_metrics_exact(tmp_path, tiny_model_dir):

    example = Path(__file__).resolve().parents[1] / "examples" / "udhr"
    common = dict(bootstrap=50, cache_dir=tmp_path / "cache", scenarios=["multi"], langs=["de", "zh"])
    exact = audit_corpus(example, [tiny_model_dir], index="exact", **common)
    approx = audit_corpus(example, [tiny_model_dir], index="hnsw", **common)
    assert exact.index["kind"] == "exact" and exact.index["recall_vs_exact"] is None
    assert approx.index["kind"] == "hnsw" and 0.9 <= approx.index["recall_vs_exact"] <= 1.0
    assert approx.index["params"]["ef"] >= 100
    for a, b in zip(exact.scenarios, approx.scenarios):
        for key in ("max_r", "max_r_norm", "complete@10", "eir", "ndcg@10"):  # read exact ranks either way
            assert a.metrics[key] == b.metrics[key], key


@pytest.mark.parametrize("langs, message", [("de,xx", "unknown language code 'xx'"), ("fr", "'fr' is not a document")])
def test_bad_langs_option(corpus_dir, tiny_model_dir, capsys, langs, message):
    assert run_cli("audit", corpus_dir, "--model", tiny_model_dir, "--langs", langs, "--no-cache", "--quiet") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "--langs" in err[0]


def test_language_gap_is_paired_by_question_on_partially_parallel_corpora(tmp_path, tiny_model_dir):
    """The gap compares the same question in English and German (method.md section 8): 4 pairs, whatever the
    untranslated pages add to the pool; its value is the mean of the per-pair differences."""
    from test_corpus import partially_parallel_corpus

    from clbias.report.verdict import verdict

    report = audit_corpus(partially_parallel_corpus(tmp_path / "c"), [tiny_model_dir], bootstrap=100)
    gaps = {g.kind: g for g in report.gaps}
    assert set(gaps) == {"multi", "full"} and all(g.paired and g.pairs == 4 for g in gaps.values())
    by_name = {r.name: r for r in report.scenarios}
    en, de = by_name["multi [en+de] q=en"], by_name["multi [en+de] q=de"]
    model = report.model.name
    en_by_q = dict(zip(en.query_ids, en.by_model[model].per_query["max_r_norm"]))
    de_by_q = dict(zip(de.query_ids, de.by_model[model].per_query["max_r_norm"]))
    pairs = [en_by_q[f"q-u{i}-en"] - de_by_q[f"q-u{i}-de"] for i in range(1, 5)]
    assert gaps["multi"].metrics["max_r_norm"] == pytest.approx(np.mean(pairs), abs=1e-3)
    low, high = gaps["multi"].ci["max_r_norm"]
    assert low <= gaps["multi"].metrics["max_r_norm"] <= high and gaps["multi"].n["max_r_norm"] == 4
    assert verdict(report).finding("de").scenario == "multi [en+de] q=de"  # the parallel pool decides
    from clbias.report.render_files import to_markdown

    assert "| scenario | X | model | pairs |" in to_markdown(report)


def test_language_gap_without_any_pair_is_unpaired_and_says_so(tmp_path, tiny_model_dir):
    root = write_corpus(tmp_path / "c", [{"_id": "a", "text": "cats sleep all day", "lang": "en"},
                                         {"_id": "b", "text": "Katzen schlafen den ganzen Tag", "lang": "de"},
                                         {"_id": "c", "text": "trains leave hourly", "lang": "en"}],
                        [{"_id": "qa", "text": "cat", "lang": "en"}, {"_id": "qb", "text": "Katze", "lang": "de"},
                         {"_id": "qc", "text": "train", "lang": "en"}],
                        [("qa", "a", 1), ("qb", "b", 1), ("qc", "c", 1)])
    report = audit_corpus(root, [tiny_model_dir], bootstrap=50)
    assert not any(r.kind == "multi" for r in report.scenarios)
    gap = next(g for g in report.gaps if g.kind == "full")
    assert (gap.paired, gap.pairs, gap.n["max_r_norm"]) == (False, 0, 3)
    from clbias.report.display import gap_pairs

    assert gap_pairs(gap) == "unpaired"
