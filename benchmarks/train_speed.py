"""Training speed: tokens/s of forward + backward and the share of the machine's FLOP ceiling.

    python benchmarks/train_speed.py --from /work/data/manpages [--rounds 3] [--steps 2] [--compile]
    # writes benchmarks/results/train-speed.md

Every variant trains the same base on the same batches, interleaved round by round (a neighbour's load hits
all variants of a round alike), and each round also times a 2-thread SGEMM, so the ceiling is measured in
the same minute as the training it bounds. Variants:
- current   the first trainer: one forward per kind of text (target, English, query), padded to its longest;
- bucketed  the default now: the step's distinct texts once, length-sorted chunks padded to their own longest,
            and a fused AdamW (one kernel for all parameters);
- 1 thread  bucketed on one intra-op thread (on an oversubscribed machine two threads wait on each other);
- +compile  bucketed with torch.compile (only with --compile: minutes of compilation on 2 cores);
- +bf16     bucketed under bf16 autocast (only where the CPU has avx512_bf16 or amx_bf16, or with --bf16);
and, as recipe options that change the maths (so not part of the same-loss speed-up): dropout off, top-4
layers only. Model FLOPs count real tokens only: 2 x linear parameters per token plus 4 x length x hidden per
token and layer for attention; forward + backward = 3 x forward when every layer trains.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, cpu_info, interleaved, load_average, md_table  # noqa: E402

TRAIN_FLAGS = ("avx512_bf16", "amx_bf16")


def sgemm_gflops(n: int = 1024, repeats: int = 8) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


class Variant:
    """One model + optimiser trained on the shared batch sequence; `run()` does `steps` optimiser steps."""

    def __init__(self, name: str, base: Any, encoded: Any, config: Any, steps: int, autocast: bool = False) -> None:
        import torch

        from clbias.train.embedding import Embedder
        from clbias.train.terms import BatchLoss
        from clbias.train.trainer import _optimizer, load_hf_model, set_trainable

        torch.manual_seed(config.seed)
        self.name, self.config, self.steps, self.autocast = name, config, steps, autocast
        self.model = load_hf_model(base.hf_dir, config.dropout)
        set_trainable(self.model, config)
        self.model.train()
        module = torch.compile(self.model, dynamic=True) if config.compile else self.model
        self.embedder = Embedder(module, encoded.pad_id, torch.device("cpu"), base.pooling, config.bucket)
        self.loss = BatchLoss(self.embedder, encoded, config)
        self.optimizer = _optimizer(self.model, config, fused=config.bucket)  # the first trainer's was not fused
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.step = 0
        self.runs: list[tuple[int, int]] = []  # (real tokens, sum of squared lengths) of each run()
        self.first_losses: dict[str, float] | None = None

    def run(self) -> None:
        import torch

        from clbias.train.trainer import _optimizer_step

        before, before_sq = self.embedder.tokens, self.embedder.squared
        threads = torch.get_num_threads()
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        for _ in range(self.steps):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
                parts = _optimizer_step(self.loss, self.step, self.optimizer, self.trainable)
            self.first_losses = self.first_losses or parts
            self.step += 1
        torch.set_num_threads(threads)
        self.runs.append((self.embedder.tokens - before, self.embedder.squared - before_sq))


def model_flops(model: Any, tokens: int, squared: int, trained_layers: int | None) -> float:
    """Forward + backward FLOPs of `tokens` real tokens (sum of squared lengths `squared`)."""
    cfg = model.config
    layers, hidden, inter = cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size
    linear = layers * (4 * hidden * hidden + 2 * hidden * inter)
    forward = 2 * linear * tokens + 4 * hidden * layers * squared
    share = 1.0 if trained_layers is None else trained_layers / layers
    return forward * (1 + 2 * share)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="source", type=Path, default=Path("/work/data/manpages"),
                    help="probe-set dir with train.jsonl (triplets are built from it, seed 0)")
    ap.add_argument("--base", type=Path, default=ROOT / "models" / "multilingual-e5-small")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--steps", type=int, default=2, help="optimiser steps per variant and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--bf16", action="store_true", help="time bf16 autocast even without CPU support")
    ap.add_argument("--no-recipes", action="store_true", help="skip the maths-changing variants")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "train-speed.md")
    args = ap.parse_args()
    if not args.base.is_dir():
        fallback = Path("/work/main/models/multilingual-e5-small")
        args.base = fallback if fallback.is_dir() else args.base
    import torch

    from clbias.train import TrainConfig, resolve_base
    from clbias.train.data import Triplet, build_triplets
    from clbias.train.trainer import encode_triplets

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    started, load_start = time.perf_counter(), load_average()
    rows, _ = build_triplets(args.source, n=2800, seed=0)
    triplets = [Triplet(r["q_en"], r["p_en"], r["p_tgt"], r["lang"], r["parallel_id"], i + 1, r.get("q_tgt"))
                for i, r in enumerate(rows)]
    base = resolve_base(args.base, "query: ", "passage: ")
    encoded = encode_triplets(triplets, base, args.max_length)
    config = TrainConfig(batch_size=args.batch_size, max_length=args.max_length, lr=5e-5, seed=0)
    cpu_flags = " ".join(sorted({f for f in Path("/proc/cpuinfo").read_text().split()
                                 if f in (*TRAIN_FLAGS, "avx2", "fma", "avx512f")}))
    specs: list[tuple[str, Any, bool, bool]] = [  # name, config, autocast, same maths
        ("current", replace(config, bucket=False), False, True), ("bucketed", config, False, True)]
    specs.append(("bucketed, 1 thread", replace(config, threads=1), False, True))
    if args.compile:
        specs.append(("bucketed+compile", replace(config, compile=True), False, True))
    has_bf16 = any(f in cpu_flags.split() for f in TRAIN_FLAGS)
    if has_bf16 or args.bf16:
        specs.append(("bucketed+bf16", config, True, False))
    if not args.no_recipes:
        specs += [("bucketed, dropout 0", replace(config, dropout=0.0), False, False),
                  ("bucketed, top 4 layers", replace(config, train_layers=4), False, False)]
    variants = {name: Variant(name, base, encoded, cfg, args.steps, autocast) for name, cfg, autocast, _ in specs}
    same = {name: exact for name, _, _, exact in specs}
    ceilings: list[float] = []
    calls = {name: v.run for name, v in variants.items()}
    calls["sgemm"] = lambda: ceilings.append(sgemm_gflops())
    print(f"{len(triplets)} triplets; warm-up (one round, also compiles)", file=sys.stderr, flush=True)
    timings = interleaved(calls, args.rounds, warmup=True, log=lambda m: print(m, file=sys.stderr, flush=True))
    ceiling = float(np.median(ceilings[1:] if len(ceilings) > 1 else ceilings))
    rows_out = []
    base_time = "current"
    for name, v in variants.items():
        timed = v.runs[1:]  # the first run is the warm-up; round r of every variant trains the same batches
        seconds = np.asarray(timings.seconds[name])
        tokens_s = float(np.median([t for t, _ in timed] / seconds))
        gflops = float(np.median([model_flops(v.model, t, sq, v.config.train_layers) for t, sq in timed] / seconds)) / 1e9
        lo, hi = timings.ratio_range(name, base_time)
        rows_out.append([name, "yes" if same[name] else "no", f"{tokens_s:.0f}",
                         f"{gflops:.1f}", f"{gflops / ceiling:.0%}",
                         f"{timings.ratio(name, base_time):.2f}x [{lo:.2f}, {hi:.2f}]",
                         f"{1 - v.embedder.tokens / max(1, v.embedder.padded):.0%}"])
    # same maths check: step 1 of current vs bucketed without dropout (dropout masks differ by design)
    check_cfg = replace(config, dropout=0.0)
    a = Variant("a", base, encoded, replace(check_cfg, bucket=False), 1)
    b = Variant("b", base, encoded, check_cfg, 1)
    a.run(), b.run()
    assert a.first_losses and b.first_losses
    diff = max(abs(a.first_losses[k] - b.first_losses[k]) for k in a.first_losses)
    total = time.perf_counter() - started
    header = ["variant", "same maths", "tokens/s (fwd+bwd)", "model GFLOP/s", "of SGEMM ceiling",
              f"speed vs current (median [min, max] of {args.rounds} rounds)", "padding"]
    lengths = [len(r) for r in encoded.p_tgt + encoded.p_en]
    body = [
        f"Command: `python benchmarks/train_speed.py {' '.join(sys.argv[1:])}` ({time.strftime('%Y-%m-%d %H:%M')}), "
        f"wall time {total / 60:.1f} min.",
        f"CPU: {cpu_info()['model']}, {cpu_info()['cores']} cores, flags {cpu_flags or '-'}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads. bf16 autocast: "
        + ("timed" if has_bf16 or args.bf16 else "not timed, the CPU has neither avx512_bf16 nor amx_bf16") + ".",
        f"Load average (1/5/15 min) at start {load_start}, at end {load_average()} (the machine is shared).",
        f"Data: {len(triplets)} triplets built from `{args.source}` (seed 0); batch {args.batch_size}, max length "
        f"{args.max_length}, loss jsd+nce, lr 5e-5; passage lengths in tokens: median {int(np.median(lengths))}, "
        f"p90 {int(np.percentile(lengths, 90))}, max {max(lengths)}.",
        f"Each variant: {args.steps} optimiser steps per round, {args.rounds} rounds after a warm-up round, "
        f"interleaved with a 2-thread SGEMM (1024^3): ceiling median {ceiling:.0f} GFLOP/s "
        f"(rounds: {', '.join(f'{c:.0f}' for c in ceilings)}).",
        "", md_table(header, rows_out), "",
        f"Same maths: with dropout off, step 1's loss components of `current` and `bucketed` differ by at most "
        f"{diff:.2e} (jsd+nce: {', '.join(f'{k} {v:.6f}' for k, v in b.first_losses.items())}); "
        "tests/test_train_terms.py checks four steps of losses likewise.",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text("# Training speed: forward + backward on the CPU\n\n" + "\n".join(body) + "\n", encoding="utf-8")
    tmp.replace(args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
