"""An outside program's BM25 run over a whole corpus, as a user would make one: bm25s used directly (not
through clbias), whitespace tokens, the top 100 per query, written as TREC. Then one command audits it:

    python benchmarks/outside_bm25.py /work/data/manpages bm25.trec
    clbias audit /work/data/manpages --run bm25=bm25.trec
"""
from __future__ import annotations

import json
import sys

import bm25s


def main(corpus: str, out: str, depth: int = 100) -> None:
    docs = [json.loads(line) for line in open(f"{corpus}/corpus.jsonl", encoding="utf-8")]
    queries = [json.loads(line) for line in open(f"{corpus}/queries.jsonl", encoding="utf-8")]
    index = bm25s.BM25()
    index.index([d["text"].lower().split() for d in docs], show_progress=False)
    with open(out, "w", encoding="utf-8") as f:
        for q in queries:
            scores = index.get_scores(q["text"].lower().split())
            for rank, i in enumerate(scores.argsort()[::-1][:depth], start=1):
                f.write(f"{q['_id']} Q0 {docs[i]['_id']} {rank} {float(scores[i])!r} bm25\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
