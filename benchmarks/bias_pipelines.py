"""BM25, dense and hybrid (BM25 + dense, RRF) side by side: does fusing lexical and dense retrieval change
which bias a system shows, and by how much?

    python benchmarks/bias_pipelines.py                         # man pages + UDHR -> results/bias-pipelines.md
    python benchmarks/bias_pipelines.py --sets udhr             # the bundled example only
    python benchmarks/bias_pipelines.py --manpages DIR --model DIR

Per set and language X: each system's verdict (clbias.report.verdict), twin preference, Complete@10 and
Max@R_norm on `multi [en+X] q=X`, and Mono-Same nDCG@10 (X -> X), all with 95% bootstrap CIs; then the
paired differences hybrid - dense and hybrid - BM25 on twin preference (the evidence metric), with a
Holm correction over the languages of a set. A second section measures the two BM25 libraries, bm25s and
rank-bm25, on the same pools (time, and whether they rank alike), the measurement behind the built-in's choice.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import cpu_info, interleaved, load_average, md_table  # noqa: E402
from clbias.audit import AuditSettings, audit  # noqa: E402
from clbias.corpus import load_corpus, passage_text  # noqa: E402
from clbias.io import write_text_atomic  # noqa: E402
from clbias.metrics import stats  # noqa: E402
from clbias.report.compare import compare  # noqa: E402
from clbias.report.display import display  # noqa: E402
from clbias.report.verdict import LEANING_SHORT, verdict  # noqa: E402
from clbias.retrievers import BM25System, EncoderSystem, HybridSystem  # noqa: E402
from clbias.runtime.encoder import Encoder  # noqa: E402
from clbias.scenarios import build_scenarios  # noqa: E402
from clbias.search.bm25 import BM25Index, library_versions, tokenize  # noqa: E402

DEFAULT_MODEL = Path("/work/main/exported/multilingual-e5-small")
SYSTEMS = ("dense", "bm25", "hybrid")
METRICS = ("twin_pref", "complete@10", "max_r_norm")


def _cell(key: str, value: float | None, ci: list[float] | None) -> str:
    d = display(key)
    return f"{d.value(value)} [{d.ci(ci)}]" if value is not None and ci else d.value(value)


def run_set(name: str, path: Path, encoder: Encoder, bootstrap: int, cache: Path | None) -> tuple[str, dict]:
    corpus = load_corpus(path)
    settings = AuditSettings(scenarios=["multi", "mono-same"], bootstrap=bootstrap, cache_dir=cache)
    dense = EncoderSystem(encoder)
    bm25 = BM25System()
    hybrid = HybridSystem(dense, bm25)
    t0 = time.perf_counter()
    report = audit(corpus, [dense, bm25, hybrid], settings, names=list(SYSTEMS))
    seconds = time.perf_counter() - t0
    found = verdict(report)
    langs = [l for l in corpus.doc_langs if l != "en"]
    rows, diff_rows = [], []
    changes: dict[str, list] = {"hybrid vs dense": [], "hybrid vs bm25": []}  # (lang, base, hybrid scores)
    for lang in langs:
        multi = next((r for r in report.scenarios if r.kind == "multi" and r.query_lang == lang), None)
        mono = next((r for r in report.scenarios if r.kind == "mono-same" and r.query_lang == lang), None)
        if multi is None:
            continue
        for system in SYSTEMS:
            s = multi.by_model[system]
            m = mono.by_model[system] if mono else None
            rows.append([lang, system, LEANING_SHORT[found.leaning(lang, system)] or "–"]
                        + [_cell(k, s.metrics.get(k), s.ci.get(k)) for k in METRICS]
                        + [_cell("ndcg@10", m.metrics.get("ndcg@10"), m.ci.get("ndcg@10")) if m else "–"])
        for label, base in (("hybrid vs dense", "dense"), ("hybrid vs bm25", "bm25")):
            changes[label].append((lang, multi.by_model[base], multi.by_model["hybrid"]))
    n_langs = max(1, len(langs))
    for label, items in changes.items():
        for lang, base_scores, hybrid_scores in items:
            c = compare("base", "hybrid", base_scores, hybrid_scores, ["twin_pref"], bootstrap, 0).metrics["twin_pref"]
            wide = stats.paired_comparison(_values(hybrid_scores.per_query["twin_pref"]),
                                           _values(base_scores.per_query["twin_pref"]), "twin_pref",
                                           confidence=1 - 0.05 / n_langs, n_resamples=bootstrap, seed=0)
            if c.get("diff") is None or wide is None:
                diff_rows.append([label, lang, "–", "–", "–"])
                continue
            both_sides = wide.low * wide.high > 0
            diff_rows.append([label, lang, _cell("twin_pref", c["diff"], c["ci"]),
                              f"{wide.low:.1f} to {wide.high:.1f}", "*" if both_sides else ""])
    changes = {label: [(lang, compare("base", "hybrid", b, h, ["twin_pref"], bootstrap, 0).metrics["twin_pref"])
                       for lang, b, h in items] for label, items in changes.items()}
    en_mono = next((r for r in report.scenarios if r.kind == "mono-same" and r.query_lang == "en"), None)
    en_rows = [["en", s, _cell("ndcg@10", en_mono.by_model[s].metrics.get("ndcg@10"),
                               en_mono.by_model[s].ci.get("ndcg@10"))] for s in SYSTEMS] if en_mono else []
    leanings = {s: {l: found.leaning(l, s) for l in langs} for s in SYSTEMS}
    flips = {pair: [l for l in langs if leanings[pair[0]][l] != leanings[pair[1]][l]]
             for pair in (("dense", "hybrid"), ("bm25", "hybrid"), ("dense", "bm25"))}
    summary = {"langs": langs, "leanings": leanings, "flips": flips, "changes": changes, "seconds": seconds,
               "report": report}
    body = [f"## {name}: {corpus.meta.get('name', path.name)} ({len(corpus.docs)} documents, "
            f"{len(corpus.queries)} queries; audit of the three systems {seconds:.0f} s)", "",
            "Multi [en+X] with X queries; Mono-Same X→X nDCG@10. value [95% CI]. Verdict by the report's rules "
            "(twin preference vs 50 by its CI).", "",
            md_table(["X", "system", "verdict", "twin pref", "Complete@10", "Max@R_norm", "Mono-Same nDCG@10"], rows),
            "", "English Mono-Same (en→en) nDCG@10:", "", md_table(["", "system", "nDCG@10"], en_rows), "",
            "Paired difference in twin preference (points; + = hybrid prefers English more) with its 95% CI, and "
            "the CI at 1 − 0.05/L over this set's L languages (Bonferroni: * = it excludes 0, the one rule of "
            "`clbias.metrics.stats.significant` with the family's false alarms held at 5%):", "",
            md_table(["comparison", "X", "difference [95% CI]", "Bonferroni CI", "significant"], diff_rows), "",
            "Verdict changes: " + "; ".join(f"{a}→{b}: {', '.join(v) or 'none'}" for (a, b), v in flips.items())]
    return "\n".join(body), summary


def _values(xs: list) -> np.ndarray:
    return np.array([np.nan if x is None else x for x in xs], dtype=float)


def library_section(path: Path, rounds: int) -> str:
    """bm25s against rank-bm25 on the man-page multi pools: index + score every X query of each pool."""
    corpus = load_corpus(path)
    scenarios, _ = build_scenarios(corpus, ["multi"], None)
    chosen = [s for s in scenarios if s.query_lang != "en"]
    doc_tokens = [tokenize(passage_text(d)) for d in corpus.docs]
    query_tokens = [tokenize(q.text) for q in corpus.queries]

    def run(backend: str) -> list[np.ndarray]:
        return [BM25Index([doc_tokens[i] for i in s.pool], backend=backend).scores([query_tokens[i] for i in s.queries])
                for s in chosen]

    timings = interleaved({"bm25s": lambda: run("bm25s"), "rank_bm25": lambda: run("rank_bm25")}, rounds)
    a, b = run("bm25s"), run("rank_bm25")
    same_top, total, overlap = 0, 0, 0.0
    for x, y in zip(a, b):
        for rx, ry in zip(x, y):
            tx, ty = np.argsort(-rx, kind="stable")[:10], np.argsort(-ry, kind="stable")[:10]
            same_top += int(np.array_equal(tx, ty))
            overlap += np.intersect1d(tx, ty).size / 10
            total += 1
    n_pairs = sum(s.queries.size for s in chosen)
    rows = [[name, f"{timings.median(name):.2f}", f"{min(timings.seconds[name]):.2f}"] for name in ("bm25s", "rank_bm25")]
    return "\n".join([
        "## Which BM25 library", "",
        f"Index each man-page multi pool [en+X] and score all of its X queries ({len(chosen)} pools, {n_pairs} "
        f"queries), in-process, the two libraries alternated over {rounds} rounds (embedding not involved):", "",
        md_table(["library", "median s", "best s"], rows), "",
        f"rank-bm25 / bm25s time ratio (median over rounds): {timings.ratio('bm25s', 'rank_bm25'):.1f}x "
        f"(range {timings.ratio_range('bm25s', 'rank_bm25')[0]:.1f}–{timings.ratio_range('bm25s', 'rank_bm25')[1]:.1f}). "
        f"The same top 10 in the same order for {same_top} of {total} queries; on average "
        f"{100 * overlap / max(1, total):.0f}% of the top-10 documents in common. The two implement different BM25 "
        "variants (bm25s: Lucene's idf, never negative; rank-bm25's BM25Okapi: Robertson idf with an epsilon floor "
        "for terms in most documents), so a BM25 audit depends on the variant as well as on tokenisation: the report "
        "names the library and its parameters (`details` of the system). Versions: "
        + ", ".join(f"{k} {v}" for k, v in library_versions().items())])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    p.add_argument("--sets", nargs="+", default=["manpages", "udhr"], choices=["manpages", "udhr"])
    p.add_argument("--manpages", type=Path, default=Path("/work/data/manpages"))
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3, help="timing rounds of the BM25 library comparison")
    p.add_argument("--cache-dir", type=Path, help="embedding cache (default: none)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bias-pipelines.md")
    p.add_argument("--libraries-only", action="store_true",
                   help="only the BM25 library comparison on the man pages (no model), to results/bm25-libraries.md")
    args = p.parse_args()
    if args.libraries_only:
        cpu = cpu_info()
        text = (f"# BM25 libraries: bm25s and rank-bm25\n\n- command: `python benchmarks/{Path(sys.argv[0]).name} "
                f"{' '.join(sys.argv[1:])}`\n- cpu: {cpu['model']}, {cpu['cores']} cores, {cpu['simd']}; load average "
                f"at start {load_average()}; machine shared with other jobs, so only the ratio means anything\n\n"
                + library_section(args.manpages, args.rounds) + f"\n\n- load average at end {load_average()}\n")
        write_text_atomic(REPO / "benchmarks" / "results" / "bm25-libraries.md", text)
        print(text)
        return
    encoder = Encoder.load(args.model)
    cpu = cpu_info()
    head = [f"- command: `python benchmarks/{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}`".rstrip(),
            f"- model: {encoder.manifest.name} sha256 {encoder.sha256[:16]} ({encoder.onnx}), threads {encoder.threads}",
            f"- cpu: {cpu['model']}, {cpu['cores']} cores, {cpu['simd']}; load average at start {load_average()}",
            "- machine shared with other jobs; times are indicative only",
            "- systems: dense = the model, exact search; bm25 = built-in BM25 (bm25s, Lucene BM25 k1=1.5 b=0.75, "
            "each pool indexed on its own, word tokens, CJK/Thai character bigrams); hybrid = reciprocal rank fusion "
            "(k=60) of the two full rankings of each pool"]
    sections, summaries = [], {}
    sets = {"manpages": args.manpages, "udhr": REPO / "examples" / "udhr"}
    for name in args.sets:
        text, summary = run_set(name, sets[name], encoder, args.bootstrap, args.cache_dir)
        sections.append(text)
        summaries[name] = summary
        print(text, flush=True)
    sections.append("The BM25 library behind `--bm25` was chosen by measurement: "
                    "[bm25-libraries.md](bm25-libraries.md) (`--libraries-only`).")
    answer = []
    for name, s in summaries.items():
        flips = s["flips"][("dense", "hybrid")]
        diffs = [c["diff"] for _, c in s["changes"]["hybrid vs dense"] if c.get("diff") is not None]
        sig = [l for (l, c) in s["changes"]["hybrid vs dense"] if c.get("diff") is not None
               and c["ci"][0] * c["ci"][1] > 0]
        answer.append(f"- {name}: the hybrid's verdict differs from the dense model's in {len(flips)} of "
                      f"{len(s['langs'])} languages ({', '.join(flips) or 'none'}); its twin preference moves by "
                      f"{min(diffs, default=0):+.1f} to {max(diffs, default=0):+.1f} points against dense "
                      f"(CI excludes 0 in {', '.join(sig) or 'no language'}, before correction).")
        mono = [r for r in s["report"].scenarios if r.kind == "mono-same"]
        values = {r.query_lang: r.by_model["bm25"].metrics.get("ndcg@10") for r in mono}
        shown = [v for v in values.values() if v is not None]
        if shown:
            answer.append(f"- {name}: built-in BM25 Mono-Same nDCG@10 {min(shown):.1f}–{max(shown):.1f} ("
                          + ", ".join(f"{l} {v:.1f}" for l, v in values.items() if v is not None) + ")")
    head.append(f"- load average at end {load_average()}")
    text = "# Bias of BM25, dense and hybrid retrieval\n\n" + "\n".join(head) + "\n\n" + "\n\n".join(
        ["## The answer", "\n".join(answer)] + sections) + "\n"
    write_text_atomic(args.out, text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
