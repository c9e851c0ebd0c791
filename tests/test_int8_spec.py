"""`--model NAME:GRAPH`: one graph of an exported model per --model entry, compared with paired statistics."""
import json

import pytest

from clbias.audit import graph_tag
from clbias.cli import main
from clbias.model_paths import graph_file, split_model_spec
from corpus_factory import parallel_corpus


@pytest.mark.parametrize("spec, expected", [
    ("multilingual-e5-small:int8", ("multilingual-e5-small", "int8")),
    ("exported/m:int8-pc-qint8", ("exported/m", "int8-pc-qint8")),
    ("/abs/path/m:model.int8.onnx", ("/abs/path/m", "model.int8.onnx")),
    ("multilingual-e5-small", ("multilingual-e5-small", None)),
    ("m:", ("m:", None)),
    (":int8", (":int8", None)),
    ("C:\\models\\m", ("C:\\models\\m", None)),  # a Windows path, not a graph
])
def test_split_model_spec(spec, expected):
    assert split_model_spec(spec) == expected


def test_a_directory_whose_name_has_a_colon_is_a_directory(tmp_path):
    odd = tmp_path / "m:int8"
    odd.mkdir()
    assert split_model_spec(str(odd)) == (str(odd), None)


@pytest.mark.parametrize("graph", ["fp32", "int8", "int8-static-qint8", "model.int8-x.onnx"])
def test_graph_alias_and_tag_round_trip(graph):
    file = graph_file(graph)
    assert file.endswith(".onnx")
    assert graph_file(graph_tag(file)) == file


def test_audit_two_graphs_of_one_model_with_paired_stats(tmp_path, tiny_model_dir):
    corpus = parallel_corpus(tmp_path / "corpus")
    out = tmp_path / "r.json"
    assert main(["audit", str(corpus), "--model", str(tiny_model_dir), "--model", f"{tiny_model_dir}:int8",
                 "--json", str(out), "--no-cache", "--quiet", "--bootstrap", "100"]) == 0
    data = json.loads(out.read_text())
    assert [(m["name"], m["onnx"]) for m in data["models"]] == [("tiny:fp32", "model.onnx"),
                                                                ("tiny:int8", "model.int8.onnx")]
    assert data["models"][1]["quantization"]["method"].startswith("onnxruntime.quantization")
    assert data["models"][0]["sha256"] != data["models"][1]["sha256"]
    for scenario in data["scenarios"]:
        comp = scenario["comparisons"][0]
        assert (comp["base"], comp["other"]) == ("tiny:fp32", "tiny:int8")
        m = comp["metrics"]["ndcg@10"]
        assert m["wins"] + m["ties"] + m["losses"] == m["n"] == scenario["n_queries"]
        assert "p_value" not in m and m["ci"][0] <= m["diff"] <= m["ci"][1]  # the CI alone decides
        assert m["diff"] == pytest.approx(m["other"] - m["base"], abs=2e-4)


def test_graph_in_the_spec_wins_over_onnx(tmp_path, tiny_model_dir):
    corpus = parallel_corpus(tmp_path / "corpus")
    out = tmp_path / "r.json"
    assert main(["audit", str(corpus), "--model", f"{tiny_model_dir}:fp32", "--model", str(tiny_model_dir),
                 "--onnx", "int8", "--json", str(out), "--no-cache", "--quiet", "--bootstrap", "20"]) == 0
    assert [m["onnx"] for m in json.loads(out.read_text())["models"]] == ["model.onnx", "model.int8.onnx"]


def test_unknown_graph_is_one_line_naming_the_graphs(tmp_path, tiny_model_dir, capsys):
    corpus = parallel_corpus(tmp_path / "corpus")
    assert main(["audit", str(corpus), "--model", f"{tiny_model_dir}:int9", "--no-cache", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "'int9'" in err[0] and "model.onnx" in err[0] and "model.int8.onnx" in err[0]
