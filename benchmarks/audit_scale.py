"""Scoring at scale: ns per (query x document) cell from 10k to 1M documents, a 1M-document x 1,000-query
multi pool with all metrics and bootstrap CIs (wall time and peak RSS), and HNSW recall@10 at 1M.

    python benchmarks/audit_scale.py [--sizes 10000,100000,1000000] [--hnsw] [--quick]

Data: real multilingual-e5-small embeddings (int8 graph) of the Quran probe set (benchmarks/_common.py,
10,978 documents), read from the embedding cache (CLBIAS_BENCH_CACHE; a cold run embeds them first, which
takes minutes). The pool is the English + Chinese documents (about 2,000 real vectors), replicated with
small Gaussian noise (sigma 0.01 per dimension, then re-normalised: cosine ~0.98 to the original) to reach
each size; replica r of a document gets parallel id `pid~r`, so translations stay twins within a replica.
Queries: the real English and Chinese queries, plus noisy copies (same relevance) up to 1,000. The relevant
documents are the real ones (replica 0); their noisy replicas are irrelevant near-duplicates, which makes
the ranks deep (a hard case for the counting, an easy one for nothing).

Each size runs in a fresh child process (so its peak RSS is its own): build the pool, then time
`retrieve` + `scores_of` (every registry metric, 1,000 bootstrap resamples) exactly as an audit scores one
scenario, and the bare matrix products of the same chunks, to show what share of the time is BLAS.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, environment, load_average, md_table, model_dir, quran_corpus, text_table, write_result  # noqa: E402

SIGMA = 0.01
N_QUERIES = 1000
POOL_LANGS = ("en", "zh")
CACHE = Path(os.environ.get("CLBIAS_BENCH_CACHE", Path(tempfile.gettempdir()) / "clbias-bench-cache"))


def _hwm_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def base_data(out: Path, onnx: str, threads: int) -> dict:
    """Real vectors of the en + zh documents and queries, saved for the child processes."""
    from clbias.audit import AuditSettings
    from clbias.retrievers.dense import embed_corpus
    from clbias.corpus import load_corpus
    from clbias.runtime.encoder import Encoder

    corpus = load_corpus(quran_corpus())
    encoder = Encoder.load(model_dir(), onnx, threads)
    start = time.perf_counter()
    emb = embed_corpus(corpus, encoder, AuditSettings(cache_dir=CACHE))
    embed_s = time.perf_counter() - start
    docs = [i for lang in POOL_LANGS for i, d in enumerate(corpus.docs) if d.lang == lang]
    position = {corpus.docs[i].id: p for p, i in enumerate(docs)}
    relevant = corpus.relevant_docs(True)
    queries = [i for i, q in enumerate(corpus.queries) if q.lang in POOL_LANGS
               and any(d in position for d in relevant.get(q.id, ()))]
    np.save(out / "docs.npy", emb.docs[docs])
    np.save(out / "queries.npy", emb.queries[queries])
    meta = {
        "doc_langs": [corpus.docs[i].lang for i in docs],
        "doc_pids": [corpus.docs[i].parallel_id for i in docs],
        "query_langs": [corpus.queries[i].lang for i in queries],
        "relevant": [sorted(position[d] for d in relevant[corpus.queries[i].id] if d in position) for i in queries],
    }
    (out / "meta.json").write_text(json.dumps(meta))
    return {"embed_s": embed_s, "n_docs": len(docs), "n_queries": len(queries)}


def build_pool(data: Path, size: int, seed: int = 0):
    """The replicated pool, in (language, twinned) order so the layout needs no gather."""
    from clbias.metrics.types import PoolInfo

    meta = json.loads((data / "meta.json").read_text())
    base = np.load(data / "docs.npy")
    langs = np.array(meta["doc_langs"])
    rng = np.random.default_rng(seed)
    per_lang = size // len(POOL_LANGS)
    docs = np.empty((per_lang * len(POOL_LANGS), base.shape[1]), np.float32)
    doc_langs, doc_pids, origin = [], [], np.empty(docs.shape[0], np.int64)
    row = 0
    for lang in POOL_LANGS:
        members = np.flatnonzero(langs == lang)
        picks = np.arange(per_lang)
        source, replica = members[picks % members.size], picks // members.size
        for a in range(0, per_lang, 65536):
            b = min(per_lang, a + 65536)
            block = base[source[a:b]].copy()
            noisy = replica[a:b] > 0
            block[noisy] += (SIGMA * rng.standard_normal((int(noisy.sum()), base.shape[1]))).astype(np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            docs[row + a:row + b] = block
        origin[row:row + per_lang] = np.where(replica == 0, source, -1)
        doc_langs += [lang] * per_lang
        doc_pids += [None if meta["doc_pids"][s] is None else f"{meta['doc_pids'][s]}~{r}" for s, r in zip(source, replica)]
        row += per_lang
    pool = PoolInfo(doc_ids=np.array([f"d{i}" for i in range(docs.shape[0])]), langs=np.array(doc_langs),
                    parallel_ids=np.array(doc_pids, dtype=object))
    at = np.full(base.shape[0], -1, np.int64)
    at[origin[origin >= 0]] = np.flatnonzero(origin >= 0)
    queries = np.load(data / "queries.npy")
    n_real = queries.shape[0]
    picks = np.arange(N_QUERIES) % n_real
    qvecs = queries[picks].copy()
    copies = np.arange(N_QUERIES) >= n_real
    qvecs[copies] += (SIGMA * rng.standard_normal((int(copies.sum()), qvecs.shape[1]))).astype(np.float32)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    relevant = tuple(np.array(sorted(at[d] for d in meta["relevant"][p] if at[d] >= 0), np.int64) for p in picks)
    qlangs = [meta["query_langs"][p] for p in picks]
    return pool, docs, qvecs, qlangs, relevant


def mixed_docs(data: Path, size: int, seed: int = 0) -> np.ndarray:
    """`size` distinct document vectors for the HNSW recall check: the real ones, then normalised random
    mixtures w*x_i + (1 - w)*x_j of two real vectors (w uniform in [0, 1]). Unlike noisy replicas (~500
    near-copies of each vector, among which no search can tell the exact top 10), mixtures spread over the
    region the real vectors span; they are still synthetic, and are called so in the results."""
    base = np.load(data / "docs.npy")
    rng = np.random.default_rng(seed)
    docs = np.empty((size, base.shape[1]), np.float32)
    docs[:base.shape[0]] = base
    for a in range(base.shape[0], size, 65536):
        b = min(size, a + 65536)
        i, j = rng.integers(0, base.shape[0], b - a), rng.integers(0, base.shape[0], b - a)
        w = rng.random((b - a, 1), dtype=np.float32)
        block = w * base[i] + (1 - w) * base[j]
        docs[a:b] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return docs


def child_score(data: Path, size: int) -> dict:
    from clbias.search import ranking as retrieval
    from clbias.audit import AuditSettings, scores_of

    t0 = time.perf_counter()
    pool, docs, qvecs, qlangs, relevant = build_pool(data, size)
    _ = pool.english_twinned
    t1 = time.perf_counter()
    settings = AuditSettings()
    c1 = os.times()
    result = retrieval.retrieve(qvecs, docs, [f"q{i}" for i in range(len(qvecs))], qlangs, relevant, pool,
                                depth=100, k=10, index="exact")
    t2 = time.perf_counter()
    scores, _ = scores_of(result, pool, settings, settings.metric_names())
    t3 = time.perf_counter()
    c3 = os.times()
    cpu_s = (c3.user + c3.system) - (c1.user + c1.system)
    hwm = _hwm_mb()
    rows = max(1, retrieval.MAX_CHUNK_CELLS // docs.shape[0])
    n_gemm = min(len(qvecs), max(rows, 64 if size >= 1_000_000 else len(qvecs)))
    g0 = time.perf_counter()
    for a in range(0, n_gemm, rows):
        qvecs[a:min(n_gemm, a + rows)] @ docs.T
    gemm_s = (time.perf_counter() - g0) * len(qvecs) / n_gemm
    layout = retrieval.pool_layout(pool)
    return {"size": docs.shape[0], "queries": len(qvecs), "build_s": t1 - t0, "retrieve_s": t2 - t1,
            "metrics_ci_s": t3 - t2, "score_s": t3 - t1, "score_cpu_s": cpu_s, "gemm_s": gemm_s, "gemm_rows_timed": n_gemm,
            "peak_rss_mb": hwm, "layout_identity": layout.identity,
            "max_r_norm": scores.metrics["max_r_norm"], "eir": scores.metrics["eir"],
            "load": load_average()}


def child_hnsw(data: Path, size: int, ef_construction: int, threads: int, kind: str = "replicas") -> dict:
    from clbias.search import ranking as retrieval
    from clbias.search import HnswIndex, HnswParams

    pool, docs, qvecs, _, _ = build_pool(data, size)
    if kind == "mixtures":
        del pool
        docs = mixed_docs(data, docs.shape[0])
    params = HnswParams(M=16, ef_construction=ef_construction, ef=200, build_threads=threads)
    t0 = time.perf_counter()
    graph = HnswIndex.build(docs, params)
    build_s = time.perf_counter() - t0
    out = {"size": docs.shape[0], "build_s": build_s, "M": params.M, "ef_construction": ef_construction,
           "build_threads": threads, "pool": kind}
    rows = max(1, retrieval.MAX_CHUNK_CELLS // docs.shape[0])
    exact = np.concatenate([retrieval._exact_head(qvecs[a:a + rows] @ docs.T, 10) for a in range(0, len(qvecs), rows)])
    for ef in (100, 200, 400):
        graph.params = HnswParams(M=16, ef_construction=ef_construction, ef=ef, build_threads=threads)
        t1 = time.perf_counter()
        labels, _ = graph.search(qvecs, 10, threads=1)
        search_s = time.perf_counter() - t1
        recall = float(np.mean([len(np.intersect1d(labels[i], exact[i])) / 10 for i in range(len(qvecs))]))
        out[f"ef{ef}"] = {"recall@10": recall, "search_ms_per_query": 1000 * search_s / len(qvecs)}
    out["peak_rss_mb"] = _hwm_mb()
    out["load"] = load_average()
    return out


def run_child(args: list[str], timeout: float) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--hnsw", action="store_true", help="also build HNSW at the largest size (minutes)")
    parser.add_argument("--ef-construction", type=int, default=100)
    parser.add_argument("--hnsw-pool", choices=["replicas", "mixtures"], default="replicas",
                        help="vectors the graph is built on: the scoring pool's noisy replicas, or distinct "
                             "mixtures of two real vectors (mixed_docs)")
    parser.add_argument("--hnsw-only", action="store_true", help="skip the scoring curve (with --hnsw)")
    parser.add_argument("--result", default="audit-scale", help="results file name (benchmarks/results/NAME.md)")
    parser.add_argument("--onnx", default="int8", choices=["int8", "fp32"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", choices=["score", "hnsw"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "score":
        print(json.dumps(child_score(args.data, args.size)))
        return
    if args.child == "hnsw":
        print(json.dumps(child_hnsw(args.data, args.size, args.ef_construction, args.threads, args.hnsw_pool)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    onnx = "model.int8.onnx" if args.onnx == "int8" else "model.onnx"
    env = environment(args.threads)
    env["graph"] = onnx
    env["BLAS threads"] = os.environ.get("OPENBLAS_NUM_THREADS", "default (all cores)")
    with tempfile.TemporaryDirectory(prefix="clbias-scale-") as tmp:
        data = Path(tmp)
        base = base_data(data, onnx, args.threads)
        print(f"base: {base}", flush=True)
        results = []
        for size in ([] if args.hnsw_only else sizes):
            r = run_child(["--child", "score", "--data", str(data), "--size", str(size)], timeout=900)
            print(r, flush=True)
            results.append(r)
        hnsw = None
        if args.hnsw:
            hnsw = run_child(["--child", "hnsw", "--data", str(data), "--size", str(sizes[-1]),
                              "--ef-construction", str(args.ef_construction), "--threads", str(args.threads),
                              "--hnsw-pool", args.hnsw_pool],
                             timeout=1800)
            print(hnsw, flush=True)
    header = ["pool docs", "queries", "cells", "retrieve s", "metrics+CIs s", "total s", "CPU s", "ns/cell",
              "BLAS ns/cell", "BLAS share", "peak RSS MB", "load (1 min)"]
    rows = []
    for r in results:
        cells = r["size"] * r["queries"]
        rows.append([f"{r['size']:,}", r["queries"], f"{cells:,}", f"{r['retrieve_s']:.2f}", f"{r['metrics_ci_s']:.2f}",
                     f"{r['score_s']:.2f}", f"{r['score_cpu_s']:.1f}", f"{1e9 * r['score_s'] / cells:.1f}", f"{1e9 * r['gemm_s'] / cells:.1f}",
                     f"{100 * r['gemm_s'] / r['score_s']:.0f}%", f"{r['peak_rss_mb']:.0f}", r["load"].split()[0]])
    body = "" if not results else (f"Base: {base['n_docs']:,} real en+zh document vectors and {base['n_queries']} real queries "
            f"(embedding cache read in {base['embed_s']:.1f} s), replicated with noise sigma={SIGMA} to each size; "
            f"{N_QUERIES} queries. `total` = `retrieve` + `scores_of` (all {len(results) and 18} registry metrics, "
            f"1,000 bootstrap resamples), as an audit scores one scenario; BLAS = the bare matrix products of the "
            f"same chunks (at 1M timed on 64 queries and scaled). Peak RSS is the child process's VmHWM, pool "
            f"vectors (1.5 GB at 1M) included.\n\n" + md_table(header, rows))
    if hnsw:
        hrows = [[f"ef={ef}", f"{hnsw[f'ef{ef}']['recall@10']:.4f}", f"{hnsw[f'ef{ef}']['search_ms_per_query']:.2f}"]
                 for ef in (100, 200, 400)]
        built_on = ("distinct normalised mixtures of two real vectors (mixed_docs)" if hnsw["pool"] == "mixtures"
                    else "the noisy replicas above")
        body += (f"\n\nHNSW at {hnsw['size']:,} documents ({built_on}): M={hnsw['M']}, ef_construction={hnsw['ef_construction']}, "
                 f"{hnsw['build_threads']} build threads: build {hnsw['build_s']:.0f} s "
                 f"({1000 * hnsw['build_s'] / hnsw['size']:.3f} ms/doc), peak RSS {hnsw['peak_rss_mb']:.0f} MB, "
                 f"load {hnsw['load']}. recall@10 of the graph's head against the exact head, "
                 f"{N_QUERIES} queries, 1 search thread:\n\n" + md_table(["ef", "recall@10", "ms/query"], hrows))
    print("\n" + text_table(header, rows))
    path = write_result(args.result, "Scoring cost from 10k to 1M documents", env, body)
    (path.with_suffix(".json")).write_text(json.dumps({"base": base, "scoring": results, "hnsw": hnsw}, indent=1))
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
