"""Where models live and how a `--model` argument resolves to a directory.

One home, independent of the working directory: $CLBIAS_HOME (default $XDG_DATA_HOME/clbias, else
~/.local/share/clbias) holds exported models under `models/` and the Hugging Face directories they were built
from under `hf/`. Exported models are looked up and built in one root:

1. $CLBIAS_EXPORTED, when set;
2. else `./exported`, when the working directory has one (a project-local checkout keeps working);
3. else $CLBIAS_HOME/models.

Unless $CLBIAS_EXPORTED is set (then it is the only place), a name not found in that root is also looked for in
$CLBIAS_HOME/models, so a model built once is found from any directory. Every variable is documented in
docs/models.md.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ModelError

DEFAULT_MODEL = "multilingual-e5-small"
MANIFEST = "clbias.json"  # runtime.manifest.MANIFEST_NAME, repeated here so that this module imports nothing heavy
PROJECT_EXPORTED = Path("exported")
PROJECT_MODELS = Path("models")


def home() -> Path:
    """$CLBIAS_HOME, else $XDG_DATA_HOME/clbias, else ~/.local/share/clbias. Read at call time."""
    if os.environ.get("CLBIAS_HOME"):
        return Path(os.environ["CLBIAS_HOME"]).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "clbias"


def home_models() -> Path:
    return home() / "models"


def exported_root() -> Path:
    """Where exported models are looked up first and where `clbias models build` / `clbias export` write."""
    if os.environ.get("CLBIAS_EXPORTED"):
        return Path(os.environ["CLBIAS_EXPORTED"]).expanduser()
    if PROJECT_EXPORTED.is_dir():
        return PROJECT_EXPORTED
    return home_models()


def model_roots() -> list[Path]:
    """Where a model name is looked for, in order (no duplicates)."""
    roots = [exported_root()]
    if not os.environ.get("CLBIAS_EXPORTED") and home_models().resolve() != roots[0].resolve():
        roots.append(home_models())
    return roots


def _is_name(spec: str) -> bool:
    return not (Path(spec).is_dir() or os.sep in spec or spec.startswith(".") or spec.startswith("~"))


def resolve_model(spec: str) -> Path:
    """A path to a model directory, or the name of one: the first root that holds NAME with a manifest, else
    where it would be built (exported_root()/NAME)."""
    if not _is_name(spec):
        return Path(spec).expanduser()
    for root in model_roots():
        if (root / spec / MANIFEST).is_file():
            return root / spec
    return exported_root() / spec


def require_model(spec: str) -> Path:
    """resolve_model, or a one-line ModelError saying exactly how to provide a model that is nowhere."""
    path = resolve_model(spec)
    if (path / MANIFEST).is_file() or not _is_name(spec):
        return path
    raise ModelError(missing_model_message(spec))


def missing_model_message(name: str) -> str:
    looked = " and ".join(str(r / name) for r in model_roots())
    return (f"model {name!r} not found (looked in {looked}); copy a built model directory (clbias.json, "
            f"tokenizer.json and its .onnx graph) to {home_models() / name}, or set CLBIAS_EXPORTED to the "
            f"folder that holds {name}/, or pass --model DIR; to build it, run `clbias models build {name}` "
            f"where the export extra is installed")


def hf_root() -> Path:
    """Where Hugging Face model directories built or trained locally live (the export and train inputs):
    $CLBIAS_MODELS; else ./models when the working directory has one; else $CLBIAS_HOME/hf."""
    if os.environ.get("CLBIAS_MODELS"):
        return Path(os.environ["CLBIAS_MODELS"]).expanduser()
    if PROJECT_MODELS.is_dir():
        return PROJECT_MODELS
    return home() / "hf"


GRAPH_ALIASES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "q4": "model.q4.onnx"}
_GRAPH_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def split_model_spec(spec: str) -> tuple[str, str | None]:
    """`NAME:GRAPH` -> (NAME, GRAPH); a spec without a graph (or an existing directory whose name has a
    colon) -> (spec, None). GRAPH is an alias (fp32, int8, q4, int8-RECIPE) or a graph file name."""
    head, sep, tail = spec.rpartition(":")
    if not sep or not head or Path(spec).is_dir() or not _GRAPH_TOKEN.fullmatch(tail):
        return spec, None
    return head, tail


def graph_file(graph: str) -> str:
    """The file a graph alias names: fp32 -> model.onnx, int8 -> model.int8.onnx, q4 -> model.q4.onnx,
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
