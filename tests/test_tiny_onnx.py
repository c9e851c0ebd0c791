"""The torch-free tiny model: the runtime reproduces an independent numpy forward pass, the build is
deterministic, and the model has the one property the audit tests lean on (shared tokens embed nearby)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from clbias.io import sha256_file
from clbias.runtime.encoder import Encoder
from clbias.runtime.manifest import load_manifest
from conftest import TINY_PREFIXES
from tiny_onnx import DIM, build_tiny_onnx_dir, reference_hidden, tiny_weights

TEXTS = [
    "hello",
    "The quick brown fox jumps over the lazy dog.",
    "Москва — столица России, крупнейший город страны.",
    "珠穆朗玛峰是世界上海拔最高的山峰。",
    "Zebra ☃ unknown ✓",
    "Die Straße führt über die Brücke zum Bahnhof. " * 30,  # beyond max_length and the 128 positions
]


def reference(model_dir: Path, texts: list[str], prefix: str, max_length: int) -> np.ndarray:
    """Tokenise one text at a time, keep the first max_length - 1 tokens and the last, mean-pool, normalise."""
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    weights = tiny_weights(tokenizer.get_vocab_size())
    rows = []
    for text in texts:
        ids = tokenizer.encode(prefix + text).ids
        ids = ids if len(ids) <= max_length else ids[: max_length - 1] + ids[-1:]
        vector = reference_hidden(weights, ids).mean(axis=0)
        rows.append(vector / np.linalg.norm(vector))
    return np.stack(rows)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_runtime_matches_the_numpy_forward_pass_at_every_batch_shape(tiny_model_dir: Path) -> None:
    encoder = Encoder.load(tiny_model_dir, threads=1)
    assert set(encoder.input_names) == {"input_ids", "attention_mask", "token_type_ids"}  # types zero-filled
    for kind, prefix in (("query", TINY_PREFIXES[0]), ("passage", TINY_PREFIXES[1]), ("raw", "")):
        expected = reference(tiny_model_dir, TEXTS, prefix, encoder.max_length)
        for batch_size in (1, 2, 3, len(TEXTS)):
            got, stats = encoder.encode_with_stats(TEXTS, kind=kind, batch_size=batch_size)
            assert got.shape == (len(TEXTS), DIM) and got.dtype == np.float32
            assert cosines(got, expected).min() > 1 - 1e-5, (kind, batch_size)
            assert stats.truncated.tolist() == [False] * (len(TEXTS) - 1) + [True]


def test_int8_graph_is_another_close_graph_and_its_drift_is_recorded(tiny_model_dir: Path) -> None:
    manifest = load_manifest(tiny_model_dir)
    assert set(manifest.files) == {"model.onnx", "model.int8.onnx", "tokenizer.json"}
    assert manifest.files["model.onnx"] != manifest.files["model.int8.onnx"]
    fp32 = Encoder.load(tiny_model_dir, threads=1).encode(TEXTS)
    int8 = Encoder.load(tiny_model_dir, onnx="model.int8.onnx", threads=1).encode(TEXTS)
    cos = cosines(fp32, int8)
    assert 0.95 < cos.min() and not np.allclose(fp32, int8, atol=1e-4)
    record = manifest.quantization["model.int8.onnx"]
    assert record["quantized_ops"]["MatMulInteger"] == 2 and record["drift_vs"] == "model.onnx"
    assert 0.95 <= record["min_cosine"] <= record["median_cosine"] <= 1.0 + 1e-6


def test_build_is_byte_identical_across_runs(tiny_model_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_onnx_dir(tmp_path / "tiny", prefixes=TINY_PREFIXES)
    for name in ("model.onnx", "model.int8.onnx", "tokenizer.json"):
        assert sha256_file(again / name) == sha256_file(tiny_model_dir / name), name
    first = json.loads((tiny_model_dir / "clbias.json").read_text())
    second = json.loads((again / "clbias.json").read_text())
    assert first == second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]  # built atomically, nothing left beside it


def test_texts_that_share_tokens_embed_nearby(tiny_model_dir: Path) -> None:
    vectors = Encoder.load(tiny_model_dir, threads=1).encode([
        "Die Katze schläft auf der Fensterbank.", "Die Katze schläft.", "Paris is the capital of France.",
        "Paris est la capitale de la France."])
    sims = vectors @ vectors.T
    assert sims[0, 1] > max(sims[0, 2], sims[0, 3]) and sims[2, 3] > max(sims[2, 0], sims[2, 1])
