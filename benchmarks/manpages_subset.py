#!/usr/bin/env python3
"""A deterministic unit subsample of the man-page set (the rule of benchmarks/int8.py's subsample):
units in sha256('0:<parallel_id>') order are kept while some language has fewer than PER_LANG queries.

    python benchmarks/manpages_subset.py SRC_DIR OUT_DIR PER_LANG

Every document and query of a kept unit (an English page and its translations) stays, so the English share
of an all-documents pool is about that of the whole set. For CPU-bound re-runs on a shared 2-core machine."""
import csv
import hashlib
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
src, out, per_lang = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
rows = lambda p: [json.loads(l) for l in open(p, encoding="utf-8") if l.strip()]
docs, queries = rows(src / "corpus.jsonl"), {q["_id"]: q for q in rows(src / "queries.jsonl")}
qrels = [r for r in csv.reader(open(src / "qrels/test.tsv", encoding="utf-8"), delimiter="\t") if r and r[0] != "query-id"]
unit_of = {d["_id"]: d.get("parallel_id") for d in docs}
uq = defaultdict(set)
for q, d, _ in qrels:
    if unit_of.get(d):
        uq[unit_of[d]].add(q)
langs = sorted({q["lang"] for q in queries.values()} - {"en"})
keep, counts = set(), Counter()
for u in sorted(uq, key=lambda u: hashlib.sha256(f"0:{u}".encode()).hexdigest()):
    ls = {queries[q]["lang"] for q in uq[u]}
    if any(counts[l] < per_lang for l in ls if l in langs):
        keep.add(u); counts.update(queries[q]["lang"] for q in uq[u])
kd = [d for d in docs if d.get("parallel_id") in keep]
kids = {d["_id"] for d in kd}
kq = sorted({q for u in keep for q in uq[u]})
(out / "qrels").mkdir(parents=True, exist_ok=True)
(out / "corpus.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in kd), encoding="utf-8")
(out / "queries.jsonl").write_text("".join(json.dumps(queries[q], ensure_ascii=False) + "\n" for q in kq), encoding="utf-8")
kqs = set(kq)
(out / "qrels/test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels if q in kqs and d in kids), encoding="utf-8")
meta = json.loads((src / "meta.json").read_text(encoding="utf-8"))
meta = {k: meta[k] for k in ("name", "licence", "parallel", "parallel_by_lang", "query_derivation") if k in meta}
meta["subsample"] = {"source": str(src), "units": len(keep), "documents": len(kd), "queries": len(kq), "per_lang": per_lang,
                     "queries_per_lang": dict(sorted(counts.items())), "method": __doc__.strip()}
(out / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
print(meta["subsample"], Counter(d["lang"] for d in kd), sum(len(d["text"]) for d in kd))
