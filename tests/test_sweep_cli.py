"""Issue 10 items 6, 7, 8, 11, 13: options and output paths refused before any work, all outputs or none,
ids TREC cannot hold, notes on what is absent, truncated ids named."""
import io
import json

import pytest
from rich.console import Console

from clbias.api import audit_corpus
from clbias.audit import AuditSettings
from clbias.cli import main
from clbias.errors import InputError
from clbias.report.render_terminal import render
from corpus_factory import parallel_corpus, write_corpus


@pytest.fixture()
def corpus_dir(tmp_path):
    return parallel_corpus(tmp_path / "corpus")


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("option, value", [("--bootstrap", "0"), ("--bootstrap", "-5"), ("--threads", "-3"),
                                           ("--threads", "0"), ("--k", "0"), ("--depth", "-1"), ("--ef", "0")])
def test_bad_options_are_refused_before_a_model_loads(corpus_dir, tmp_path, capsys, option, value):
    missing_model = tmp_path / "no-such-model"
    assert main(["audit", str(corpus_dir), "--model", str(missing_model), option, value, "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert f"field '{option}'" in line and value in line and "no-such-model" not in line


def test_embed_refuses_bad_threads_before_a_model_loads(tmp_path, capsys):
    texts = tmp_path / "t.jsonl"
    texts.write_text('{"_id": "a", "text": "x"}\n')
    assert main(["embed", str(texts), "--model", str(tmp_path / "none"), "--threads", "-2", "--out",
                 str(tmp_path / "v.npy")]) == 2
    assert "field '--threads'" in _one_error_line(capsys)


def _bad_outputs(tmp_path):
    (tmp_path / "a-dir").mkdir()
    (tmp_path / "a-file").write_text("x")
    return {
        "json-is-dir": (["--json", tmp_path / "a-dir"], "--json", "is a directory"),
        "parent-is-file": (["--markdown", tmp_path / "a-file" / "r.md"], "--markdown", "is a file"),
        "same-path": (["--json", tmp_path / "r.out", "--html", tmp_path / "." / "r.out"], "--html", "same path as --json"),
        "runs-is-file": (["--runs", tmp_path / "a-file"], "--runs", "is an existing file"),
    }


@pytest.mark.parametrize("case", ["json-is-dir", "parent-is-file", "same-path", "runs-is-file"])
def test_bad_output_paths_are_refused_before_a_model_loads(corpus_dir, tmp_path, capsys, case):
    args, option, message = _bad_outputs(tmp_path)[case]
    assert main(["audit", str(corpus_dir), "--model", str(tmp_path / "no-such-model"), "--quiet",
                 *map(str, args)]) == 2
    line = _one_error_line(capsys)
    assert f"field '{option}'" in line and message in line, line
    assert not (tmp_path / "r.out").exists()


def test_no_output_is_written_unless_all_are(corpus_dir, tiny_model_dir, tmp_path, monkeypatch):
    import tempfile

    import clbias.report.render_html as render_html

    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the internal error's traceback file goes here
    monkeypatch.setattr(tempfile, "tempdir", None)

    def broken_html(report):
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(render_html, "to_html", broken_html)
    out = tmp_path / "out"
    argv = ["audit", str(corpus_dir), "--model", str(tiny_model_dir), "--bootstrap", "20", "--no-cache", "--quiet",
            "--json", str(out / "r.json"), "--markdown", str(out / "r.md"), "--runs", str(out / "runs"),
            "--html", str(out / "r.html")]
    assert main(argv) == 3  # an internal error (here: a renderer bug) exits 3
    assert len(list(tmp_path.glob("clbias-traceback-*.txt"))) == 1
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()]
    monkeypatch.undo()
    assert main(argv) == 0
    assert {p.name for p in out.iterdir()} == {"r.json", "r.md", "runs", "r.html"}
    assert json.loads((out / "r.json").read_text())["scenarios"] and list((out / "runs").glob("*.run"))
    assert not list(out.rglob("*.tmp")) and not list(out.glob(".*partial*"))


def test_ids_with_whitespace_are_refused_with_runs_only(tmp_path, tiny_model_dir, capsys):
    root = parallel_corpus(tmp_path / "c")
    lines = (root / "corpus.jsonl").read_text().splitlines()
    lines[2] = lines[2].replace('"u2-en"', '"u2 en"')
    (root / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    (root / "qrels" / "test.tsv").write_text((root / "qrels" / "test.tsv").read_text().replace("\tu2-en\t", "\tu2 en\t"))
    out = tmp_path / "out"
    assert main(["audit", str(root), "--model", str(tmp_path / "none"), "--runs", str(out / "runs"), "--json",
                 str(out / "r.json"), "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert f"{root / 'corpus.jsonl'}:3: field '_id'" in line and "'u2 en'" in line and "whitespace" in line
    assert not out.exists()
    assert audit_corpus(root, [tiny_model_dir], bootstrap=10, scenarios=["multi"]).scenarios  # fine without --runs


def test_audit_settings_validate_themselves():
    for field, value in [("k", 0), ("depth", -1), ("bootstrap", 0), ("batch_size", 0), ("seed", -1),
                         ("index", "annoy"), ("scenarios", ["mult"]), ("langs", ["xx"])]:
        with pytest.raises(InputError) as info:
            AuditSettings(**{field: value})
        assert info.value.field == field, field
    assert AuditSettings(langs=["DE", "zh_hans"]).langs == ["de", "zh-Hans"]


def test_queries_without_qrels_are_said_so(tmp_path, tiny_model_dir):
    root = parallel_corpus(tmp_path / "c")
    (root / "qrels" / "test.tsv").unlink()
    report = audit_corpus(root, [tiny_model_dir], bootstrap=10)
    assert any("queries.jsonl has 8 queries but there are no qrels" in n for n in report.notes), report.notes


@pytest.mark.parametrize("langs, expected", [(["en"], "English-only corpus"), (["de"], "one language only (de)")])
def test_one_language_corpus_says_why_scenarios_and_eir_are_absent(tmp_path, tiny_model_dir, langs, expected):
    docs = [{"_id": f"d{i}-{lang}", "text": f"text number {i}", "lang": lang} for lang in langs for i in range(3)]
    queries = [{"_id": f"q{i}-{lang}", "text": f"number {i}", "lang": lang} for lang in langs for i in range(3)]
    qrels = [(f"q{i}-{lang}", f"d{i}-{lang}", 1) for lang in langs for i in range(3)]
    report = audit_corpus(write_corpus(tmp_path / "c", docs, queries, qrels), [tiny_model_dir], bootstrap=10)
    note = next(n for n in report.notes if expected in n)
    assert "multi" in note and "mono-cross" in note and "EIR" in note
    assert {s.kind for s in report.scenarios} == {"mono-same"}


def test_truncated_ids_are_in_the_report_and_the_terminal(tmp_path, tiny_model_dir):
    long_text = " ".join(["Katze Fensterbank Nachmittag"] * 200)
    docs = [{"_id": f"long{i}", "text": long_text, "lang": "de"} for i in range(7)]
    docs.append({"_id": "b", "text": "short English text", "lang": "en"})
    report = audit_corpus(write_corpus(tmp_path / "c", docs), [tiny_model_dir], bootstrap=10)
    truncation = report.truncation[report.model.name]
    assert truncation["passage"] == {"de": 7, "en": 0}  # the count keys are unchanged
    assert truncation["passage_ids"] == {"de": ["long0", "long1", "long2", "long3", "long4"]}
    assert truncation["query_ids"] == {}
    console = Console(file=io.StringIO(), width=200)
    render(report, console)
    text = console.file.getvalue()
    assert "de 7" in text and "first truncated ids: passage de: long0, long1, long2, long3, long4" in text
    from clbias.report.render_html import to_html

    assert "<h2>Truncation</h2>" in to_html(report)  # the id lists do not break the count table
