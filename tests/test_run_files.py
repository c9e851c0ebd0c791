"""Run files (mode A over the corpus, mode B per exported pool), censoring, built-in BM25 and hybrid, and the
command line around them, on real computations: the tiny ONNX model and BM25 over small corpora."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from clbias.api import audit_corpus, embed, load_model
from clbias.audit import AuditSettings, audit
from clbias.cli import main, parser
from clbias.corpus import load_corpus, passage_text
from clbias.errors import InputError
from clbias.report.model import Report
from clbias.report.verdict import judge
from clbias.retrievers import BM25System, EncoderSystem, HybridSystem, RunFileSystem
from clbias.runfiles import read_run, write_trec
from clbias.search.bm25 import BM25Index, tokenize
from clbias.search.fusion import full_ranks, reciprocal_rank_fusion, weighted_fusion
from corpus_factory import write_corpus

# metrics whose bounds are the true extremes over every completion (docs/run-files.md#censoring)
MONOTONE = ("max_r", "max_r_norm", "complete@10", "ndcg@10", "recall@10", "mrr@10", "complete@3", "ndcg@3",
            "recall@3", "mrr@3", "eir", "eir_neutral")

UNITS = {
    "u1": ("The cat sleeps on the warm windowsill all afternoon.", "Die Katze schläft am warmen Fenster.",
           "猫整个下午都在温暖的窗台上睡觉。"),
    "u2": ("Trains to the airport leave every fifteen minutes.", "Züge zum Flughafen fahren alle fünfzehn Minuten.",
           "去机场的火车每十五分钟一班。"),
    "u3": ("Fresh bread is baked in the village every morning.", "Im Dorf wird jeden Morgen frisches Brot gebacken.",
           "村里每天早上都烤新鲜面包。"),
    "u4": ("The river floods the meadows every spring.", "Der Fluss überschwemmt jeden Frühling die Wiesen.",
           "每年春天河水淹没草地。"),
    "u5": ("Old maps show roads that no longer exist.", "Alte Karten zeigen Straßen, die es nicht mehr gibt.",
           "旧地图上有已经不存在的道路。"),
    "u6": ("The library opens late on Thursdays.", "Die Bibliothek öffnet donnerstags spät.",
           "图书馆星期四开得晚。"),
}
QUESTIONS = {"u1": ("where does the cat sleep", "wo schläft die Katze", "猫在哪里睡觉"),
             "u2": ("how often do airport trains leave", "wie oft fahren Züge zum Flughafen", "去机场的火车多久一班"),
             "u3": ("when is bread baked", "wann wird Brot gebacken", "面包什么时候烤"),
             "u4": ("what floods in spring", "was überschwemmt im Frühling", "春天什么会淹没"),
             "u5": ("what do old maps show", "was zeigen alte Karten", "旧地图上有什么"),
             "u6": ("when does the library open", "wann öffnet die Bibliothek", "图书馆什么时候开")}
LANGS = ("en", "de", "zh")


def three_language_corpus(root: Path) -> Path:
    docs = [{"_id": f"{u}-{lang}", "text": text, "lang": lang, "parallel_id": u}
            for u, texts in UNITS.items() for lang, text in zip(LANGS, texts)]
    queries = [{"_id": f"q-{u}-{lang}", "text": text, "lang": lang, "parallel_id": f"q-{u}"}
               for u, texts in QUESTIONS.items() for lang, text in zip(LANGS, texts)]
    qrels = [(f"q-{u}-{lang}", f"{u}-{lang}", 1) for u in QUESTIONS for lang in LANGS]
    return write_corpus(root, docs, queries, qrels, {"name": "tiny-three"})


@pytest.fixture()
def corpus3(tmp_path):
    return three_language_corpus(tmp_path / "corpus3")


def dense_rankings(corpus_dir: Path, model_dir: Path) -> dict[str, list[tuple[str, float]]]:
    """What an outside dense system would write: every document ranked for every query (float32 scores)."""
    corpus = load_corpus(corpus_dir)
    model = load_model(model_dir)
    d = embed([passage_text(x) for x in corpus.docs], model, kind="passage")
    q = embed([x.text for x in corpus.queries], model, kind="query")
    out = {}
    for i, query in enumerate(corpus.queries):
        scores = np.asarray(q[i] @ d.T, dtype=np.float32)
        order = np.lexsort((np.arange(len(corpus.docs)), -scores))
        out[query.id] = [(corpus.docs[j].id, float(scores[j])) for j in order]
    return out


SETTINGS = dict(scenarios=["multi", "mono-same", "full"], bootstrap=200)


# ---------------------------------------------------------------- reading runs


def test_trec_jsonl_and_gzip_read_alike_and_ties_follow_corpus_order(corpus3, tmp_path):
    corpus = load_corpus(corpus3)
    rows = [("q-u1-de", "u2-de", 1.0), ("q-u1-de", "u1-en", 2.0), ("q-u1-de", "u1-de", 2.0), ("q-u2-en", "u2-en", 0.5)]
    trec = tmp_path / "r.trec"
    trec.write_text("".join(f"{q} Q0 {d} 9 {s} tag\n" for q, d, s in rows))
    jsonl = tmp_path / "r.jsonl.gz"
    jsonl.write_bytes(gzip.compress("".join(json.dumps({"query_id": q, "docid": d, "score": s}) + "\n"
                                            for q, d, s in rows).encode()))
    a = read_run(trec, corpus.doc_index(), {q.id for q in corpus.queries})
    b = read_run(jsonl, corpus.doc_index(), {q.id for q in corpus.queries})
    assert a.format == "trec" and b.format == "jsonl" and a.rows == b.rows == 4
    order = [corpus.docs[i].id for i in a.rankings["q-u1-de"].docs]
    assert order == ["u1-en", "u1-de", "u2-de"]  # 2.0 tie: u1-en comes first in corpus.jsonl; rank column ignored
    assert [corpus.docs[i].id for i in b.rankings["q-u1-de"].docs] == order
    assert len(a.sha256) == 64 and a.sha256 != b.sha256


@pytest.mark.parametrize("line, message", [
    ("q-nope Q0 u1-en 1 1.0 t", "unknown query id 'q-nope'"),
    ("q-u1-en Q0 u9-en 1 1.0 t", "unknown document id 'u9-en'"),
    ("q-u1-en Q0 u1-en 1 high t", "score 'high' is not a number"),
    ("q-u1-en Q0 u1-en 1 nan t", "is not a finite number"),
    ("q-u1-en Q0 u1-en 1 -inf t", "is not a finite number"),
    ("q-u1-en Q0 u1-en 1 1.0", "expected 6 whitespace-separated columns"),
    ("q-u1-en Q0 u2-en 1 1.0 t", "duplicate row for query 'q-u1-en' and document 'u2-en' (first on line 1)"),
])
def test_bad_run_is_one_located_line_and_exit_2(corpus3, tmp_path, capsys, line, message):
    run = tmp_path / "bad.trec"
    first = "q-u1-en Q0 u2-en 1 2.0 t\n"
    run.write_text(first + line + "\n")
    with pytest.raises(InputError) as exc:
        read_run(run, load_corpus(corpus3).doc_index(), {q.id for q in load_corpus(corpus3).queries})
    assert str(exc.value).startswith(f"{run}:2") and message in str(exc.value)
    assert main(["audit", str(corpus3), "--run", f"x={run}", "--quiet", "--json", str(tmp_path / "a.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"clbias: error: {run}:2") and message in err[0]
    assert not (tmp_path / "a.json").exists()


@pytest.mark.parametrize("spec, message", [("nofile", "expected NAME=PATH"), ("x=/no/such/run", "not found"),
                                           ("a b=x", "expected NAME=PATH")])
def test_bad_run_spec_is_one_line_before_any_work(corpus3, capsys, spec, message):
    assert main(["audit", str(corpus3), "--run", spec, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--run" in err[0] and message in err[0]


def test_bad_json_run_line_is_located(corpus3, tmp_path):
    run = tmp_path / "bad.jsonl"
    run.write_text('{"qid": "q-u1-en", "docid": "u1-en", "score": 1}\n{"qid": "q-u1-en", "docid": "u2-en"}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: field 'score': missing"):
        read_run(run, load_corpus(corpus3).doc_index(), {"q-u1-en"})


def test_run_option_is_not_an_abbreviation_of_runs(corpus3, tmp_path):
    args = parser().parse_args(["audit", str(corpus3), "--run", f"x={corpus3 / 'corpus.jsonl'}"])
    assert args.runs is None and args.run_spec == [f"x={corpus3 / 'corpus.jsonl'}"]
    with pytest.raises(SystemExit) as exc:  # a prefix is no longer taken for an option
        parser().parse_args(["audit", str(corpus3), "--bootstr", "5"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        parser().parse_args(["compare", "a.json", "b.json", "--mark", "x.md"])


# ---------------------------------------------------------------- mode A


def test_full_depth_run_equals_the_model_it_came_from(corpus3, tiny_model_dir, tmp_path):
    """A dense system's complete run, audited as a run file, gives the model's numbers exactly."""
    run = tmp_path / "dense.trec"
    write_trec(run, dense_rankings(corpus3, tiny_model_dir))
    report = audit_corpus(corpus3, [tiny_model_dir, RunFileSystem("outside", run)], **SETTINGS)
    model, outside = (m.name for m in report.models)
    assert [m.kind for m in report.models] == ["model", "run"]
    assert report.models[1].details["files"][0]["sha256"] == report.models[1].sha256
    for r in report.scenarios:
        a, b = r.by_model[model], r.by_model[outside]
        assert not b.bounds
        # scores: one matrix product over the corpus rounds a few float32 ulps unlike the per-pool one
        gap = "twin_score_gap"
        assert a.metrics.pop(gap) == pytest.approx(b.metrics.pop(gap), abs=1e-4)
        assert a.metrics == b.metrics, r.name
        assert np.allclose(np.array(a.per_query.pop(gap), float), np.array(b.per_query.pop(gap), float), atol=1e-5,
                           equal_nan=True)
        assert a.per_query == b.per_query
        comp = r.comparisons[0].metrics["ndcg@10"]
        assert comp["diff"] == 0.0 and comp["losses"] == comp["wins"] == 0


@pytest.mark.parametrize("depth", [1, 2, 4, 7])
def test_truncated_run_bounds_contain_the_true_values(corpus3, tiny_model_dir, tmp_path, depth):
    full = dense_rankings(corpus3, tiny_model_dir)
    run = tmp_path / "cut.trec"
    write_trec(run, {q: rows[:depth] for q, rows in full.items()})
    settings = AuditSettings(scenarios=["multi", "mono-same", "full"], bootstrap=200, k=3)
    names = settings.metric_names()
    truth = audit(load_corpus(corpus3), [load_model(tiny_model_dir)], settings)
    cut = audit(load_corpus(corpus3), [RunFileSystem("cut", run)], settings)
    censored_seen = 0
    for t, c in zip(truth.scenarios, cut.scenarios):
        exact, bounded = t.by_model[truth.models[0].name], c.by_model["cut"]
        for n in names:
            if n.startswith("twin_score"):
                continue
            if n not in bounded.bounds:
                if n in MONOTONE or n.startswith(("complete", "ndcg", "recall", "mrr", "en_exposure")):
                    assert bounded.per_query[n] == exact.per_query[n], (t.name, n)
                continue
            censored_seen += 1
            b = bounded.bounds[n]
            assert bounded.metrics[n] is None and b["censored"] >= 1
            low, high = b["per_query"]
            for i, v in enumerate(exact.per_query[n]):
                if v is None or n not in MONOTONE:
                    continue
                assert low[i] - 1e-9 <= v <= high[i] + 1e-9, (t.name, n, i)
                if bounded.per_query[n][i] is not None:  # exact where the completions agree
                    assert bounded.per_query[n][i] == v
            assert b["low"] <= b["high"]
        # metrics at k within the depth are exact: queries whose run ranks >= 3 of the pool's documents
        for i, (_, docs, _) in enumerate(bounded.run):
            if len(docs) >= min(3, c.pool_size):
                for n in ("ndcg@3", "complete@3", "recall@3", "mrr@3", "en_exposure@3"):
                    assert bounded.per_query[n][i] == exact.per_query[n][i], (c.name, n, i)
    assert censored_seen > 0


def test_censored_metrics_are_marked_in_every_renderer(corpus3, tiny_model_dir, tmp_path, capsys):
    run = tmp_path / "cut.trec"
    write_trec(run, {q: rows[:2] for q, rows in dense_rankings(corpus3, tiny_model_dir).items()})
    out = tmp_path / "a.json"
    assert main(["audit", str(corpus3), "--run", f"cut={run}", "--scenario", "multi", "--bootstrap", "100",
                 "--json", str(out), "--markdown", str(tmp_path / "a.md"), "--html", str(tmp_path / "a.html"),
                 "--detail"]) == 0
    terminal = capsys.readouterr().out
    data = json.loads(out.read_text())
    scores = data["scenarios"][0]["by_model"]["cut"]
    assert scores["metrics"]["max_r"] is None and scores["bounds"]["max_r"]["censored"] > 0
    assert data["models"][0]["kind"] == "run" and data["models"][0]["details"]["files"][0]["depth"] == 2
    low, high = scores["bounds"]["max_r"]["low"], scores["bounds"]["max_r"]["high"]
    text = f"{low:.1f}…{high:.1f} ({scores['bounds']['max_r']['censored']} censored)"
    assert "bounds of a censored metric" in terminal and "cens." in terminal
    assert f"{low:.1f}…{high:.1f}" in main_table_text(corpus3, run)
    assert text in (tmp_path / "a.md").read_text()
    html = (tmp_path / "a.html").read_text()
    assert 'class="censored"' in html and text in html and "run file" in html
    sha = data["models"][0]["sha256"]
    assert f"- run file `cut`: one run over the corpus: cut.trec sha256 {sha}" in (tmp_path / "a.md").read_text()
    again = Report.from_json(data)
    assert again.scenarios[0].by_model["cut"].bounds["max_r"]["low"] == low


def main_table_text(corpus_dir: Path, run: Path) -> str:
    """The terminal report on a console wide enough that no cell is cut."""
    from rich.console import Console

    from clbias.report.render_terminal import render

    report = audit(load_corpus(corpus_dir), [RunFileSystem("cut", run)], AuditSettings(scenarios=["multi"],
                                                                                        bootstrap=100))
    import io

    console = Console(width=400, file=io.StringIO())
    render(report, console, detail=True)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_verdict_on_bounds_calls_a_leaning_only_when_every_completion_would():
    metrics = {"twin_pref": None}
    wide = {"twin_pref": {"low": 40.0, "high": 90.0, "ci": [35.0, 95.0], "censored": 3}}
    narrow = {"twin_pref": {"low": 70.0, "high": 90.0, "ci": [60.0, 95.0], "censored": 3}}
    assert judge(metrics, {}, wide)[0] == "neutral"
    leaning, ev = judge(metrics, {}, narrow)
    assert leaning == "english" and ev is not None and ev.bounds == (70.0, 90.0, 3)
    assert judge({"twin_pref": 70.0}, {"twin_pref": [60.0, 80.0]})[0] == "english"


def test_compare_pairs_saved_run_audits_with_bounds(corpus3, tiny_model_dir, tmp_path):
    full = dense_rankings(corpus3, tiny_model_dir)
    for name, depth in (("a", 18), ("b", 2)):
        write_trec(tmp_path / f"{name}.trec", {q: rows[:depth] for q, rows in full.items()})
        assert main(["audit", str(corpus3), "--run", f"{name}={tmp_path / f'{name}.trec'}", "--scenario", "multi",
                     "--bootstrap", "100", "--quiet", "--json", str(tmp_path / f"{name}.json")]) == 0
    assert main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--markdown",
                 str(tmp_path / "c.md"), "--quiet"]) == 0
    text = (tmp_path / "c.md").read_text()
    comparison = text[text.index("## Paired model comparison"):]
    assert "(censored)" in comparison.split("\n## ")[0]  # bounds on the paired difference, no point value
    merged = json.loads(json.dumps(Report.from_json(json.loads((tmp_path / "a.json").read_text())).to_json()))
    assert merged["models"][0]["kind"] == "run"


# ---------------------------------------------------------------- mode B and BM25


def outside_bm25(pools: Path, runs: Path, depth: int | None = None) -> None:
    """An outside program: bm25s used directly on each exported pool (with clbias's documented tokenizer)."""
    import bm25s

    runs.mkdir()
    for pool in json.loads((pools / "pools.json").read_text())["pools"]:
        docs = [json.loads(l) for l in (pools / pool["name"] / "corpus.jsonl").read_text().splitlines()]
        queries = [json.loads(l) for l in (pools / pool["name"] / "queries.jsonl").read_text().splitlines()]
        index = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
        index.index([tokenize(f"{d['title']}. {d['text']}" if d.get("title") else d["text"]) for d in docs],
                    show_progress=False)
        rankings = {}
        for q in queries:
            tokens = tokenize(q["text"])
            scores = index.get_scores(tokens) if tokens else np.zeros(len(docs), np.float32)
            order = np.lexsort((np.arange(len(docs)), -scores))[:depth]
            rankings[q["_id"]] = [(docs[i]["_id"], float(scores[i])) for i in order]
        write_trec(runs / f"{pool['name']}.trec", rankings)


def test_pools_export_round_trip_gives_the_built_in_bm25(corpus3, tmp_path):
    pools, runs = tmp_path / "pools", tmp_path / "runs"
    assert main(["pools", "export", str(corpus3), "--out", str(pools)]) == 0
    meta = json.loads((pools / "pools.json").read_text())
    assert {p["name"].split("-")[0] for p in meta["pools"]} >= {"de+en", "en", "de", "zh", "de+en+zh"}
    outside_bm25(pools, runs)
    out = tmp_path / "a.json"
    assert main(["audit", str(corpus3), "--bm25", "--run", f"outside={runs}", "--bootstrap", "200", "--quiet",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [m["kind"] for m in data["models"]] == ["bm25", "run"]
    assert data["models"][1]["details"]["mode"] == "pools"
    assert len(data["models"][1]["details"]["files"]) == len(meta["pools"])
    for s in data["scenarios"]:
        built_in, outside = s["by_model"]["bm25"], s["by_model"]["outside"]
        assert not outside["bounds"]
        assert built_in["metrics"] == outside["metrics"], s["name"]
        assert built_in["per_query"] == outside["per_query"]


def test_pool_runs_missing_pool_is_named(corpus3, tmp_path, capsys):
    pools, runs = tmp_path / "pools", tmp_path / "runs"
    assert main(["pools", "export", str(corpus3), "--out", str(pools), "--scenario", "mono-same"]) == 0
    outside_bm25(pools, runs)
    assert main(["audit", str(corpus3), "--run", f"o={runs}", "--scenario", "multi", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no run for pool de+en-" in err and "multi [en+de]" in err
    assert main(["pools", "export", str(corpus3), "--out", str(pools)]) == 2  # never writes into a full directory


def test_per_pool_runs_cut_short_are_censored_and_bracket_bm25(corpus3, tmp_path):
    pools, runs = tmp_path / "pools", tmp_path / "runs"
    main(["pools", "export", str(corpus3), "--out", str(pools), "--scenario", "multi"])
    outside_bm25(pools, runs, depth=3)
    out = tmp_path / "a.json"
    assert main(["audit", str(corpus3), "--bm25", "--run", f"top3={runs}", "--scenario", "multi", "--k", "3",
                 "--bootstrap", "100", "--quiet", "--json", str(out)]) == 0
    for s in json.loads(out.read_text())["scenarios"]:
        exact, cut = s["by_model"]["bm25"], s["by_model"]["top3"]
        assert cut["metrics"]["ndcg@3"] == exact["metrics"]["ndcg@3"]  # k within the depth: exact
        assert "max_r" in cut["bounds"]
        assert cut["bounds"]["max_r"]["low"] <= exact["metrics"]["max_r"] <= cut["bounds"]["max_r"]["high"]


def test_tokenizer_splits_unspaced_scripts_into_bigrams():
    assert tokenize("信息检索") == ["信息", "息检", "检索"]
    assert tokenize("東京タワー です") == ["東京", "京タ", "タワ", "ワー", "です"]
    assert tokenize("猫") == ["猫"]
    assert tokenize("Hello, World-Wide 한국어 텍스트 ＡＢＣ") == ["hello", "world", "wide", "한국어", "텍스트", "abc"]
    assert tokenize("ภาษาไทย")[:2] == ["ภา", "าษ"]


def test_bm25_ranks_chinese_by_shared_bigrams_and_matches_rank_bm25_order():
    docs = [tokenize(t) for t in ("去机场的火车每十五分钟一班。", "村里每天早上都烤新鲜面包。", "图书馆星期四开得晚。")]
    for backend in ("bm25s", "rank_bm25"):
        scores = BM25Index(docs, backend=backend).scores([tokenize("面包什么时候烤"), tokenize("机场火车")])
        assert np.argmax(scores[0]) == 1 and np.argmax(scores[1]) == 0, backend
        assert scores[0, 2] == 0.0


def test_fusion_by_hand():
    bm25 = np.array([[3.0, 1.0, 2.0]])
    dense = np.array([[0.1, 0.9, 0.5]])
    assert full_ranks(bm25).tolist() == [[1, 3, 2]] and full_ranks(np.array([[1.0, 1.0]])).tolist() == [[1, 2]]
    rrf = reciprocal_rank_fusion(bm25, dense, k=60)
    assert np.allclose(rrf, [[1 / 61 + 1 / 63, 1 / 63 + 1 / 61, 1 / 62 + 1 / 62]])
    assert np.allclose(weighted_fusion(bm25, dense, 0.25), [[0.25 * 1 + 0.75 * 0.0, 0.0 + 0.75 * 1.0,
                                                             0.25 * 0.5 + 0.75 * 0.5]])


def test_hybrid_audit_names_systems_and_shares_the_embedding(corpus3, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "a.json"
    assert main(["audit", str(corpus3), "--hybrid", "--model", str(tiny_model_dir), "--bm25", "--scenario", "multi",
                 "--bootstrap", "100", "--json", str(out), "--no-cache"]) == 0
    data = json.loads(out.read_text())
    assert [m["kind"] for m in data["models"]] == ["hybrid", "model", "bm25"]
    assert data["models"][0]["details"]["fusion"] == "rrf" and data["models"][0]["details"]["rrf_k"] == 60
    s = data["scenarios"][0]
    assert [c["other"] for c in s["comparisons"]] == [m["name"] for m in data["models"][1:]]
    terminal = capsys.readouterr().out
    assert "(hybrid)" in terminal and "(built-in BM25)" in terminal
    # the library equivalent, fused by weights
    corpus = load_corpus(corpus3)
    dense = EncoderSystem(load_model(tiny_model_dir))
    report = audit(corpus, [HybridSystem(dense, BM25System(), "weighted", weight=1.0), BM25System()],
                   AuditSettings(scenarios=["multi"], bootstrap=100))
    for r in report.scenarios:  # weight 1 on BM25: min-max is monotone, so the ranks are BM25's
        a, b = r.by_model.values()
        assert a.per_query["max_r"] == b.per_query["max_r"]


def test_gate_on_a_censored_metric_uses_the_bound_that_breaks_first(corpus3, tiny_model_dir, tmp_path, capsys):
    run = tmp_path / "cut.trec"
    write_trec(run, {q: rows[:2] for q, rows in dense_rankings(corpus3, tiny_model_dir).items()})
    out = tmp_path / "a.json"
    assert main(["audit", str(corpus3), "--run", f"cut={run}", "--scenario", "multi", "--bootstrap", "100", "--quiet",
                 "--json", str(out)]) == 0
    all_bounds = [s["by_model"]["cut"]["bounds"]["max_r"] for s in json.loads(out.read_text())["scenarios"]]
    above = max(b["high"] for b in all_bounds) + 0.5
    inside = (all_bounds[0]["low"] + all_bounds[0]["high"]) / 2
    below = all_bounds[0]["low"] - 0.5
    assert main(["audit", str(corpus3), "--run", f"cut={run}", "--scenario", "multi", "--bootstrap", "100", "--quiet",
                 "--fail-if", f"multi:max_r>{above}"]) == 0
    assert main(["audit", str(corpus3), "--run", f"cut={run}", "--scenario", "multi", "--bootstrap", "100", "--quiet",
                 "--fail-if", f"multi:max_r>{inside}"]) == 1  # cannot be ruled out: the gate breaks
    assert "(a bound: censored)" in capsys.readouterr().err
    assert below < inside
