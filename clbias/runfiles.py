"""Run files that another system wrote: TREC 6-column or JSON Lines, optionally gzip-compressed.

    TREC        qid Q0 docid rank score tag          (whitespace-separated; the rank column is ignored)
    JSON Lines  {"qid": ..., "docid": ..., "score": ...}   one object per (query, document) row;
                `query_id` / `doc_id` are accepted for `qid` / `docid`

Each query's documents are ranked by score, highest first; equal scores are ordered by the documents'
position in corpus.jsonl (the order the built-in retrievers break ties in), so a ranking never depends
on the row order of the file. Every row is checked: a query or document id the corpus does not have, a
(query, document) pair given twice, or a score that is not a finite number is a located InputError.
"""
from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError
from .io import sha256_file

RUN_FORMATS = ("trec", "jsonl")
_QID_KEYS = ("qid", "query_id")
_DOCID_KEYS = ("docid", "doc_id")


@dataclass(frozen=True)
class Ranking:
    """One query's ranked documents: indices into the corpus documents (or a pool) and their scores."""

    docs: np.ndarray  # int64, best first
    scores: np.ndarray  # float64, non-increasing


@dataclass(frozen=True)
class Run:
    path: Path
    sha256: str
    format: str
    rankings: dict[str, Ranking]  # query id -> ranking
    rows: int

    @property
    def depth(self) -> int:
        """The longest ranking of any query."""
        return max((r.docs.size for r in self.rankings.values()), default=0)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("run file not found", path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a run file", path) from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputError(f"cannot decompress gzip data ({exc})", path) from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"invalid UTF-8 at byte {exc.start}", path, lineno) from None


def _score(raw: object, path: Path, line: int) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise InputError(f"score {raw!r} is not a number", path, line, "score")
    try:
        score = float(raw)
    except ValueError:
        raise InputError(f"score {raw!r} is not a number", path, line, "score") from None
    if not math.isfinite(score):
        raise InputError(f"score {raw!r} is not a finite number", path, line, "score")
    return score


def _rows(path: Path) -> Iterator[tuple[int, str, str, float, str]]:
    """(line, qid, docid, score, format) of every row; the format is decided by the first row."""
    fmt = None
    for lineno, text in _lines(path):
        if fmt is None:
            fmt = "jsonl" if text.lstrip().startswith("{") else "trec"
        if fmt == "jsonl":
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(f"malformed JSON ({exc.msg}, column {exc.colno})", path, lineno) from None
            if not isinstance(obj, dict):
                raise InputError("expected a JSON object", path, lineno)
            qid = next((obj[k] for k in _QID_KEYS if k in obj), None)
            docid = next((obj[k] for k in _DOCID_KEYS if k in obj), None)
            for name, value in (("qid", qid), ("docid", docid)):
                if not isinstance(value, str) or not value:
                    raise InputError("missing or not a non-empty string", path, lineno, name)
            if "score" not in obj:
                raise InputError("missing", path, lineno, "score")
            yield lineno, str(qid), str(docid), _score(obj["score"], path, lineno), fmt
        else:
            parts = text.split()
            if len(parts) != 6:
                raise InputError(f"expected 6 whitespace-separated columns (qid Q0 docid rank score tag), "
                                 f"got {len(parts)}", path, lineno)
            yield lineno, parts[0], parts[2], _score(parts[4], path, lineno), fmt


def read_run(path: str | Path, doc_index: Mapping[str, int], query_ids: Mapping[str, object] | set[str]) -> Run:
    """A validated run. `doc_index`: document id -> position (in the corpus, or in the pool a per-pool run
    ranks); ties are broken by that position. `query_ids`: the ids a row may name."""
    path = Path(path)
    by_query: dict[str, tuple[list[int], list[float]]] = {}
    seen: dict[tuple[str, str], int] = {}
    fmt = "trec"
    rows = 0
    for lineno, qid, docid, score, fmt in _rows(path):
        if qid not in query_ids:
            raise InputError(f"unknown query id {qid!r}", path, lineno, "qid")
        pos = doc_index.get(docid)
        if pos is None:
            raise InputError(f"unknown document id {docid!r}", path, lineno, "docid")
        first = seen.setdefault((qid, docid), lineno)
        if first != lineno:
            raise InputError(f"duplicate row for query {qid!r} and document {docid!r} (first on line {first})",
                             path, lineno)
        docs, scores = by_query.setdefault(qid, ([], []))
        docs.append(pos)
        scores.append(score)
        rows += 1
    if rows == 0:
        raise InputError("empty run file: no rows", path)
    rankings = {}
    for qid, (docs, scores) in by_query.items():
        d, s = np.asarray(docs, np.int64), np.asarray(scores, np.float64)
        order = np.lexsort((d, -s))
        rankings[qid] = Ranking(d[order], s[order])
    return Run(path, sha256_file(path), fmt, rankings, rows)


def write_trec(path: str | Path, rankings: Mapping[str, list[tuple[str, float]]], tag: str = "clbias") -> None:
    """A TREC run (used by tests and examples that play an outside system): `repr` keeps every score exact."""
    with open(path, "w", encoding="utf-8") as f:
        for qid, ranked in rankings.items():
            for rank, (docid, score) in enumerate(ranked, start=1):
                f.write(f"{qid} Q0 {docid} {rank} {float(score)!r} {tag}\n")
