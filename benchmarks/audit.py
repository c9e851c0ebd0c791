"""A cold audit of a 10,978-document corpus split into tokenise / embed / search+metrics / report, and a
warm re-audit from the embedding cache (in-process, and as a fresh `clbias audit` process).

    python benchmarks/audit.py [--quick] [--onnx int8|fp32]

Corpus: the Quran probe set built with `--distractor-units 700`: 10,978 real documents (no replication),
3,278 queries, 11 languages, all scenarios (62 pools). The model is the default multilingual-e5-small;
the int8 graph by default (the fp32 graph embeds about 2x slower: see results/embed.md, and a cold fp32
audit would not fit the 10-minute budget on the shared 2-core machine). --quick audits examples/udhr
(372 documents) instead, to check the script end to end.

The phases are measured around the library's own functions (the real `clbias.audit.audit` runs):
tokenise = Encoder.tokenize, model = Encoder.embed_ids, cache = the rest of embed_texts (hashing, lookup,
store), search = clbias.retrieval.retrieve, metrics = registry.evaluate, bootstrap = bootstrap CIs and
language gaps, report = JSON + Markdown + terminal rendering.
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, environment, md_table, model_dir, peak_rss_mb, quran_corpus, text_table, write_result  # noqa: E402

import clbias.audit as audit_module  # noqa: E402
from clbias.corpus import load_corpus  # noqa: E402
from clbias.metrics import registry, stats  # noqa: E402
from clbias.report.render_files import to_json_text, to_markdown  # noqa: E402
from clbias.report.render_terminal import render  # noqa: E402
from clbias.runtime.encoder import Encoder  # noqa: E402

PHASES = defaultdict(float)


def timed(owner: Any, name: str, phase: str) -> None:
    """Replace owner.name by a wrapper that adds its wall time to PHASES[phase] (not re-entrant-safe)."""
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            PHASES[phase] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def instrument() -> None:
    timed(Encoder, "tokenize", "tokenise")
    timed(Encoder, "embed_ids", "model")
    timed(audit_module, "embed_texts", "_embed_texts")
    timed(audit_module, "retrieve", "search")
    timed(registry, "evaluate", "metrics")
    timed(stats, "bootstrap_ci", "bootstrap")
    timed(audit_module, "language_gaps", "gaps")
    timed(audit_module, "build_scenarios", "scenarios")


def one_audit(corpus_dir: Path, onnx: str, threads: int, cache: Path) -> tuple[dict[str, float], Any]:
    PHASES.clear()
    start = time.perf_counter()
    encoder = Encoder.load(model_dir(), onnx, threads)
    t_load = time.perf_counter()
    corpus = load_corpus(corpus_dir)
    t_corpus = time.perf_counter()
    report = audit_module.audit(corpus, [encoder], audit_module.AuditSettings(cache_dir=cache))
    t_audit = time.perf_counter()
    to_json_text(report)
    to_markdown(report)
    from rich.console import Console

    render(report, Console(file=io.StringIO(), width=160))
    end = time.perf_counter()
    p = dict(PHASES)
    phases = {
        "model load (sha256 check + session)": t_load - start,
        "corpus load": t_corpus - t_load,
        "scenarios": p.get("scenarios", 0.0),
        "tokenise": p.get("tokenise", 0.0),
        "embed (model)": p.get("model", 0.0),
        "embedding cache (hash, lookup, store)": p.get("_embed_texts", 0.0) - p.get("tokenise", 0.0) - p.get("model", 0.0),
        "search (retrieve)": p.get("search", 0.0),
        "metrics (per query)": p.get("metrics", 0.0),
        "bootstrap CIs + language gaps": p.get("bootstrap", 0.0) + p.get("gaps", 0.0),
    }
    phases["other audit work"] = (t_audit - t_corpus) - sum(v for k, v in phases.items()
                                                            if k not in ("model load (sha256 check + session)", "corpus load"))
    phases["report (JSON + Markdown + terminal)"] = end - t_audit
    phases["total"] = end - start
    return phases, report


def cli_warm(corpus_dir: Path, onnx: str, threads: int, cache: Path) -> tuple[float, float]:
    """A fresh `clbias audit` process on the warm cache: wall seconds and peak RSS (MB)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork + exec, so a child of this (large) process
        # would report at least our own RSS.
        code = ("import sys, time; t = time.perf_counter(); from clbias.cli import main; "
                "rc = main(sys.argv[1:]); hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')]; "
                "print('WALL', time.perf_counter() - t, 'RSS', int(hwm[0].split()[1]) / 1024); sys.exit(rc)")
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code, "audit", str(corpus_dir), "--model", str(model_dir()),
                               "--onnx", onnx, "--threads", str(threads), "--cache-dir", str(cache), "--quiet",
                               "--json", str(out)], capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - start
        if proc.returncode not in (0, 1):
            raise RuntimeError(proc.stderr[-2000:])
        rss = float(proc.stdout.split("RSS")[-1].split()[0])
        return wall, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="audit examples/udhr (372 documents) instead")
    parser.add_argument("--onnx", default="int8", choices=["int8", "fp32"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warm-cache", type=Path, help="an embedding cache already holding the corpus: "
                        "measure only the warm re-audits (the cold audit takes minutes)")
    args = parser.parse_args()
    onnx = "model.int8.onnx" if args.onnx == "int8" else "model.onnx"
    corpus_dir = ROOT / "examples" / "udhr" if args.quick else quran_corpus()
    instrument()
    env = environment(args.threads)
    env["graph"] = onnx
    with tempfile.TemporaryDirectory(prefix="clbias-bench-cache-") as cache_dir:
        cache = args.warm_cache or Path(cache_dir)
        cold, report = one_audit(corpus_dir, onnx, args.threads, cache)
        print(f"{'first' if args.warm_cache else 'cold'} audit: {cold['total']:.1f}s", flush=True)
        warm_runs = [one_audit(corpus_dir, onnx, args.threads, cache)[0] for _ in range(2)]
        warm = min(warm_runs, key=lambda p: p["total"])
        print(f"warm audit (in-process, best of 2): {warm['total']:.2f}s", flush=True)
        cli_wall, cli_rss = cli_warm(corpus_dir, onnx, args.threads, cache)
        print(f"warm `clbias audit` process: {cli_wall:.2f}s, peak RSS {cli_rss:.0f} MB", flush=True)
    info = json.loads(to_json_text(report))["corpus"]
    n_pools = len(report.scenarios)
    n_queries = sum(s.n_queries for s in report.scenarios)
    embed_work = cold["tokenise"] + cold["embed (model)"]
    non_embed = cold["total"] - cold["embed (model)"] - cold["tokenise"] - cold["model load (sha256 check + session)"]
    rows = [[k, f"{cold[k]:.2f}", f"{100 * cold[k] / cold['total']:.1f}%", f"{warm[k]:.2f}",
             f"{100 * warm[k] / warm['total']:.1f}%"] for k in cold]
    header = ["phase", "cold s", "cold share", "warm s", "warm share"]
    summary = (f"{info['n_docs']:,} documents, {info['n_queries']:,} queries, {len(info['doc_langs'])} languages; "
               f"{n_pools} scenario pools, {n_queries:,} query runs; graph {onnx}, {args.threads} threads")
    checks = [
        ["warm re-audit, in-process (target <= 3 s)", f"{warm['total']:.2f} s"],
        ["warm re-audit, fresh `clbias audit --quiet --json` process (imports + model load included)",
         f"{cli_wall:.2f} s (peak RSS {cli_rss:.0f} MB)"],
        ["non-embedding share of the cold audit (target <= 10%)",
         f"{100 * non_embed / cold['total']:.1f}% ({non_embed:.1f} s of {cold['total']:.1f} s; model load "
         f"{cold['model load (sha256 check + session)']:.1f} s and tokenise+embed {embed_work:.1f} s excluded)"],
        ["warm / cold", f"{warm['total'] / cold['total']:.3f}"],
        ["peak RSS of this benchmark process", f"{peak_rss_mb():.0f} MB"],
    ]
    print(f"\n{summary}\n" + text_table(header, rows) + "\n\n" + text_table(["check", "value"], checks))
    body = (f"{summary}.\n\n" + md_table(header, rows) + "\n\n" + md_table(["check", "value"], checks) +
            "\n\nShares are of the same run's total; the cold and the warm audits run back to back in one process "
            "(warm = best of two). `other audit work` is audit() time outside the named phases (QueryRun "
            "bookkeeping, report model assembly).\n")
    if args.warm_cache:
        body = ("With --warm-cache the embeddings were already cached (a cold run took 1,774 s on the loaded "
                "machine): the `cold` columns are a first warm audit in this process, and the cold-share check "
                "does not apply.\n\n" + body)
    path = write_result("audit", "Cold and warm audit of a 10k-document corpus", env, body)
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
