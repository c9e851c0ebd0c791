"""Issue 19 items 5, 6 and 7: input problems are one line and exit 2 (never a traceback), an internal error
is exit 3 with the traceback kept in a file, and the inputs people have (.jsonl.gz, a JSON array by mistake,
a file where a directory belongs) are read or named."""
from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import pytest

from clbias.api import audit_corpus
from clbias.cli import main, parser
from corpus_factory import parallel_corpus


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


DEEP = "[" * 100_000 + "]" * 100_000


# --------------------------------------------------------------------------- item 5: no traceback

@pytest.mark.parametrize("where", ["corpus", "queries", "meta", "report", "manifest", "train-units"])
def test_deeply_nested_json_is_one_line(tmp_path, tiny_model_dir, capsys, where):
    root = parallel_corpus(tmp_path / "c")
    deep_line = '{"_id": "x", "text": ' + DEEP + "}\n"
    if where == "corpus":
        (root / "corpus.jsonl").write_text((root / "corpus.jsonl").read_text() + deep_line)
        argv, named = ["audit", str(root), "--model", "none", "--quiet"], root / "corpus.jsonl"
    elif where == "queries":
        (root / "queries.jsonl").write_text(deep_line)
        argv, named = ["audit", str(root), "--model", "none", "--quiet"], root / "queries.jsonl"
    elif where == "meta":
        (root / "meta.json").write_text('{"name": ' + DEEP + "}")
        argv, named = ["audit", str(root), "--model", "none", "--quiet"], root / "meta.json"
    elif where == "report":
        (tmp_path / "r.json").write_text('{"schema": ' + DEEP + "}")
        argv, named = ["report", str(tmp_path / "r.json")], tmp_path / "r.json"
    elif where == "manifest":
        model = tmp_path / "m"
        shutil.copytree(tiny_model_dir, model)
        (model / "clbias.json").write_text('{"name": ' + DEEP + "}")
        argv, named = ["audit", str(root), "--model", str(model), "--quiet", "--no-cache"], model / "clbias.json"
    else:
        (root / "train.jsonl").write_text(deep_line)
        argv, named = ["train", "data", "--from", str(root), "--out", str(tmp_path / "t.jsonl")], root / "train.jsonl"
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert str(named) in line and "nested too deeply" in line


def _saved_report(tmp_path: Path, tiny_model_dir: Path) -> dict:
    out = tmp_path / "good.json"
    assert main(["audit", str(parallel_corpus(tmp_path / "c")), "--model", str(tiny_model_dir), "--no-cache",
                 "--quiet", "--bootstrap", "10", "--scenario", "multi", "--json", str(out)]) == 0
    return json.loads(out.read_text())


BREAKAGES = {
    "scenarios-not-a-list": (lambda d: d.update(scenarios={"a": 1}), "'scenarios' must be a list"),
    "metric-is-text": (lambda d: d["scenarios"][0]["metrics"].update({"ndcg@10": "high"}), "scenarios[0].metrics"),
    "n-queries-is-text": (lambda d: d["scenarios"][0].update(n_queries="eight"), "scenarios[0].n_queries"),
    "per-query-short": (lambda d: next(iter(d["scenarios"][0]["by_model"].values()))["per_query"]["ndcg@10"].pop(),
                        "values for"),
    "model-lacks-name": (lambda d: d["models"][0].pop("name"), "lacks 'name'"),
    "notes-not-text": (lambda d: d.update(notes=[1, 2]), "notes[0]"),
    "by-model-a-list": (lambda d: d["scenarios"][0].update(by_model=[1]), "by_model' must be an object"),
    "ci-is-a-number": (lambda d: d["scenarios"][0]["ci"].update({"ndcg@10": 3}), "scenarios[0].ci"),
}


@pytest.mark.parametrize("case", sorted(BREAKAGES))
def test_a_wrong_typed_saved_report_is_one_line(tmp_path, tiny_model_dir, capsys, case):
    data = _saved_report(tmp_path, tiny_model_dir)
    capsys.readouterr()
    breaks, expected = BREAKAGES[case]
    breaks(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    for argv in (["report", str(bad), "--detail"], ["compare", str(bad), str(tmp_path / "good.json"), "--quiet"]):
        assert main(argv) == 2
        line = _one_error_line(capsys)
        assert str(bad) in line and expected in line, line


@pytest.mark.parametrize("field", ["p_tgt", "texts"])
def test_lone_surrogates_in_training_files_are_one_line(tmp_path, capsys, field):
    root = parallel_corpus(tmp_path / "c")
    if field == "texts":
        (root / "train.jsonl").write_text('{"parallel_id": "t1", "texts": {"en": "ok", "de": "bad \\ud800 here"}}\n')
        argv = ["train", "data", "--from", str(root), "--out", str(tmp_path / "t.jsonl")]
        named, expected_field = root / "train.jsonl", "texts.de"
    else:
        data = tmp_path / "triplets.jsonl"
        data.write_text('{"q_en": "q", "p_en": "p", "p_tgt": "\\udfff", "lang": "de"}\n')
        from clbias.train.data import read_triplets

        with pytest.raises(Exception) as info:
            read_triplets(data)
        assert "lone surrogate" in str(info.value) and "p_tgt" in str(info.value) and ":1" in str(info.value)
        return
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert f"{named}:1" in line and expected_field in line and "lone surrogate" in line


# --------------------------------------------------------------------------- item 6: exit codes

def test_exit_codes_are_in_the_help(capsys):
    with pytest.raises(SystemExit) as info:
        parser().parse_args(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for code, meaning in (("0", "success"), ("1", "--fail-if"), ("2", "bad input"), ("3", "internal error")):
        assert re.search(rf"^\s+{code}\s+.*{re.escape(meaning)}", out, re.M), out


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["audit"])
    assert info.value.code == 2


def _crash(monkeypatch):
    import clbias.cli.report as report_cli

    def broken(path):
        raise ZeroDivisionError("a bug in clbias")

    monkeypatch.setattr(report_cli, "load_report", broken)


@pytest.mark.parametrize("debug", ["none", "before", "after"])
def test_an_internal_error_exits_3_with_the_traceback_kept(tmp_path, monkeypatch, capsys, debug):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    _crash(monkeypatch)
    argv = ["report", str(tmp_path / "r.json")]
    argv = ["--debug", *argv] if debug == "before" else [*argv, "--debug"] if debug == "after" else argv
    assert main(argv) == 3
    err = capsys.readouterr().err
    if debug == "none":
        assert err.count("\n") == 1 and "Traceback" not in err
        assert "internal error: ZeroDivisionError: a bug in clbias" in err and "--debug" in err
        kept = Path(re.search(r"traceback in (\S+?);", err).group(1))
        assert kept.parent == tmp_path and "ZeroDivisionError" in kept.read_text() and "Traceback" in kept.read_text()
        assert kept.stat().st_mode & 0o077 == 0  # private: argv may name private paths
    else:
        assert "Traceback (most recent call last)" in err and "ZeroDivisionError: a bug in clbias" in err
        assert not list(tmp_path.glob("clbias-traceback-*"))


def test_a_gate_exits_1_and_bad_input_2(tmp_path, tiny_model_dir, capsys):
    corpus = parallel_corpus(tmp_path / "c")
    base = ["audit", str(corpus), "--model", str(tiny_model_dir), "--no-cache", "--quiet", "--bootstrap", "10"]
    assert main([*base, "--fail-if", "multi:max_r_norm>-1", "--json", str(tmp_path / "r.json")]) == 1
    assert (tmp_path / "r.json").is_file()
    assert main([*base, "--fail-if", "nonsense"]) == 2
    assert main([*base, "--fail-if", "multi:max_r_norm>1000"]) == 0


# --------------------------------------------------------------------------- item 7: inputs people have

def test_gzipped_corpus_and_queries_give_the_same_audit(tmp_path, tiny_model_dir):
    plain = parallel_corpus(tmp_path / "plain")
    zipped = parallel_corpus(tmp_path / "zipped")
    for name in ("corpus.jsonl", "queries.jsonl"):
        (zipped / f"{name}.gz").write_bytes(gzip.compress((zipped / name).read_bytes()))
        (zipped / name).unlink()
    a = audit_corpus(plain, [tiny_model_dir], bootstrap=20).metrics_only()
    b = audit_corpus(zipped, [tiny_model_dir], bootstrap=20).metrics_only()
    for report in (a, b):
        report["corpus"].pop("path")
        report["corpus"].pop("fingerprint")
    assert a["scenarios"] and a == b


def test_gzip_problems_are_one_line(tmp_path, capsys):
    root = parallel_corpus(tmp_path / "c")
    (root / "corpus.jsonl.gz").write_bytes(gzip.compress((root / "corpus.jsonl").read_bytes()))
    assert main(["audit", str(root), "--model", "none", "--quiet"]) == 2
    assert "both corpus.jsonl and corpus.jsonl.gz" in _one_error_line(capsys)
    (root / "corpus.jsonl").unlink()
    (root / "corpus.jsonl.gz").write_bytes(gzip.compress(b'{"_id": "a"}\n')[:-6])  # truncated
    assert main(["audit", str(root), "--model", "none", "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert "corpus.jsonl.gz" in line and "gzip" in line


@pytest.mark.parametrize("layout", ["one-line-array", "pretty-array", "pretty-object"])
def test_a_json_file_given_as_json_lines_says_so(tmp_path, capsys, layout):
    root = parallel_corpus(tmp_path / "c")
    docs = [json.loads(x) for x in (root / "corpus.jsonl").read_text().splitlines()]
    if layout == "one-line-array":
        text = json.dumps(docs)
    elif layout == "pretty-array":
        text = json.dumps(docs, indent=2)
    else:
        text = json.dumps(docs[0], indent=2)
    (root / "corpus.jsonl").write_text(text)
    assert main(["audit", str(root), "--model", "none", "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert f"{root / 'corpus.jsonl'}:1" in line and "expected JSON Lines, one object per line" in line


@pytest.mark.parametrize("given", ["corpus.jsonl", "queries.jsonl", "meta.json"])
def test_a_file_given_as_the_corpus_directory_says_so(tmp_path, capsys, given):
    root = parallel_corpus(tmp_path / "c")
    assert main(["audit", str(root / given), "--model", "none", "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert "is a file; expected a corpus directory" in line
    if given != "meta.json":
        assert f"give its directory, {root}" in line
