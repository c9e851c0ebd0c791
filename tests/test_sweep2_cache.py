"""Issue 19 item 3: the embedding cache is private, a cache others can write is refused, an unusable cache
degrades to no cache with a warning found before the embedding work, and an interrupted build is never
listed as a model."""
from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import stat
from pathlib import Path

import pytest

from clbias.api import audit_corpus
from clbias.cli import main
from clbias.errors import ModelError
from clbias.io import atomic_dir
from clbias.runtime.cache import EmbeddingCache
from clbias.runtime.manifest import load_manifest
from corpus_factory import parallel_corpus


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def _audit(corpus: Path, model: Path, *extra: str) -> list[str]:
    return ["audit", str(corpus), "--model", str(model), "--quiet", "--bootstrap", "10", "--scenario", "multi",
            *extra]


def test_the_cache_is_created_private(tiny_model_dir, tmp_path):
    cache = tmp_path / "fresh" / "cache"
    assert main(_audit(parallel_corpus(tmp_path / "c"), tiny_model_dir, "--cache-dir", str(cache))) == 0
    created = [cache.parent, cache, *[p for p in cache.rglob("*") if p.is_dir()]]
    assert len(created) >= 3
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in created), [oct(p.stat().st_mode) for p in created]


@pytest.mark.parametrize("mode, expected", [(0o775, "writable by group"), (0o757, "writable by others"),
                                            (0o777, "writable by group and others")])
def test_a_cache_others_can_write_is_refused_before_the_model_loads(tmp_path, capsys, mode, expected):
    cache = tmp_path / "cache"
    cache.mkdir()
    os.chmod(cache, mode)
    assert main(_audit(parallel_corpus(tmp_path / "c"), tmp_path / "no-model", "--cache-dir", str(cache))) == 2
    line = _one_error_line(capsys)
    assert str(cache) in line and expected in line and "no-model" not in line


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown to another user needs root")
def test_a_cache_owned_by_another_user_is_refused(tmp_path, capsys):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    os.chown(cache, 54321, 54321)
    assert main(_audit(parallel_corpus(tmp_path / "c"), tmp_path / "no-model", "--cache-dir", str(cache))) == 2
    assert "owned by another user (uid 54321)" in _one_error_line(capsys)


def _metrics(report):
    data = report.metrics_only()
    data["corpus"].pop("path")
    return data["scenarios"]


@pytest.mark.parametrize("case", ["file-in-the-way", "read-only", "full-on-store"])
def test_an_unusable_cache_degrades_to_no_cache_with_a_warning(tiny_model_dir, tmp_path, caplog, monkeypatch, case):
    corpus = parallel_corpus(tmp_path / "c")
    if case == "file-in-the-way":
        cache = tmp_path / "cache"
        cache.write_text("not a directory")
    elif case == "read-only":
        cache = Path("/proc/clbias-cache")  # a file system nobody, root included, can create a directory in
    else:
        cache = tmp_path / "cache"

        def full(self, *args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(EmbeddingCache, "store", full)
    with caplog.at_level(logging.WARNING, logger="clbias.cache"):
        report = audit_corpus(corpus, [tiny_model_dir], bootstrap=10, cache_dir=cache, scenarios=["multi"])
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings and str(cache) in warnings[0] and "\n" not in warnings[0]
    assert _metrics(report) == _metrics(audit_corpus(corpus, [tiny_model_dir], bootstrap=10, scenarios=["multi"]))
    if case == "file-in-the-way":
        assert cache.read_text() == "not a directory"


def test_hash_records_others_can_write_are_not_trusted(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CLBIAS_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model)
    load_manifest(model)  # records the verified hash of each file
    hashes = tmp_path / "cache" / "hashes"
    assert stat.S_IMODE(hashes.stat().st_mode) == 0o700
    tokenizer = model / "tokenizer.json"
    good = json.loads(tokenizer.read_text())
    # swap the file, then forge the record (as someone who could write to the directory would)
    good["added_tokens"] = []
    tokenizer.write_text(json.dumps(good))
    st = tokenizer.stat()
    for record in hashes.iterdir():
        saved = json.loads(record.read_text())
        if saved["path"] == str(tokenizer.resolve()):
            saved["stat"] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
                             "ino": st.st_ino, "dev": st.st_dev}
            record.write_text(json.dumps(saved))
    load_manifest(model)  # the forged record is believed in a private directory: that is the point of privacy
    os.chmod(hashes, 0o777)
    with pytest.raises(ModelError, match="does not match the manifest"):
        load_manifest(model)


def test_interrupted_builds_are_never_listed_as_models(tiny_model_dir, tmp_path, monkeypatch, capsys):
    root = tmp_path / "exported"
    root.mkdir()
    monkeypatch.setenv("CLBIAS_EXPORTED", str(root))
    shutil.copytree(tiny_model_dir, root / "tiny")
    # a build killed after its manifest was written, and one killed between the two renames of a rebuild
    shutil.copytree(tiny_model_dir, root / ".tiny.partial-99999-abc")
    shutil.copytree(tiny_model_dir, root / ".tiny.old-99999")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(root / "other") as tmp:
            shutil.copytree(tiny_model_dir, tmp, dirs_exist_ok=True)
            raise KeyboardInterrupt  # Ctrl-C during the build
    assert not (root / "other").exists()
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["dir"] for r in rows} == {str(root / "tiny")}
