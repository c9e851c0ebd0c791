"""Training-free shift: numpy maths, file round trip, model binding, and `clbias shift fit` on the tiny model."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from clbias.cli import main
from clbias.errors import InputError, ModelError
from clbias.shift import SHIFT_FILE, Shift, cross_language_offset, fit_shift, load_shift, read_pairs

DIM = 16


def unit(m: np.ndarray) -> np.ndarray:
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)


def synthetic_pairs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """English vectors and translations displaced by a fixed per-language direction plus noise."""
    rng = np.random.default_rng(seed)
    english = unit(rng.normal(size=(n, DIM)))
    direction = {"de": rng.normal(size=DIM) * 0.15, "zh": rng.normal(size=DIM) * 0.3}
    langs = ["de" if i % 2 else "zh" for i in range(n)]
    others = unit(english + np.stack([direction[lang] for lang in langs]) + rng.normal(size=(n, DIM)) * 0.02)
    return english, others, langs


def test_shift_moves_only_non_english_documents_and_renormalises():
    english, others, langs = synthetic_pairs(40)
    shift = fit_shift(english, others, langs, "a" * 64, "model.onnx")
    docs = np.concatenate([english[:5], others[:5], unit(np.ones((2, DIM)))])
    doc_langs = ["en"] * 5 + langs[:5] + ["fr", "en-GB"]
    shifted = shift.apply(docs, doc_langs)
    np.testing.assert_array_equal(shifted[:5], docs[:5])  # English untouched
    np.testing.assert_array_equal(shifted[10:], docs[10:])  # no offset for fr; en-GB is English
    assert not np.allclose(shifted[5:10], docs[5:10])
    np.testing.assert_allclose(np.linalg.norm(shifted, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(docs, np.concatenate([english[:5], others[:5], unit(np.ones((2, DIM)))]))
    assert shift.offset_for("zh-Hans") is shift.offsets["zh"]  # regional/script tags fall back to the base


def test_shift_reduces_the_cross_language_offset_on_held_out_pairs():
    english, others, langs = synthetic_pairs(200)
    shift = fit_shift(english[:100], others[:100], langs[:100], "a" * 64, "model.onnx")
    held_en, held_other, held_langs = english[100:], others[100:], langs[100:]
    shifted = shift.apply(held_other, held_langs)
    for lang in ("de", "zh"):
        rows = np.array([x == lang for x in held_langs])
        before = cross_language_offset(held_en[rows], held_other[rows])
        after = cross_language_offset(held_en[rows], shifted[rows])
        assert after < 0.25 * before, lang
        # and each translation moves closer to its own English twin
        assert np.mean(np.sum(shifted[rows] * held_en[rows], 1)) > np.mean(np.sum(held_other[rows] * held_en[rows], 1))


def test_shift_file_round_trips_and_is_bound_to_the_model(tiny_model_dir: Path, tmp_path: Path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    assert load_shift(model) is None
    manifest = json.loads((model / "clbias.json").read_text())
    english, others, langs = synthetic_pairs(20)
    english, others = np.pad(english, ((0, 0), (0, 16))), np.pad(others, ((0, 0), (0, 16)))  # the tiny model is 32-d
    shift = fit_shift(english, others, langs, manifest["files"]["model.onnx"], "model.onnx")
    path = shift.save(model)
    assert path == model / SHIFT_FILE and "\"offset\"" in path.read_text()  # JSON, never a pickle
    loaded = load_shift(model)
    assert isinstance(loaded, Shift) and loaded.n_pairs == {"de": 10, "zh": 10}
    for lang in shift.offsets:
        np.testing.assert_array_equal(loaded.offsets[lang], shift.offsets[lang])
    with pytest.raises(ModelError, match="refit"):
        load_shift(model, onnx="model.int8.onnx")  # another graph, another space
    data = json.loads(path.read_text())
    data["model_sha256"] = "0" * 64
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="fitted for model sha256 000000000000") as info:
        load_shift(model)
    assert "\n" not in str(info.value)
    path.write_text("{not json")
    with pytest.raises(ModelError, match="malformed"):
        load_shift(model)


def test_read_pairs_takes_both_formats_and_locates_errors(tmp_path: Path):
    flat = tmp_path / "flat.jsonl"
    flat.write_text('{"id": 1, "en": "cat", "de": "Katze", "fr": "chat"}\n{"en": "dog", "de": "Hund"}\n')
    assert read_pairs(flat) == [("de", "cat", "Katze"), ("fr", "cat", "chat"), ("de", "dog", "Hund")]
    assert read_pairs(flat, ["fr"]) == [("fr", "cat", "chat")]
    units = tmp_path / "train.jsonl"
    units.write_text('{"parallel_id": "u1", "texts": {"en": "cat", "zh-hans": "猫"}, "queries": {"en": "q"}}\n')
    assert read_pairs(units) == [("zh-Hans", "cat", "猫")]
    for body, line, field in [('{"de": "Hund"}\n', 1, "en"), ('{"en": "a", "xx": "b"}\n', 1, "xx"),
                              ('{"en": "a", "de": "b"}\n{"en": "a", "de": " "}\n', 2, "de"),
                              ('{"en": "a", "de": "b"}\n{oops\n', 2, None)]:
        bad = tmp_path / "bad.jsonl"
        bad.write_text(body)
        with pytest.raises(InputError) as info:
            read_pairs(bad)
        assert (info.value.line, info.value.field) == (line, field), body


def pairs_file(path: Path) -> Path:
    from corpus_factory import PARALLEL

    extra = {"u5": ("The museum shows old paintings.", "Das Museum zeigt alte Gemälde."),
             "u6": ("The bridge leads to the station.", "Die Brücke führt zum Bahnhof."),
             "u7": ("Paris is the capital of France.", "Paris ist die Hauptstadt von Frankreich.")}
    rows = [{"parallel_id": u, "texts": texts} for u, texts in PARALLEL.items()]
    rows += [{"parallel_id": u, "texts": {"en": en, "de": de}} for u, (en, de) in extra.items()]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_cli_fits_a_shift_that_leaves_queries_alone(tiny_model_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]):
    from clbias.api import embed, load_model
    from corpus_factory import PARALLEL, QUERIES

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    queries = [q for by_lang in QUERIES.values() for q in by_lang.values()]
    before = embed(queries, load_model(model), kind="query")
    pairs = pairs_file(tmp_path / "pairs.jsonl")
    args = ["shift", "fit", "--model", str(model), "--pairs", str(pairs), "--no-cache"]
    assert main(args) == 2
    assert "too few pairs" in capsys.readouterr().err
    assert main(args + ["--min-pairs", "5"]) == 0
    assert "de: 7 pairs" in " ".join(capsys.readouterr().err.split())
    shift = load_shift(model)
    assert shift is not None and shift.langs == ["de"] and shift.n_pairs == {"de": 7}
    np.testing.assert_array_equal(embed(queries, load_model(model), kind="query"), before)
    encoder = load_model(model)
    en = embed([t["en"] for t in PARALLEL.values()], encoder)
    de = embed([t["de"] for t in PARALLEL.values()], encoder)
    assert cross_language_offset(en, shift.apply(de, ["de"] * len(de))) < cross_language_offset(en, de)
