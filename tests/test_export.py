"""Export: files and manifest, ONNX == torch, refusal of tampered, failed and inaccurate exports.

Tests on `tiny_exported_dir`/`tiny_hf_dir` need the export extra (marked `export` by conftest); the
refusal and quantiser tests run on the torch-free `tiny_model_dir`."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clbias.errors import ModelError
from clbias.io import sha256_file
from clbias.runtime.manifest import MANIFEST_NAME, Prefixes, load_manifest
from conftest import TINY_PREFIXES

TEXTS = [
    "hello",
    "The quick brown fox jumps over the lazy dog.",
    "Москва — столица России, крупнейший город страны.",
    "珠穆朗玛峰是世界上海拔最高的山峰。",
    "ประเทศไทยมีเมืองหลวงชื่อกรุงเทพมหานคร",
    "كم من البروتين يجب أن تأكل المرأة يوميا؟ " * 3,
    "Zebra ☃ unknown ✓",
]


def torch_batched(hf_dir: Path, texts: list[str], prefix: str, max_length: int, pooling: str = "mean",
                  normalize: bool = True) -> np.ndarray:
    """An independent reference: transformers with padded batches (not the exporter's one-at-a-time path)."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    tok = Tokenizer.from_file(str(hf_dir / "tokenizer.json"))
    rows = [e.ids for e in tok.encode_batch([prefix + t for t in texts])]
    rows = [r if len(r) <= max_length else r[: max_length - 1] + r[-1:] for r in rows]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tok.token_to_id("<pad>"), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    model = AutoModel.from_pretrained(str(hf_dir)).eval()
    with torch.inference_mode():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state.double()
    if pooling == "cls":
        pooled = hidden[:, 0]
    else:
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    if normalize:
        pooled = pooled / pooled.norm(dim=1, keepdim=True)
    return pooled.numpy()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


# --- the session export ----------------------------------------------------------------------------------

def test_export_writes_files_and_manifest(tiny_exported_dir: Path, tiny_hf_dir: Path) -> None:
    assert leftovers(tiny_exported_dir) == sorted(["clbias.json", "model.int8.onnx", "model.onnx", "tokenizer.json"])
    assert leftovers(tiny_exported_dir.parent) == ["tiny"]  # no partial or staging directory left behind
    m = load_manifest(tiny_exported_dir)
    assert set(m.files) == {"model.onnx", "model.int8.onnx", "tokenizer.json"}
    for name, digest in m.files.items():
        assert sha256_file(tiny_exported_dir / name) == digest
    assert (tiny_exported_dir / "tokenizer.json").read_bytes() == (tiny_hf_dir / "tokenizer.json").read_bytes()
    assert m.onnx == "model.onnx" and m.sha256 == m.files["model.onnx"]
    assert (m.name, m.output_name, m.dim, m.pooling, m.normalize) == ("tiny", "last_hidden_state", 32, "mean", True)
    assert m.max_length == 96  # min(tokenizer model_max_length 96, max_position_embeddings 128)
    assert m.prefixes == Prefixes(*TINY_PREFIXES)
    assert {"torch", "transformers", "optimum", "onnx", "onnxruntime"} <= set(m.versions)
    assert m.source["kind"] == "local" and m.source["note"].startswith("tests/tiny_model.py")
    assert m.source["weights_sha256"]["model.safetensors"] == sha256_file(tiny_hf_dir / "model.safetensors")
    parity = m.checks["parity"]
    assert parity["min_cosine"] >= 1 - 1e-4 and parity["median_cosine"] >= parity["min_cosine"]
    assert 1 in parity["batch_sizes"] and max(parity["batch_sizes"]) >= 2 and parity["texts"] >= 20
    q = m.quantization["model.int8.onnx"]
    assert q["weight_type"] in ("qint8", "quint8") and isinstance(q["per_channel"], bool)
    assert q["quantized_ops"].get("MatMulInteger", 0) > 0
    assert 0.95 <= q["min_cosine"] <= q["median_cosine"] <= 1.0 + 1e-6
    assert q["drift_vs"] == "model.onnx" and {"en", "zh", "ar", "th"} <= set(q["per_language_min_cosine"])
    json.loads((tiny_exported_dir / MANIFEST_NAME).read_text(encoding="utf-8"))  # plain JSON


def test_onnx_matches_torch_on_several_batch_shapes(tiny_exported_dir: Path, tiny_hf_dir: Path) -> None:
    from clbias.runtime.encoder import Encoder

    enc = Encoder.load(tiny_exported_dir, threads=1)
    for kind, prefix in (("query", TINY_PREFIXES[0]), ("passage", TINY_PREFIXES[1]), ("raw", "")):
        ref = torch_batched(tiny_hf_dir, TEXTS, prefix, enc.max_length)
        for batch_size in (1, 2, 3, len(TEXTS)):
            got = enc.encode(TEXTS, kind=kind, batch_size=batch_size)
            assert got.shape == (len(TEXTS), 32) and got.dtype == np.float32
            assert cosines(got, ref).min() > 1 - 1e-5, (kind, batch_size)
    int8 = Encoder.load(tiny_exported_dir, onnx="model.int8.onnx", threads=1).encode(TEXTS, batch_size=3)
    assert cosines(int8, enc.encode(TEXTS)).min() > 0.95


def test_truncation_to_max_length_matches_torch(tiny_exported_dir: Path, tiny_hf_dir: Path) -> None:
    from clbias.runtime.encoder import Encoder

    enc = Encoder.load(tiny_exported_dir, threads=1)
    texts = ["short", "Die Straße führt über die Brücke zum Bahnhof. " * 20]
    got, stats = enc.encode_with_stats(texts, batch_size=2)
    assert stats.truncated.tolist() == [False, True]
    assert cosines(got, torch_batched(tiny_hf_dir, texts, TINY_PREFIXES[1], 96)).min() > 1 - 1e-5


# --- refusal at load -------------------------------------------------------------------------------------

@pytest.mark.parametrize("victim", ["model.onnx", "model.int8.onnx", "tokenizer.json"])
def test_tampered_or_missing_file_is_refused(tiny_model_dir: Path, tmp_path: Path, victim: str) -> None:
    copy = Path(shutil.copytree(tiny_model_dir, tmp_path / "m"))
    with open(copy / victim, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError, match="sha256") as info:
        load_manifest(copy)
    assert victim in str(info.value) and "\n" not in str(info.value)
    (copy / victim).unlink()
    with pytest.raises(ModelError, match="missing") as info:
        load_manifest(copy)
    assert victim in str(info.value) and "\n" not in str(info.value)


# --- exports that must not be written --------------------------------------------------------------------

def test_export_interrupted_midway_leaves_nothing(tiny_hf_dir: Path, tiny_exported_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import clbias.export.onnx as exp

    # An earlier good export of the same name must survive a failed re-export untouched.
    shutil.copytree(tiny_exported_dir, tmp_path / "tiny")
    before = (tmp_path / "tiny" / MANIFEST_NAME).read_bytes()

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # what Ctrl-C raises; a BaseException, not an Exception

    monkeypatch.setattr(exp, "quantize_file", interrupted)  # after the ONNX export and the parity check
    with pytest.raises(KeyboardInterrupt):
        exp.export_model(tiny_hf_dir, "tiny", tmp_path, int8=True)
    with pytest.raises(KeyboardInterrupt):
        exp.export_model(tiny_hf_dir, "fresh", tmp_path, int8=True)
    assert leftovers(tmp_path) == ["tiny"]
    assert (tmp_path / "tiny" / MANIFEST_NAME).read_bytes() == before


def test_parity_failure_is_refused_and_nothing_written(tiny_hf_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import onnx
    from onnx import numpy_helper

    import clbias.export.onnx as exp

    with pytest.raises(ModelError, match="does not match torch"):
        exp.export_model(tiny_hf_dir, "neg", tmp_path, tolerance=-1e-3)

    real_take_graph = exp._take_graph

    def corrupting_take_graph(staging: Path, tmp: Path) -> None:
        real_take_graph(staging, tmp)
        graph = onnx.load(str(tmp / "model.onnx"))
        (table,) = [i for i in graph.graph.initializer if i.name == "embeddings.word_embeddings.weight"]
        array = numpy_helper.to_array(table)
        noise = np.random.default_rng(0).normal(0.0, 0.5 * array.std(), array.shape).astype(array.dtype)
        table.CopyFrom(numpy_helper.from_array(array + noise, table.name))  # a subtly wrong graph
        onnx.save(graph, str(tmp / "model.onnx"))

    monkeypatch.setattr(exp, "_take_graph", corrupting_take_graph)
    with pytest.raises(ModelError, match="does not match torch") as info:
        exp.export_model(tiny_hf_dir, "corrupt", tmp_path)
    assert "\n" not in str(info.value)
    assert leftovers(tmp_path) == []


def test_int8_drift_beyond_bound_is_refused(tiny_hf_dir: Path, tmp_path: Path) -> None:
    from clbias.export import export_model

    with pytest.raises(ModelError, match="int8 drifts from fp32"):
        export_model(tiny_hf_dir, "q", tmp_path, int8=True, int8_min_cosine=1.01)
    assert leftovers(tmp_path) == []


# --- options round-trip ----------------------------------------------------------------------------------

def test_options_round_trip_and_cls_pooling_parity(tiny_hf_dir: Path, tmp_path: Path) -> None:
    from clbias.export import QuantSettings, export_model
    from clbias.runtime.encoder import Encoder

    settings = QuantSettings(weight_type="quint8", per_channel=False, exclude_patterns=(r"/layer\.1/",))
    long_text = "Москва — столица России. " * 15
    out = export_model(tiny_hf_dir, "opts", tmp_path, int8=True, default="int8", pooling="cls", normalize=False,
                       max_length=40, prefixes=Prefixes("q> ", ""), verify_texts=["a", "b c d", long_text],
                       quantization=settings, int8_min_cosine=None)
    m = load_manifest(out)
    assert (m.onnx, m.pooling, m.normalize, m.max_length) == ("model.int8.onnx", "cls", False, 40)
    assert m.prefixes == Prefixes("q> ", "") and m.checks["parity"]["texts"] == 3
    q = m.quantization["model.int8.onnx"]
    assert QuantSettings.from_json(q) == settings and q["excluded_nodes"] > 0
    assert q["int8_min_cosine"] is None and "per_language_min_cosine" not in q
    fp32 = Encoder.load(out, onnx="model.onnx", threads=1)
    got = fp32.encode(["hello", long_text], kind="query", batch_size=2)
    ref = torch_batched(tiny_hf_dir, ["hello", long_text], "q> ", 40, pooling="cls", normalize=False)
    assert np.allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_bad_arguments_are_refused_before_any_work(tmp_path: Path) -> None:
    from clbias.export import export_model

    for kwargs in ({"name": "../x"}, {"name": ".hidden"}, {"name": "m", "pooling": "max"},
                   {"name": "m", "default": "int8"}, {"name": "m", "default": "fp16"},
                   {"name": "m", "verify_texts": ["  "]}):
        with pytest.raises(ModelError):
            export_model(tmp_path / "does-not-matter", out_root=tmp_path / "out", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


@pytest.mark.export
def test_missing_source_is_one_clean_error(tmp_path: Path) -> None:
    pytest.importorskip("optimum.exporters.onnx")
    from clbias.export import export_model

    with pytest.raises(ModelError) as info:
        export_model(tmp_path / "no-such-model", "m", tmp_path / "out")
    assert "no-such-model" in str(info.value) and "\n" not in str(info.value)
    assert leftovers(tmp_path / "out") == []


def test_quantize_excludes_nodes_by_pattern_and_rejects_unknown_names(tiny_model_dir: Path, tmp_path: Path) -> None:
    from clbias.export import QuantSettings, quantize_file

    full = quantize_file(tiny_model_dir / "model.onnx", tmp_path / "a.onnx", QuantSettings())
    partial = quantize_file(tiny_model_dir / "model.onnx", tmp_path / "b.onnx",
                            QuantSettings(exclude_patterns=(r"/layer\.0/",)))
    assert partial.excluded and partial.quantized_ops["MatMulInteger"] < full.quantized_ops["MatMulInteger"]
    with pytest.raises(ModelError, match="not in the graph"):
        quantize_file(tiny_model_dir / "model.onnx", tmp_path / "c.onnx", QuantSettings(exclude_nodes=("nope",)))


def test_importing_export_does_not_import_heavy_libraries() -> None:
    code = ("import sys, clbias.export; "
            "print(sorted(m for m in ('torch','transformers','optimum','onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
