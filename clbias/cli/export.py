"""`clbias export SRC --name NAME [--int8]`: Hugging Face model -> ONNX + manifest, verified against torch."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ..errors import ClbiasError
from ..model_paths import exported_root
from ..runtime.manifest import Prefixes


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a Hugging Face model to ONNX (needs the export extra)",
                       description="Export through Optimum, verify ONNX against torch on a multilingual sample, "
                                   "and write exported/NAME/ with its manifest. Refuses on mismatch.")
    p.add_argument("src", help="local Hugging Face model directory (or a hub id where a hub is reachable)")
    p.add_argument("--name", required=True, help="name of the exported model (directory under --out-root)")
    p.add_argument("--out-root", type=Path, help="where exported models live (default: ./exported)")
    p.add_argument("--int8", action="store_true", help="also write a dynamically quantised model.int8.onnx")
    p.add_argument("--default", choices=("fp32", "int8"), default="fp32", help="graph the runtime loads by default")
    p.add_argument("--query-prefix", help="prefix for queries (default: from clbias.json in SRC, else 'query: ' for e5 models, else none)")
    p.add_argument("--passage-prefix", help="prefix for passages (default: likewise)")
    p.add_argument("--pooling", choices=("mean", "cls"), default="mean")
    p.add_argument("--no-normalize", action="store_true")
    p.add_argument("--max-length", type=int)
    p.set_defaults(run=run)


def guess_prefixes(src: str) -> Prefixes:
    """e5 models need 'query: '/'passage: ' (fastembed #251, mteb #3517); a fine-tuned model records its own."""
    import json

    manifest = Path(src) / "clbias.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text(encoding="utf-8")).get("prefixes", {})
        return Prefixes(**data)
    return Prefixes("query: ", "passage: ") if "e5" in Path(src).name.lower() else Prefixes()


def run(args: argparse.Namespace) -> int:
    try:
        from ..export.onnx import export_model
    except ImportError as exc:
        raise ClbiasError(f"export needs the export extra: pip install -e \".[export]\" ({exc})") from None
    guessed = guess_prefixes(args.src)
    prefixes = Prefixes(args.query_prefix if args.query_prefix is not None else guessed.query,
                        args.passage_prefix if args.passage_prefix is not None else guessed.passage)
    console = Console()
    with console.status(f"exporting {args.src} through Optimum and verifying against torch"):
        out = export_model(args.src, args.name, args.out_root or exported_root(), int8=args.int8,
                           default=args.default, prefixes=prefixes, pooling=args.pooling,
                           normalize=not args.no_normalize, max_length=args.max_length)
    console.print(f"exported {args.src} -> {out}")
    return 0
