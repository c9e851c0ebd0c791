"""Training-free alignment: subtract a per-language mean offset from document embeddings at index time.

For each language X the offset is the mean of (embedding of an X document - embedding of its English twin)
over parallel pairs (the idea of arXiv 2606.18801). At index time X documents get `v - offset_X`, then are
re-normalised when the model normalises; English documents, documents in languages without an offset, and
all queries are left as they are. Needs numpy only.

The fit is stored as JSON beside the exported model (`exported/NAME/shift.json`), with the sha256 of the
graph it was fitted with: embeddings of another graph live in another space, so such a shift is refused.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import InputError, ModelError
from .io import read_jsonl, write_json_atomic
from .langs import ENGLISH, base_lang, normalize_lang
from .runtime.manifest import load_manifest

SHIFT_FILE = "shift.json"
SHIFT_SCHEMA = "clbias.shift/1"
ID_KEYS = ("_id", "id", "parallel_id")


@dataclass(frozen=True)
class Shift:
    model_sha256: str
    onnx: str
    normalize: bool
    offsets: dict[str, np.ndarray]  # language -> offset vector (float32, [dim])
    n_pairs: dict[str, int]
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(next(iter(self.offsets.values())).shape[0]) if self.offsets else 0

    @property
    def langs(self) -> list[str]:
        return sorted(self.offsets)

    def offset_for(self, lang: str) -> np.ndarray | None:
        if normalize_lang(lang) == ENGLISH:
            return None
        return self.offsets.get(lang, self.offsets.get(base_lang(lang)))

    def apply(self, doc_vectors: np.ndarray, doc_langs: Sequence[str]) -> np.ndarray:
        """Shifted copy of `doc_vectors` ([n, dim]); rows of English or unfitted languages are unchanged."""
        vectors = np.asarray(doc_vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(doc_langs):
            raise ValueError(f"expected [n, dim] vectors for {len(doc_langs)} languages, got {vectors.shape}")
        if self.offsets and vectors.shape[1] != self.dim:
            raise ModelError(f"shift is {self.dim}-d but the vectors are {vectors.shape[1]}-d")
        out = vectors.copy()
        langs = np.asarray(list(doc_langs), dtype=object)
        for lang in sorted(set(langs.tolist())):
            offset = self.offset_for(lang)
            if offset is None:
                continue
            rows = np.flatnonzero(langs == lang)
            shifted = out[rows] - offset
            if self.normalize:
                shifted /= np.maximum(np.linalg.norm(shifted, axis=1, keepdims=True), 1e-12)
            out[rows] = shifted
        return out

    def to_json(self) -> dict[str, Any]:
        return {"schema": SHIFT_SCHEMA, "model_sha256": self.model_sha256, "onnx": self.onnx,
                "normalize": self.normalize, "dim": self.dim, "source": self.source,
                "langs": {lang: {"n_pairs": self.n_pairs[lang], "norm": round(float(np.linalg.norm(v)), 6),
                                 "offset": [float(x) for x in v]} for lang, v in sorted(self.offsets.items())}}

    @classmethod
    def from_json(cls, data: Any, path: Path) -> "Shift":
        if not isinstance(data, dict) or data.get("schema") != SHIFT_SCHEMA:
            raise ModelError(f"{path}: field 'schema': expected {SHIFT_SCHEMA!r}")
        for key in ("model_sha256", "onnx", "langs"):
            if key not in data:
                raise ModelError(f"{path}: field '{key}' is missing")
        langs = data["langs"]
        if not isinstance(langs, dict):
            raise ModelError(f"{path}: field 'langs': expected an object")
        offsets: dict[str, np.ndarray] = {}
        n_pairs: dict[str, int] = {}
        for lang, entry in langs.items():
            try:
                offsets[lang] = np.asarray(entry["offset"], dtype=np.float32)
                n_pairs[lang] = int(entry["n_pairs"])
            except (KeyError, TypeError, ValueError):
                raise ModelError(f"{path}: field 'langs.{lang}': expected offset and n_pairs") from None
        if len({v.shape for v in offsets.values()}) > 1 or any(v.ndim != 1 for v in offsets.values()):
            raise ModelError(f"{path}: field 'langs': offsets differ in shape")
        return cls(str(data["model_sha256"]), str(data["onnx"]), bool(data.get("normalize", True)), offsets, n_pairs,
                   data.get("source") or {})

    def save(self, model_dir: str | Path) -> Path:
        path = Path(model_dir) / SHIFT_FILE
        write_json_atomic(path, self.to_json())
        return path


def fit_shift(english: np.ndarray, others: np.ndarray, langs: Sequence[str], model_sha256: str, onnx: str,
              normalize: bool = True, source: dict[str, Any] | None = None) -> Shift:
    """Offsets from pairs: row i of `others` (language langs[i]) is the translation of row i of `english`."""
    english = np.asarray(english, dtype=np.float64)
    others = np.asarray(others, dtype=np.float64)
    if english.shape != others.shape or english.shape[0] != len(langs):
        raise ValueError("english, others and langs must have one row per pair")
    label = np.asarray(list(langs), dtype=object)
    offsets, counts = {}, {}
    for lang in sorted(set(label.tolist())):
        if lang == ENGLISH:
            continue
        rows = label == lang
        offsets[lang] = (others[rows] - english[rows]).mean(axis=0).astype(np.float32)
        counts[lang] = int(rows.sum())
    return Shift(model_sha256, onnx, normalize, offsets, counts, source or {})


def load_shift(model_dir: str | Path, onnx: str | None = None) -> Shift | None:
    """The shift fitted for this model's graph (`onnx`, default the manifest's), or None if there is none.

    Raises ModelError when the file is damaged or was fitted for another graph (another sha256)."""
    model_dir = Path(model_dir)
    path = model_dir / SHIFT_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelError(f"{path}: malformed shift file ({exc})") from None
    shift = Shift.from_json(data, path)
    manifest = load_manifest(model_dir, verify=False)
    graph = onnx or manifest.onnx
    expected = manifest.files.get(graph)
    if expected != shift.model_sha256:
        raise ModelError(f"{path}: fitted for model sha256 {shift.model_sha256[:12]}… ({shift.onnx}), but "
                         f"{graph} is {str(expected)[:12]}…; refit it with `clbias shift fit --model {model_dir}"
                         f"{'' if graph == manifest.onnx else ' --onnx ' + graph}`")
    if manifest.dim and shift.offsets and shift.dim != manifest.dim:
        raise ModelError(f"{path}: shift is {shift.dim}-d but the model is {manifest.dim}-d")
    return shift


def read_pairs(path: str | Path, langs: Sequence[str] | None = None) -> list[tuple[str, str, str]]:
    """(lang, English text, text in lang) from rows `{"en": ..., "<lang>": ...}` or
    `{"parallel_id", "texts": {lang: text}}` (a probe set's train.jsonl)."""
    path = Path(path)
    wanted = None if langs is None else {_lang(raw, path, None, "langs") for raw in langs}
    pairs: list[tuple[str, str, str]] = []
    for line, obj in read_jsonl(path):
        texts = obj.get("texts") if "texts" in obj else {k: v for k, v in obj.items() if k not in ID_KEYS}
        where = "texts" if "texts" in obj else None
        if not isinstance(texts, dict):
            raise InputError(f"expected an object {{lang: text}}, got {type(texts).__name__}", path, line, "texts")
        row: dict[str, str] = {}
        for raw, text in texts.items():
            lang = _lang(raw, path, line, where or raw)
            if not isinstance(text, str) or not text.strip():
                raise InputError("expected a non-empty string", path, line, f"{where}.{raw}" if where else raw)
            row[lang] = text
        if ENGLISH not in row:
            raise InputError("no English text to pair with", path, line, f"{where}.en" if where else "en")
        pairs.extend((lang, row[ENGLISH], text) for lang, text in row.items()
                     if lang != ENGLISH and (wanted is None or lang in wanted))
    if not pairs:
        raise InputError("no pairs of English and another language" + (" in the chosen languages" if wanted else ""),
                         path)
    return pairs


def _lang(raw: str, path: Path, line: int | None, field_name: str) -> str:
    lang = normalize_lang(raw)
    if lang is None:
        raise InputError(f"unknown language code {raw!r}", path, line, field_name)
    return lang


def cross_language_offset(english: np.ndarray, others: np.ndarray) -> float:
    """Norm of the mean difference between paired rows: what the shift removes."""
    return float(np.linalg.norm((np.asarray(others, np.float64) - np.asarray(english, np.float64)).mean(axis=0)))
