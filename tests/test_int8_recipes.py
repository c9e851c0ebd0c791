"""int8 recipes on the tiny model: measured per-node error, one graph per recipe, drift recorded and true."""
import json
import shutil

import numpy as np
import pytest

from clbias.cli import main
from clbias.errors import InputError, ModelError
from clbias.export import int8_search as search
from clbias.export import verify
from clbias.export.quantize import QuantSettings
from clbias.runtime.encoder import Encoder
from clbias.runtime.manifest import load_manifest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

UNITS = [("The cat sleeps on the warm window sill.", "Die Katze schläft auf der warmen Fensterbank.",
          "Кошка спит на тёплом подоконнике.", "where does the cat sleep", "wo schläft die Katze", "где спит кошка"),
         ("Trains leave the station every hour.", "Die Züge fahren jede Stunde ab.", "Поезда уходят каждый час.",
          "how often do trains leave", "wie oft fahren Züge", "как часто уходят поезда"),
         ("Rice grows in flooded fields.", "Reis wächst auf gefluteten Feldern.", "Рис растёт на затопленных полях.",
          "where does rice grow", "wo wächst Reis", "где растёт рис")]


def write_train(path, langs=("en", "de", "ru")):
    rows = []
    for i, unit in enumerate(UNITS * 4):
        texts = dict(zip(("en", "de", "ru"), unit[:3]))
        queries = dict(zip(("en", "de", "ru"), unit[3:]))
        rows.append({"parallel_id": f"u{i}", "texts": {l: f"{texts[l]} ({i})" for l in langs},
                     "queries": {l: queries[l] for l in langs}})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def model_copy(tiny_model_dir, tmp_path):
    return shutil.copytree(tiny_model_dir, tmp_path / "tiny")


@pytest.fixture()
def bert_copy(tiny_exported_dir, tmp_path):
    """A BERT graph as Optimum exports it (12 weight MatMuls, LayerNorm, GELU): what the per-node error model
    and the static recipe are checked against. The torch-free tiny graph (x + tanh(xW)) is no stand-in here:
    on it the numpy error estimate and onnxruntime disagree by up to 3x, and static QDQ inserts no node."""
    return shutil.copytree(tiny_exported_dir, tmp_path / "bert")


@pytest.fixture()
def calibration(tmp_path):
    return search.read_calibration(write_train(tmp_path / "train.jsonl"), per_language=6)


def test_calibration_is_multilingual_deterministic_and_refuses_english_alone(tmp_path, calibration):
    assert calibration.langs == {"de": 12, "en": 12, "ru": 12}
    again = search.read_calibration(tmp_path / "train.jsonl", per_language=6)
    assert again.digest == calibration.digest
    assert search.read_calibration(tmp_path / "train.jsonl", per_language=6, seed=1).digest != calibration.digest
    with pytest.raises(InputError, match="English and other languages"):
        search.read_calibration(write_train(tmp_path / "en.jsonl", langs=("en",)))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hello"}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:1: field 'lang'"):
        search.read_calibration(bad)


@pytest.mark.parametrize("settings", [
    QuantSettings(weight_type="qint8", per_channel=True, op_types=("MatMul",)),
    QuantSettings(weight_type="qint8", per_channel=False, op_types=("MatMul",)),
    QuantSettings(weight_type="quint8", per_channel=True, op_types=("MatMul",)),
], ids=["pc-s8", "pt-s8", "pc-u8"])
def test_measured_node_error_is_what_onnxruntime_does_to_that_node(bert_copy, calibration, settings, tmp_path):
    """Quantise only the worst node with onnxruntime: its output error equals the numpy measurement."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32 = Encoder.load(bert_copy, onnx="model.onnx")
    feeds = search.calibration_feeds(fp32, calibration)
    errors = search.measure_node_errors(bert_copy, settings, feeds)
    assert [e.error for e in errors] == sorted((e.error for e in errors), reverse=True)
    assert len(errors) == weight_matmuls(bert_copy) >= 2 and errors[0].error > 0
    worst = errors[0]
    one = tmp_path / "one.onnx"
    quantize_dynamic(str(bert_copy / "model.onnx"), str(one), per_channel=settings.per_channel,
                     weight_type=QuantType.QInt8 if settings.weight_type == "qint8" else QuantType.QUInt8,
                     op_types_to_quantize=["MatMul"], nodes_to_quantize=[worst.name])
    graph = onnx.load(str(bert_copy / "model.onnx"))
    output = next(n.output[0] for n in graph.graph.node if n.name == worst.name)
    ref, got = (_tensor(path, output, feeds) for path in (bert_copy / "model.onnx", one))
    actual = np.sqrt(sum(np.square(g - r).sum() for g, r in zip(got, ref)) / sum(np.square(r).sum() for r in ref))
    if settings.weight_type == "qint8" and settings.per_channel:
        # u8 x s8 kernels without VNNI (AVX2) saturate int16 pair sums, which numpy does not model: that can
        # only add error, and adds little
        assert worst.error * (1 - 1e-3) <= actual <= worst.error * 1.05
    else:
        assert actual == pytest.approx(worst.error, rel=1e-3)


def _tensor(path, name, feeds):
    model = onnx.load(str(path))
    model.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return [session.run([name], feed)[0].astype(np.float64) for feed in feeds]


def weight_matmuls(model_dir) -> int:
    """The MatMuls with a weight initializer: the nodes a recipe can quantise or keep in fp32."""
    graph = onnx.load(str(model_dir / "model.onnx")).graph
    weights = {i.name for i in graph.initializer}
    return sum(n.op_type == "MatMul" and any(x in weights for x in n.input) for n in graph.node)


def test_every_recipe_loads_and_matches_fp32_within_its_recorded_drift(bert_copy, calibration):
    n_weight = weight_matmuls(bert_copy)
    for recipe in search.RECIPES.values():
        search.build_recipe(bert_copy, recipe, calibration)
    manifest = load_manifest(bert_copy)  # every file's sha256 checked
    assert manifest.onnx == "model.onnx"  # building recipes never changes the default
    texts, _ = verify.sample(None)
    fp32 = Encoder.load(bert_copy, onnx="model.onnx")
    for recipe in search.RECIPES.values():
        record = manifest.quantization[recipe.file]
        assert record["recipe"] == recipe.name
        assert record["weight_type"] == recipe.settings.weight_type
        assert record["per_channel"] == recipe.settings.per_channel and record["mode"] == recipe.settings.mode
        assert ("calibration" in record) == recipe.needs_calibration
        if recipe.needs_calibration:
            assert record["calibration"]["sha256"] == calibration.digest
        assert search.is_current(bert_copy, recipe, calibration)
        int8 = Encoder.load(bert_copy, onnx=recipe.file)
        size = record["batch_size"]
        cos = np.concatenate([verify.row_cosines(fp32.encode(texts, k, batch_size=size),
                                                 int8.encode(texts, k, batch_size=size)) for k in verify.KINDS])
        assert cos.min() >= record["min_cosine"] - 1e-6
        assert np.median(cos) == pytest.approx(record["median_cosine"], abs=1e-4)
        assert record["min_cosine"] < 1.0 - 1e-9 or recipe.exclude_top >= n_weight  # quantised unless all nodes kept
        ops = {n.op_type: n.name for n in onnx.load(str(bert_copy / recipe.file)).graph.node}
        names = {n.name for n in onnx.load(str(bert_copy / recipe.file)).graph.node}
        for kept in record.get("kept_fp32", []):
            assert kept["name"] in names  # still the fp32 MatMul, untouched by the quantiser
        assert len(record.get("kept_fp32", [])) == min(recipe.exclude_top, n_weight)
        if recipe.settings.mode == "static":
            assert "QuantizeLinear" in ops
        elif recipe.exclude_top < n_weight:
            assert "MatMulInteger" in ops


def test_a_recipe_built_on_other_calibration_text_is_not_current(model_copy, calibration, tmp_path):
    recipe = search.RECIPES["static-pc-s8"]
    search.build_recipe(model_copy, recipe, calibration)
    other = search.read_calibration(tmp_path / "train.jsonl", per_language=6, seed=7)
    assert search.is_current(model_copy, recipe, calibration) and not search.is_current(model_copy, recipe, other)
    assert not search.is_current(model_copy, search.RECIPES["static-pc-s8-x8"], calibration)


def test_exclusions_are_the_largest_measured_errors(model_copy, calibration):
    recipe = search.RECIPES["dyn-pc-s8-x8"]
    record = search.build_recipe(model_copy, recipe, calibration).record
    fp32 = Encoder.load(model_copy, onnx="model.onnx")
    errors = search.measure_node_errors(model_copy, recipe.settings, search.calibration_feeds(fp32, calibration))
    assert [k["name"] for k in record["kept_fp32"]] == [e.name for e in errors[:8]]


def test_recipe_graph_is_auditable_by_name(model_copy, calibration, tmp_path):
    from corpus_factory import parallel_corpus

    search.build_recipe(model_copy, search.RECIPES["dyn-pc-u8"], calibration)
    out = tmp_path / "r.json"
    assert main(["audit", str(parallel_corpus(tmp_path / "c")), "--model", str(model_copy),
                 "--model", f"{model_copy}:int8-dyn-pc-u8", "--json", str(out), "--no-cache", "--quiet",
                 "--bootstrap", "20"]) == 0
    models = json.loads(out.read_text())["models"]
    assert [m["name"] for m in models] == ["tiny:fp32", "tiny:int8-dyn-pc-u8"]
    assert models[1]["quantization"]["recipe"] == "dyn-pc-u8"


def test_static_recipe_without_calibration_is_refused(model_copy):
    with pytest.raises(ModelError, match="needs calibration"):
        search.build_recipe(model_copy, search.RECIPES["static-pc-s8"], None)
    assert not list(model_copy.glob("*static*")) and not list(model_copy.glob(".*partial*"))


def test_cli_int8_builds_recipes_and_refuses_bad_options(model_copy, tmp_path, capsys):
    train = write_train(tmp_path / "train.jsonl")
    assert main(["models", "int8", str(model_copy), "--recipes", "dyn-pt-s8,static-pc-s8",
                 "--calibration", str(train)]) == 0
    assert {"model.int8-dyn-pt-s8.onnx", "model.int8-static-pc-s8.onnx"} <= set(load_manifest(model_copy).files)
    capsys.readouterr()
    for argv in (["--recipes", "nope"], ["--recipes", "static-pc-s8"],
                 ["--recipes", "dyn-pt-s8", "--calibration", str(write_train(tmp_path / "en.jsonl", ("en",)))]):
        assert main(["models", "int8", str(model_copy), *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err


def test_models_check_compares_a_recipe_graph_with_fp32(model_copy, calibration, tmp_path, capsys):
    from corpus_factory import parallel_corpus

    search.build_recipe(model_copy, search.RECIPES["dyn-pc-u8"], calibration)
    out = tmp_path / "check.json"
    assert main(["models", "check", str(model_copy), "--graph", "int8-dyn-pc-u8", "--corpus",
                 str(parallel_corpus(tmp_path / "c")), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["int8"] == "model.int8-dyn-pc-u8.onnx" and {l["lang"] for l in data["languages"]} == {"en", "de"}
    capsys.readouterr()
    assert main(["models", "check", str(model_copy), "--graph", "int8-nope"]) == 2
    assert "model.int8-nope.onnx" in capsys.readouterr().err
