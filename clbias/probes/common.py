"""Shared pieces of the probe-set builders (UDHR now; Quran and Bible later).

A probe set is a BEIR directory with languages:

    corpus.jsonl     {"_id", "text", "lang", "parallel_id"}   translations share parallel_id
    queries.jsonl    {"_id", "text", "lang", "parallel_id"}   translations of one query share it
    qrels/test.tsv   query-id <TAB> corpus-id <TAB> score, after a header line
    meta.json        name, source, licence, parallel, query_derivation, languages, build command

Builders turn their source into `ProbeDoc`/`ProbeQuery`/`ProbeQrel` lists and hand them to
`write_probe_set`, which checks them (`check_probe_set`) and writes the directory atomically: the
files are built in a temporary directory beside the target and renamed into place, so a build that
fails or is killed halfway never leaves a half-written corpus. Output is byte-deterministic (fixed key
order, UTF-8 without escapes, "\\n" line ends) so a rebuild can be compared with a vendored copy.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import InputError
from ..io import atomic_dir, check_replaceable_dir
from ..runtime.cache import cache_root, make_private_dirs


@dataclass(frozen=True)
class ProbeDoc:
    doc_id: str
    text: str
    lang: str
    parallel_id: str


@dataclass(frozen=True)
class ProbeQuery:
    query_id: str
    text: str
    lang: str
    parallel_id: str


@dataclass(frozen=True)
class ProbeQrel:
    query_id: str
    doc_id: str
    score: int = 1


# --------------------------------------------------------------------------- sources


class PackageSource:
    """Read-only access to the files of an npm package: a `.tgz` from `npm pack` or its extracted folder.

    Paths are relative to the package root (`package/` inside the tarball), e.g. "declaration/eng.html".
    A tarball is read in place, never extracted, so no member can write outside a temp dir.
    """

    def __init__(self, source: str | Path) -> None:
        self.path = Path(source).expanduser()
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        self._root: Path | None = None
        if not self.path.exists():
            raise InputError("source not found (fetch it with `npm pack`)", self.path)
        if self.path.is_dir():
            root = self.path / "package" if (self.path / "package").is_dir() else self.path
            self._root = root
            return
        try:
            self._tar = tarfile.open(self.path, "r:*")
            for member in self._tar.getmembers():
                if member.isfile():
                    name = member.name.split("/", 1)[1] if "/" in member.name else member.name
                    self._members[name] = member
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            raise InputError(f"not a readable npm package tarball ({exc.__class__.__name__}: {exc})",
                             self.path) from None

    def __enter__(self) -> "PackageSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None

    def location(self, relpath: str) -> str:
        """A printable location of one file, for error messages."""
        return f"{self.path}!{relpath}" if self._root is None else str(self._root / relpath)

    def has(self, relpath: str) -> bool:
        if self._root is not None:
            return (self._root / relpath).is_file()
        return relpath in self._members

    def read_bytes(self, relpath: str) -> bytes:
        if self._root is not None:
            try:
                return (self._root / relpath).read_bytes()
            except FileNotFoundError:
                raise InputError("file missing from the package", self.location(relpath)) from None
        member = self._members.get(relpath)
        if member is None or self._tar is None:
            raise InputError("file missing from the package", self.location(relpath))
        try:
            handle = self._tar.extractfile(member)
            assert handle is not None
            data = handle.read()
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise InputError(f"truncated or corrupt tarball ({exc.__class__.__name__}: {exc})",
                             self.location(relpath)) from None
        if len(data) != member.size:
            raise InputError(f"truncated: read {len(data)} of {member.size} bytes", self.location(relpath))
        return data

    def read_text(self, relpath: str) -> str:
        data = self.read_bytes(relpath)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"invalid UTF-8 at byte {exc.start}", self.location(relpath)) from None


def npm_tarball_path(package: str, version: str, cache_dir: Path | None = None) -> Path:
    """Where the `npm pack` tarball of package@version is kept: CACHE/NAME-VERSION.tgz (see `cache_root`)."""
    return (cache_dir or cache_root()) / f"{package}-{version}.tgz"


def fetch_npm_tarball(package: str, version: str, cache_dir: Path | None = None) -> Path:
    """Return the cached tarball of package@version, running `npm pack` into the cache when it is missing."""
    cache_dir = cache_dir or cache_root()
    target = npm_tarball_path(package, version, cache_dir)
    if target.is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise InputError(f"npm not found; fetch the source with `npm pack {package}@{version}`", target)
    make_private_dirs(cache_dir)
    result = subprocess.run([npm, "pack", f"{package}@{version}", "--pack-destination", str(cache_dir)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0 or not target.is_file():
        lines = [line for line in (result.stderr or result.stdout).splitlines()
                 if line.strip() and "complete log" not in line and " code " not in line]
        reason = lines[0].removeprefix("npm error").strip() if lines else f"exit status {result.returncode}"
        raise InputError(f"`npm pack {package}@{version}` failed: {reason}", target)
    return target


# --------------------------------------------------------------------------- checking and writing


def check_probe_set(docs: Sequence[ProbeDoc], queries: Sequence[ProbeQuery],
                    qrels: Sequence[ProbeQrel]) -> None:
    """Refuse a probe set a reader would misread: empty fields, duplicate ids, dangling qrels,
    a query that is (part of) one of its relevant documents, or a query without any relevant document."""
    doc_text: dict[str, str] = {}
    for doc in docs:
        if not doc.doc_id or not doc.text.strip() or not doc.lang:
            raise ValueError(f"document {doc.doc_id!r} has an empty id, text or lang")
        if doc.doc_id in doc_text:
            raise ValueError(f"duplicate document id {doc.doc_id!r}")
        doc_text[doc.doc_id] = doc.text
    query_text: dict[str, str] = {}
    for query in queries:
        if not query.query_id or not query.text.strip() or not query.lang:
            raise ValueError(f"query {query.query_id!r} has an empty id, text or lang")
        if query.query_id in query_text:
            raise ValueError(f"duplicate query id {query.query_id!r}")
        query_text[query.query_id] = query.text
    judged: set[str] = set()
    for qrel in qrels:
        if qrel.query_id not in query_text:
            raise ValueError(f"qrel names unknown query {qrel.query_id!r}")
        if qrel.doc_id not in doc_text:
            raise ValueError(f"qrel names unknown document {qrel.doc_id!r}")
        if qrel.score > 0:
            judged.add(qrel.query_id)
            if query_text[qrel.query_id].strip() in doc_text[qrel.doc_id]:
                raise ValueError(f"query {qrel.query_id!r} is contained in its relevant document {qrel.doc_id!r}")
    unjudged = sorted(set(query_text) - judged)
    if unjudged:
        raise ValueError(f"{len(unjudged)} queries have no relevant document, e.g. {unjudged[0]!r}")


def _jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def render_probe_files(docs: Sequence[ProbeDoc], queries: Sequence[ProbeQuery], qrels: Sequence[ProbeQrel],
                       meta: dict[str, Any]) -> dict[str, str]:
    """The text of every file of a probe set, keyed by relative path (deterministic)."""
    corpus = _jsonl({"_id": d.doc_id, "text": d.text, "lang": d.lang, "parallel_id": d.parallel_id}
                    for d in docs)
    query_lines = _jsonl({"_id": q.query_id, "text": q.text, "lang": q.lang, "parallel_id": q.parallel_id}
                         for q in queries)
    qrel_lines = "query-id\tcorpus-id\tscore\n" + "".join(
        f"{r.query_id}\t{r.doc_id}\t{r.score}\n" for r in qrels)
    return {
        "corpus.jsonl": corpus,
        "queries.jsonl": query_lines,
        "qrels/test.tsv": qrel_lines,
        "meta.json": json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
    }


def probe_kind(meta: dict[str, Any]) -> str:
    """Which builder wrote a probe set, from its meta.json: udhr, quran, manpages, or unknown."""
    found = meta.get("source")
    source: dict[str, Any] = found if isinstance(found, dict) else {}
    package = source.get("package")
    if package == "udhr":
        return "udhr"
    if package == "quran-json":
        return "quran"
    if "groff" in source:
        return "manpages"
    return "unknown"


def existing_probe_kind(directory: Path) -> str | None:
    """The kind of probe set `directory` holds, or None when it holds none (no readable meta.json)."""
    try:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return probe_kind(meta) if isinstance(meta, dict) and (directory / "corpus.jsonl").is_file() else None


def check_probe_out(out_dir: Path, kind: str) -> None:
    """Refuse, before any work, an --out that holds anything but an earlier probe set of the same kind."""
    check_replaceable_dir(out_dir, lambda d: existing_probe_kind(d) == kind, f"a {kind} probe set", "--out")


def write_probe_set(out_dir: str | Path, docs: Sequence[ProbeDoc], queries: Sequence[ProbeQuery],
                    qrels: Sequence[ProbeQrel], meta: dict[str, Any],
                    extra_files: dict[str, str] | None = None) -> Path:
    """Check the probe set, then write it to `out_dir` atomically (replacing an existing one) and return it.

    `extra_files` (relative path -> text) travel with it, e.g. a LICENSE.md.
    """
    try:
        check_probe_set(docs, queries, qrels)
    except ValueError as exc:
        raise InputError(f"refusing to write an inconsistent probe set: {exc}", out_dir) from None
    files = render_probe_files(docs, queries, qrels, meta)
    files.update(extra_files or {})
    out_dir = Path(out_dir)
    kind = probe_kind(meta)
    with atomic_dir(out_dir, lambda d: existing_probe_kind(d) == kind, f"a {kind} probe set") as tmp:
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; a shared example must be readable
        for relpath, text in files.items():
            path = tmp / relpath
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
    return out_dir
