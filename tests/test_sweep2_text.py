"""Issue 19 item 2: untrusted text is inert. Control and escape characters in ids, names, metadata and
model names never reach the terminal raw; Markdown escapes HTML and line breaks; HTML still escapes all."""
from __future__ import annotations

import io
import json
import re
import shutil

import pytest
from rich.console import Console

from clbias.api import audit_corpus
from clbias.cli import main
from clbias.report.render_files import to_markdown
from clbias.report.render_html import to_html
from clbias.report.render_terminal import render
from clbias.text import inert, inert_copy, one_line
from corpus_factory import parallel_corpus

CLEAR_SCREEN = "\x1b[2J\x1b[H"
TITLE = "\x1b]0;owned\x07"  # sets the terminal's title
RTL = "\u202e"  # right-to-left override: shows "abc" as "cba"
HTML = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def hostile_report(tiny_model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    root = parallel_corpus(tmp / "c")
    meta = json.loads((root / "meta.json").read_text())
    meta.update(name=f"corpus{CLEAR_SCREEN}{HTML}", parallel=f"human{TITLE}", query_derivation=f"line one\n{HTML}")
    (root / "meta.json").write_text(json.dumps(meta))
    lines = [json.loads(x) for x in (root / "corpus.jsonl").read_text().splitlines()]
    for doc in lines:
        doc["text"] = "x " * 200 + doc["text"]  # long enough to be truncated, so their ids are listed
        doc["_id"] = f"{doc['_id']}{RTL}{CLEAR_SCREEN}"
    (root / "corpus.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    qrels = root / "qrels" / "test.tsv"
    rows = qrels.read_text().splitlines()
    qrels.write_text("\n".join([rows[0]] + [r + "" if i == 0 else "\t".join(r.split("\t")[:1] + [r.split("\t")[1]
                     + RTL + CLEAR_SCREEN] + r.split("\t")[2:]) for i, r in enumerate(rows[1:], start=1)]) + "\n")
    model = tmp / "model"
    shutil.copytree(tiny_model_dir, model)
    manifest = json.loads((model / "clbias.json").read_text())
    manifest["name"] = f"tiny{TITLE}`{HTML}`"
    manifest["source"] = {"description": f"made by {CLEAR_SCREEN}"}
    (model / "clbias.json").write_text(json.dumps(manifest))
    return audit_corpus(root, [model], bootstrap=10)


def _hostile_parts(text: str) -> list[str]:
    return [part for part in (CLEAR_SCREEN, "\x1b]", "\x07", RTL) if part in text]


@pytest.mark.parametrize("detail", [False, True])
def test_the_terminal_report_shows_escapes_not_sequences(hostile_report, detail):
    out = io.StringIO()
    render(hostile_report, Console(file=out, force_terminal=True, width=200), detail=detail)
    text = out.getvalue()
    assert not _hostile_parts(text)
    assert "\\x1b[2J" in text  # shown, visibly, instead
    assert hostile_report.corpus["name"].startswith("corpus\x1b")  # the report itself is not changed


def test_markdown_escapes_html_line_breaks_and_controls(hostile_report):
    md = to_markdown(hostile_report)
    outside_code = re.sub(r"(`+).*?\1", "", md)
    assert not _hostile_parts(md) and "<img" not in outside_code and "&lt;img src=x onerror=alert(1)&gt;" in md
    assert "line one &lt;img" in md  # the query derivation stays on its own line
    assert "\\u202e" in md
    model_line = next(line for line in md.splitlines() if line.startswith("- model "))
    # a code span (shown verbatim, never interpreted) fenced past the name's own backticks
    assert "`` tiny\\x1b]0;owned\\x07`<img src=x onerror=alert(1)>` ``" in model_line


def test_html_still_escapes_everything(hostile_report):
    page = to_html(hostile_report)
    assert HTML not in page and CLEAR_SCREEN not in page


def test_error_lines_and_model_lists_are_inert(tmp_path, tiny_model_dir, capsys, monkeypatch):
    missing = tmp_path / f"corpus{CLEAR_SCREEN}"
    assert main(["audit", str(missing), "--model", "none", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert not _hostile_parts(err) and "\\x1b[2J" in err and err.count("\n") == 1
    root = tmp_path / "exported"
    root.mkdir()
    shutil.copytree(tiny_model_dir, root / "evil")
    manifest = json.loads((root / "evil" / "clbias.json").read_text())
    manifest["name"] = f"evil{TITLE}"
    (root / "evil" / "clbias.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("CLBIAS_EXPORTED", str(root))
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert not _hostile_parts(out) and "evil\\x1b]0;owned\\x07" in out


def test_inert_and_one_line():
    assert inert("a\x1b[31mb\u202ec\x00") == "a\\x1b[31mb\\u202ec\\x00"
    assert inert("Grüße, 日本語 — ok") == "Grüße, 日本語 — ok"
    assert one_line("a\r\nb\u2028c\nd") == "a b c d"
    data = {"k\x1b": ["v\x07", 1.5, None], "n": [0.1, 0.2]}
    copied = inert_copy(data)
    assert copied == {"k\\x1b": ["v\\x07", 1.5, None], "n": [0.1, 0.2]} and copied["n"] is data["n"]
