"""Renderers on hand-made reports: truncated ids, per-language parallel kind, colours by direction."""
from __future__ import annotations

from rich.console import Console

from clbias.report.html import to_html
from clbias.report.model import Comparison
from clbias.report.render_files import to_markdown
from clbias.report.render_terminal import render
from report_factory import change, report, scenario


def two_model_report(**extra: object) -> object:
    both = {"eir": (30.0, [20.0, 40.0]), "en_exposure@10": (1.2, [1.1, 1.3]), "max_r_norm": (40.0, [30.0, 50.0])}
    worse_exposure = Comparison("A", "B", {"en_exposure@10": change(0.3, [0.1, 0.5], 1.2, 1.5),
                                           "eir": change(-5.0, [-9.0, -1.0], 30.0, 25.0)})
    return report([scenario("multi", ["en", "de"], "de", {"A": both, "B": both}, [worse_exposure])], ["en", "de"],
                  models=["A", "B"], **extra)


def test_a_rise_in_english_exposure_is_drawn_as_worse_everywhere() -> None:
    r = two_model_report()
    page = to_html(r)
    assert '<span class="worse">+0.30*</span>' in page  # exposure moved away from 1
    assert '<span class="better">-5.0*</span>' in page  # EIR fell
    md = to_markdown(r)
    assert "+0.30* [+0.1 to +0.5] (worse)" in md and "-5.0* [-9 to -1] (better)" in md


def test_truncated_ids_and_per_language_parallel_kind_are_shown() -> None:
    truncation = {"A": {"passage": {"de": 2, "en": 0}}, "B": {"passage": {"de": 2}},
                  "passage_ids": {"de": ["doc-7", "doc-9"]}}
    r = two_model_report(truncation=truncation, parallel={"de": "human", "ko": "comparable"})
    md = to_markdown(r)
    assert "truncated passage ids, de: `doc-7`, `doc-9`" in md and "- A passage: de 2" in md
    assert "parallel: human (de); comparable (ko)" in md
    page = to_html(r)
    assert "<code>doc-7</code>, <code>doc-9</code>" in page and "comparable (ko)" in page
    console = Console(width=120, record=True)
    render(r, console, detail=True)
    text = console.export_text()
    assert "first truncated ids: passage de: doc-7, doc-9" in text and "A passage: de 2" in text
    compact = Console(width=120, record=True)
    render(r, compact)
    assert "first truncated ids: passage de: doc-7, doc-9" in compact.export_text()
    nested = two_model_report(truncation={"A": {"passage": {"de": 1}, "passage_ids": {"de": ["doc-7"]}}})
    assert "truncated passage ids, de: `doc-7`" in to_markdown(nested)  # ids inside a model's entry read too
