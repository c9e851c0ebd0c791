"""Poolings mean / cls / last / graph, ONNX vs torch on tiny BERT, XLM-RoBERTa and Qwen2 models, and export
settings read from sentence-transformers directories (flags override, sources recorded, bad files refused)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clbias.errors import ModelError
from clbias.runtime.encoder import pool, position_ids
from clbias.runtime.manifest import load_manifest
from model_factories import build_tiny_qwen2_dir, build_tiny_xlmr_dir, make_sentence_transformers_dir
from test_export import TEXTS  # the multilingual edge cases of the export parity tests


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def torch_reference(hf_dir: Path, texts: list[str], prefix: str, max_length: int, pooling: str,
                    normalize: bool, left_padding: bool = False) -> np.ndarray:
    """transformers on one padded batch (right or left), pooled here: independent of the exporter's check."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    tok = Tokenizer.from_file(str(hf_dir / "tokenizer.json"))
    rows = [e.ids for e in tok.encode_batch([prefix + t for t in texts])]
    rows = [r if len(r) <= max_length else r[: max_length - 1] + r[-1:] for r in rows]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), 1, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        span = slice(width - len(r), width) if left_padding else slice(0, len(r))
        ids[i, span] = torch.tensor(r)
        mask[i, span] = 1
    model = AutoModel.from_pretrained(str(hf_dir)).eval()
    kwargs = {}
    if model.config.model_type == "qwen2":
        kwargs["position_ids"] = (mask.cumsum(1) - 1).clamp_min(0)
    with torch.inference_mode():
        hidden = model(input_ids=ids, attention_mask=mask, **kwargs).last_hidden_state.double()
    index = torch.arange(len(rows))
    if pooling == "cls":
        pooled = hidden[index, mask.argmax(1)]
    elif pooling == "last":
        pooled = hidden[index, width - 1 - mask.flip(1).argmax(1)]
    else:
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    if normalize:
        pooled = pooled / pooled.norm(dim=1, keepdim=True)
    return pooled.numpy()


# --- pooling arithmetic ------------------------------------------------------------------------------------

def test_pool_is_the_same_for_left_and_right_padding() -> None:
    rng = np.random.default_rng(0)
    lengths = [5, 1, 3]
    width = 6
    states = [rng.normal(size=(n, 4)) for n in lengths]
    right, left = np.zeros((3, width, 4)), np.zeros((3, width, 4))
    right_mask, left_mask = np.zeros((3, width), np.int64), np.zeros((3, width), np.int64)
    for i, s in enumerate(states):
        right[i, : len(s)], right_mask[i, : len(s)] = s, 1
        left[i, width - len(s):], left_mask[i, width - len(s):] = s, 1
        right[i, len(s):] = left[i, : width - len(s)] = 99.0  # padding states must not leak in
    expected = {"mean": [s.mean(0) for s in states], "cls": [s[0] for s in states], "last": [s[-1] for s in states]}
    for pooling, want in expected.items():
        assert np.allclose(pool(right, right_mask, pooling), want, atol=1e-6), pooling
        assert np.allclose(pool(left, left_mask, pooling), want, atol=1e-6), pooling
    assert position_ids(left_mask)[2].tolist() == [0, 0, 0, 0, 1, 2]
    assert position_ids(right_mask)[2].tolist() == [0, 1, 2, 0, 0, 0]
    sentence = rng.normal(size=(3, 4))
    assert np.array_equal(pool(sentence, right_mask, "graph"), sentence.astype(np.float32))


# --- parity with torch per architecture ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def xlmr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_xlmr_dir(tmp_path_factory.mktemp("xlmr") / "hf")


@pytest.fixture(scope="module")
def qwen2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen2_dir(tmp_path_factory.mktemp("qwen2") / "hf")


def _check_parity(hf_dir: Path, out: Path, pooling: str, normalize: bool) -> None:
    from clbias.runtime.encoder import Encoder

    m = load_manifest(out)
    assert (m.pooling, m.normalize) == (pooling, normalize)
    assert m.checks["parity"]["min_cosine"] >= 0.9999
    enc = Encoder.load(out, threads=1)
    for kind, prefix in (("query", m.prefixes.query), ("passage", m.prefixes.passage)):
        ref = torch_reference(hf_dir, TEXTS, prefix, enc.max_length, pooling, normalize)
        for batch_size in (1, 3, len(TEXTS)):
            got = enc.encode(TEXTS, kind=kind, batch_size=batch_size)
            assert got.shape == (len(TEXTS), 32)
            assert cosines(got, ref).min() >= 0.9999, (kind, batch_size)
            if not normalize:
                assert np.allclose(got, ref, rtol=1e-3, atol=1e-4)


@pytest.mark.export
@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_bert_parity(tiny_hf_dir: Path, tmp_path: Path, pooling: str) -> None:
    from clbias.export import export_model

    out = export_model(tiny_hf_dir, "bert", tmp_path, pooling=pooling, normalize=pooling == "mean")
    _check_parity(tiny_hf_dir, out, pooling, pooling == "mean")


@pytest.mark.export
@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_xlm_roberta_parity(xlmr_dir: Path, tmp_path: Path, pooling: str) -> None:
    from clbias.export import export_model

    out = export_model(xlmr_dir, "xlmr", tmp_path, pooling=pooling, normalize=pooling == "cls",
                       query_prefix="query: ", passage_prefix="passage: ")
    _check_parity(xlmr_dir, out, pooling, pooling == "cls")
    assert load_manifest(out).max_length == 96  # tokenizer limit below the 128 usable positions


@pytest.mark.export
def test_qwen2_decoder_last_token_parity_right_and_left_padding(qwen2_dir: Path, tmp_path: Path) -> None:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from clbias.export import export_model

    out = export_model(qwen2_dir, "qwen2", tmp_path, pooling="last", normalize=True)
    _check_parity(qwen2_dir, out, "last", True)
    # The graph run directly with left padding (the runtime pads right) gives the same vectors.
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    rows = [e.ids for e in Tokenizer.from_file(str(out / "tokenizer.json")).encode_batch(TEXTS)]
    width = max(map(len, rows))
    ids = np.full((len(rows), width), 2, dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, width - len(r):], mask[i, width - len(r):] = r, 1
    names = {i.name for i in session.get_inputs()}
    feed = {"input_ids": ids, "attention_mask": mask, "position_ids": position_ids(mask)}
    hidden = session.run(["last_hidden_state"], {k: v for k, v in feed.items() if k in names})[0]
    got = pool(hidden, mask, "last")
    ref = torch_reference(qwen2_dir, TEXTS, "", 10_000, "last", False, left_padding=True)
    assert cosines(got, ref).min() >= 0.9999
    assert cosines(got, torch_reference(qwen2_dir, TEXTS, "", 10_000, "last", False)).min() >= 0.9999


@pytest.mark.export
def test_decoder_tokenizer_without_padding_token_is_refused(tmp_path: Path) -> None:
    from clbias.export import export_model

    hf = build_tiny_qwen2_dir(tmp_path / "hf", pad=None)
    with pytest.raises(ModelError, match="pad_token") as info:
        export_model(hf, "nopad", tmp_path / "out", pooling="last")
    assert "tokenizer_config.json" in str(info.value) and "\n" not in str(info.value)
    assert leftovers(tmp_path / "out") == []


# --- graph pooling -------------------------------------------------------------------------------------------

def _with_sentence_output(model_dir: Path, out: Path) -> Path:
    """A copy of an exported model whose graph also outputs the unmasked token mean as `sentence_vector`."""
    import shutil

    import onnx
    import onnx.numpy_helper
    from onnx import TensorProto, helper

    from clbias.io import sha256_file

    shutil.copytree(model_dir, out)
    graph = onnx.load(str(out / "model.onnx"))
    opset = max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx"))
    if opset >= 18:  # ReduceMean takes its axes as an input from opset 18 on
        graph.graph.initializer.append(onnx.numpy_helper.from_array(np.array([1], dtype=np.int64), "axis_1"))
        node = helper.make_node("ReduceMean", ["last_hidden_state", "axis_1"], ["sentence_vector"], keepdims=0)
    else:
        node = helper.make_node("ReduceMean", ["last_hidden_state"], ["sentence_vector"], axes=[1], keepdims=0)
    graph.graph.node.append(node)
    graph.graph.output.append(helper.make_tensor_value_info("sentence_vector", TensorProto.FLOAT, ["batch", 32]))
    onnx.save(graph, str(out / "model.onnx"))
    manifest = json.loads((out / "clbias.json").read_text(encoding="utf-8"))
    manifest.update(pooling="graph", output_name="sentence_vector", onnx="model.onnx")
    manifest["files"] = {"model.onnx": sha256_file(out / "model.onnx"), "tokenizer.json": manifest["files"]["tokenizer.json"]}
    (out / "clbias.json").write_text(json.dumps(manifest), encoding="utf-8")
    return out


def test_graph_pooling_uses_the_named_output_as_is(tiny_model_dir: Path, tmp_path: Path) -> None:
    from clbias.runtime.encoder import Encoder

    graph_dir = _with_sentence_output(tiny_model_dir, tmp_path / "graph")
    singles = [[t] for t in TEXTS]  # one text per call: the unmasked mean is then the mean pooling
    mean = Encoder.load(tiny_model_dir, threads=1)
    graph = Encoder.load(graph_dir, threads=1)
    got = np.concatenate([graph.encode(t, kind="query") for t in singles])
    want = np.concatenate([mean.encode(t, kind="query") for t in singles])
    assert np.allclose(got, want, atol=1e-5)

    manifest = json.loads((graph_dir / "clbias.json").read_text(encoding="utf-8"))
    for name, message in (("pooled", "is not an output"), ("last_hidden_state", "rank 3")):
        manifest["output_name"] = name
        (graph_dir / "clbias.json").write_text(json.dumps(manifest), encoding="utf-8")
        with pytest.raises(ModelError, match=message) as info:
            Encoder.load(graph_dir, threads=1)
        assert "clbias.json: field 'output_name'" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.export
def test_graph_pooling_export_with_a_missing_output_is_refused(tiny_hf_dir: Path, tmp_path: Path) -> None:
    from clbias.export import export_model

    with pytest.raises(ModelError, match="'sentence_embedding' is not an output of model.onnx") as info:
        export_model(tiny_hf_dir, "g", tmp_path, pooling="graph", output_name="sentence_embedding")
    assert "\n" not in str(info.value) and "last_hidden_state" in str(info.value)
    with pytest.raises(ModelError, match="needs the name"):
        export_model(tiny_hf_dir, "g", tmp_path, pooling="graph")
    assert leftovers(tmp_path) == []


# --- sentence-transformers directories ----------------------------------------------------------------------

@pytest.mark.export
def test_sentence_transformers_dir_settings_are_read_and_recorded(xlmr_dir: Path, tmp_path: Path) -> None:
    from clbias.export import export_model

    st = make_sentence_transformers_dir(xlmr_dir, tmp_path / "st-xlmr",
                                        pooling={"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True},
                                        prompts={"query": "query: ", "document": "passage: ", "clustering": "c: "},
                                        max_seq_length=40)
    out = export_model(st, "st", tmp_path / "out")
    m = load_manifest(out)
    assert (m.pooling, m.normalize, m.max_length) == ("cls", True, 40)
    assert (m.prefixes.query, m.prefixes.passage) == ("query: ", "passage: ")
    src = m.settings_source
    assert src["pooling"].endswith("1_Pooling/config.json (pooling_mode_*)")
    assert src["normalize"].endswith("modules.json (Normalize module)")
    assert src["query_prefix"].endswith("config_sentence_transformers.json (prompts.query)")
    assert src["passage_prefix"].endswith("config_sentence_transformers.json (prompts.document)")
    assert src["max_length"].endswith("sentence_bert_config.json (max_seq_length)")
    _check_parity(st, out, "cls", True)

    # Flags override the files, and say so.
    out = export_model(st, "st2", tmp_path / "out", pooling="mean", normalize=False, query_prefix="q> ",
                       max_length=30)
    m = load_manifest(out)
    assert (m.pooling, m.normalize, m.prefixes.query, m.prefixes.passage, m.max_length) == \
        ("mean", False, "q> ", "passage: ", 30)
    assert [m.settings_source[k] for k in ("pooling", "normalize", "query_prefix", "max_length")] == ["given"] * 4
    assert "prompts.document" in m.settings_source["passage_prefix"]


@pytest.mark.export
def test_sentence_transformers_decoder_with_last_token_pooling(qwen2_dir: Path, tmp_path: Path) -> None:
    from clbias.cli import main

    instruct = "Instruct: Given a web search query, retrieve relevant passages\nQuery:"
    st = make_sentence_transformers_dir(qwen2_dir, tmp_path / "st-qwen",
                                        pooling={"pooling_mode_mean_tokens": False, "pooling_mode_lasttoken": True},
                                        prompts={"query": instruct, "document": ""}, max_seq_length=None)
    assert main(["export", str(st), "--name", "qwen", "--out-root", str(tmp_path / "out")]) == 0
    m = load_manifest(tmp_path / "out" / "qwen")
    assert (m.pooling, m.prefixes.query, m.prefixes.passage) == ("last", instruct, "")
    assert m.max_length == 96 and "tokenizer_config.json" in m.settings_source["max_length"]
    _check_parity(st, tmp_path / "out" / "qwen", "last", True)


def test_plain_directory_says_it_used_defaults(tiny_exported_dir: Path) -> None:
    m = load_manifest(tiny_exported_dir)  # exported through Optimum from a plain transformers directory
    assert m.settings_source["pooling"] == m.settings_source["normalize"] == "default"
    assert m.settings_source["query_prefix"] == "given"  # the fixture passes the e5 prefixes


BAD_ST_FILES = [
    ("two modes", {"pooling": {"pooling_mode_cls_token": True}}, "1_Pooling/config.json", "names 2 modes"),
    ("no mode", {"pooling": {"pooling_mode_mean_tokens": False}}, "1_Pooling/config.json", "names 0 modes"),
    ("unsupported mode", {"pooling": {"pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": True}},
     "1_Pooling/config.json", "'max' is not supported"),
    ("mode name contradicts flags", {"pooling": {"pooling_mode": "cls_token"}}, "1_Pooling/config.json",
     "field 'pooling_mode'"),
    ("prompt without a name", {"prompts": {"": "query: "}}, "config_sentence_transformers.json", "has no name"),
    ("prompts not a mapping", {"prompts": ["query: ", "passage: "]}, "config_sentence_transformers.json",
     "field 'prompts'"),
    ("passage and document differ", {"prompts": {"passage": "p: ", "document": "d: "}},
     "config_sentence_transformers.json", "differ"),
    ("dense module", {"extra_modules": [{"idx": 3, "name": "3", "path": "3_Dense",
                                         "type": "sentence_transformers.models.Dense"}]},
     "modules.json", "not supported"),
    ("prompt excluded from pooling", {"pooling": {"include_prompt": False}}, "1_Pooling/config.json",
     "include_prompt"),
    ("unknown similarity", {"similarity": "manhattan", "normalize": False}, "config_sentence_transformers.json",
     "similarity_fn_name"),
]


@pytest.mark.parametrize("case,kwargs,file,message", BAD_ST_FILES, ids=[c[0] for c in BAD_ST_FILES])
def test_contradictory_sentence_transformers_files_are_one_line_errors(
        tiny_hf_dir: Path, tmp_path: Path, case: str, kwargs: dict, file: str, message: str) -> None:
    from clbias.export import export_model

    st = make_sentence_transformers_dir(tiny_hf_dir, tmp_path / "st", **kwargs)
    with pytest.raises(ModelError, match=message) as info:
        export_model(st, "bad", tmp_path / "out")
    assert str(info.value).startswith(str(st / file)) and "\n" not in str(info.value), case
    assert leftovers(tmp_path / "out") == []


def test_lower_casing_and_nested_transformer_are_refused(tiny_hf_dir: Path, tmp_path: Path) -> None:
    from clbias.export.describe import describe

    st = make_sentence_transformers_dir(tiny_hf_dir, tmp_path / "st")
    (st / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64, "do_lower_case": True}))
    with pytest.raises(ModelError, match="do_lower_case"):
        describe(st)
    (st / "sentence_bert_config.json").unlink()
    modules = json.loads((st / "modules.json").read_text())
    modules[0]["path"] = "0_Transformer"
    (st / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelError, match="0_Transformer"):
        describe(st)
    (st / "modules.json").write_text("{not json")
    with pytest.raises(ModelError, match="modules.json: cannot read it as JSON"):
        describe(st)
