"""The HTML report: one self-contained page (inline CSS + SVG, no scripts, no external URLs), user strings
escaped, every table and plot present; and the page as a real browser (headless Chromium) renders it."""
from __future__ import annotations

import os
import dataclasses
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from clbias.api import audit_corpus, load_model
from clbias.report.model import Report
from clbias.report.render_html import to_html, twin_ranks, write_html
from corpus_factory import parallel_corpus

HOSTILE_NAME = '<script>alert("x")</script> & <b>co</b>'
PLOTS_ONE = {"rank-of-twins", "topk-language-mix", "metric-bars"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Structure(HTMLParser):
    """Collects tags/attributes and checks that every non-void element is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def count(self, tag: str, **attrs: str) -> int:
        return sum(1 for t, a in self.tags if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items()))

    def values(self, tag: str, attr: str) -> list[str]:
        return [a[attr] or "" for t, a in self.tags if t == tag and attr in a]


def parse(page: str) -> Structure:
    s = Structure()
    s.feed(page)
    s.close()
    assert not s.errors, s.errors[:5]
    assert not s.stack, f"unclosed: {s.stack}"
    return s


@pytest.fixture(scope="module")
def hostile_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = parallel_corpus(tmp_path_factory.mktemp("html") / "corpus")
    meta = json.loads((root / "meta.json").read_text())
    meta.update(name=HOSTILE_NAME, query_derivation="questions <i>by hand</i> & \"quoted\"")
    (root / "meta.json").write_text(json.dumps(meta))
    return root


@pytest.fixture(scope="module")
def one_model(hostile_corpus: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Report:
    return audit_corpus(hostile_corpus, [tiny_model_dir], bootstrap=100, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def two_models(hostile_corpus: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Report:
    models = [load_model(tiny_model_dir), load_model(tiny_model_dir, onnx="model.int8.onnx")]
    return audit_corpus(hostile_corpus, models, bootstrap=100, cache_dir=tmp_path_factory.mktemp("cache2"))


def plots(s: Structure) -> list[str]:
    return s.values("figure", "data-plot")


def test_single_model_page_has_header_tables_and_plots(one_model: Report) -> None:
    page = to_html(one_model)
    assert page.startswith("<!DOCTYPE html>")
    s = parse(page)
    text = " ".join(s.text)
    m = one_model.model
    assert m.sha256 in text and m.onnx in text and m.pooling in text
    assert repr(m.prefixes["query"]) in text and repr(m.prefixes["passage"]) in text
    assert "hand-written" not in text and "by hand" in text  # the hostile meta replaced the factory's
    tables = set(s.values("table", "data-table"))
    kinds = {r.kind for r in one_model.scenarios}
    assert {f"scenarios-{k}" for k in kinds} | {"gaps", "top1", "truncation"} <= tables
    assert set(plots(s)) == PLOTS_ONE  # no comparison with one model
    assert s.count("figcaption") == s.count("figure") == len(plots(s))
    assert s.count("svg") >= 3
    rows = sum(len(r.by_model) for r in one_model.scenarios)
    assert page.count('<tr class="first') == rows  # one row per scenario and model
    multi = next(r for r in one_model.scenarios if r.name == "multi [en+de] q=de")
    assert f"{multi.metrics['max_r']:.1f}" in text


def test_user_strings_are_escaped_and_page_is_self_contained(one_model: Report) -> None:
    page = to_html(one_model)
    assert "<script" not in page.lower() and "<b>co</b>" not in page and "<i>by hand" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;co&lt;/b&gt;" in page
    s = parse(page)
    assert HOSTILE_NAME in " ".join(s.text)  # what the reader sees is the name, verbatim
    urls = re.findall(r"(?:https?:)?//[\w.-]+", page)
    assert set(urls) <= {"http://www.w3.org"}, urls  # only the SVG namespace, never a fetched resource
    for attr in ("src", "href"):
        assert not any(a.get(attr) for _, a in s.tags)
    assert "@import" not in page and "url(" not in page


def test_two_models_add_the_comparison_plot_and_delta_rows(two_models: Report) -> None:
    page = to_html(two_models)
    s = parse(page)
    assert set(plots(s)) == PLOTS_ONE | {"model-comparison"}
    assert plots(s).count("rank-of-twins") == 2  # per model
    text = " ".join(s.text)
    for m in two_models.models:
        assert m.sha256 in text and m.name in text
    assert "model.int8.onnx" in text
    assert "Δ tiny:int8 − tiny:fp32" in text and "w/t/l" in text
    assert "wins / ties / losses" in text


def test_write_html_is_atomic_and_identical(one_model: Report, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "report.html"
    write_html(one_model, out)
    assert out.read_text(encoding="utf-8") == to_html(one_model)
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temp file left


def test_renders_without_per_query_values_or_scenarios(one_model: Report) -> None:
    stripped = dataclasses.replace(one_model, scenarios=[
        dataclasses.replace(r, by_model={n: dataclasses.replace(s, per_query={}, run=[]) for n, s in r.by_model.items()})
        for r in one_model.scenarios])
    s = parse(to_html(stripped))
    assert "per-query values are not in this report" in " ".join(s.text)
    assert set(plots(s)) == PLOTS_ONE
    empty = dataclasses.replace(one_model, scenarios=[], gaps=[], notes=["no scenario <has> judged queries"])
    page = to_html(empty)
    s = parse(page)
    assert "no scenario &lt;has&gt; judged queries" in page
    assert "no Multi scenario in this report" in " ".join(s.text)


def test_twin_ranks_follow_from_max_r_and_gap() -> None:
    assert twin_ranks(5.0, 3.0) == (2.0, 5.0)  # English ahead: the X version is the deepest
    assert twin_ranks(5.0, -3.0) == (5.0, 2.0)
    assert twin_ranks(2.0, 0.0) == (2.0, 2.0)
    assert twin_ranks(None, 1.0) is None and twin_ranks(3.0, None) is None


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--hide-scrollbars"]


def browser(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    return subprocess.run([CHROMIUM, *BROWSER_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=180)


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="headless Chromium not installed (apt-get install -y chromium); CI installs it and never skips")
def test_chromium_renders_the_page(two_models: Report, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    write_html(two_models, page)
    shot = tmp_path / "report.png"
    done = browser([f"--screenshot={shot}", "--window-size=1400,2400", page.as_uri()], tmp_path)
    assert shot.exists(), done.stderr[-2000:]
    assert png_size(shot) == (1400, 2400)
    assert shot.stat().st_size > 30_000  # a blank page of this size compresses to a few kB
    dom = browser(["--dump-dom", page.as_uri()], tmp_path).stdout
    assert dom.count("<svg") >= 3, dom[:500]
    for plot in PLOTS_ONE | {"model-comparison"}:
        assert f'data-plot="{plot}"' in dom
    assert dom.count("<circle") > 10 and dom.count("<rect") > 10  # the SVG content survived parsing
    assert "<script" not in dom.lower()


def test_html_renderer_imports_no_heavy_or_plotting_library() -> None:
    code = ("import sys, clbias.report.render_html; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'torch', 'transformers', 'optimum', 'matplotlib', 'plotly', 'PIL', 'jinja2'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def with_matrix(hostile_corpus: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Report:
    models = [load_model(tiny_model_dir), load_model(tiny_model_dir, onnx="model.int8.onnx")]
    return audit_corpus(hostile_corpus, models, bootstrap=50, cache_dir=tmp_path_factory.mktemp("cache3"),
                        scenarios=["multi", "mono-same", "full", "matrix"])


def figures(dom: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for kind, body in re.findall(r'<figure data-plot="([\w-]+)"[^>]*>(.*?)</figure>', dom, re.S):
        found.setdefault(kind, []).append(body)
    return found


def test_page_leads_with_the_verdict_and_draws_the_matrix(with_matrix: Report) -> None:
    page = to_html(with_matrix)
    s = parse(page)
    assert page.index('data-section="verdict"') < page.index('data-table="summary"') < page.index('data-plot=')
    langs = with_matrix.corpus["doc_langs"]
    matrix = figures(page)["language-matrix"]
    assert len(matrix) == 2 * 2  # nDCG and Recall, for each model
    assert matrix[0].count("<rect") >= len(langs) ** 2
    assert {"matrix-ndcg@10", "matrix-recall@10", "summary"} <= set(s.values("table", "data-table"))


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="headless Chromium not installed (apt-get install -y chromium); CI installs it and never skips")
def test_chromium_at_1400px_shows_verdict_matrix_and_every_plot(with_matrix: Report, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    write_html(with_matrix, page)
    shot = tmp_path / "report.png"
    done = browser([f"--screenshot={shot}", "--window-size=1400,1800", page.as_uri()], tmp_path)
    assert shot.exists(), done.stderr[-2000:]
    assert png_size(shot) == (1400, 1800) and shot.stat().st_size > 30_000
    dom = browser(["--window-size=1400,1800", "--dump-dom", page.as_uri()], tmp_path).stdout
    verdict = re.search(r'<section class="verdict" data-section="verdict">(.*?)</section>', dom, re.S)
    assert verdict is not None
    items = re.findall(r"<li>(.*?)</li>", verdict.group(1), re.S)
    assert items and all(re.search(r"\d", item) for item in items[:2])  # sentences with numbers in them
    drawn = figures(dom)
    assert set(drawn) == PLOTS_ONE | {"model-comparison", "language-matrix"}
    for kind, bodies in drawn.items():
        for body in bodies:
            marks = len(re.findall(r"<(?:rect|circle|line)\b", body))
            assert "<svg" in body and marks >= 10, (kind, marks)
            assert "no Multi" not in body and "not in this report" not in body, kind
    heat = drawn["language-matrix"][0]
    assert len(re.findall(r">\d+\.\d<", heat)) >= len(with_matrix.corpus["doc_langs"]) ** 2  # annotated cells
