"""BM25 on a probe set's single-language pools (Mono-Same): is there a lexical retrieval signal?

    python benchmarks/bm25_probe.py /tmp/align-work/debian-docs [--out benchmarks/results/bm25-debian-docs.md]

Per language: pool = that language's documents, queries = that language's queries, relevant = the query's
unit in that language (one document); nDCG@10 with binary relevance (trec_eval's definition for one relevant
document: 1 / log2(rank + 1) within the top 10). bm25s (Lucene BM25, k1 1.5, b 0.75); tokens: lower-cased
words of letters/digits, and character bigrams for Han, kana and Hangul runs (no language-specific stemming).
A mean over queries with a 95% bootstrap interval (1,000 resamples, seed 0).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]+")
_WORD = re.compile(r"[^\W_]+")


def tokens(text: str) -> list[str]:
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        runs = _CJK.findall(word)
        if not runs:
            out.append(word)
            continue
        rest = _CJK.sub(" ", word).split()
        out.extend(rest)
        for run in runs:
            out.extend(run[i:i + 2] for i in range(max(1, len(run) - 1)))
    return out


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("probe", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    try:
        import bm25s
    except ImportError:
        raise SystemExit("this script needs bm25s: pip install 'bm25s>=0.2,<0.4'") from None

    docs, queries = rows(args.probe / "corpus.jsonl"), rows(args.probe / "queries.jsonl")
    by_lang_docs: dict[str, list[dict]] = defaultdict(list)
    for d in docs:
        by_lang_docs[d["lang"]].append(d)
    by_lang_q: dict[str, list[dict]] = defaultdict(list)
    for q in queries:
        by_lang_q[q["lang"]].append(q)
    rng = np.random.default_rng(0)
    table = []
    for lang in sorted(by_lang_q, key=lambda x: (x != "en", x)):
        pool = by_lang_docs[lang]
        index = {d["parallel_id"]: i for i, d in enumerate(pool)}
        retriever = bm25s.BM25()
        retriever.index([tokens(d["text"]) for d in pool], show_progress=False)
        gains = []
        for q in by_lang_q[lang]:
            unit = q["parallel_id"].removeprefix("q-")
            target = index.get(unit)
            if target is None:
                continue
            k = min(10, len(pool))
            found, _ = retriever.retrieve([tokens(q["text"]) or ["∅"]], k=k, show_progress=False)
            hits = list(found[0])
            gains.append(100.0 / np.log2(hits.index(target) + 2) if target in hits else 0.0)
        g = np.asarray(gains)
        boot = [g[rng.integers(0, len(g), len(g))].mean() for _ in range(1000)]
        table.append((lang, len(pool), len(g), g.mean(), np.percentile(boot, 2.5), np.percentile(boot, 97.5)))
    lines = [f"# BM25 Mono-Same nDCG@10 on `{args.probe.name}`", "",
             f"Command: `python benchmarks/bm25_probe.py {args.probe}` ({time.strftime('%Y-%m-%d')}); bm25s "
             f"{bm25s.__version__} (a tiny script: no BM25 retriever was on main when this was written).", "",
             "| lang | pool docs | queries | nDCG@10 [95% CI] |", "|---|---|---|---|"]
    lines += [f"| {lang} | {n} | {nq} | {m:.1f} [{lo:.1f}, {hi:.1f}] |" for lang, n, nq, m, lo, hi in table]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
