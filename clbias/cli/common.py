"""Options and loading shared by commands that take models."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from ..errors import InputError
from ..model_paths import GRAPH_ALIASES, resolve_model, split_model_spec
from ..model_specs import ensure_built, load_specs, pick_graph  # noqa: F401  (pick_graph: the CLI's old name)
from ..runtime.encoder import Encoder

ONNX_ALIASES = GRAPH_ALIASES


def add_model_options(p: argparse.ArgumentParser, multiple: bool = False, action: Any = "append") -> None:
    if multiple:
        p.add_argument("--model", action=action, help="exported model dir or name under exported/, optionally "
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
    return load_specs(specs, args.onnx, args.threads, default, console.print, console)


def ensure_default_model(name: str, console: Console) -> None:
    """Build the known model `name` once when it is missing (clbias.model_specs.ensure_built)."""
    ensure_built(name, console.print, console)
