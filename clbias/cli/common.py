"""Options and loading shared by commands that take models."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ..errors import InputError, ModelError
from ..model_paths import GRAPH_ALIASES, graph_file, resolve_model, split_model_spec
from ..runtime.encoder import Encoder
from ..runtime.manifest import MANIFEST_NAME, load_manifest

ONNX_ALIASES = GRAPH_ALIASES


def add_model_options(p: argparse.ArgumentParser, multiple: bool = False) -> None:
    if multiple:
        p.add_argument("--model", action="append", help="exported model dir or name under exported/, optionally "
                       "NAME:GRAPH to pick one graph (fp32, int8, int8-RECIPE or a file name); repeat to compare "
                       "models or graphs side by side (default: multilingual-e5-small, built if missing)")
    else:
        p.add_argument("--model", required=True, help="exported model dir or name under exported/")
    p.add_argument("--onnx", help="graph to run for every --model without its own :GRAPH: fp32, int8, int8-RECIPE "
                   "or a file name from the manifest (default: the manifest's)")
    p.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: all available cores)")


def model_input_files(args: argparse.Namespace) -> list[Path]:
    """The files of every --model directory that exists: an output path must never be one of them."""
    specs = args.model if isinstance(args.model, list) else ([args.model] if args.model else [])
    files: list[Path] = []
    for spec in specs:
        directory = resolve_model(split_model_spec(spec)[0])
        if directory.is_dir():
            files += [f for f in directory.iterdir() if f.is_file()]
    return files


def check_model_options(args: argparse.Namespace) -> None:
    """Options of add_model_options that can be refused before a model loads."""
    if args.threads is not None and args.threads < 1:
        raise InputError(f"must be >= 1, got {args.threads}", field="--threads")


def load_encoders(args: argparse.Namespace, console: Console, default: str | None = None) -> list[Encoder]:
    check_model_options(args)
    specs = args.model if isinstance(args.model, list) else ([args.model] if args.model else [])
    if not specs and default:
        specs = [default]
        ensure_default_model(default, console)
    encoders = []
    for spec in specs:
        name, graph = split_model_spec(spec)
        if default and name == default:
            ensure_default_model(default, console)
        graph = graph or args.onnx
        directory = resolve_model(name)
        encoders.append(Encoder.load(directory, onnx=graph and pick_graph(directory, graph), threads=args.threads))
    return encoders


def pick_graph(directory: Path, graph: str) -> str:
    """The manifest's file for GRAPH, or a one-line error listing the graphs the model has."""
    chosen = graph_file(graph)
    manifest = load_manifest(directory, verify=False)
    graphs = [f for f in manifest.files if f.endswith(".onnx")]
    if chosen not in graphs:
        raise ModelError(f"{directory / MANIFEST_NAME}: no graph {graph!r} ({chosen}); this model has: "
                         f"{', '.join(graphs)}")
    return chosen


def ensure_default_model(name: str, console: Console) -> None:
    directory = resolve_model(name)
    if (directory / MANIFEST_NAME).is_file():
        return
    try:
        from ..models.build import build_model
    except ImportError as exc:
        raise ModelError(f"{directory}: not built, and building it needs the export extra "
                         f"(pip install -e \".[export]\"): {exc}") from None
    console.print(f"[bold]{name}[/bold] is not built yet: building it once into {directory} (a few minutes)")
    build_model(name, console=console)
