"""`clbias train --base M --data triplets.jsonl --out DIR` and `clbias train data --from CORPUS --out FILE`."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from ..errors import ClbiasError, InputError
from ..train.config import DEFAULT_RECIPE, JSD_INPUTS, JSD_ONLY_WARNING, LOSSES, RECIPES, TrainConfig
from ..train.data import DEFAULT_N

DEFAULTS = TrainConfig()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="align a model across languages (needs the train extra)", allow_abbrev=False,
                       description="Fine-tune a Hugging Face encoder with sqrt-JSD + InfoNCE on (English query, "
                                   "English passage, target passage) triplets; `clbias train data` builds them. "
                                   "OUT is a Hugging Face model directory that `clbias export OUT` takes.")
    p.add_argument("--base", help="multilingual-e5-small (models/NAME, prefixes from exported/NAME) or an HF dir")
    p.add_argument("--data", type=Path, help="triplets JSONL: {q_en, p_en, p_tgt, lang}")
    p.add_argument("--out", type=Path, help="output model directory (checkpoints are written here)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out (same command and data)")
    p.add_argument("--loss", choices=LOSSES, default=DEFAULTS.loss,
                   help="jsd+nce (the paper), nce, nce-psg (NCE + doc-doc NCE instead of JSD), jsd (ablation only), "
                        "mono (control: same-language InfoNCE only)")
    p.add_argument("--jsd-input", choices=JSD_INPUTS, default=DEFAULTS.jsd_input,
                   help="embeddings entering the softmax: before (raw) or after L2 normalisation")
    p.add_argument("--tau", type=float, default=DEFAULTS.tau, help="InfoNCE temperature")
    p.add_argument("--lr", type=float, default=DEFAULTS.lr)
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    p.add_argument("--grad-accum", type=int, default=DEFAULTS.grad_accum,
                   help="optimiser step every N batches (negatives stay within each batch)")
    p.add_argument("--steps", type=int, help="optimiser steps (default: --epochs passes over the data)")
    p.add_argument("--epochs", type=float, default=DEFAULTS.epochs)
    p.add_argument("--warmup", type=float, default=DEFAULTS.warmup, help="linear warm-up, fraction of the steps")
    p.add_argument("--max-length", type=int, default=DEFAULTS.max_length)
    p.add_argument("--seed", type=int, default=DEFAULTS.seed)
    p.add_argument("--freeze-embeddings", action=argparse.BooleanOptionalAction, default=DEFAULTS.freeze_embeddings,
                   help="keep the word-embedding table fixed (default: on)")
    p.add_argument("--save-every", type=int, default=DEFAULTS.save_every, help="checkpoint every N steps")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=DEFAULTS.device,
                   help="auto: a CUDA GPU when torch sees one, else the CPU")
    ours = p.add_argument_group("terms beyond the paper (weights; 0 = off; unset: the --recipe's)")
    ours.add_argument("--recipe", choices=sorted(RECIPES), default=DEFAULT_RECIPE,
                      help="weights of the terms below: paper (its loss alone; default), query (+ query 0.3) "
                           "or neutral (+ mono 1, "
                           "distill 1, query 0.5: EIR near its neutral value, but English tends to rank above its "
                           "own translation; benchmarks/results/alignment-manpages.md); a weight flag overrides it")
    ours.add_argument("--jsd-weight", type=float, default=DEFAULTS.jsd_weight,
                      help="weight of the sqrt-JSD term (the paper: 1, untuned)")
    ours.add_argument("--mono-weight", type=float,
                      help="retention: monolingual InfoNCE q_en->p_en and q_tgt->p_tgt")
    ours.add_argument("--distill-weight", type=float,
                      help="retention: KL(base || tuned) of in-batch monolingual score distributions")
    ours.add_argument("--query-weight", type=float,
                      help="query side: InfoNCE q_tgt->p_en (triplets with q_tgt)")
    ours.add_argument("--hard-weight", type=float,
                      help="doc-doc InfoNCE p_tgt->p_en with English negatives mined by the base model")
    ours.add_argument("--hard-negatives", type=int, default=DEFAULTS.hard_negatives,
                      help="mined English negatives per target passage")
    ours.add_argument("--train-layers", type=int, help="train only the top N encoder layers")
    ours.add_argument("--dropout", type=float, help="override the model's dropout (default: keep it)")
    speed = p.add_argument_group("execution (same maths)")
    speed.add_argument("--bucket", action=argparse.BooleanOptionalAction, default=DEFAULTS.bucket,
                       help="embed each step's distinct texts once, in length-sorted chunks (default: on)")
    speed.add_argument("--threads", type=int, help="torch intra-op threads (default: 1 when the load average "
                                                   "exceeds the cores, else torch's choice; on a machine other processes "
                                                   "load, --threads 1 can be several times faster: docs/fixing-bias.md)")
    speed.add_argument("--attention", choices=("eager", "sdpa"), default=DEFAULTS.attention,
                       help="attention kernel: eager (default; faster on the CPU with dropout) or sdpa")
    speed.add_argument("--checkpointing", action=argparse.BooleanOptionalAction, default=DEFAULTS.checkpointing,
                       help="gradient checkpointing: peak memory under 4 GB at batch 32 for a third more "
                            "forward work (default: on)")
    speed.add_argument("--compile", action="store_true", help="torch.compile the model (pays only on long runs)")
    val = p.add_argument_group("validation")
    val.add_argument("--val-data", type=Path, help="validation triplets (no unit shared with --data; "
                                                  "`clbias train data --val-units N --val-out FILE`)")
    val.add_argument("--val-every", type=int, default=0,
                     help="measure validation Multi Max@R_norm and Mono nDCG@10 every N steps (and at the "
                          "start and end); recorded in OUT/clbias.json")
    val.add_argument("--select", choices=("last", "neutral"), default=DEFAULTS.select,
                     help="neutral: also keep, in OUT/selected, the validation step whose twin preference is "
                          "closest to 50 while validation Mono-Same nDCG@10 stays within --select-margin of the base")
    val.add_argument("--select-margin", type=float, default=DEFAULTS.select_margin,
                     help="non-inferiority margin in nDCG points for --select neutral (default 1)")
    p.add_argument("--query-prefix", help="override the base manifest's query prefix")
    p.add_argument("--passage-prefix", help="override the base manifest's passage prefix")
    p.set_defaults(run=run)
    tsub = p.add_subparsers(dest="train_command")
    d = tsub.add_parser("data", help="build training triplets from a probe set's training units",
                        description="Read CORPUS/<split>.jsonl ({parallel_id, texts, queries}) and write triplets "
                                    "balanced over target languages; refuses units the evaluation corpus uses.")
    d.add_argument("--from", dest="source", type=Path, required=True, help="probe-set directory")
    d.add_argument("--split", default="train")
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--langs", help="comma-separated target languages (default: all in the units)")
    d.add_argument("--hold-out", default="", help="comma-separated languages kept out of every triplet "
                                                   "(evaluated as untrained languages)")
    d.add_argument("--n", type=int, default=DEFAULT_N, help="number of triplets")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--val-units", type=int, help="units whose triplets go to --val-out instead of --out "
                                                 "(a validation split for `clbias train --val-data`)")
    d.add_argument("--val-out", type=Path, help="validation triplets file (with --val-units)")
    d.set_defaults(run=run_data)
    w = tsub.add_parser("interpolate", help="WiSE-FT: mix the trained weights with the base's",
                        description="Write (1 - r) * base + r * trained to OUT; --ratio auto measures validation "
                                    "triplets at r = 0.25, 0.5, 0.75, 1 and keeps the ratio whose twin preference "
                                    "is closest to 50 among those whose validation Mono-Same nDCG@10 is within "
                                    "--margin of the base's.")
    w.add_argument("--base", required=True, help="the base the model was trained from (as for clbias train)")
    w.add_argument("--trained", type=Path, required=True, help="a `clbias train` output directory")
    w.add_argument("--ratio", required=True, help="auto, or a number in [0, 1] (weight of the trained model)")
    w.add_argument("--val-data", type=Path, help="validation triplets (needed for --ratio auto)")
    w.add_argument("--margin", type=float, default=1.0, help="non-inferiority margin in nDCG points (default 1)")
    w.add_argument("--out", type=Path, required=True)
    w.add_argument("--query-prefix")
    w.add_argument("--passage-prefix")
    w.set_defaults(run=run_interpolate)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(loss=args.loss, jsd_input=args.jsd_input, tau=args.tau, lr=args.lr, batch_size=args.batch_size,
                       grad_accum=args.grad_accum, steps=args.steps, epochs=args.epochs, warmup=args.warmup,
                       max_length=args.max_length, seed=args.seed, freeze_embeddings=args.freeze_embeddings,
                       save_every=args.save_every, device=args.device, jsd_weight=args.jsd_weight,
                       **recipe_weights(args),
                       hard_negatives=args.hard_negatives, train_layers=args.train_layers, dropout=args.dropout,
                       bucket=args.bucket, threads=args.threads, compile=args.compile, attention=args.attention,
                       checkpointing=args.checkpointing, select=args.select, select_margin=args.select_margin)


def recipe_weights(args: argparse.Namespace) -> dict[str, float]:
    """The --recipe's term weights, each overridden by its flag where given."""
    weights = dict(RECIPES[args.recipe])
    for name in weights:
        if getattr(args, name, None) is not None:
            weights[name] = getattr(args, name)
    return weights


class TrainProgress:
    """A Rich bar with the loss components of the latest step."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self.note: str | None = None


    def start(self, total: int, done: int) -> None:
        if self.note:
            self.console.print(self.note)
        self._progress = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[losses]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                  console=self.console)
        self._progress.start()
        self._task = self._progress.add_task("training", total=total, completed=done, losses="")

    def step(self, step: int, losses: dict[str, float]) -> None:
        if self._progress is not None and self._task is not None:
            text = " ".join(f"{k} {v:.4f}" for k, v in losses.items())
            self._progress.update(self._task, completed=step, losses=text)

    def validated(self, step: int, values: dict[str, float]) -> None:
        text = ", ".join(f"{k.removeprefix('val_')} {v:.2f}" for k, v in values.items())
        (self._progress.console if self._progress is not None else self.console).print(
            f"validation at step {step}: {text}")

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def run(args: argparse.Namespace) -> int:
    missing = [f"--{name}" for name in ("base", "data", "out") if getattr(args, name) is None]
    if missing:
        raise InputError(f"clbias train needs {', '.join(missing)} (or `clbias train data ...`)")
    from ..io import check_output_paths

    check_output_paths({}, {"--out": args.out}, inputs=[args.data, args.val_data], replace_dirs=True)
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ClbiasError(f"training needs the train extra: pip install -e \".[train]\" ({exc})") from None
    import warnings

    from ..train import resolve_base, train

    console = Console(stderr=True)
    config = config_from_args(args)
    base = resolve_base(args.base, args.query_prefix, args.passage_prefix)
    if config.loss == "jsd":
        console.print(f"[yellow]warning:[/yellow] {JSD_ONLY_WARNING}")
    progress = TrainProgress(console)
    busy = _oversubscribed()
    if busy and config.threads is None and config.device != "cuda":  # shown once every input check passed
        progress.note = (f"[yellow]note:[/yellow] load average {busy[0]:.1f} on {busy[1]} cores: training with 1 "
                         f"torch thread, several times faster than more when other processes compete for the CPU "
                         f"(benchmarks/results/train-speed.md); --threads N overrides")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(args.data, args.out, base, config, resume=args.resume, progress=progress,
                       val_data=args.val_data, val_every=args.val_every)
    if result.step == result.resumed_from:
        console.print(f"{args.out}: already complete at step {result.step}/{result.total_steps}")
        return 0
    losses = ", ".join(f"{k} {v:.4f}" for k, v in result.losses.items())
    speed = f"{result.seconds_per_step:.2f} s/step" if result.seconds_per_step else ""
    if result.tokens_per_second:
        speed += f", {result.tokens_per_second:.0f} tokens/s"
    console.print(f"trained {args.out}: steps {result.resumed_from}->{result.step} of {result.total_steps} on "
                  f"{result.device}, {result.threads} threads ({speed}); mean {losses}; {result.truncated} texts cut to the max length")
    selected = (read_selected(args.out) if config.select != "last" else None)
    if selected is not None:
        console.print(f"selected step {selected['step']} ({selected['rule']}): {args.out / 'selected'}")
        console.print(f"next: clbias export {args.out / 'selected'} --name {args.out.name} --int8")
    else:
        if config.select != "last":
            console.print("[yellow]note:[/yellow] no validation step met the selection rule; OUT/selected not written")
        console.print(f"next: clbias export {args.out} --name {args.out.name} --int8")
    return 0


def _oversubscribed() -> tuple[float, int] | None:
    """(1-minute load average, usable cores) when the load exceeds the cores, else None."""
    import os

    try:
        load = os.getloadavg()[0]
    except OSError:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return (load, cores) if load > cores + 0.5 else None


def run_data(args: argparse.Namespace) -> int:
    from ..train.data import build_triplet_split, build_triplets, write_triplets

    from ..corpus import corpus_files
    from ..io import check_output_paths

    if (args.val_units is None) != (args.val_out is None):
        raise InputError("--val-units and --val-out go together", field="val_out" if args.val_out is None else "val_units")
    if args.val_out is not None and args.val_out.resolve() == args.out.resolve():
        raise InputError("must differ from --out", args.val_out, field="val_out")
    check_output_paths({"--out": args.out, "--val-out": args.val_out},
                       inputs=[*corpus_files(args.source), args.source / f"{args.split}.jsonl"])
    langs = [lang.strip() for lang in args.langs.split(",") if lang.strip()] if args.langs else None
    held = [lang.strip() for lang in args.hold_out.split(",") if lang.strip()]
    console = Console(stderr=True)
    if args.val_units is None:
        triplets, summary = build_triplets(args.source, args.split, langs, args.n, args.seed, hold_out=held)
    else:
        triplets, val, summary = build_triplet_split(args.source, args.val_units, args.split, langs, args.n,
                                                     args.seed, hold_out=held)
        write_triplets(args.val_out, val)
        console.print(f"wrote {args.val_out}: {len(val)} validation triplets from {args.val_units} units")
    write_triplets(args.out, triplets)
    per_lang = ", ".join(f"{lang} {count}" for lang, count in summary["per_lang"].items())
    console.print(f"wrote {args.out}: {summary['written']} triplets from {summary['distinct_units']} units ({per_lang}); "
                  f"{summary['with_q_tgt']} with a target query"
                  + (f"; held out: {', '.join(summary['held_out'])}" if summary["held_out"] else ""))
    if summary["short"]:
        short = ", ".join(f"{lang} made {summary['share'][lang] - n} of its {summary['share'][lang]}"
                          for lang, n in summary["short"].items())
        console.print(f"[yellow]note:[/yellow] too few training units for an equal share of the {summary['requested']} "
                      f"triplets asked (--n): {short}")
    return 0


def read_selected(out: Path) -> dict | None:
    from ..train.checkpoint import read_note

    return read_note(out).get("selected")


def run_interpolate(args: argparse.Namespace) -> int:
    if args.ratio == "auto":
        ratio: float | None = None
        if args.val_data is None:
            raise InputError("--ratio auto needs --val-data", field="val_data")
    else:
        try:
            ratio = float(args.ratio)
        except ValueError:
            raise InputError(f"expected auto or a number in [0, 1], got {args.ratio!r}", field="ratio") from None
        if not 0 <= ratio <= 1:
            raise InputError(f"must be between 0 and 1, got {ratio}", field="ratio")
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise InputError("exists and is not an empty directory; refusing to replace it", args.out, field="out")
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise ClbiasError(f"interpolation needs the train extra: pip install -e \".[train]\" ({exc})") from None
    from ..train import read_triplets, resolve_base
    from ..train.checkpoint import read_note
    from ..train.interpolate import check_val, choose_ratio, interpolate

    base = resolve_base(args.base, args.query_prefix, args.passage_prefix)
    read_note(args.trained)  # a training output, checked before any weights are read
    console = Console(stderr=True)
    chosen = None
    if ratio is None:
        val = read_triplets(args.val_data)
        check_val(val, base, args.val_data)
        picked, rows = choose_ratio(base, args.trained, val, margin=args.margin)
        for row in rows:
            console.print(f"ratio {row['ratio']:.2f}: " + ", ".join(f"{k.removeprefix('val_')} {v:.2f}"
                                                              for k, v in row.items() if k != "ratio"))
        if picked is None:
            raise InputError(f"no ratio keeps validation Mono-Same within {args.margin} points of the base; "
                             f"pass --ratio R to write one anyway", field="ratio")
        ratio, chosen = picked, {"rows": rows, "margin": args.margin}
    out = interpolate(base, args.trained, ratio, args.out, chosen)
    console.print(f"wrote {out}: ratio {ratio} of the trained weights; next: clbias export {out} --name {out.name}")
    return 0
