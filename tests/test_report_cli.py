"""Saved audits as documents: the JSON round trip, `clbias report`, `clbias compare`, the compact terminal report
of the bundled example, the matrix scenario, and TREC run files, on the tiny exported model."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from clbias.api import audit_corpus
from clbias.cli import main
from clbias.report.model import Report
from clbias.report.render_files import to_json_text, write_trec_runs
from corpus_factory import parallel_corpus

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "udhr"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return parallel_corpus(tmp_path_factory.mktemp("rc") / "corpus")


@pytest.fixture(scope="module")
def saved(corpus: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two audits of the same corpus by the fp32 and int8 graphs, saved by the CLI."""
    out = tmp_path_factory.mktemp("saved")
    cache = out / "cache"
    for graph in ("fp32", "int8"):
        assert main(["audit", str(corpus), "--model", str(tiny_model_dir), "--onnx", graph, "--bootstrap", "100",
                     "--cache-dir", str(cache), "--scenario", "multi", "--scenario", "mono-same", "--quiet",
                     "--json", str(out / f"{graph}.json")]) == 0
    return out / "fp32.json", out / "int8.json"


def test_json_round_trips_through_from_json(corpus: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    report = audit_corpus(corpus, [tiny_model_dir], bootstrap=50, cache_dir=tmp_path / "cache",
                          scenarios=["multi", "full", "matrix"])
    text = to_json_text(report)
    back = Report.from_json(json.loads(text))
    assert to_json_text(back) == text
    multi = next(r for r in back.scenarios if r.kind == "multi" and r.query_lang == "de")
    scores = multi.by_model[back.model.name]
    assert len(multi.query_ids) == multi.n_queries
    assert all(len(v) == multi.n_queries for v in scores.per_query.values())  # per-query values by default
    slim = json.loads(to_json_text(report, per_query=False))
    assert all("per_query" not in s for r in slim["scenarios"] for s in r["by_model"].values())
    with pytest.raises(ValueError, match="schema"):
        Report.from_json({**json.loads(text), "schema": "other/2"})


def test_matrix_scenario_covers_every_pair_with_the_diagonal(corpus: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    report = audit_corpus(corpus, [tiny_model_dir], bootstrap=20, cache_dir=tmp_path / "cache", scenarios=["matrix"])
    langs = report.corpus["doc_langs"]
    cells = {(r.query_lang, r.pool_langs[0]) for r in report.scenarios}
    assert all(r.kind == "matrix" and len(r.pool_langs) == 1 for r in report.scenarios)
    assert cells == {(q, p) for q in langs for p in langs}
    mono = audit_corpus(corpus, [tiny_model_dir], bootstrap=20, cache_dir=tmp_path / "cache", scenarios=["mono-same"])
    de = next(r for r in mono.scenarios if r.query_lang == "de")
    diag = next(r for r in report.scenarios if r.query_lang == "de" and r.pool_langs == ["de"])
    assert diag.metrics["ndcg@10"] == de.metrics["ndcg@10"]  # the diagonal is monolingual retrieval


def test_report_command_rerenders_a_saved_audit(saved: tuple[Path, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    fp32, _ = saved
    html, md = tmp_path / "r.html", tmp_path / "r.md"
    assert main(["report", str(fp32), "--html", str(html), "--markdown", str(md)]) == 0
    out = capsys.readouterr().out
    assert "Verdict" in out and "summary by language" in out
    text = md.read_text(encoding="utf-8")
    assert text.index("## Verdict") < text.index("## Summary by language") < text.index("## Scenarios")
    assert "<section class=\"verdict\"" in html.read_text(encoding="utf-8")
    assert main(["report", str(fp32), "--detail", "--quiet"]) == 0 and capsys.readouterr().out == ""


def test_report_command_rejects_bad_input_in_one_line(saved: tuple[Path, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "something/else"}))
    assert main(["report", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "schema" in err[0]
    bad.write_text("{not json")
    assert main(["report", str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err
    (tmp_path / "adir").mkdir()
    assert main(["report", str(saved[0]), "--html", str(tmp_path / "adir")]) == 2
    assert "--html" in capsys.readouterr().err


def test_compare_pairs_two_audits_query_by_query(saved: tuple[Path, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    fp32, int8 = saved
    md = tmp_path / "c.md"
    assert main(["compare", str(fp32), str(int8), "--markdown", str(md)]) == 0
    out = capsys.readouterr().out
    assert "tiny:int8 against tiny:fp32" in out
    text = md.read_text(encoding="utf-8")
    assert "## Paired model comparison" in text and "tiny:int8 − tiny:fp32" in text
    # the comparison equals what a two-model audit computes from the same per-query values
    a, b = (Report.from_json(json.loads(p.read_text())) for p in (fp32, int8))
    from clbias.report.compare import compare_reports

    merged, _ = compare_reports(a, b)
    r = next(s for s in merged.scenarios if s.kind == "multi" and s.query_lang == "de")
    diff = r.comparisons[0].metrics["max_r_norm"]
    mean_a = sum(a_v for a_v in r.by_model["tiny:fp32"].per_query["max_r_norm"]) / r.n_queries
    mean_b = sum(b_v for b_v in r.by_model["tiny:int8"].per_query["max_r_norm"]) / r.n_queries
    assert diff["diff"] == pytest.approx(mean_b - mean_a, abs=1e-4)


def test_compare_needs_per_query_values_and_the_same_corpus(saved: tuple[Path, Path], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    fp32, int8 = saved
    data = json.loads(int8.read_text())
    for s in data["scenarios"]:
        for scores in s["by_model"].values():
            scores.pop("per_query")
    slim = tmp_path / "slim.json"
    slim.write_text(json.dumps(data))
    assert main(["compare", str(fp32), str(slim)]) == 2
    assert "--no-per-query" in capsys.readouterr().err
    other = json.loads(int8.read_text())
    other["corpus"]["n_docs"] += 1
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert main(["compare", str(fp32), str(tmp_path / "other.json")]) == 2
    assert "different corpora" in capsys.readouterr().err


def test_run_files_are_repr_exact_and_recorded(corpus: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    runs, out = tmp_path / "runs", tmp_path / "a.json"
    assert main(["audit", str(corpus), "--model", str(tiny_model_dir), "--bootstrap", "10", "--scenario", "multi",
                 "--cache-dir", str(tmp_path / "cache"), "--quiet", "--runs", str(runs), "--json", str(out)]) == 0
    recorded = json.loads(out.read_text())["run_files"]
    assert sorted(recorded) == sorted(str(p) for p in runs.iterdir()) and recorded
    report = audit_corpus(corpus, [tiny_model_dir], bootstrap=10, cache_dir=tmp_path / "cache", scenarios=["multi"])
    scores = report.scenarios[0].by_model[report.model.name]
    qid, docs, values = scores.run[0]
    close = [0.123456789012, 0.123456789013, 0.1234567]  # equal to 6 and to 9 significant digits
    scores.run = [(qid, docs[:3], close), *scores.run[1:]]
    path = write_trec_runs(report, tmp_path / "exact")[0]
    written = [float(line.split()[4]) for line in path.read_text().splitlines() if line.split()[0] == qid]
    assert written[:3] == close


@pytest.mark.slow
def test_bundled_example_fits_one_screen(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("LINES", "40")
    args = ["audit", str(EXAMPLE), "--model", str(tiny_model_dir), "--bootstrap", "100",
            "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) <= 40, "\n".join(lines)
    assert max(len(line) for line in lines) <= 120
    assert "Verdict" in lines[:6] and any("summary by language" in line for line in lines)
    table = [line for line in lines if re.match(r"^(ar|de|es|fr|hi|ja|ko|ru|sw|th|zh) ", line)]
    assert len(table) == 11  # one row per non-English language
    assert main(args + ["--detail"]) == 0
    detail = capsys.readouterr().out.splitlines()
    assert len(detail) > 200 and any(line.startswith("multi  (value") for line in detail)
    assert max(len(line) for line in detail) <= 120
    assert main(args + ["--quiet"]) == 0 and capsys.readouterr().out == ""


@pytest.mark.slow
def test_bundled_example_with_the_real_model_fits_one_screen(e5_model_dir: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    out = tmp_path / "a.json"
    assert main(["audit", str(EXAMPLE), "--model", str(e5_model_dir), "--cache-dir", str(tmp_path / "cache"),
                 "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) <= 40 and max(len(line) for line in lines) <= 120, "\n".join(lines)
    report = Report.from_json(json.loads(out.read_text()))
    from clbias.report.verdict import verdict

    found = verdict(report)
    assert len({f.lang for f in found.findings}) == 11 and all(f.leaning != "unmeasured" for f in found.findings)
    for f in found.findings:  # the verdict column of the screen agrees with the verdict computed from the JSON
        row = next(line for line in lines if line.startswith(f"{f.lang} "))
        assert row.split()[1] == {"english": "English", "own": "own", "neutral": "neutral"}[f.leaning]
