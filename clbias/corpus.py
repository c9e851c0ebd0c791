"""Load and validate a corpus: BEIR layout plus a `lang` on every record and optional `parallel_id`.

    corpus.jsonl        {"_id", "text", "lang", "title"?, "parallel_id"?}
    queries.jsonl       {"_id", "text", "lang", "parallel_id"?}          (optional: label-free audits)
    qrels/<split>.tsv   query-id <TAB> corpus-id <TAB> score, header line (optional)
    meta.json           free-form provenance: source, licence, how queries were derived (optional)
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .io import read_jsonl
from .langs import normalize_lang


@dataclass(frozen=True)
class Record:
    id: str
    text: str
    lang: str
    parallel_id: str | None = None
    title: str | None = None


@dataclass
class Corpus:
    path: Path
    docs: list[Record]
    queries: list[Record]
    qrels: dict[str, dict[str, int]]  # query id -> doc id -> graded relevance (> 0 is relevant)
    meta: dict[str, Any] = field(default_factory=dict)
    split: str | None = None
    excluded: dict[str, str] = field(default_factory=dict)  # query id -> doc id left out of its ranking

    @property
    def doc_langs(self) -> list[str]:
        return sorted({d.lang for d in self.docs})

    @property
    def query_langs(self) -> list[str]:
        return sorted({q.lang for q in self.queries})

    @property
    def has_parallel(self) -> bool:
        return any(d.parallel_id is not None for d in self.docs)

    def doc_index(self) -> dict[str, int]:
        return {d.id: i for i, d in enumerate(self.docs)}

    def relevant_docs(self, expand_translations: bool = True) -> dict[str, set[str]]:
        """Relevant doc ids per query; with `expand_translations`, a relevant document's translations
        (documents sharing its parallel_id) are relevant too."""
        groups: dict[str, list[str]] = {}
        for d in self.docs:
            if d.parallel_id is not None:
                groups.setdefault(d.parallel_id, []).append(d.id)
        parallel_of = {d.id: d.parallel_id for d in self.docs}
        out: dict[str, set[str]] = {}
        for qid, judged in self.qrels.items():
            rel = {doc for doc, score in judged.items() if score > 0}
            if expand_translations:
                for doc in list(rel):
                    pid = parallel_of.get(doc)
                    if pid is not None:
                        rel.update(groups[pid])
            out[qid] = rel
        return out

    def doc_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ids = np.array([d.id for d in self.docs], dtype=object)
        langs = np.array([d.lang for d in self.docs], dtype=object)
        pids = np.array([d.parallel_id for d in self.docs], dtype=object)
        return ids, langs, pids


def _string(obj: dict[str, Any], key: str, path: Path, line: int, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise InputError("missing", path, line, key)
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key in ("_id", "parallel_id"):
        value = str(value)
    if not isinstance(value, str):
        raise InputError(f"expected a string, got {type(value).__name__}", path, line, key)
    return value


def _records(path: Path, kind: str) -> list[Record]:
    records: list[Record] = []
    seen: dict[str, int] = {}
    for line, obj in read_jsonl(path):
        rid = _string(obj, "_id", path, line)
        text = _string(obj, "text", path, line)
        lang_raw = _string(obj, "lang", path, line)
        assert rid is not None and text is not None and lang_raw is not None
        if not rid:
            raise InputError("empty id", path, line, "_id")
        if not text.strip() and not (obj.get("title") or "").strip():
            raise InputError("empty text", path, line, "text")
        lang = normalize_lang(lang_raw)
        if lang is None:
            raise InputError(f"unknown language code {lang_raw!r} (use ISO 639-1 / BCP-47, e.g. en, de, zh-Hans)",
                             path, line, "lang")
        if rid in seen:
            raise InputError(f"duplicate {kind} id {rid!r} (first on line {seen[rid]})", path, line, "_id")
        seen[rid] = line
        records.append(Record(rid, text, lang, _string(obj, "parallel_id", path, line, required=False),
                              _string(obj, "title", path, line, required=False)))
    return records


def _read_qrels(path: Path, query_ids: set[str], doc_ids: set[str]) -> dict[str, dict[str, int]]:
    try:
        raw = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise InputError(f"invalid UTF-8 at byte {exc.start}", path, line) from None
    qrels: dict[str, dict[str, int]] = {}
    rows = list(csv.reader(io.StringIO(raw), delimiter="\t"))
    names = ("query-id", "corpus-id", "score")
    for line, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip():
            continue
        if line == 1 and [c.strip() for c in row[:2]] == ["query-id", "corpus-id"]:
            continue
        if len(row) < 3:
            raise InputError(f"expected 3 tab-separated columns, got {len(row)}", path, line, names[len(row)] if len(row) < 3 else None)
        qid, did, score_raw = (c.strip() for c in row[:3])
        if qid not in query_ids:
            raise InputError(f"unknown query id {qid!r}", path, line, "query-id")
        if did not in doc_ids:
            raise InputError(f"unknown corpus id {did!r}", path, line, "corpus-id")
        try:
            score = int(float(score_raw))
        except ValueError:
            raise InputError(f"score {score_raw!r} is not a number", path, line, "score") from None
        qrels.setdefault(qid, {})[did] = score
    return qrels


def load_corpus(path: str | Path, split: str | None = None) -> Corpus:
    """Load and validate a corpus directory; every problem is a located InputError."""
    root = Path(path)
    if not root.is_dir():
        raise InputError("corpus directory not found", root)
    docs = _records(root / "corpus.jsonl", "document")
    if not docs:
        raise InputError("empty corpus: no documents", root / "corpus.jsonl")
    queries_file = root / "queries.jsonl"
    queries = _records(queries_file, "query") if queries_file.exists() else []
    qrels: dict[str, dict[str, int]] = {}
    qrels_dir = root / "qrels"
    chosen_split = None
    if qrels_dir.is_dir():
        files = sorted(qrels_dir.glob("*.tsv"))
        if split is not None:
            files = [f for f in files if f.stem == split]
            if not files:
                raise InputError(f"no qrels for split {split!r}", qrels_dir)
        elif len(files) > 1:
            preferred = [f for f in files if f.stem == "test"]
            files = preferred or files[:1]
        if files:
            chosen_split = files[0].stem
            qrels = _read_qrels(files[0], {q.id for q in queries}, {d.id for d in docs})
    meta: dict[str, Any] = {}
    if (root / "meta.json").is_file():
        try:
            meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"malformed JSON ({exc})", root / "meta.json") from None
    return Corpus(root, docs, queries, qrels, meta, chosen_split)
