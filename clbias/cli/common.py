"""Options and loading shared by commands that take models."""
from __future__ import annotations

import argparse

from rich.console import Console

from ..errors import InputError, ModelError
from ..model_paths import resolve_model
from ..runtime.encoder import Encoder
from ..runtime.manifest import MANIFEST_NAME

ONNX_ALIASES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}


def add_model_options(p: argparse.ArgumentParser, multiple: bool = False) -> None:
    if multiple:
        p.add_argument("--model", action="append", help="exported model dir or name under exported/ "
                       "(repeat to compare models side by side; default: multilingual-e5-small, built if missing)")
    else:
        p.add_argument("--model", required=True, help="exported model dir or name under exported/")
    p.add_argument("--onnx", help="graph to run: fp32, int8 or a file name from the manifest (default: the manifest's)")
    p.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: all available cores)")


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
    onnx = ONNX_ALIASES.get(args.onnx, args.onnx) if args.onnx else None
    return [Encoder.load(resolve_model(s), onnx=onnx, threads=args.threads) for s in specs]


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
