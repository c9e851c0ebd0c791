"""Training cost: steps per second and peak memory of the trainer against the first (old) one, in one run.

    python benchmarks/train_speed.py --from /work/data/manpages [--batch-size 32] [--max-length 256] [--rounds 2]
    # writes benchmarks/results/train-speed.md

Every variant runs in its own process (so that its peak RSS, `ru_maxrss`, is its own), loads the same base,
and does `--steps` optimiser steps on the same batches (round r trains micro-batches r*steps...); rounds
alternate the order of the variants (a neighbour's load hits all of them alike). Timed: the optimiser steps
only (model loading excluded); peak RSS: the whole process. Variants (all the same maths: jsd+nce, dropout
0.1, the same AdamW update; only how the sums are computed differs):
- old          the first trainer: one padded forward per kind of text, SDPA attention, per-tensor AdamW, no
               checkpointing, torch's default threads;
- new          the trainer's defaults now: bucketed distinct texts, eager attention, fused AdamW, gradient
               checkpointing per layer, threads chosen by `auto_threads` (1 when the load exceeds the cores);
- new-no-checkpointing / new-torch-threads: one default changed, to show what each costs or brings.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, cpu_info, load_average, md_table  # noqa: E402

VARIANTS: dict[str, dict[str, Any]] = {
    "old": {"bucket": False, "attention": "sdpa", "checkpointing": False, "fused": False, "threads": "torch"},
    "new": {},
    "new-no-checkpointing": {"checkpointing": False},
    "new-torch-threads": {"threads": "torch"},
}


def triplets_for(source: Path) -> list[Any]:
    from clbias.train.data import Triplet, build_triplets

    rows, _ = build_triplets(source, n=2800, seed=0)
    return [Triplet(r["q_en"], r["p_en"], r["p_tgt"], r["lang"], r["parallel_id"], i + 1, r.get("q_tgt"))
            for i, r in enumerate(rows)]


def worker(args: argparse.Namespace) -> None:
    """One variant, one process: prints a JSON line with its step times and peak RSS."""
    import torch

    from clbias.train import TrainConfig, resolve_base
    from clbias.train.embedding import Embedder
    from clbias.train.terms import BatchLoss
    from clbias.train.trainer import (_optimizer, _optimizer_step, auto_threads, encode_triplets, load_hf_model,
                                      set_trainable)

    spec = dict(VARIANTS[args.worker])
    fused = spec.pop("fused", True)
    threads_rule = spec.pop("threads", "auto")
    config = replace(TrainConfig(batch_size=args.batch_size, max_length=args.max_length, lr=5e-5, seed=0), **spec)
    threads = auto_threads() if threads_rule == "auto" else None
    if threads:
        torch.set_num_threads(threads)
    base = resolve_base(args.base, "query: ", "passage: ")
    encoded = encode_triplets(triplets_for(args.source), base, config.max_length)
    torch.manual_seed(0)
    model = load_hf_model(base.hf_dir, config.dropout, config.attention)
    set_trainable(model, config)
    model.train()
    embedder = Embedder(model, encoded.pad_id, torch.device("cpu"), base.pooling, config.bucket)
    loss = BatchLoss(embedder, encoded, config)
    optimizer = _optimizer(model, config, fused=fused)
    trainable = [p for p in model.parameters() if p.requires_grad]
    seconds, losses = [], []
    for k in range(args.steps):
        t0 = time.perf_counter()
        parts = _optimizer_step(loss, args.round * args.steps + k, optimizer, trainable)
        seconds.append(time.perf_counter() - t0)
        losses.append(parts["loss"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"variant": args.worker, "seconds": seconds, "tokens": embedder.tokens, "padded": embedder.padded,
                      "peak_rss_mb": peak, "threads": torch.get_num_threads(), "losses": losses,
                      "load": os.getloadavg()[0]}))


def run_worker(args: argparse.Namespace, name: str, round_: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", name, "--round", str(round_), "--from", str(args.source),
           "--base", str(args.base), "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
           "--steps", str(args.steps)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="source", type=Path, default=Path("/work/data/manpages"),
                    help="probe-set dir with train.jsonl (triplets are built from it, seed 0)")
    ap.add_argument("--base", type=Path, default=ROOT / "models" / "multilingual-e5-small")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--steps", type=int, default=1, help="optimiser steps per variant and round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "train-speed.md")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args.base.is_dir():
        fallback = Path("/work/main/models/multilingual-e5-small")
        args.base = fallback if fallback.is_dir() else args.base
    if args.worker:
        worker(args)
        return
    names = [n for n in args.variants.split(",") if n]
    started, load_start = time.perf_counter(), load_average()
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    # each finished worker is appended here, so an interrupted run resumes where it stopped
    done_file = args.out.with_suffix(".runs.jsonl")
    done: dict[tuple[str, int], dict[str, Any]] = {}
    if done_file.is_file():
        for line in done_file.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("settings") == [args.batch_size, args.max_length, args.steps]:
                done[(row["variant"], row["round"])] = row
    for r in range(args.rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            if (name, r) not in done:
                print(f"round {r + 1}: {name}", file=sys.stderr, flush=True)
                row = {**run_worker(args, name, r), "round": r,
                       "settings": [args.batch_size, args.max_length, args.steps]}
                with done_file.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row) + "\n")
                done[(name, r)] = row
            results[name].append(done[(name, r)])
    ref = "old"
    rows = []
    for name in names:
        runs = results[name]
        rate = [args.steps / sum(x["seconds"]) for x in runs]
        ratio = [rate[i] / (args.steps / sum(results[ref][i]["seconds"])) for i in range(len(runs))] \
            if ref in results else [float("nan")]
        peak = max(x["peak_rss_mb"] for x in runs)
        tokens = [x["tokens"] / sum(x["seconds"]) for x in runs]
        rows.append([name, f"{runs[0]['threads']}", f"{np.median(rate):.4f}", f"{np.median(tokens):.0f}",
                     f"{np.median(ratio):.2f}x [{min(ratio):.2f}, {max(ratio):.2f}]", f"{peak / 1024:.2f}",
                     f"{1 - runs[0]['tokens'] / max(1, runs[0]['padded']):.0%}",
                     ", ".join(f"{x['losses'][0]:.4f}" for x in runs)])
    total = time.perf_counter() - started
    cpu = cpu_info()
    flags = " ".join(sorted({f for f in Path("/proc/cpuinfo").read_text().split()
                             if f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16")}))
    import torch

    header = ["variant", "threads", "steps/s", "real tokens/s", f"speed vs old (median [min, max] of {args.rounds} "
              "rounds, paired by round)", "peak RSS GB (max over rounds)", "padding", "loss of each round's step"]
    body = [f"Command: `python benchmarks/train_speed.py {' '.join(sys.argv[1:])}` ({time.strftime('%Y-%m-%d %H:%M')} "
            f"UTC), wall time {total / 60:.1f} min; whole processes per variant (model load excluded from the "
            f"timing, included in peak RSS).",
            f"CPU: {cpu['model']}, {cpu['cores']} cores, flags {flags or '-'}; torch {torch.__version__}. Load "
            f"average (1/5/15 min) at start {load_start}, at end {load_average()}: the machine was shared by seven "
            f"engineers' jobs; per-round load: " + "; ".join(
                f"{n} " + "/".join(f"{x['load']:.1f}" for x in results[n]) for n in names) + ".",
            f"Data: triplets from `{args.source}` (seed 0), batch {args.batch_size}, max length {args.max_length}, "
            f"loss jsd+nce, lr 5e-5, dropout 0.1 (the model's), {args.steps} optimiser step(s) per process and round.",
            "", md_table(header, rows), ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    raw = args.out.with_suffix(".json")
    raw.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text("# Training speed and memory: the trainer against the old one\n\n" + "\n".join(body) + "\n",
                   encoding="utf-8")
    tmp.replace(args.out)
    print(f"wrote {args.out} and {raw}", file=sys.stderr)


if __name__ == "__main__":
    main()
