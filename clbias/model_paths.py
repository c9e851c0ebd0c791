"""Where exported models live and how a `--model` argument resolves to a directory."""
from __future__ import annotations

import os
import re
from pathlib import Path

DEFAULT_MODEL = "multilingual-e5-small"


def exported_root() -> Path:
    return Path(os.environ.get("CLBIAS_EXPORTED", "exported"))


def resolve_model(spec: str) -> Path:
    """A path to a model directory, or the name of one under the exported root."""
    path = Path(spec)
    if path.is_dir() or os.sep in spec or spec.startswith("."):
        return path
    return exported_root() / spec


def hf_root() -> Path:
    """Where Hugging Face model directories built or trained locally live (the export and train inputs)."""
    return Path(os.environ.get("CLBIAS_MODELS", "models"))


GRAPH_ALIASES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
_GRAPH_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def split_model_spec(spec: str) -> tuple[str, str | None]:
    """`NAME:GRAPH` -> (NAME, GRAPH); a spec without a graph (or an existing directory whose name has a
    colon) -> (spec, None). GRAPH is an alias (fp32, int8, int8-RECIPE) or a graph file name."""
    head, sep, tail = spec.rpartition(":")
    if not sep or not head or Path(spec).is_dir() or not _GRAPH_TOKEN.fullmatch(tail):
        return spec, None
    return head, tail


def graph_file(graph: str) -> str:
    """The file a graph alias names: fp32 -> model.onnx, int8 -> model.int8.onnx,
    int8-RECIPE -> model.int8-RECIPE.onnx; anything ending in .onnx is taken as a file name."""
    if graph.endswith(".onnx"):
        return graph
    if graph in GRAPH_ALIASES:
        return GRAPH_ALIASES[graph]
    return f"model.{graph}.onnx"


def graph_tag(onnx: str) -> str:
    """The short name of a graph file, as `NAME:GRAPH` takes it: model.int8-RECIPE.onnx -> int8-RECIPE."""
    tag = {"model.onnx": "fp32", "model.int8.onnx": "int8"}.get(onnx, onnx.removesuffix(".onnx"))
    return tag.removeprefix("model.") if tag.startswith("model.int8") else tag
