"""Models as the command line names them (`NAME[:GRAPH]`) and as `clbias models list` shows them: the
library behind the CLI's model options."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ModelError
from .model_paths import exported_root, graph_file, missing_model_message, require_model, resolve_model, split_model_spec
from .runtime.encoder import Encoder
from .runtime.manifest import MANIFEST_NAME, load_manifest


def pick_graph(directory: Path, graph: str) -> str:
    """The manifest's file for GRAPH, or a one-line error listing the graphs the model has."""
    chosen = graph_file(graph)
    manifest = load_manifest(directory, verify=False)
    graphs = [f for f in manifest.files if f.endswith(".onnx")]
    if chosen not in graphs:
        raise ModelError(f"{directory / MANIFEST_NAME}: no graph {graph!r} ({chosen}); this model has: "
                         f"{', '.join(graphs)}")
    return chosen


def ensure_built(name: str, say: Callable[[str], None] = print, console: Any = None) -> None:
    """Build the known model `name` once (needs the export extra) when its directory has no manifest."""
    directory = resolve_model(name)
    if (directory / MANIFEST_NAME).is_file():
        return
    from .models.build import build_model, missing_build_modules

    missing = missing_build_modules(name)
    if missing:  # a core-only install: copying a built model is the way, not installing torch here
        raise ModelError(f"{missing_model_message(name)} (this install has no {', '.join(missing)})")
    say(f"[bold]{name}[/bold] is not built yet: building it once into {directory} (a few minutes)")
    build_model(name, console=console)


def load_specs(specs: list[str], onnx: str | None = None, threads: int | None = None, default: str | None = None,
               say: Callable[[str], None] = print, console: Any = None) -> list[Encoder]:
    """Encoders for `NAME[:GRAPH]` specs (`onnx`: the graph of specs without one); no spec: `default`, which
    is built when missing, as is a spec naming it."""
    if not specs and default:
        specs = [default]
    encoders = []
    for spec in specs:
        name, graph = split_model_spec(spec)
        if default and name == default:
            ensure_built(default, say, console)
        graph = graph or onnx
        directory = require_model(name)
        encoders.append(Encoder.load(directory, onnx=graph and pick_graph(directory, graph), threads=threads))
    return encoders


def architecture(source: dict) -> str:
    """What the manifest's provenance says the network is: a converter's description, else the HF class."""
    if source.get("architecture"):
        return str(source["architecture"])
    names = source.get("architectures") or []
    kind = source.get("model_type")
    return ", ".join(names) + (f" ({kind})" if kind else "") if names or kind else "not stated"


def list_models(root: Path | None = None) -> list[dict[str, Any]]:
    """One row per graph of every exported model under `root` (default: the exported/ home)."""
    root = root or exported_root()
    rows = []
    # Hidden directories are builds in progress or interrupted (.NAME.partial-*, .NAME.old-*): never models.
    for directory in sorted(p for p in root.glob("*") if not p.name.startswith(".") and (p / MANIFEST_NAME).is_file()):
        m = load_manifest(directory, verify=False)
        for onnx in [f for f in m.files if f.endswith(".onnx")]:
            q = m.quantization.get(onnx, {})
            path = directory / onnx
            rows.append({"name": m.name, "dir": str(directory), "onnx": onnx, "default": onnx == m.onnx,
                         "size_mb": round((path.stat().st_size if path.is_file() else 0) / 1e6, 1),
                         "sha256": m.files[onnx], "architecture": architecture(m.source), "dim": m.dim,
                         "pooling": m.pooling, "languages": m.languages,
                         "source": m.source.get("description") or m.source.get("model") or "",
                         "provenance": m.source.get("fidelity") or m.source.get("weights"),
                         "quantization": q.get("mode") or q.get("weight_type") or ("int8" if q else "fp32"),
                         "min_cosine": q.get("min_cosine")})
    return rows
