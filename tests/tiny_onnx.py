"""The tiny test model written with the `onnx` package alone: no torch, transformers or optimum.

It keeps the contract an exported encoder has for the runtime (inputs input_ids, attention_mask and
token_type_ids, output last_hidden_state [batch, seq, dim], a 128-position table, so a runtime that
forgot to truncate would crash) and the tokenizer of tests/tiny_model.py. Per layer:

    x <- x + tanh(x W + b)                    (per token)
    x <- x + 0.5 * masked_mean(x over seq)    (context: a padded position must not leak in)

so texts that share tokens embed nearby, and padding is harmless only if the runtime's mask is right.
Weights come from a seeded numpy generator: the files, and every number derived from them, are the
same on every run. `reference_hidden` is the same forward pass in numpy, for parity tests of the runtime.
"""
from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from tiny_model import MODEL_MAX_LENGTH, build_tokenizer

DIM = 32
LAYERS = 2
POSITIONS = 128  # above MODEL_MAX_LENGTH (96), as in the Optimum-built tiny model
TYPES = 2
OPSET = 17
FP32_FILE, INT8_FILE, TOKENIZER_FILE = "model.onnx", "model.int8.onnx", "tokenizer.json"
INT8_MIN_COSINE = 0.95  # the bound `clbias export --int8` applies


def tiny_weights(vocab_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = {
        "word_embeddings": rng.normal(0.0, 1.0, (vocab_size, DIM)),
        "position_embeddings": rng.normal(0.0, 0.1, (POSITIONS, DIM)),
        "token_type_embeddings": rng.normal(0.0, 0.1, (TYPES, DIM)),
    }
    for layer in range(LAYERS):
        weights[f"layer.{layer}.weight"] = rng.normal(0.0, 1.0 / np.sqrt(DIM), (DIM, DIM))
        weights[f"layer.{layer}.bias"] = rng.normal(0.0, 0.1, (DIM,))
    return {name: value.astype(np.float32) for name, value in weights.items()}


def build_graph(weights: dict[str, np.ndarray]) -> Any:
    """The ONNX model (an `onnx.ModelProto`) for `weights`, with dynamic batch and sequence axes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def const(name: str, value: np.ndarray) -> Any:
        return numpy_helper.from_array(value, name)

    initializers = [const(name, value) for name, value in weights.items()]
    initializers += [const("axis_seq", np.array([1], dtype=np.int64)), const("zero", np.array(0, dtype=np.int64)),
                     const("one", np.array(1, dtype=np.int64)), const("half", np.array(0.5, dtype=np.float32)),
                     const("eps", np.array(1e-9, dtype=np.float32)),
                     const("mask_axis", np.array([2], dtype=np.int64))]
    node = helper.make_node
    nodes = [
        node("Gather", ["word_embeddings", "input_ids"], ["/embeddings/words"], name="/embeddings/word/Gather"),
        node("Gather", ["token_type_embeddings", "token_type_ids"], ["/embeddings/types"],
             name="/embeddings/type/Gather"),
        node("Shape", ["input_ids"], ["/embeddings/shape"], name="/embeddings/Shape"),
        node("Gather", ["/embeddings/shape", "one"], ["/embeddings/seq_len"], name="/embeddings/seq/Gather", axis=0),
        node("Range", ["zero", "/embeddings/seq_len", "one"], ["/embeddings/position_ids"], name="/embeddings/Range"),
        node("Gather", ["position_embeddings", "/embeddings/position_ids"], ["/embeddings/positions"],
             name="/embeddings/position/Gather"),
        node("Add", ["/embeddings/words", "/embeddings/types"], ["/embeddings/sum1"], name="/embeddings/Add1"),
        node("Add", ["/embeddings/sum1", "/embeddings/positions"], ["/layer.in.0"], name="/embeddings/Add2"),
        node("Cast", ["attention_mask"], ["/mask/float"], name="/mask/Cast", to=TensorProto.FLOAT),
        node("Unsqueeze", ["/mask/float", "mask_axis"], ["/mask/expanded"], name="/mask/Unsqueeze"),
        node("ReduceSum", ["/mask/expanded", "axis_seq"], ["/mask/count_raw"], name="/mask/ReduceSum", keepdims=1),
        node("Max", ["/mask/count_raw", "eps"], ["/mask/count"], name="/mask/Max"),
    ]
    for layer in range(LAYERS):
        p, x = f"/encoder/layer.{layer}", f"/layer.in.{layer}"
        nodes += [
            node("MatMul", [x, f"layer.{layer}.weight"], [f"{p}/mm"], name=f"{p}/dense/MatMul"),
            node("Add", [f"{p}/mm", f"layer.{layer}.bias"], [f"{p}/pre"], name=f"{p}/dense/Add"),
            node("Tanh", [f"{p}/pre"], [f"{p}/act"], name=f"{p}/Tanh"),
            node("Add", [x, f"{p}/act"], [f"{p}/res"], name=f"{p}/residual/Add"),
            node("Mul", [f"{p}/res", "/mask/expanded"], [f"{p}/masked"], name=f"{p}/context/Mul"),
            node("ReduceSum", [f"{p}/masked", "axis_seq"], [f"{p}/sum"], name=f"{p}/context/ReduceSum", keepdims=1),
            node("Div", [f"{p}/sum", "/mask/count"], [f"{p}/mean"], name=f"{p}/context/Div"),
            node("Mul", [f"{p}/mean", "half"], [f"{p}/ctx"], name=f"{p}/context/Scale"),
            node("Add", [f"{p}/res", f"{p}/ctx"], [f"/layer.in.{layer + 1}"], name=f"{p}/context/Add"),
        ]
    nodes.append(node("Mul", [f"/layer.in.{LAYERS}", "/mask/expanded"], ["last_hidden_state"], name="/output/Mul"))
    axes = ["batch_size", "sequence_length"]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, axes)
              for n in ("input_ids", "attention_mask", "token_type_ids")]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, axes + [DIM])
    graph = helper.make_graph(nodes, "clbias_tiny", inputs, [output], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="clbias-tests")
    model.ir_version = 8  # readable by every onnxruntime the project supports (>= 1.17)
    onnx.checker.check_model(model, full_check=True)
    return model


def reference_hidden(weights: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """The graph's forward pass for one unpadded text, in float64 numpy: [seq, DIM]."""
    x = (weights["word_embeddings"][ids] + weights["token_type_embeddings"][0]
         + weights["position_embeddings"][: len(ids)]).astype(np.float64)
    for layer in range(LAYERS):
        x = x + np.tanh(x @ weights[f"layer.{layer}.weight"] + weights[f"layer.{layer}.bias"])
        x = x + 0.5 * x.mean(axis=0)
    return x


def build_tiny_onnx_dir(out: str | Path, *, name: str = "tiny", prefixes: tuple[str, str] = ("", ""),
                        seed: int = 0, int8: bool = True) -> Path:
    """Write model.onnx (+ model.int8.onnx), tokenizer.json and clbias.json to `out`, atomically.

    The manifest goes through clbias's own Manifest, and the int8 graph through clbias's own quantiser and
    drift measurement, so the directory is what `clbias export --int8` would write for such a model."""
    import onnx

    from clbias.errors import ModelError
    from clbias.export import DEFAULT_SETTINGS, quantize_file, verify
    from clbias.export.quiet import quiet_frameworks
    from clbias.io import atomic_dir, sha256_file
    from clbias.runtime.manifest import Manifest, Prefixes

    out = Path(out)
    tokenizer = build_tokenizer()
    weights = tiny_weights(tokenizer.get_vocab_size(), seed)
    with quiet_frameworks(), atomic_dir(out) as tmp:
        tokenizer.save(str(tmp / TOKENIZER_FILE))
        onnx.save(build_graph(weights), str(tmp / FP32_FILE))
        manifest = Manifest(name=name, files={}, onnx=FP32_FILE, tokenizer=TOKENIZER_FILE, pooling="mean",
                            normalize=True, prefixes=Prefixes(*prefixes), max_length=MODEL_MAX_LENGTH,
                            output_name="last_hidden_state", dim=DIM,
                            source={"kind": "onnx.helper", "note": f"tests/tiny_onnx.py, seed {seed}"},
                            versions=_versions())

        def save() -> None:
            manifest.files = {f: sha256_file(tmp / f) for f in (FP32_FILE, INT8_FILE, TOKENIZER_FILE)
                              if (tmp / f).is_file()}
            manifest.save(tmp)

        save()
        if int8:
            result = quantize_file(tmp / FP32_FILE, tmp / INT8_FILE, DEFAULT_SETTINGS)
            save()  # the runtime Encoder reads the manifest while drift is measured
            texts, langs = verify.sample(None)
            record = {**result.to_json(), **verify.drift(tmp, FP32_FILE, INT8_FILE, texts, langs, threads=1)}
            record["int8_min_cosine"] = INT8_MIN_COSINE
            if record["min_cosine"] < INT8_MIN_COSINE:
                raise ModelError(f"{out / INT8_FILE}: int8 drifts from fp32: min cosine {record['min_cosine']:.4f}")
            manifest.quantization[INT8_FILE] = record
        save()
    return out


def _versions() -> dict[str, str]:
    found = {}
    for package in ("clbias", "onnx", "onnxruntime", "tokenizers", "numpy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found
