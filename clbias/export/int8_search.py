"""int8 recipes for an exported model: calibration text, measured per-node error, one graph per recipe.

A recipe is a QuantSettings plus `exclude_top`: how many of the quantisable nodes with the largest
*measured* error stay in fp32. A node's error is measured, not guessed: the fp32 graph is run on the
calibration text with every candidate node's inputs exposed, each node's inputs are quantised in numpy the
way onnxruntime does for that recipe (weights per tensor or per output channel, QInt8 symmetric or QUInt8
asymmetric; activations per call for dynamic, with calibrated ranges for static), and the error is
||Y_int8 - Y|| / ||Y|| of that node's own output on those activations. This reproduces onnxruntime's
arithmetic exactly (tests/test_int8_recipes.py), except that u8 x s8 kernels on CPUs without VNNI saturate
int16 pair sums, which adds a little error (about 1% of a node's error on the tiny model) not modelled here.

`build_recipe` writes `model.int8-RECIPE.onnx` beside the fp32 graph and records in the manifest its
settings, the nodes kept in fp32 with their errors, the calibration text's languages and the drift from
fp32 (cosine on the fixed multilingual sample of export/verify.py). The default graph is not changed here.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..errors import InputError, ModelError
from ..io import read_jsonl, sha256_file
from ..langs import normalize_lang
from ..runtime.encoder import Encoder, Kind, length_batches
from ..runtime.manifest import Manifest, load_manifest
from . import verify
from .quantize import Feed, QuantSettings, quantize_file

FP32_FILE = "model.onnx"
ENGLISH = "en"
CALIBRATION_MAX_TOKENS = 256  # calibration texts are cut here (ranges of longer texts barely differ)
CALIBRATION_BATCH_TOKENS = 2048
DRIFT_BATCH = 8


@dataclass(frozen=True)
class Recipe:
    name: str
    settings: QuantSettings
    exclude_top: int = 0  # nodes with the largest measured error kept in fp32
    note: str = ""

    @property
    def file(self) -> str:
        return f"model.int8-{self.name}.onnx"

    @property
    def needs_calibration(self) -> bool:
        return self.settings.mode == "static" or self.exclude_top > 0


_PC_S8 = QuantSettings(weight_type="qint8", per_channel=True, op_types=("MatMul",))
RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("dyn-pc-s8-gather", replace(_PC_S8, op_types=("MatMul", "Gather")),
           note="today's model.int8.onnx: dynamic, per-channel QInt8, MatMul + embedding Gather"),
    Recipe("dyn-pt-s8", replace(_PC_S8, per_channel=False), note="per-tensor weights"),
    Recipe("dyn-pc-s8", _PC_S8, note="embedding Gather left in fp32"),
    Recipe("dyn-pc-u8", replace(_PC_S8, weight_type="quint8"), note="QUInt8 weights"),
    Recipe("dyn-pc-s8-x8", _PC_S8, exclude_top=8, note="the 8 nodes of largest measured error in fp32"),
    Recipe("dyn-pc-s8-x16", _PC_S8, exclude_top=16, note="the 16 nodes of largest measured error in fp32"),
    Recipe("dyn-pc-u8-x8", replace(_PC_S8, weight_type="quint8"), exclude_top=8,
           note="QUInt8 weights, the 8 nodes of largest measured error in fp32"),
    Recipe("dyn-pc-u8-x16", replace(_PC_S8, weight_type="quint8"), exclude_top=16,
           note="QUInt8 weights, the 16 nodes of largest measured error in fp32"),
    Recipe("static-pc-s8", replace(_PC_S8, mode="static"),
           note="static QDQ, activation ranges calibrated on multilingual text"),
    Recipe("static-pc-s8-x8", replace(_PC_S8, mode="static"), exclude_top=8,
           note="static, the 8 nodes of largest measured error in fp32"),
)}


# ---------------------------------------------------------------- calibration text


@dataclass(frozen=True)
class CalibrationText:
    text: str
    lang: str
    kind: Kind  # "query" or "passage": the model sees them with different prefixes


@dataclass
class Calibration:
    source: str
    texts: list[CalibrationText]

    @property
    def langs(self) -> dict[str, int]:
        return dict(sorted(Counter(t.lang for t in self.texts).items()))

    def to_json(self) -> dict[str, Any]:
        kinds = Counter(t.kind for t in self.texts)
        return {"source": self.source, "texts": len(self.texts), "langs": self.langs, "kinds": dict(kinds),
                "max_tokens": CALIBRATION_MAX_TOKENS, "sha256": self.digest}

    @property
    def digest(self) -> str:
        """Identifies the exact texts (a graph built on other calibration text is a different graph)."""
        h = hashlib.sha256()
        for t in self.texts:
            h.update(f"{t.lang}\t{t.kind}\t{t.text}\n".encode())
        return h.hexdigest()


def read_calibration(path: str | Path, per_language: int = 8, seed: int = 0) -> Calibration:
    """Calibration text from a probe set's train.jsonl ({"texts": {lang: passage}, "queries": {lang: query}}),
    a corpus.jsonl/queries.jsonl ({"text", "lang"}), or a directory holding one of them (train.jsonl first).

    Up to `per_language` passages and as many queries per language, picked by a seeded hash (so the same
    file gives the same texts). Refused unless it covers English and at least one other language: a
    quantiser calibrated on English alone is a known failure for multilingual models.
    """
    path = Path(path)
    files = _calibration_files(path)
    picked: dict[tuple[str, Kind], list[tuple[str, str]]] = {}
    for file in files:
        for line, row in read_jsonl(file):
            for key, lang, kind, text in _row_texts(file, line, row):
                picked.setdefault((lang, kind), []).append((_rank(seed, f"{file.name}:{key}:{lang}:{kind}"), text))
    texts = [CalibrationText(text, lang, kind) for (lang, kind), rows in sorted(picked.items())
             for _, text in sorted(rows)[:per_language]]
    langs = sorted({t.lang for t in texts})
    if not texts:
        raise InputError("no calibration text found (expected rows with 'texts'/'queries' or 'text'+'lang')", files[0])
    if len(langs) < 2 or langs == [ENGLISH] or ENGLISH not in langs:
        raise InputError(f"calibration text must cover English and other languages (found only "
                         f"{', '.join(langs)}); an int8 graph calibrated on one language drifts on the others",
                         files[0])
    return Calibration(", ".join(str(f) for f in files), texts)


def _calibration_files(path: Path) -> list[Path]:
    if path.is_dir():
        for names in (("train.jsonl",), ("corpus.jsonl", "queries.jsonl")):
            found = [path / n for n in names if (path / n).is_file()]
            if found:
                return found
        raise InputError("no train.jsonl or corpus.jsonl to calibrate on", path)
    if not path.is_file():
        raise InputError("calibration file not found", path)
    return [path]


def _row_texts(file: Path, line: int, row: dict[str, Any]) -> Iterator[tuple[str, str, Kind, str]]:
    key = str(row.get("parallel_id") or row.get("_id") or line)
    if "texts" in row or "queries" in row:
        fields: tuple[tuple[str, Kind], ...] = (("texts", "passage"), ("queries", "query"))
        for field_name, kind in fields:
            value = row.get(field_name) or {}
            if not isinstance(value, dict):
                raise InputError(f"expected an object of language -> text, got {type(value).__name__}", file, line,
                                 field_name)
            for raw_lang, text in value.items():
                lang = normalize_lang(raw_lang)
                if lang is None:
                    raise InputError(f"unknown language code {raw_lang!r}", file, line, field_name)
                if isinstance(text, str) and text.strip():
                    yield key, lang, kind, text
        return
    text, raw_lang = row.get("text"), row.get("lang")
    if not isinstance(text, str):
        raise InputError("missing or not a string", file, line, "text")
    if not isinstance(raw_lang, str) or normalize_lang(raw_lang) is None:
        raise InputError(f"missing or unknown language {raw_lang!r}: calibration needs each text's language",
                         file, line, "lang")
    if text.strip():
        text_kind: Kind = "query" if file.name.startswith("queries") else "passage"
        yield key, str(normalize_lang(raw_lang)), text_kind, text


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def calibration_feeds(encoder: Encoder, calibration: Calibration) -> list[Feed]:
    """The graph inputs for the calibration texts, padded per length-sorted batch as the runtime pads."""
    feeds: list[Feed] = []
    for kind in ("query", "passage"):
        texts = [t.text for t in calibration.texts if t.kind == kind]
        if not texts:
            continue
        ids, _ = encoder.tokenize(texts, kind)
        ids = [row if len(row) <= CALIBRATION_MAX_TOKENS else row[:CALIBRATION_MAX_TOKENS - 1] + row[-1:]
               for row in ids]
        for batch in length_batches([len(r) for r in ids], 64, CALIBRATION_BATCH_TOKENS):
            feeds.append(encoder.feed([ids[i] for i in batch])[0])
    return feeds


# ---------------------------------------------------------------- per-node error


@dataclass(frozen=True)
class NodeError:
    name: str
    op_type: str
    error: float  # ||Y_int8 - Y|| / ||Y|| of the node's output on the calibration activations

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "op_type": self.op_type, "error": round(self.error, 6)}


@dataclass
class _Candidate:
    name: str
    op_type: str
    inputs: list[str]  # activation inputs to capture
    weight: np.ndarray | None  # MatMul B or Gather table, when it is an initializer
    sq_err: float = 0.0
    sq_ref: float = 0.0
    ranges: list[tuple[float, float]] = field(default_factory=list)  # static: calibrated range per input
    quantised_weight: np.ndarray | None = None  # the weight as the recipe quantises it, computed once


def quantisable_nodes(graph: Any, settings: QuantSettings) -> list[_Candidate]:
    """The nodes onnxruntime quantises under `settings`: MatMul with a constant B (dynamic; static also
    activation x activation MatMuls) and Gather of a constant table."""
    from onnx import numpy_helper

    inits = {i.name: i for i in graph.initializer}
    out = []
    for node in graph.node:
        if node.op_type not in settings.op_types:
            continue
        if node.op_type == "MatMul":
            if node.input[1] in inits:
                out.append(_Candidate(node.name, "MatMul", [node.input[0]], numpy_helper.to_array(inits[node.input[1]])))
            elif settings.mode == "static" and node.input[0] not in inits:
                out.append(_Candidate(node.name, "MatMul", [node.input[0], node.input[1]], None))
        elif node.op_type == "Gather" and node.input[0] in inits:
            table = numpy_helper.to_array(inits[node.input[0]])
            if table.dtype == np.float32:
                out.append(_Candidate(node.name, "Gather", [node.input[1]], table))
    return out


def measure_node_errors(model_dir: Path, settings: QuantSettings, feeds: Sequence[Feed],
                        threads: int | None = None) -> list[NodeError]:
    """Each quantisable node's own output error under `settings` on the calibration feeds, largest first."""
    import onnx

    graph_path = Path(model_dir) / FP32_FILE
    model = onnx.load(str(graph_path))
    candidates = quantisable_nodes(model.graph, settings)
    if not candidates:
        raise ModelError(f"{graph_path}: no node to quantise under {settings.op_types}")
    session = _capture_session(model, sorted({n for c in candidates for n in c.inputs}), threads)
    del model
    if settings.mode == "static":  # first pass: the calibrated ranges, as MinMax calibration takes them
        for feed in feeds:
            captured = _run_capture(session, feed)
            for c in candidates:
                if c.op_type != "Gather":
                    now = [(float(captured[n].min()), float(captured[n].max())) for n in c.inputs]
                    c.ranges = now if not c.ranges else [(min(a[0], b[0]), max(a[1], b[1]))
                                                         for a, b in zip(c.ranges, now)]
    for feed in feeds:
        captured = _run_capture(session, feed)
        for c in candidates:
            ref, got = _node_output(c, [captured[n] for n in c.inputs], settings)
            c.sq_err += float(np.square(got - ref, dtype=np.float64).sum())
            c.sq_ref += float(np.square(ref, dtype=np.float64).sum())
    errors = [NodeError(c.name, c.op_type, (c.sq_err / c.sq_ref) ** 0.5 if c.sq_ref > 0 else 0.0) for c in candidates]
    return sorted(errors, key=lambda e: (-e.error, e.name))


def _capture_session(model: Any, tensors: list[str], threads: int | None) -> Any:
    import onnx
    import onnxruntime as ort

    present = {o.name for o in model.graph.output}
    for name in tensors:
        if name not in present:
            model.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor as named
    options.intra_op_num_threads = threads or max(1, len(os.sched_getaffinity(0)))
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    session.capture_names = tensors
    return session


def _run_capture(session: Any, feed: Feed) -> dict[str, np.ndarray]:
    names = session.capture_names
    return dict(zip(names, session.run(names, feed)))


def _node_output(c: _Candidate, inputs: list[np.ndarray], s: QuantSettings) -> tuple[np.ndarray, np.ndarray]:
    if c.weight is not None and c.quantised_weight is None:
        axis = 1 if s.per_channel and c.op_type == "MatMul" else None
        c.quantised_weight = fake_quant_weight(c.weight, s.weight_type, per_channel_axis=axis)
    if c.op_type == "Gather":
        assert c.weight is not None and c.quantised_weight is not None
        return c.weight[inputs[0]], c.quantised_weight[inputs[0]]
    if c.weight is not None:  # activation x weight
        x = inputs[0]
        xq = fake_quant_activation(x, s.activation_type, c.ranges[0] if s.mode == "static" else None)
        return x @ c.weight, xq @ c.quantised_weight
    a, b = inputs  # static only: activation x activation, both with calibrated ranges
    return a @ b, fake_quant_activation(a, s.activation_type, c.ranges[0]) @ fake_quant_activation(
        b, s.activation_type, c.ranges[1])


def _qrange(qtype: str, symmetric: bool) -> tuple[int, int]:
    if qtype == "qint8":
        return (-127, 127) if symmetric else (-128, 127)
    return 0, 255


def _fake_quant(x: np.ndarray, rmin: np.ndarray | float, rmax: np.ndarray | float, qtype: str,
                symmetric: bool) -> np.ndarray:
    """Quantise and dequantise `x` over [rmin, rmax] (widened to hold 0), onnxruntime's scale/zero point."""
    qmin, qmax = _qrange(qtype, symmetric)
    rmin = np.minimum(rmin, 0.0)
    rmax = np.maximum(rmax, 0.0)
    if symmetric:
        absmax = np.maximum(np.abs(rmin), np.abs(rmax))
        rmin, rmax = -absmax, absmax
    scale = (rmax - rmin) / float(qmax - qmin)
    scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
    zero = np.zeros_like(scale) if symmetric else np.round(qmin - rmin / scale)
    q = np.clip(np.round(x / scale) + zero, qmin, qmax)
    return ((q - zero) * scale).astype(np.float32)


def fake_quant_weight(w: np.ndarray, qtype: str, per_channel_axis: int | None) -> np.ndarray:
    """Weights: QInt8 symmetric, QUInt8 asymmetric (onnxruntime's defaults), per tensor or per channel."""
    if per_channel_axis is None:
        return _fake_quant(w, float(w.min()), float(w.max()), qtype, qtype == "qint8")
    other = tuple(i for i in range(w.ndim) if i != per_channel_axis)
    return _fake_quant(w, w.min(axis=other, keepdims=True), w.max(axis=other, keepdims=True), qtype,
                       qtype == "qint8")


def fake_quant_activation(x: np.ndarray, qtype: str, calibrated: tuple[float, float] | None) -> np.ndarray:
    """Activations: per call over the tensor's own range (dynamic, always QUInt8) or a calibrated range."""
    if calibrated is None:
        return _fake_quant(x, float(x.min()), float(x.max()), "quint8", False)
    return _fake_quant(x, calibrated[0], calibrated[1], qtype, False)


# ---------------------------------------------------------------- building recipes


# (model dir, fp32 sha256, settings, calibration digest) -> errors: recipes that differ only in how many
# nodes they keep in fp32 share one measurement
_NODE_ERRORS: dict[tuple[str, str, QuantSettings, str], list[NodeError]] = {}


@dataclass
class RecipeResult:
    recipe: Recipe
    file: str
    record: dict[str, Any]


def build_recipe(model_dir: Path, recipe: Recipe, calibration: Calibration | None = None,
                 node_errors: list[NodeError] | None = None, threads: int | None = None) -> RecipeResult:
    """Write `model.int8-RECIPE.onnx`, measure its drift from fp32 and record both in the manifest."""
    model_dir = Path(model_dir)
    manifest = load_manifest(model_dir)
    if FP32_FILE not in manifest.files:
        raise ModelError(f"{model_dir}: has no {FP32_FILE} to quantise")
    if recipe.needs_calibration and calibration is None:
        raise ModelError(f"{model_dir}: recipe {recipe.name} needs calibration text (--calibration FILE): its "
                         f"{'activation ranges' if recipe.settings.mode == 'static' else 'node errors'} are measured on it")
    fp32 = Encoder(model_dir, manifest, FP32_FILE, threads or 1)
    calibration = calibration if recipe.needs_calibration else None  # recorded only where it shaped the graph
    feeds = calibration_feeds(fp32, calibration) if calibration is not None else None
    settings = recipe.settings
    kept: list[NodeError] = []
    if recipe.exclude_top:
        assert feeds is not None and calibration is not None
        if node_errors is None:
            key = (str(model_dir.resolve()), manifest.files[FP32_FILE], settings, calibration.digest)
            if key not in _NODE_ERRORS:
                _NODE_ERRORS[key] = measure_node_errors(model_dir, settings, feeds, threads)
            node_errors = _NODE_ERRORS[key]
        kept = node_errors[:recipe.exclude_top]
        settings = replace(settings, exclude_nodes=tuple(sorted(e.name for e in kept)))
    target = model_dir / recipe.file
    partial = model_dir / f".{recipe.file}.partial-{os.getpid()}"
    try:
        with _quiet_quantiser():
            result = quantize_file(model_dir / FP32_FILE, partial, settings, feeds)
        probe = Manifest(**{**vars(manifest), "files": {**manifest.files, partial.name: ""}})
        texts, langs = verify.sample(None)
        drift = _drift(fp32, Encoder(model_dir, probe, partial.name, threads or 1), texts, langs)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    record: dict[str, Any] = {**result.to_json(), "recipe": recipe.name, "note": recipe.note, **drift,
                              "size_bytes": target.stat().st_size}
    if recipe.exclude_top:
        record["exclude_top"] = recipe.exclude_top
        record["kept_fp32"] = [e.to_json() for e in kept]
        record["node_error"] = "||Y_int8 - Y|| / ||Y|| of each node's output on the calibration text, in numpy"
    if calibration is not None:
        record["calibration"] = calibration.to_json()
    _record(model_dir, recipe.file, record)
    return RecipeResult(recipe, recipe.file, record)


@contextlib.contextmanager
def _quiet_quantiser() -> Iterator[None]:
    """onnxruntime's quantiser logs a 'consider pre-processing' warning per call on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _drift(fp32: Encoder, int8: Encoder, texts: list[str], langs: list[str]) -> dict[str, Any]:
    cos = [verify.row_cosines(fp32.encode(texts, kind=kind, batch_size=DRIFT_BATCH),
                               int8.encode(texts, kind=kind, batch_size=DRIFT_BATCH))
           for kind in verify.KINDS]
    per_text = np.minimum.reduce(cos)
    # dynamic int8 quantises activations per graph call, so drift depends on how texts are batched
    return {"drift_vs": FP32_FILE, "texts": len(texts), "batch_size": DRIFT_BATCH, **verify.summary(np.concatenate(cos)),
            "per_language_min_cosine": {lang: round(float(min(c for c, l in zip(per_text, langs) if l == lang)), 6)
                                        for lang in dict.fromkeys(langs)}}


def _record(model_dir: Path, file: str, record: dict[str, Any]) -> None:
    """Add (or replace) one graph in the manifest; nothing else in it changes."""
    manifest = load_manifest(model_dir, verify=False)
    manifest.files[file] = sha256_file(model_dir / file)
    manifest.quantization[file] = record
    manifest.save(model_dir)


def set_default_graph(model_dir: Path, file: str, evidence: dict[str, Any]) -> None:
    """Make `file` the graph the runtime loads by default, with the evidence that justified it."""
    manifest = load_manifest(model_dir)
    if file not in manifest.files:
        raise ModelError(f"{model_dir}: has no graph {file}")
    manifest.onnx = file
    manifest.checks["default_graph"] = {"graph": file, **evidence}
    manifest.save(model_dir)


def is_current(model_dir: Path, recipe: Recipe, calibration: Calibration | None) -> bool:
    """Whether the manifest already holds this recipe's graph, built from the same settings and calibration
    text, and the file on disk is that graph (so a benchmark rerun can skip rebuilding it)."""
    manifest = load_manifest(model_dir, verify=False)
    record = manifest.quantization.get(recipe.file)
    if record is None or record.get("recipe") != recipe.name or not (model_dir / recipe.file).is_file():
        return False
    wanted = {k: v for k, v in recipe.settings.to_json().items() if k != "exclude_nodes"}
    if any(record.get(k) != v for k, v in wanted.items()) or record.get("exclude_top", 0) != recipe.exclude_top:
        return False
    if recipe.needs_calibration and (calibration is None or
                                     record.get("calibration", {}).get("sha256") != calibration.digest):
        return False
    return sha256_file(model_dir / recipe.file) == manifest.files.get(recipe.file)


def resolve_recipes(names: Sequence[str] | None) -> list[Recipe]:
    if not names:
        return list(RECIPES.values())
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise InputError(f"unknown int8 recipe(s) {', '.join(unknown)}; known: {', '.join(RECIPES)}",
                         field="--recipes")
    return [RECIPES[n] for n in names]
