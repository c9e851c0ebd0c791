"""The documentation: the metrics reference is generated from the registry (every metric appears), every
relative link in README.md and docs/ resolves, the nav names only pages that exist, the README stays short,
and the corpus examples and converter skeleton of docs/corpus-format.md produce a corpus clbias accepts.
(`mkdocs build --strict` in .ci/run checks the rest: anchors, nav, the hook.)"""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from clbias.corpus import load_corpus
from clbias.metrics.registry import FIXED_METRICS, METRIC_FAMILIES
from clbias.report.display import display
from clbias.report.metric_reference import metric_reference_markdown

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)\s]+)\)")
README_LIMIT = 15 * 1024


def hook():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("metrics_reference_hook", DOCS / "hooks" / "metrics_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_registry_metric_is_in_the_generated_reference() -> None:
    page = (DOCS / "metrics.md").read_text(encoding="utf-8")
    built = hook().on_page_markdown(page, SimpleNamespace(file=SimpleNamespace(src_uri="metrics.md")), None, None)
    assert built != page and "<!-- metrics-reference -->" not in built
    table = metric_reference_markdown()
    assert table in built
    for metric in FIXED_METRICS:
        row = next(line for line in table.splitlines() if line.startswith(f"| `{metric.name}` |"))
        assert display(metric.name).title in row and metric.unit in row
        assert metric.description.replace("|", "\\|") in row
    for family in METRIC_FAMILIES:
        assert f"| `{family.prefix}@k` |" in table and family.description.format(k=10) in table
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) == len(FIXED_METRICS) + len(METRIC_FAMILIES)


def test_the_hook_refuses_a_page_that_lost_its_marker() -> None:
    with pytest.raises(ValueError, match="marker"):
        hook().on_page_markdown("# Metrics\n", SimpleNamespace(file=SimpleNamespace(src_uri="metrics.md")), None, None)
    assert hook().on_page_markdown("x", SimpleNamespace(file=SimpleNamespace(src_uri="audit.md")), None, None) == "x"


def relative_links(page: Path) -> list[tuple[str, Path]]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    found = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        found.append((target, (page.parent / target.split("#")[0]).resolve()))
    return found


@pytest.mark.parametrize("page", [ROOT / "README.md", *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    for target, path in relative_links(page):
        assert path.exists(), f"{page.name}: {target}"
        assert ROOT in path.parents, f"{page.name}: {target} leaves the repository"


def test_links_to_repository_files_become_their_paths_on_the_site() -> None:
    spec = importlib.util.spec_from_file_location("repository_links_hook", DOCS / "hooks" / "repository_links.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = ("See [the run](../benchmarks/results/audit.md), [`benchmarks/results/embed.md`](../benchmarks/results/embed.md), "
            "[a page](audit.md#options), [gone](../nope.md), `[code](../benchmarks/results/audit.md)` and "
            "[web](https://example.org).\n"
            "```\n[kept](../benchmarks/results/audit.md)\n```")
    out = module.rewrite(page, DOCS, DOCS, ROOT)
    assert "the run (`benchmarks/results/audit.md`)" in out and ", `benchmarks/results/embed.md`," in out
    assert "[a page](audit.md#options)" in out and "[gone](../nope.md)" in out  # the strict build reports this one
    assert "[web](https://example.org)" in out and "[kept](../benchmarks/results/audit.md)" in out  # code stays
    assert "`[code](../benchmarks/results/audit.md)`" in out


def test_the_nav_names_only_existing_pages_and_the_readme_is_short() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = re.findall(r":\s+([\w./-]+\.md)\s*$", config, re.M)
    assert len(pages) >= 10
    for name in pages:
        assert (DOCS / name).is_file(), name
    assert "metrics.md" in pages and "method.md" in pages
    assert len((ROOT / "README.md").read_bytes()) <= README_LIMIT
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert 'pip install -e ".[export]" && clbias audit examples/udhr' in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "mkdocs build --strict" in ci


def code_blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", page.read_text(encoding="utf-8"), re.S)


def test_the_three_line_examples_form_a_corpus_clbias_accepts(tmp_path: Path) -> None:
    blocks = code_blocks(DOCS / "corpus-format.md", "json")
    corpus_lines, query_lines = blocks[0], blocks[1]
    qrels = code_blocks(DOCS / "corpus-format.md", "text")[0]
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(corpus_lines, encoding="utf-8")
    (tmp_path / "queries.jsonl").write_text(query_lines, encoding="utf-8")
    (tmp_path / "qrels" / "test.tsv").write_text(qrels, encoding="utf-8")
    corpus = load_corpus(tmp_path)
    assert len(corpus.docs) == 3 and len(corpus.queries) == 3 and set(corpus.doc_langs) == {"en", "de"}


def test_the_converter_skeleton_writes_a_corpus_clbias_accepts(tmp_path: Path) -> None:
    script = code_blocks(DOCS / "corpus-format.md", "python")[0]
    (tmp_path / "articles.csv").write_text(
        "a1,en,Password,To reset your password open Settings.,how do I reset my password\n"
        "a1,de,Passwort,Um Ihr Passwort zurückzusetzen öffnen Sie Einstellungen.,wie setze ich mein Passwort zurück\n"
        "a2,en,Printing,The print queue lists open jobs.,\n"
        "a2,de,Drucken,Die Druckerwarteschlange zeigt offene Aufträge.,offene Druckaufträge anzeigen\n",
        encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    corpus = load_corpus(tmp_path / "my-corpus")
    assert len(corpus.docs) == 4 and len(corpus.queries) == 3 and sum(map(len, corpus.qrels.values())) == 3


def test_the_readme_converter_writes_a_corpus_clbias_accepts(tmp_path: Path) -> None:
    script = code_blocks(ROOT / "README.md", "python")[0]
    (tmp_path / "articles.csv").write_text(
        "a1,en,To reset your password open Settings.,how do I reset my password\n"
        "a1,de,Um Ihr Passwort zurückzusetzen öffnen Sie Einstellungen.,wie setze ich mein Passwort zurück\n"
        "a2,de,Die Druckerwarteschlange zeigt offene Aufträge.,\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    corpus = load_corpus(tmp_path / "my-corpus")
    assert len(corpus.docs) == 3 and len(corpus.queries) == 2 and set(corpus.doc_langs) == {"en", "de"}
