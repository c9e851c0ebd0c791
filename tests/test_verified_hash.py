"""The manifest's sha256 check remembers a verified file by its identity, and never trusts a file that
was written since (even one whose size and mtime were put back)."""
from __future__ import annotations

import os
from pathlib import Path

from clbias.io import sha256_file
from clbias.runtime import manifest as manifest_module
from clbias.runtime.manifest import verified_sha256


def test_a_verified_file_is_not_read_again_until_it_changes(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CLBIAS_CACHE", str(tmp_path / "cache"))
    file = tmp_path / "model.onnx"
    file.write_bytes(b"graph v1" * 1000)
    reads = []
    monkeypatch.setattr(manifest_module, "sha256_file", lambda p: reads.append(p) or sha256_file(p))
    first = verified_sha256(file)
    assert first == sha256_file(file) and len(reads) == 1
    assert verified_sha256(file) == first and len(reads) == 1  # remembered
    st = file.stat()
    with open(file, "r+b") as fh:  # same size, mtime put back: the ctime still moves
        fh.write(b"GRAPH")
    os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = verified_sha256(file)
    assert len(reads) == 2 and second == sha256_file(file) != first


def test_an_unwritable_or_damaged_record_only_means_hashing_again(tmp_path: Path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("CLBIAS_CACHE", str(blocker))
    file = tmp_path / "f.bin"
    file.write_bytes(b"abc")
    assert verified_sha256(file) == sha256_file(file)
    monkeypatch.setenv("CLBIAS_CACHE", str(tmp_path / "cache"))
    verified_sha256(file)
    (record,) = (tmp_path / "cache" / "hashes").iterdir()
    record.write_text("{not json")
    assert verified_sha256(file) == sha256_file(file)
