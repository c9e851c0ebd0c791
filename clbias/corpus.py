"""Load and validate a corpus: BEIR layout plus a `lang` on every record and optional `parallel_id`.

    corpus.jsonl        {"_id", "text", "lang", "title"?, "parallel_id"?}
    queries.jsonl       {"_id", "text", "lang", "parallel_id"?}          (optional: label-free audits)
    qrels/<split>.tsv   query-id <TAB> corpus-id <TAB> score, header line (BEIR), or
                        qid iteration docid relevance, whitespace-separated (TREC); optional
    meta.json           free-form provenance: source, licence, how queries were derived (optional)
"""
from __future__ import annotations

import hashlib
import json
import math
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
    line: int = field(default=0, compare=False)  # line in its JSONL file; 0 for derived records


@dataclass
class Corpus:
    path: Path
    docs: list[Record]
    queries: list[Record]
    qrels: dict[str, dict[str, float]]  # query id -> doc id -> relevance score (> 0 is relevant)
    meta: dict[str, Any] = field(default_factory=dict)
    split: str | None = None
    excluded: dict[str, str] = field(default_factory=dict)  # query id -> doc id left out of its ranking
    files: list[Path] = field(default_factory=list)  # the files read (corpus, queries, qrels): the data fingerprint

    def fingerprint(self) -> dict[str, Any]:
        """sha256 of each file read and of them all with the split: two audits with the same sha256 read the
        same data. Recorded in every report; `clbias compare` refuses two reports whose fingerprints differ."""
        from .io import sha256_file

        files = {f.name: sha256_file(f) for f in self.files}
        whole = hashlib.sha256(json.dumps({"files": files, "split": self.split}, sort_keys=True).encode())
        return {"sha256": whole.hexdigest(), "files": files, "split": self.split}

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
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # JSON can spell a lone surrogate ("\ud800"); no model can read one
        raise InputError(f"lone surrogate {value[exc.start]!r} at character {exc.start}: not valid Unicode text",
                         path, line, key) from None
    return value


def read_records(path: str | Path, kind: str = "document", require_lang: bool = True) -> list[Record]:
    """Records of one JSONL file, validated: the one reader of `clbias audit` (corpus, queries) and
    `clbias embed` (texts, where `lang` is optional and stays "" when absent)."""
    path = Path(path)
    records: list[Record] = []
    seen: dict[str, int] = {}
    for line, obj in read_jsonl(path):
        rid = _string(obj, "_id", path, line)
        text = _string(obj, "text", path, line)
        lang_raw = _string(obj, "lang", path, line, required=require_lang)
        title = _string(obj, "title", path, line, required=False)
        assert rid is not None and text is not None
        if not rid:
            raise InputError("empty id", path, line, "_id")
        if not text.strip() and not (title or "").strip():
            raise InputError("empty text", path, line, "text")
        lang = ""
        if lang_raw is not None:
            normalized = normalize_lang(lang_raw)
            if normalized is None:
                raise InputError(f"unknown language code {lang_raw!r} (use ISO 639-1 / BCP-47, e.g. en, de, zh-Hans)",
                                 path, line, "lang")
            lang = normalized
        if rid in seen:
            raise InputError(f"duplicate {kind} id {rid!r} (first on line {seen[rid]})", path, line, "_id")
        seen[rid] = line
        if kind == "query" and title:  # a query is read like a document with the same fields: title, then text
            text, title = (f"{title}. {text}" if text.strip() else title), None
        records.append(Record(rid, text, lang, _string(obj, "parallel_id", path, line, required=False), title, line))
    return records


def passage_text(record: Record) -> str:
    """What the model reads for a document: its title, when it has one, then its text."""
    return f"{record.title}. {record.text}" if record.title else record.text


QRELS_SUFFIXES = (".tsv", ".txt", ".qrels")
_BEIR_FIELDS = ("query-id", "corpus-id", "score")
_TREC_FIELDS = ("query-id", "iteration", "corpus-id", "score")
_BEIR_HEADER = "query-id<TAB>corpus-id<TAB>score"


def _decode(path: Path) -> str:
    """A whole input file as text; a UTF-8 byte-order mark is accepted and dropped."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"invalid UTF-8 at byte {exc.start}", path, line) from None


def _score(raw: str, path: Path, line: int, field: str) -> float:
    try:
        score = float(raw)
    except ValueError:
        raise InputError(f"score {raw!r} is not a number", path, line, field) from None
    if not math.isfinite(score):
        raise InputError(f"score {raw!r} is not a finite number", path, line, field)
    return score


def _is_number(raw: str) -> bool:
    try:
        float(raw)
    except ValueError:
        return False
    return True


def read_qrels(path: str | Path, query_ids: set[str], doc_ids: set[str]) -> dict[str, dict[str, float]]:
    """Judgements from BEIR TSV (`query-id<TAB>corpus-id<TAB>score`, header line) or TREC qrels
    (`qid iteration docid relevance`, whitespace-separated, no header), told apart by the number of columns.
    Scores are numbers, > 0 is relevant; the same pair judged twice with different scores is an error."""
    path = Path(path)
    qrels: dict[str, dict[str, float]] = {}
    judged_on: dict[tuple[str, str], tuple[int, float]] = {}
    fmt: tuple[str, int] | None = None  # (format name, line it was recognised on)
    for line, raw_line in enumerate(_decode(path).splitlines(), start=1):
        if not raw_line.strip():
            continue
        row = [c.strip() for c in raw_line.split("\t")]  # BEIR: 3 tab-separated columns (ids may hold spaces)
        if len(row) != 3:
            row = raw_line.split()  # TREC: 4 columns separated by any whitespace
        shape = {3: "BEIR", 4: "TREC"}.get(len(row))
        if shape is None:
            raise InputError(f"expected 3 tab-separated columns ({_BEIR_HEADER}, BEIR) or 4 whitespace-separated "
                             f"columns (qid iteration docid relevance, TREC), got {len(row)}", path, line)
        if fmt is None and not _is_number(row[-1]):
            if shape == "BEIR" and row[:2] == ["query-id", "corpus-id"]:
                fmt = ("BEIR", line)
                continue
            expected = (f"BEIR's header {_BEIR_HEADER}" if shape == "BEIR" else
                        "no header (TREC qrels: qid iteration docid relevance)")
            raise InputError(f"header {' '.join(row)!r} is not a qrels header: expected {expected}", path, line)
        if fmt is None:
            fmt = (shape, line)
        elif shape != fmt[0]:
            raise InputError(f"{len(row)} columns, but line {fmt[1]} made this a {fmt[0]} qrels file "
                             f"({3 if fmt[0] == 'BEIR' else 4} columns)", path, line)
        names = _BEIR_FIELDS if shape == "BEIR" else _TREC_FIELDS
        qid, did, score_raw = (row[0], row[1], row[2]) if shape == "BEIR" else (row[0], row[2], row[3])
        if qid not in query_ids:
            raise InputError(f"unknown query id {qid!r}", path, line, names[0])
        if did not in doc_ids:
            raise InputError(f"unknown corpus id {did!r}", path, line, names[-2])
        score = _score(score_raw, path, line, names[-1])
        previous = judged_on.get((qid, did))
        if previous is not None and previous[1] != score:
            raise InputError(f"conflicting judgements of ({qid!r}, {did!r}): score {previous[1]:g} on line "
                             f"{previous[0]}, {score:g} on line {line}", path, line, names[-1])
        judged_on[(qid, did)] = (line, score)
        qrels.setdefault(qid, {})[did] = score
    return qrels


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(_decode(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON ({exc.msg}, line {exc.lineno} column {exc.colno})", path, exc.lineno) from None
    except RecursionError:
        raise InputError("JSON nested too deeply", path) from None
    if not isinstance(meta, dict):
        raise InputError(f"expected a JSON object, got {type(meta).__name__}", path)
    return meta


def _qrels_file(qrels_dir: Path, split: str | None) -> Path | None:
    files = sorted(f for f in qrels_dir.iterdir() if f.suffix in QRELS_SUFFIXES and f.is_file())
    by_split: dict[str, Path] = {}
    for f in files:
        if f.stem in by_split:
            raise InputError(f"two qrels files for split {f.stem!r}: {by_split[f.stem].name} and {f.name}", qrels_dir)
        by_split[f.stem] = f
    if split is not None:
        if split not in by_split:
            raise InputError(f"no qrels for split {split!r}", qrels_dir)
        return by_split[split]
    if not by_split:
        return None
    return by_split.get("test", files[0])


def check_trec_ids(corpus: "Corpus") -> None:
    """TREC run files separate fields by whitespace, so an id that contains whitespace cannot be written."""
    for name, records in (("corpus.jsonl", corpus.docs), ("queries.jsonl", corpus.queries)):
        for r in records:
            if any(c.isspace() for c in r.id):
                raise InputError(f"id {r.id!r} contains whitespace, which a TREC run file (--runs) cannot hold",
                                 corpus.path / name, r.line or None, "_id")


def corpus_input(root: Path, name: str) -> Path | None:
    """ROOT/NAME.jsonl or ROOT/NAME.jsonl.gz, whichever exists (both is an error), else None."""
    found = [f for f in (root / f"{name}.jsonl", root / f"{name}.jsonl.gz") if f.exists()]
    if len(found) > 1:
        raise InputError(f"both {found[0].name} and {found[1].name} exist; keep one", root)
    return found[0] if found else None


def corpus_files(root: str | Path) -> list[Path]:
    """Every file of a corpus directory that `load_corpus` may read: an output must never be one of them."""
    root = Path(root)
    names = ["corpus.jsonl", "corpus.jsonl.gz", "queries.jsonl", "queries.jsonl.gz", "meta.json", "train.jsonl"]
    files = [root / n for n in names]
    if (root / "qrels").is_dir():
        files += sorted(f for f in (root / "qrels").iterdir() if f.suffix in QRELS_SUFFIXES)
    return files


def load_corpus(path: str | Path, split: str | None = None) -> Corpus:
    """Load and validate a corpus directory; every problem is a located InputError."""
    root = Path(path)
    if root.is_file():
        raise InputError("is a file; expected a corpus directory (holding corpus.jsonl, queries.jsonl and qrels/)"
                         + (f": give its directory, {root.parent}" if root.name.startswith(("corpus.", "queries."))
                            else ""), root)
    if not root.is_dir():
        raise InputError("corpus directory not found", root)
    corpus_file = corpus_input(root, "corpus") or root / "corpus.jsonl"
    docs = read_records(corpus_file, "document")
    if not docs:
        raise InputError("empty corpus: no documents", corpus_file)
    queries_file = corpus_input(root, "queries")
    queries = read_records(queries_file, "query") if queries_file is not None else []
    qrels: dict[str, dict[str, float]] = {}
    qrels_dir = root / "qrels"
    chosen_split = None
    qrels_path = _qrels_file(qrels_dir, split) if qrels_dir.is_dir() else None
    if qrels_path is None and split is not None:
        raise InputError(f"no qrels for split {split!r}", qrels_dir)
    if qrels_path is not None:
        chosen_split = qrels_path.stem
        qrels = read_qrels(qrels_path, {q.id for q in queries}, {d.id for d in docs})
    meta = _read_meta(root / "meta.json") if (root / "meta.json").is_file() else {}
    files = [f for f in (corpus_file, queries_file, qrels_path) if f is not None]
    return Corpus(root, docs, queries, qrels, meta, chosen_split, files=files)
