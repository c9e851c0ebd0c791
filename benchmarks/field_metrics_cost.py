"""What the field's metrics (PEER@k, LPR, Lang-nDCG@k, TLR@k, lang_pref) add to scoring one scenario.

    python benchmarks/field_metrics_cost.py [--docs 10000] [--queries 1000] [--rounds 5]

One synthetic pool (random unit vectors, three languages, 80% of documents with a parallel id, two relevant
documents per query), scored in-process. Interleaved rounds time: retrieval (exact head and deep ranks), the
metrics the audit computed before (vectorised, with 1,000-resample bootstrap CIs), and the five field metrics
with their CIs. Ratios within a round are what counts on a shared machine. Writes
benchmarks/results/field-metrics-cost.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
import timeit
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import RESULTS, cpu_info, interleaved, load_average, md_table  # noqa: E402
from clbias.audit import AuditSettings  # noqa: E402
from clbias.metrics import stats  # noqa: E402
from clbias.metrics.registry import evaluate_columnar  # noqa: E402
from clbias.metrics.types import PoolInfo  # noqa: E402
from clbias.retrieval import retrieve  # noqa: E402

FIELD = ["peer@10", "lpr", "lang_ndcg@10", "tlr@10", "lang_pref"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=10_000)
    p.add_argument("--queries", type=int, default=1_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", type=Path, default=RESULTS / "field-metrics-cost.md")
    args = p.parse_args()
    load_start = load_average()
    rng = np.random.default_rng(0)
    n, q, dim = args.docs, args.queries, 384
    pool = PoolInfo(doc_ids=np.array([f"d{i}" for i in range(n)]), langs=rng.choice(["en", "zh", "de"], n),
                    parallel_ids=np.array([f"p{i // 3}" if rng.random() < 0.8 else None for i in range(n)], dtype=object))
    docs = rng.normal(size=(n, dim)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = rng.normal(size=(q, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    relevant = tuple(np.sort(rng.choice(n, 2, replace=False)) for _ in range(q))
    qlangs = list(rng.choice(["en", "zh", "de"], q))
    before = [m for m in AuditSettings().metric_names() if m not in FIELD]
    qids = [f"q{i}" for i in range(q)]
    result = retrieve(queries, docs, qids, qlangs, relevant, pool, depth=100, k=10)

    def scoring() -> object:
        return retrieve(queries, docs, qids, qlangs, relevant, pool, depth=100, k=10)

    def metrics(names: list[str]) -> object:
        return stats.summarize(evaluate_columnar(result.columns, pool, names), n_resamples=1000)

    t = interleaved({"retrieval": scoring, "metrics before": lambda: metrics(before),
                     "field metrics": lambda: metrics(FIELD)}, rounds=args.rounds)
    per_metric = {m: min(timeit.repeat(lambda m=m: evaluate_columnar(result.columns, pool, [m]), number=1, repeat=5))
                  for m in FIELD}
    share = np.asarray(t.seconds["field metrics"]) / (np.asarray(t.seconds["retrieval"])
                                                      + np.asarray(t.seconds["metrics before"]))
    rows = [[name, f"{t.median(name):.3f}", f"{t.best(name):.3f}"] for name in t.seconds]
    cpu = cpu_info()
    head = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]]),
        "setup": f"{n} documents x {q} queries, dim {dim}, exact index, depth 100, k 10, in-process, "
                 f"{args.rounds} interleaved rounds; numpy {np.__version__}",
        "cpu": f"{cpu['model']}, {cpu['cores']} cores, {cpu['simd']}; shared machine",
        "load average (1/5/15 min)": f"{load_start} at start, {load_average()} at end",
    }
    body = f"""
{md_table(["step", "median s", "best s"], rows)}

Field metrics with CIs / (retrieval + metrics before), per round: median {np.median(share):.3f}
(range {share.min():.3f}-{share.max():.3f}).

The metrics alone (no CIs), best of 5: """ + ", ".join(f"{m} {s * 1000:.1f} ms" for m, s in per_metric.items()) + """.
Most of the added time is the bootstrap: each metric whose set of applicable queries differs in size from the
others draws its own resamples (stats.summarize shares them only between equal sizes).
"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines = "\n".join(f"- {k}: `{v}`" if k == "command" else f"- {k}: {v}" for k, v in head.items())
    args.out.write_text(f"# Cost of the field's metrics\n\n{lines}\n\n{body.strip()}\n", encoding="utf-8")
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
