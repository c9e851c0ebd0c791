"""`clbias export SRC --name NAME [--int8]`: Hugging Face model -> ONNX + manifest, verified against torch."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ..errors import ClbiasError
from ..model_paths import exported_root
from ..runtime.manifest import ALL_POOLINGS, MANIFEST_NAME, Prefixes


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a Hugging Face model to ONNX (needs the export extra)",
                       description="Export through Optimum, verify ONNX against torch on a multilingual sample, "
                                   "and write exported/NAME/ with its manifest. Refuses on mismatch. Pooling, "
                                   "normalisation, prompts and max length come from SRC's sentence-transformers "
                                   "files when it has them; flags override; the export says which it used.")
    p.add_argument("src", help="local Hugging Face or sentence-transformers model directory (or a hub id where a "
                               "hub is reachable)")
    p.add_argument("--name", required=True, help="name of the exported model (directory under --out-root)")
    p.add_argument("--out-root", type=Path, help="where exported models live (default: ./exported)")
    p.add_argument("--int8", action="store_true", help="also write a dynamically quantised model.int8.onnx")
    p.add_argument("--default", choices=("fp32", "int8"), default="fp32", help="graph the runtime loads by default")
    p.add_argument("--query-prefix", help="prefix for queries (default: SRC's prompts or clbias.json, else "
                                          "'query: ' for e5 models, else none)")
    p.add_argument("--passage-prefix", help="prefix for passages (default: likewise)")
    p.add_argument("--pooling", choices=ALL_POOLINGS, help="default: SRC's 1_Pooling/config.json, else mean")
    p.add_argument("--output-name", default="last_hidden_state",
                   help="graph output to pool (for --pooling graph: the output that is the sentence vector)")
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                   help="L2-normalise embeddings (default: SRC's Normalize module / similarity, else yes)")
    p.add_argument("--max-length", type=int)
    p.set_defaults(run=run)


def guess_prefixes(src: str) -> Prefixes:
    """The prefixes SRC states (sentence-transformers prompts, a clbias training note), else the e5 guess."""
    from ..export.describe import resolve

    return resolve(src)[2]


def run(args: argparse.Namespace) -> int:
    try:
        from ..export.onnx import export_model
    except ImportError as exc:
        raise ClbiasError(f"export needs the export extra: pip install -e \".[export]\" ({exc})") from None
    from ..runtime.manifest import load_manifest

    from ..io import check_output_paths, check_replaceable_dir

    target = (args.out_root or exported_root()) / args.name
    check_replaceable_dir(target, lambda d: (d / MANIFEST_NAME).is_file(), "an exported model", "--name")
    src = Path(args.src)
    check_output_paths({}, {"--name": target}, inputs=[src] if src.exists() else [], replace_dirs=True)
    console = Console()
    with console.status(f"exporting {args.src} through Optimum and verifying against torch"):
        out = export_model(args.src, args.name, args.out_root or exported_root(), int8=args.int8,
                           default=args.default, query_prefix=args.query_prefix, passage_prefix=args.passage_prefix,
                           pooling=args.pooling, normalize=args.normalize, max_length=args.max_length,
                           output_name=args.output_name)
    m = load_manifest(out, verify=False)
    values = {"pooling": m.pooling, "normalize": m.normalize, "query_prefix": repr(m.prefixes.query),
              "passage_prefix": repr(m.prefixes.passage), "max_length": m.max_length}
    for key, value in values.items():
        console.print(f"  {key} = {escape(str(value))}  [dim]({escape(m.settings_source.get(key, 'default'))})[/dim]")
    console.print(f"exported {args.src} -> {out}")
    return 0
