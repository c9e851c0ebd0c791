"""`clbias pools export`: every scenario pool of an audit, written so that another system can index each one.

    DIR/pools.json                 the pools: name, languages, documents, queries, the scenarios each serves
    DIR/<pool>/corpus.jsonl        the pool's documents (BEIR: _id, text, title?, lang, parallel_id?)
    DIR/<pool>/queries.jsonl       the queries of every scenario on this pool
    DIR/<pool>/qrels/test.tsv      what the audit counts as relevant in this pool (translations included
                                   unless --no-expand-translations)

The user runs their system on each pool and writes RUNS/<pool>.trec (or .jsonl, .gz); `clbias audit CORPUS
--run NAME=RUNS` then audits one run per pool, exact for systems whose output depends on the pool.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .audit import AuditPlan
from .corpus import Record
from .errors import InputError
from .io import atomic_dir
from .retrievers.lists import scenario_pool_name


def _record(r: Record) -> dict[str, Any]:
    out: dict[str, Any] = {"_id": r.id, "text": r.text}
    if r.title:
        out["title"] = r.title
    out["lang"] = r.lang
    if r.parallel_id is not None:
        out["parallel_id"] = r.parallel_id
    return out


def _jsonl(path: Path, records: list[Record]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(_record(r), ensure_ascii=False) + "\n")


def export_pools(plan: AuditPlan, out: Path) -> list[dict[str, Any]]:
    """Write every distinct pool of `plan` under `out` (which must not exist or be empty); returns pools.json."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("exists and is not an empty directory; name a new directory", out, field="--out")
    if not plan.scenarios:
        raise InputError("no scenario has judged queries, so there is no pool to export", plan.corpus.path)
    corpus = plan.corpus
    doc_ids = np.array([d.id for d in corpus.docs], dtype=object)
    pools: dict[str, dict[str, Any]] = {}
    for s in plan.scenarios:
        name = scenario_pool_name(s, doc_ids)
        entry = pools.setdefault(name, {"name": name, "langs": sorted(set(s.pool_langs)), "pool": s.pool,
                                        "scenarios": [], "queries": {}, "excluded": {}})
        entry["scenarios"].append(s.label)
        for qi, rel, *excl in zip(s.queries, s.relevant, *([s.excluded] if s.excluded else [])):
            q = corpus.queries[qi]
            entry["queries"][q.id] = (q, [corpus.docs[s.pool[j]].id for j in rel])
            if excl and excl[0].size:
                entry["excluded"][q.id] = [corpus.docs[s.pool[j]].id for j in excl[0]]
    manifest = []
    with atomic_dir(out) as tmp:
        for name, entry in pools.items():
            d = tmp / name
            (d / "qrels").mkdir(parents=True)
            _jsonl(d / "corpus.jsonl", [corpus.docs[i] for i in entry["pool"]])
            _jsonl(d / "queries.jsonl", [q for q, _ in entry["queries"].values()])
            with open(d / "qrels" / "test.tsv", "w", encoding="utf-8") as f:
                f.write("query-id\tcorpus-id\tscore\n")
                for qid, (_, rel) in entry["queries"].items():
                    f.writelines(f"{qid}\t{doc}\t1\n" for doc in rel)
            manifest.append({"name": name, "langs": entry["langs"], "n_docs": int(entry["pool"].size),
                             "n_queries": len(entry["queries"]), "scenarios": entry["scenarios"],
                             "excluded": entry["excluded"]})
        meta = {"schema": "clbias.pools/1", "corpus": str(corpus.path), "split": corpus.split,
                "run_file": "RUNS/<name>.trec (TREC: qid Q0 docid rank score tag) or RUNS/<name>.jsonl, .gz accepted",
                "pools": manifest}
        (tmp / "pools.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest
