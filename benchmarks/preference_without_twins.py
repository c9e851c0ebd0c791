"""Does the calibrated language preference (`lang_pref`, no parallel ids needed) agree with twin preference?

    python benchmarks/preference_without_twins.py                       # man pages at /work/data/manpages
    python benchmarks/preference_without_twins.py --manpages DIR --model DIR

Twin preference needs parallel ids: it compares each irrelevant query-language document with its own English
translation. Most users' corpora have no such ids. `lang_pref` compares every irrelevant (English, X) pair
instead (docs/field-metrics.md). This script audits the man-page set twice with the default model, Multi
pools of all English + all X documents (`multi-all`: the same documents with or without ids): as built (twin
preference) and with every parallel id removed from documents and queries (`lang_pref`, and twin preference,
which must then be absent). Twin preference on the paper's parallel-only Multi pool is shown beside it. Per language X it reports both means with
95% bootstrap CIs over queries, the paired per-query difference, and whether the two agree in direction; the
direction claim over all languages uses Bonferroni-adjusted intervals (confidence 1 - 0.05 / languages), so
the chance of any false "agrees"/"disagrees" call is at most 5%. Writes
benchmarks/results/preference-without-twins.md and .json.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import RESULTS, cpu_info, load_average, md_table  # noqa: E402
from clbias.audit import AuditSettings, audit  # noqa: E402
from clbias.corpus import Corpus, load_corpus  # noqa: E402
from clbias.metrics import stats  # noqa: E402
from clbias.report.model import Report, ScenarioResult  # noqa: E402
from clbias.runtime.cache import cache_root  # noqa: E402
from clbias.runtime.encoder import Encoder  # noqa: E402

NEUTRAL = 50.0


def without_parallel_ids(corpus: Corpus) -> Corpus:
    return dataclasses.replace(corpus, docs=[dataclasses.replace(d, parallel_id=None) for d in corpus.docs],
                               queries=[dataclasses.replace(q, parallel_id=None) for q in corpus.queries])


def scenarios_x(report: Report, kind: str) -> dict[str, ScenarioResult]:
    """Scenarios of one kind with non-English queries, by query language."""
    return {r.query_lang: r for r in report.scenarios if r.kind == kind and r.query_lang != "en"}


def per_query(result: ScenarioResult, metric: str) -> dict[str, float]:
    values = next(iter(result.by_model.values())).per_query[metric]
    return {qid: float(v) for qid, v in zip(result.query_ids, values) if v is not None}


def estimate(values: dict[str, float], confidence: float, bootstrap: int) -> stats.Estimate | None:
    return stats.bootstrap_ci(np.array(list(values.values()), dtype=float), confidence=confidence,
                              n_resamples=bootstrap)


def side(est: stats.Estimate | None) -> int:
    """+1 / -1 when the interval lies above / below 50, 0 when it holds 50 (or is missing)."""
    if est is None:
        return 0
    return 1 if est.low > NEUTRAL else -1 if est.high < NEUTRAL else 0


def ci_text(est: stats.Estimate | None) -> str:
    return "–" if est is None else f"{est.mean:.1f} [{est.low:.1f}, {est.high:.1f}] (n={est.n})"


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manpages", type=Path, default=Path("/work/data/manpages"))
    p.add_argument("--model", type=Path, default=Path(os.environ.get("CLBIAS_EXPORTED", "/work/main/exported"))
                   / "multilingual-e5-small")
    p.add_argument("--min-queries", type=int, default=30)
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=RESULTS / "preference-without-twins.md")
    args = p.parse_args()
    if not (args.manpages / "meta.json").is_file():
        print(f"error: {args.manpages}: no man-page set (meta.json missing)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    load_start = load_average()
    corpus = load_corpus(args.manpages)
    stripped = without_parallel_ids(corpus)
    encoder = Encoder.load(args.model, threads=args.threads)
    settings = AuditSettings(scenarios=["multi", "multi-all"], bootstrap=args.bootstrap, cache_dir=cache_root() / "embeddings")
    with_ids = audit(corpus, [encoder], settings)
    no_ids = audit(stripped, [encoder], settings)
    twinned, plain = scenarios_x(with_ids, "multi-all"), scenarios_x(no_ids, "multi-all")
    parallel_only = scenarios_x(with_ids, "multi")
    langs = sorted(x for x in twinned if x in plain and twinned[x].n_queries >= args.min_queries)
    adjusted = 1.0 - 0.05 / max(1, len(langs))
    rows, raw = [], {}
    agree = decided = 0
    twin_means, pref_means = [], []
    for x in langs:
        twin = per_query(twinned[x], "twin_pref")
        pref = per_query(plain[x], "lang_pref")
        pref_same_pool = per_query(twinned[x], "lang_pref")
        assert not per_query(plain[x], "twin_pref"), "twin preference without parallel ids"
        both = sorted(set(twin) & set(pref))
        diff = {q: pref[q] - twin[q] for q in both}
        t95, p95, d95 = (estimate(v, 0.95, args.bootstrap) for v in (twin, pref, diff))
        same = estimate(pref_same_pool, 0.95, args.bootstrap)
        paper_pool = estimate(per_query(parallel_only[x], "twin_pref"), 0.95, args.bootstrap) \
            if x in parallel_only else None
        t_adj, p_adj = estimate(twin, adjusted, args.bootstrap), estimate(pref, adjusted, args.bootstrap)
        s_t, s_p = side(t_adj), side(p_adj)
        verdict = "–"
        if s_t and s_p:
            decided += 1
            agree += s_t == s_p
            verdict = "agrees" if s_t == s_p else "DISAGREES"
        elif s_t or s_p:
            verdict = "one side undecided"
        size = "–"
        if t95 and p95 and abs(t95.mean - NEUTRAL) > 1e-9:
            size = f"{(p95.mean - NEUTRAL) / (t95.mean - NEUTRAL):.2f}"
        if t95 and p95:
            twin_means.append(t95.mean)
            pref_means.append(p95.mean)
        rows.append([x, twinned[x].n_queries, twinned[x].pool_size, plain[x].pool_size, ci_text(t95), ci_text(p95),
                     ci_text(same), ci_text(d95), size, verdict, ci_text(paper_pool)])
        raw[x] = {"n_queries": twinned[x].n_queries, "pool_with_ids": twinned[x].pool_size,
                  "pool_without_ids": plain[x].pool_size,
                  **{name: None if e is None else dataclasses.asdict(e)
                     for name, e in (("twin_pref", t95), ("lang_pref", p95), ("lang_pref_same_pool", same),
                                     ("difference", d95), ("twin_pref_adjusted", t_adj),
                                     ("twin_pref_parallel_only_multi", paper_pool),
                                     ("lang_pref_adjusted", p_adj))},
                  "direction": verdict}
    rho = spearman(np.array(twin_means), np.array(pref_means)) if len(twin_means) > 2 else float("nan")
    cpu = cpu_info()
    env = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]]),
        "model": f"{args.model} sha256 {with_ids.model.sha256[:16]}",
        "data": f"{args.manpages} ({len(corpus.docs)} documents, {len(corpus.queries)} queries)",
        "settings": f"multi-all pools (Multi: parallel-only), k {settings.k}, head depth {settings.depth}, index {with_ids.index.get('kind')}, "
                    f"bootstrap {args.bootstrap}, seed {settings.seed}, threads {args.threads}",
        "python": platform.python_version(),
        "cpu": f"{cpu['model']}, {cpu['cores']} cores, {cpu['simd']}; shared machine",
        "load average (1/5/15 min)": f"{load_start} at start, {load_average()} at end",
        "wall time": f"{time.perf_counter() - started:.0f} s (embeddings from the cache when present)",
    }
    header = ["X", "queries", "pool (ids)", "pool (no ids)", "twin pref, with ids", "lang pref, no ids",
              "lang pref, with ids", "lang − twin (paired)", "size ratio", "direction (adjusted CIs)",
              "twin pref, parallel-only Multi pool"]
    body = f"""
Twin preference (`twin_pref`) reads parallel ids; the calibrated language preference (`lang_pref`,
docs/field-metrics.md) does not. Same scale: % of irrelevant (English, X) pairs in the top {settings.depth} where
the English document ranks higher; 50 = neutral, > 50 English preferred, < 50 the query's language preferred.
`multi-all` pools (all English + all X documents, the same with or without ids), queries in X. Mean [95% bootstrap CI] (n queries). "size ratio" = (lang pref − 50) / (twin pref − 50).
Direction: each interval at confidence {adjusted:.4f} (Bonferroni over {len(langs)} languages) lies on one side
of 50 or holds it.

{md_table(header, rows)}

Direction: {agree} of {decided} languages where both adjusted intervals exclude 50 agree.
Spearman correlation of the per-language means: {rho:.2f} over {len(twin_means)} languages.
"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    head = "\n".join(f"- {k}: `{v}`" if k == "command" else f"- {k}: {v}" for k, v in env.items())
    args.out.write_text(f"# Language preference without parallel ids\n\n{head}\n\n{body.strip()}\n", encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps({"environment": env, "languages": raw,
                                                         "agree": agree, "decided": decided, "spearman": rho},
                                                        indent=1) + "\n", encoding="utf-8")
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
