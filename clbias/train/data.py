"""Training data: triplet files and the builder that makes them from a probe set's `train.jsonl`.

Triplets (one JSON object a line): {"q_en": English query, "p_en": English passage, "p_tgt": the passage
in the target language, "lang": target language, "q_tgt": optional query in the target language,
"parallel_id": optional unit id}.

A probe builder writes, next to an evaluation corpus, `<split>.jsonl` of parallel units that never appear
in that corpus: {"parallel_id", "texts": {lang: passage}, "queries": {lang: query}}.
"""
from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import InputError
from ..io import read_jsonl, write_text_atomic
from ..langs import normalize_lang

TRIPLET_FIELDS = ("q_en", "p_en", "p_tgt")
UNK_SHARE_LIMIT = 0.5  # a language mostly read as <unk> cannot be learnt with this tokenizer
DEFAULT_N = 2800


@dataclass(frozen=True)
class Triplet:
    q_en: str
    p_en: str
    p_tgt: str
    lang: str
    parallel_id: str | None = None
    line: int = 0
    q_tgt: str | None = None


@dataclass(frozen=True)
class Unit:
    parallel_id: str
    texts: dict[str, str]
    queries: dict[str, str]
    line: int


def read_triplets(path: str | Path) -> list[Triplet]:
    """Read and validate a triplet file; every problem is an InputError naming file, line and field."""
    path = Path(path)
    out: list[Triplet] = []
    for line, obj in read_jsonl(path):
        values = {}
        for key in (*TRIPLET_FIELDS, "lang"):
            value = obj.get(key)
            if value is None:
                raise InputError("missing", path, line, key)
            if not isinstance(value, str):
                raise InputError(f"expected a string, got {type(value).__name__}", path, line, key)
            if not value.strip():
                raise InputError("empty text", path, line, key)
            values[key] = value
        lang = normalize_lang(values["lang"])
        if lang is None:
            raise InputError(f"unknown language code {values['lang']!r}", path, line, "lang")
        if lang == "en":
            raise InputError("the target language must not be English", path, line, "lang")
        q_tgt = obj.get("q_tgt")
        if q_tgt is not None and (not isinstance(q_tgt, str) or not q_tgt.strip()):
            raise InputError("expected a non-empty string (or no field)", path, line, "q_tgt")
        pid = obj.get("parallel_id")
        out.append(Triplet(values["q_en"], values["p_en"], values["p_tgt"], lang,
                           None if pid is None else str(pid), line, q_tgt))
    if len(out) < 2:
        raise InputError(f"{len(out)} triplet(s): InfoNCE needs at least 2", path)
    return out


def check_tokenizable(triplets: Sequence[Triplet], tokenizer_file: Path, path: str | Path) -> None:
    """Refuse a language whose texts come out (mostly) as <unk>: training on it would teach nothing."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    unk = _unk_id(tokenizer)
    if unk is None:
        return
    by_lang: dict[str, list[Triplet]] = {}
    for t in triplets:
        by_lang.setdefault(t.lang, []).append(t)
    groups = {"en": [t.p_en for t in triplets[:200]] + [t.q_en for t in triplets[:200]]}
    groups.update({lang: [t.p_tgt for t in rows] for lang, rows in by_lang.items()})
    for lang, texts in groups.items():
        share = _unk_share(tokenizer, unk, texts)
        if share > UNK_SHARE_LIMIT:
            first = by_lang[lang][0].line if lang in by_lang else None
            raise InputError(f"language {lang!r}: {share:.0%} of its characters tokenise to <unk> in the base "
                             f"model's tokenizer ({tokenizer_file}); this model cannot read that language",
                             path, first, "p_tgt" if lang in by_lang else "p_en")


def _unk_share(tokenizer: Any, unk: int, texts: list[str]) -> float:
    """Share of the non-space characters that end up inside <unk> tokens (a word of an unknown script
    is one <unk> between known word markers, so counting tokens would understate it)."""
    covered = total = 0
    for text, encoding in zip(texts, tokenizer.encode_batch(texts, add_special_tokens=False)):
        total += sum(1 for ch in text if not ch.isspace())
        covered += sum(end - start for i, (start, end) in zip(encoding.ids, encoding.offsets) if i == unk)
    return min(1.0, covered / total) if total else 0.0


def _unk_id(tokenizer: Any) -> int | None:
    for token in ("<unk>", "[UNK]"):
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return int(token_id)
    return None


def sha256_text_file(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------- builder


def read_units(path: str | Path) -> list[Unit]:
    """Parallel units `{parallel_id, texts: {lang: text}, queries: {lang: text}}`, validated."""
    path = Path(path)
    units: list[Unit] = []
    seen: dict[str, int] = {}
    for line, obj in read_jsonl(path):
        pid = obj.get("parallel_id")
        if pid is None or (isinstance(pid, str) and not pid):
            raise InputError("missing", path, line, "parallel_id")
        if not isinstance(pid, (str, int)) or isinstance(pid, bool):
            raise InputError(f"expected a string, got {type(pid).__name__}", path, line, "parallel_id")
        pid = str(pid)
        if pid in seen:
            raise InputError(f"duplicate unit {pid!r} (first on line {seen[pid]})", path, line, "parallel_id")
        seen[pid] = line
        units.append(Unit(pid, _lang_map(obj, "texts", path, line, required=True),
                          _lang_map(obj, "queries", path, line, required=False), line))
    if not units:
        raise InputError("no parallel units", path)
    return units


def _lang_map(obj: dict[str, Any], key: str, path: Path, line: int, required: bool) -> dict[str, str]:
    value = obj.get(key)
    if value is None:
        if required:
            raise InputError("missing", path, line, key)
        return {}
    if not isinstance(value, dict):
        raise InputError(f"expected an object {{lang: text}}, got {type(value).__name__}", path, line, key)
    out: dict[str, str] = {}
    for raw, text in value.items():
        lang = normalize_lang(raw)
        if lang is None:
            raise InputError(f"unknown language code {raw!r}", path, line, key)
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"language {raw!r}: expected a non-empty string", path, line, key)
        out[lang] = text
    return out


def evaluation_units(corpus_dir: str | Path, training_split: str | None = None) -> set[str]:
    """Every unit id the evaluation corpus uses: documents' and queries' parallel_ids, those of judged
    documents included (qrels of `training_split` aside: they judge the training units themselves).
    Read leniently: this is a leak check, not validation."""
    root = Path(corpus_dir)
    ids: set[str] = set()
    doc_pid: dict[str, str] = {}
    for name in ("corpus.jsonl", "queries.jsonl"):
        file = root / name
        if not file.is_file():
            continue
        for _, obj in read_jsonl(file):
            if obj.get("parallel_id") is not None:
                ids.add(str(obj["parallel_id"]))
                if name == "queries.jsonl" and str(obj["parallel_id"]).startswith("q-"):
                    ids.add(str(obj["parallel_id"])[2:])  # the probe builders' query ids: q-<unit>
                if name == "corpus.jsonl" and obj.get("_id") is not None:
                    doc_pid[str(obj["_id"])] = str(obj["parallel_id"])
    for qrels in sorted((root / "qrels").glob("*.tsv")) if (root / "qrels").is_dir() else []:
        if qrels.stem == training_split:
            continue
        with open(qrels, encoding="utf-8", newline="") as fh:
            for row in csv.reader(fh, delimiter="\t"):
                if len(row) >= 2 and row[1] in doc_pid:
                    ids.add(doc_pid[row[1]])
    return ids


def build_triplets(corpus_dir: str | Path, split: str = "train", langs: Sequence[str] | None = None,
                   n: int = DEFAULT_N, seed: int = 0, hold_out: Sequence[str] = ()
                   ) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Triplets from `CORPUS_DIR/<split>.jsonl`, balanced over the target languages, seeded.

    Each (unit, language) pair is used at most once, and a unit is reused for a second language only when
    a language has run out of unused units. A triplet carries `q_tgt` where the unit has a query in its
    language. `hold_out` languages never enter a triplet (they stay for evaluation); each must occur in the
    units. Refuses any unit that the evaluation corpus beside it uses, naming the first one in file order.
    Returns (triplets, summary).
    """
    root = Path(corpus_dir)
    path = root / f"{split}.jsonl"
    if not path.is_file():
        raise InputError(f"no {split}.jsonl of training units beside the corpus (build the probe set with its "
                         f"training split)", path)
    if n < 2:
        raise InputError(f"must be >= 2, got {n}", field="n")
    units = read_units(path)
    leaked = evaluation_units(root, split)
    for unit in units:  # file order: the first shared parallel_id is the one named
        if unit.parallel_id in leaked:
            raise InputError(f"unit {unit.parallel_id!r} is also in the evaluation corpus {root}: training on it "
                             f"would leak the test set", path, unit.line, "parallel_id")
    usable = [u for u in units if "en" in u.texts and "en" in u.queries]
    available = sorted({lang for u in usable for lang in u.texts if lang != "en"})
    held = _held_out(hold_out, available, langs, path)
    wanted = [lang for lang in _wanted_langs(langs, available, path) if lang not in held]
    if not wanted:
        raise InputError(f"holding out {', '.join(held)} leaves no target language to train on", path)
    candidates = {lang: [u for u in usable if lang in u.texts] for lang in wanted}
    rng = np.random.default_rng(seed)
    orders = {lang: [rows[i] for i in rng.permutation(len(rows))] for lang, rows in candidates.items()}
    quotas = {lang: n // len(wanted) + (1 if i < n % len(wanted) else 0) for i, lang in enumerate(wanted)}
    picked = _round_robin(wanted, orders, quotas)
    triplets = [{"q_en": u.queries["en"], "p_en": u.texts["en"], "p_tgt": u.texts[lang], "lang": lang,
                 **({"q_tgt": u.queries[lang]} if lang in u.queries else {}), "parallel_id": u.parallel_id}
                for u, lang in picked]
    triplets = [triplets[i] for i in rng.permutation(len(triplets))]
    counts = Counter(t["lang"] for t in triplets)
    summary = {"source": str(path), "units": len(units), "usable_units": len(usable), "requested": n,
               "short": {lang: quotas[lang] - counts.get(lang, 0) for lang in wanted
                         if counts.get(lang, 0) < quotas[lang]},
               "share": dict(quotas), "seed": seed, "held_out": held, **_counts(triplets, wanted)}
    return triplets, summary


def _counts(triplets: Sequence[dict[str, str]], langs: Sequence[str]) -> dict[str, Any]:
    counts = Counter(t["lang"] for t in triplets)
    return {"written": len(triplets), "per_lang": {lang: counts.get(lang, 0) for lang in langs},
            "distinct_units": len({t["parallel_id"] for t in triplets}),
            "with_q_tgt": sum(1 for t in triplets if "q_tgt" in t)}


def build_triplet_split(corpus_dir: str | Path, val_units: int, split: str = "train",
                        langs: Sequence[str] | None = None, n: int = DEFAULT_N, seed: int = 0,
                        hold_out: Sequence[str] = ()
                        ) -> tuple[list[dict[str, str]], list[dict[str, str]], dict[str, Any]]:
    """`build_triplets`, then the triplets of `val_units` units moved to a validation list
    (`split_validation`). Returns (training, validation, summary of the training triplets)."""
    triplets, summary = build_triplets(corpus_dir, split, langs, n, seed, hold_out=hold_out)
    train, val = split_validation(triplets, val_units, seed)
    return train, val, {**summary, **_counts(train, list(summary["per_lang"])),
                        "validation": {"units": val_units, "written": len(val)}}


def _held_out(hold_out: Sequence[str], available: list[str], langs: Sequence[str] | None, path: Path) -> list[str]:
    held = []
    for raw in hold_out:
        lang = normalize_lang(raw)
        if lang is None:
            raise InputError(f"unknown language code {raw!r}", field="hold-out")
        if lang == "en":
            raise InputError("English is every triplet's source language; it cannot be held out", field="hold-out")
        if lang not in available:
            raise InputError(f"held-out language {lang!r} is in no training unit, so holding it out means nothing "
                             f"(available: {', '.join(available)})", path)
        if langs is not None and lang in {normalize_lang(x) for x in langs}:
            raise InputError(f"language {lang!r} is both in --langs and held out", field="hold-out")
        held.append(lang)
    return held


def _wanted_langs(langs: Sequence[str] | None, available: list[str], path: Path) -> list[str]:
    if not available:
        raise InputError("no unit has an English query, an English passage and a passage in another language", path)
    if langs is None:
        return available
    wanted = []
    for raw in langs:
        lang = normalize_lang(raw)
        if lang is None:
            raise InputError(f"unknown language code {raw!r}", field="langs")
        if lang == "en":
            continue
        if lang not in available:
            raise InputError(f"no training unit has language {lang!r} (available: {', '.join(available)})", path)
        if lang not in wanted:
            wanted.append(lang)
    if not wanted:
        raise InputError("no target language other than English", field="langs")
    return wanted


def _round_robin(langs: list[str], orders: dict[str, list[Unit]], quotas: dict[str, int]) -> list[tuple[Unit, str]]:
    used: set[str] = set()
    position = {lang: 0 for lang in langs}
    deferred: dict[str, list[Unit]] = {lang: [] for lang in langs}
    taken = {lang: 0 for lang in langs}
    picked: list[tuple[Unit, str]] = []
    active = [lang for lang in langs if quotas[lang] > 0]
    while active:
        still = []
        for lang in active:
            unit = _next_unit(orders[lang], position, lang, used, deferred[lang])
            if unit is None:
                continue
            used.add(unit.parallel_id)
            picked.append((unit, lang))
            taken[lang] += 1
            if taken[lang] < quotas[lang]:
                still.append(lang)
        active = still
    return picked


def _next_unit(order: list[Unit], position: dict[str, int], lang: str, used: set[str],
               deferred: list[Unit]) -> Unit | None:
    """The next unit no language has used yet; once none is left, the units this language skipped."""
    while position[lang] < len(order):
        unit = order[position[lang]]
        position[lang] += 1
        if unit.parallel_id not in used:
            return unit
        deferred.append(unit)
    return deferred.pop(0) if deferred else None


def split_validation(triplets: list[dict[str, str]], units: int, seed: int
                     ) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(training, validation): the triplets of `units` seeded-random units (by parallel_id, so no unit is
    on both sides) go to validation; file order is kept on both sides."""
    ids = list(dict.fromkeys(t["parallel_id"] for t in triplets))
    if units < 1 or units >= len(ids):
        raise InputError(f"must be between 1 and {len(ids) - 1} (the triplets come from {len(ids)} units), "
                         f"got {units}", field="val_units")
    chosen = set(np.random.default_rng([seed, 1]).choice(len(ids), size=units, replace=False).tolist())
    val_ids = {ids[i] for i in chosen}
    return ([t for t in triplets if t["parallel_id"] not in val_ids],
            [t for t in triplets if t["parallel_id"] in val_ids])


def write_triplets(out: str | Path, triplets: Iterable[dict[str, str]]) -> None:
    write_text_atomic(out, "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in triplets))
