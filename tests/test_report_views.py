"""One set of views per render, and the terminal at 120 columns: the verdict is computed once for every file a
render writes, columns come from the registry, bullets never split a value from its interval, two-model
summaries keep the Mono-Same control (and the verdict names it), an English row, no Python reprs."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from rich.console import Console

from clbias.report import verdict as verdict_module
from clbias.report.display import display, registry_order
from clbias.report.html import to_html
from clbias.report.model import Comparison
from clbias.report.render_files import to_markdown
from clbias.report.render_terminal import render, summary_table, wrap_sentence
from clbias.report.views import report_views
from report_factory import change, report, scenario

LANGS = ["ar", "de", "es", "fr", "hi", "ja", "ko", "ru", "sw", "th", "zh"]


def multi_scores(i: int) -> dict:
    return {"twin_pref": (float(i), [max(i - 3.0, 0.0), i + 3.0]), "eir": (26.7, [6.7, 46.7]),
            "eir_neutral": (93.3, None), "max_r_norm": (27.0, [19.0, 35.0]), "complete@10": (6.7, [0.0, 20.0])}


def mono(value: float) -> dict:
    return {"ndcg@10": (value, [value - 12.0, value + 12.0])}


def wide_report(models: list[str], control: dict[str, tuple[float, list[float]]] | None = None) -> object:
    """11 languages, every summary column; with two models, paired comparisons in Multi and Mono-Same."""
    scenarios = []
    for i, lang in enumerate(LANGS):
        comps = [Comparison(models[0], models[1], {"twin_pref": change(12.5, [10.25, 14.75], float(i), i + 12.5),
                                                   "max_r_norm": change(30.0, [25.0, 35.0], 27.0, 57.0)})
                 ] if len(models) > 1 else []
        scenarios.append(scenario("multi", ["en", lang], lang, {m: multi_scores(i) for m in models}, comps))
        scenarios.append(scenario("multi", ["en", lang], "en", {m: multi_scores(i) for m in models}))
        mono_comps = []
        if len(models) > 1 and control:
            diff, ci = control.get(lang, (0.4, [-1.0, 1.8]))
            mono_comps = [Comparison(models[0], models[1], {"ndcg@10": change(diff, ci, 50.0, 50.0 + diff)})]
        scenarios.append(scenario("mono-same", [lang], lang, {m: mono(40.0 + i) for m in models}, mono_comps))
        scenarios.append(scenario("mono-cross", ["en"], lang, {m: mono(50.0) for m in models}))
        scenarios.append(scenario("mono-cross", [lang], "en", {m: mono(45.0) for m in models}))
    scenarios.append(scenario("mono-same", ["en"], "en", {m: mono(79.0) for m in models}))
    scenarios.append(scenario("full", ["en", *LANGS], "de", {m: {"max_r_norm": (30.0, [20.0, 40.0])} for m in models}))
    return report(scenarios, ["en", *LANGS], models=models)


def terminal(r: object, width: int = 120, detail: bool = False) -> str:
    console = Console(width=width, record=True)
    render(r, console, detail=detail)  # type: ignore[arg-type]
    return console.export_text()


def test_the_verdict_is_computed_once_for_terminal_markdown_and_html(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from clbias.cli.report import write_outputs

    calls = []
    original = verdict_module.findings
    monkeypatch.setattr(verdict_module, "findings", lambda rep: calls.append(1) or original(rep))
    args = argparse.Namespace(html=tmp_path / "r.html", markdown=tmp_path / "r.md", detail=True, quiet=False)
    write_outputs(wide_report(["A", "B"], {}), args, Console(width=120, record=True))  # type: ignore[arg-type]
    assert len(calls) == 1
    assert "Verdict" in (tmp_path / "r.md").read_text() and "verdict" in (tmp_path / "r.html").read_text()


def test_verdict_bullets_never_split_a_value_from_its_interval_at_120_columns() -> None:
    text = terminal(wide_report(["multilingual-e5-small"]))
    verdict = text.split("summary by language")[0]
    lines = verdict.splitlines()
    assert any(len(line) > 100 for line in lines)  # long enough that wrapping happened
    for line in lines:
        assert len(line) <= 120
        assert line.count("[") == line.count("]"), line  # an interval never spans two lines
        assert not re.match(r"\s*\[", line), line  # nor starts a line without its value
    for sentence in report_views(wide_report(["m"])).verdict.sentences:  # type: ignore[arg-type]
        for width in (40, 60, 120):
            for line in wrap_sentence(sentence, width):
                assert line.count("[") == line.count("]")


def test_two_model_summary_keeps_the_control_and_drops_neutral_eir_first() -> None:
    r = wide_report(["multilingual-e5-small", "e5-aligned-with-a-long-name"], {})
    views = report_views(r)  # type: ignore[arg-type]
    full = [c.metric for c in views.summary_columns]
    assert "eir_neutral" in full and "ndcg@10" in full
    for width in (120, 100, 80):
        table = summary_table(r, width, views)  # type: ignore[arg-type]
        console = Console(width=width, record=True)
        console.print(table)
        head = console.export_text()
        assert "mono-same" in head and "nDCG@10" in head, (width, head[:400])
        assert "EIR neutral" not in head  # the first column a narrow terminal gives up
        assert max(len(line) for line in head.splitlines()) <= width


def test_the_two_model_verdict_names_the_control() -> None:
    r = wide_report(["base", "aligned"], {"de": (-2.5, [-4.0, -1.0]), "fr": (1.5, [0.5, 2.5])})
    sentences = report_views(r).verdict.sentences  # type: ignore[arg-type]
    control = [s for s in sentences if s.startswith("Control")]
    assert len(control) == 1
    assert "Mono-Same nDCG@10" in control[0] and "aligned against base" in control[0]
    assert "worse in de -2.5 [-4 to -1]" in control[0] and "better in fr +1.5 [+0 to +2]" in control[0]
    assert "no significant difference in ar" in control[0]
    missing = report([scenario("multi", ["en", "de"], "de", {"a": multi_scores(1), "b": multi_scores(1)})],
                     ["en", "de"], models=["a", "b"])
    assert any(s.startswith("Control not measured") and "--scenario mono-same" in s
               for s in report_views(missing).verdict.sentences)
    assert not any(s.startswith("Control") for s in report_views(wide_report(["m"])).verdict.sentences)


def test_the_summary_has_an_english_row_with_only_its_own_columns() -> None:
    r = wide_report(["m"])
    views = report_views(r)  # type: ignore[arg-type]
    assert [row.lang for row in views.summary_rows][:2] == ["en", "ar"]
    english = views.summary_rows[0]
    filled = {c.scenario: cell for c, cell in zip(views.summary_columns, english.cells) if cell is not None}
    assert set(filled) == {"mono-same"} and filled["mono-same"][0] == 79.0
    for markdown_line in to_markdown(r).splitlines():  # type: ignore[arg-type]
        if markdown_line.startswith("| en |"):
            assert "79.0" in markdown_line
            break
    else:
        pytest.fail("no English row in the Markdown summary")
    assert re.search(r"^en\s.*79\.0", terminal(r), re.M)


def test_columns_and_labels_come_from_the_registry() -> None:
    r = wide_report(["m"])
    r.scenarios[0].by_model["m"].metrics["ndcg@5"] = 42.0  # type: ignore[attr-defined]
    r.scenarios[0].by_model["m"].ci["ndcg@5"] = [40.0, 44.0]  # type: ignore[attr-defined]
    views = report_views(r)  # type: ignore[arg-type]
    assert views.scenario_columns == registry_order(views.scenario_columns)
    assert views.scenario_columns.index("ndcg@5") == views.scenario_columns.index("ndcg@10") - 1
    assert display("ndcg@5").title in to_markdown(r, views) and display("ndcg@5").title in to_html(r, views)  # type: ignore[arg-type]
    assert "@5 ↑" in terminal(r, width=200, detail=True)  # the terminal splits "nDCG" and "@5 ↑" over two lines


def test_no_python_reprs_in_any_rendering() -> None:
    r = wide_report(["A", "B"], {})
    for text in (to_markdown(r), to_html(r), terminal(r, detail=True)):  # type: ignore[arg-type]
        assert "{'" not in text and "None" not in text and '{"depth"' not in text
    assert "exact (depth 100); exact search, no approximation" in to_markdown(r)  # type: ignore[arg-type]
