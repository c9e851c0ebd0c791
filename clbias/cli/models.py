"""`clbias models list|build|check`."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import ClbiasError, ModelError
from ..model_paths import DEFAULT_MODEL, exported_root, graph_file, model_roots, require_model, resolve_model
from ..model_specs import list_models
from ..runtime.manifest import MANIFEST_NAME, load_manifest
from ..text import inert


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list, build and check exported models")
    msub = p.add_subparsers(dest="models_command", required=True)
    ls = msub.add_parser("list", help="models found (exported root, then $CLBIAS_HOME/models) with sizes, hashes, "
                                      "source and quantisation")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(run=run_list)
    build = msub.add_parser("build", help="build a known model offline (needs the export extra): "
                                          "multilingual-e5-small (default), use-multilingual-v3, or "
                                          "multilingual-e5-small-aligned (the default alignment recipe trained on "
                                          "man pages fetched with apt-get; needs the train extra too)")
    build.add_argument("name", nargs="?", default=DEFAULT_MODEL)
    build.add_argument("--force", action="store_true", help="rebuild even if it exists")
    build.set_defaults(run=run_build)
    check = msub.add_parser("check", help="int8 vs fp32 per language: cosine, top-10 overlap, metric moves")
    check.add_argument("name", nargs="?", default=DEFAULT_MODEL)
    check.add_argument("--corpus", type=Path, default=Path("examples/udhr"))
    check.add_argument("--max-points", type=float, default=1.0)
    check.add_argument("--threads", type=int)
    check.add_argument("--graph", default="int8", help="the graph to check against fp32: int8, int8-RECIPE or a "
                       "file name (default int8)")
    check.add_argument("--json", type=Path, help="also write the numbers as JSON")
    check.set_defaults(run=run_check)
    int8 = msub.add_parser("int8", help="write one int8 graph per quantisation recipe (model.int8-RECIPE.onnx), "
                           "each with its settings and measured drift in the manifest")
    int8.add_argument("name", nargs="?", default=DEFAULT_MODEL)
    int8.add_argument("--calibration", type=Path, help="multilingual calibration text: a probe set's train.jsonl, "
                      "a corpus.jsonl, or a directory with one (required by static and node-exclusion recipes)")
    int8.add_argument("--recipes", help="comma-separated recipe names (default: all; see --list)")
    int8.add_argument("--list", action="store_true", help="list the recipes and exit")
    int8.add_argument("--per-language", type=int, default=8, help="calibration passages (and queries) per language")
    int8.add_argument("--threads", type=int)
    int8.set_defaults(run=run_int8)


def run_list(args: argparse.Namespace) -> int:
    roots = model_roots()
    rows = [row for root in roots for row in list_models(root)]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    title = " and ".join(f"{r}/" for r in roots)
    Console().print(models_table(title, rows) if rows else f"no exported models in {' or '.join(f'{r}/' for r in roots)} "
                                                           f"(build one with `clbias models build`, or copy a model "
                                                           f"directory there)")
    return 0


def models_table(root: Path | str, rows: list[dict]) -> Table:
    """One row per graph with the short facts (fits 120 columns; no column may cut a model's name), then one
    caption line per model with its architecture, languages and source, which are too long for a cell."""
    table = Table(title=f"models in {root}/", title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1),
                  pad_edge=False, show_edge=False, caption_justify="left")
    right = ("MB", "dim", "langs")
    for col in ("name", "graph (✓ default)", "MB", "sha256", "dim", "langs", "quantisation"):
        table.add_column(col, justify="right" if col in right else "left", no_wrap=col != "quantisation",
                         overflow="fold")
    seen: dict[str, dict] = {}
    for r in rows:
        first = r["name"] not in seen
        seen.setdefault(r["name"], r)
        table.add_row(escape(inert(r["name"])) if first else "", escape(inert(r["onnx"])) + (" ✓" if r["default"] else ""),
                      f"{r['size_mb']:.1f}", escape(inert(r["sha256"][:10])), str(r["dim"] or "?"),
                      "?" if r["languages"] is None else str(len(r["languages"])),
                      escape(inert(str(r["quantization"])))
                      + (f", min cos {r['min_cosine']:.4f}" if r["min_cosine"] else ""))
    lines = []
    for name, r in seen.items():
        languages = "languages not stated" if r["languages"] is None else f"languages {', '.join(r['languages'])}"
        lines.append(escape(inert(f"{name}: {r['architecture']}, {r['pooling']} pooling; {languages}"
                                  + (f"; source {r['source']}" if r["source"] else ""))))
    table.caption = "\n".join(lines)
    return table


def run_build(args: argparse.Namespace) -> int:
    from ..models.build import build_model, missing_build_modules

    target = resolve_model(args.name)
    if (target / MANIFEST_NAME).is_file() and not args.force:
        Console().print(f"{target} already built (use --force to rebuild)")
        return 0
    missing = missing_build_modules(args.name)
    if missing:
        raise ClbiasError(f"building {args.name} needs the export extra, and this install has no "
                          f"{', '.join(missing)} (pip install 'clbias[export]'; in a checkout: pip install -e "
                          f"'.[export]'); or copy a built model directory to {exported_root() / args.name}")
    build_model(args.name)
    return 0


def run_check(args: argparse.Namespace) -> int:
    from ..corpus import corpus_files
    from ..io import check_output_paths, write_json_atomic
    from ..models.check import check_int8

    directory = require_model(args.name)
    model_files = [f for f in directory.iterdir() if f.is_file()] if directory.is_dir() else []
    check_output_paths({"--json": args.json}, inputs=[*corpus_files(args.corpus), *model_files])
    manifest = load_manifest(directory)
    graph = graph_file(args.graph)
    if graph not in manifest.files:
        raise ModelError(f"{directory}: has no {graph} to check (export with --int8, or `clbias models int8` for "
                         f"recipes); graphs: {', '.join(f for f in manifest.files if f.endswith('.onnx'))}")
    result = check_int8(directory, args.corpus, args.max_points, args.threads, int8=graph)
    table = Table(title=f"{result.model}: {graph} vs fp32 on {args.corpus} (limit {args.max_points} point)")
    for col in ("lang", "texts", "min cos", "median cos", "top-10 overlap", "max metric move", "where", "ok"):
        table.add_column(col)
    for l in result.languages:
        table.add_row(l.lang, str(l.n_texts), f"{l.min_cosine:.4f}", f"{l.median_cosine:.4f}",
                      "–" if l.top10_overlap is None else f"{l.top10_overlap:.3f}",
                      "–" if l.max_metric_move is None else f"{l.max_metric_move:.2f}", escape(l.worst or ""),
                      "✓" if l.ok else "✗")
    console = Console()
    console.print(table)
    console.print(f"int8 acceptable as default: {'yes' if result.int8_acceptable else 'no'}")
    if args.json:
        write_json_atomic(args.json, result.to_json(), option="--json")
    return 0


def run_int8(args: argparse.Namespace) -> int:
    from ..export import int8_search as search

    if args.list:
        for recipe in search.RECIPES.values():
            print(f"{recipe.name:18} {recipe.file:34} {recipe.note}")
        return 0
    recipes = search.resolve_recipes([r.strip() for r in args.recipes.split(",") if r.strip()] if args.recipes else None)
    needing = [r.name for r in recipes if r.needs_calibration]
    if needing and args.calibration is None:
        raise ModelError(f"recipes {', '.join(needing)} need --calibration (multilingual text, e.g. a probe set's "
                         f"train.jsonl); pass it or choose other --recipes")
    if args.per_language < 1:
        raise ClbiasError("--per-language: must be >= 1")
    directory = require_model(args.name)
    load_manifest(directory, verify=False)  # a missing model fails before the calibration text is read
    calibration = search.read_calibration(args.calibration, args.per_language) if args.calibration else None
    console = Console()
    table = Table(title=f"int8 recipes of {directory}")
    for col in ("recipe", "file", "MB", "min cos", "median cos", "kept fp32"):
        table.add_column(col)
    for recipe in recipes:
        with console.status(f"quantising {recipe.name}"):
            result = search.build_recipe(directory, recipe, calibration, threads=args.threads)
        r = result.record
        table.add_row(recipe.name, result.file, f"{r['size_bytes'] / 1e6:.1f}", f"{r['min_cosine']:.4f}",
                      f"{r['median_cosine']:.4f}", str(len(r.get("kept_fp32", []))))
    console.print(table)
    return 0
