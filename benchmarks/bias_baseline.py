"""The bias picture of the default model: fp32 and int8 over every probe set.

    python benchmarks/bias_baseline.py            # writes benchmarks/results/bias-baseline.md
    python benchmarks/bias_baseline.py --quick    # UDHR only

Probe sets: examples/udhr (bundled) and the Quran set (`clbias probes build quran`, built into the cache).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clbias.audit import AuditSettings, audit  # noqa: E402
from clbias.corpus import load_corpus  # noqa: E402
from clbias.io import write_text_atomic  # noqa: E402
from clbias.model_paths import resolve_model  # noqa: E402
from clbias.report.model import Report  # noqa: E402
from clbias.runtime.cache import default_cache_dir  # noqa: E402
from clbias.runtime.encoder import Encoder  # noqa: E402

METRICS = ("max_r", "max_r_norm", "complete@10", "eir", "ndcg@10")
CACHE = Path.home() / ".cache" / "clbias"
# Quran pools on this 2-core machine: Arabic, Chinese, Russian, an Indic language (Bengali), Swedish + English
QURAN_LANGS = ["ar", "zh", "ru", "bn", "sv"]


def probe_sets(quick: bool) -> dict[str, tuple[Path, list[str] | None]]:
    sets: dict[str, tuple[Path, list[str] | None]] = {"udhr": (REPO / "examples" / "udhr", None)}
    if not quick:
        quran = CACHE / "probes" / "quran"
        if not (quran / "corpus.jsonl").is_file():
            from clbias.probes import QURAN_PACKAGE, QURAN_VERSION, build_quran, fetch_npm_tarball

            build_quran(fetch_npm_tarball(QURAN_PACKAGE, QURAN_VERSION), quran)
        sets["quran"] = (quran, QURAN_LANGS)
    return sets


def cell(value: float | None, ci: list[float] | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f} [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else f"{value:.1f}"


def scenario_rows(report: Report) -> list[str]:
    rows = []
    for s in report.scenarios:
        if s.kind not in ("multi", "mono-same", "mono-cross"):
            continue
        for name, scores in s.by_model.items():
            rows.append(f"| {s.name} | {name} | {s.n_queries} | {s.pool_size} | " +
                        " | ".join(cell(scores.metrics.get(m), scores.ci.get(m)) for m in METRICS) + " |")
    return rows


def gap_rows(report: Report) -> list[str]:
    return [f"| {g.kind} [{'+'.join(g.pool_langs)}] | {g.lang} | {g.model} | " +
            " | ".join(cell(g.metrics.get(m), g.ci.get(m)) for m in ("max_r_norm", "complete@10", "ndcg@10")) +
            f" | {'paired' if g.paired else 'unpaired'} |" for g in report.gaps if g.kind == "multi"]


def inclination_summary(report: Report, model: str) -> list[str]:
    shown, absent = [], []
    for s in report.scenarios:
        if s.kind != "multi" or s.query_lang == "en":
            continue
        value, ci = s.by_model[model].metrics.get("eir"), s.by_model[model].ci.get("eir")
        if value is None or ci is None:
            continue
        (shown if ci[0] >= 20 else absent).append(f"{s.query_lang} {value:.0f}% [{ci[0]:.0f}, {ci[1]:.0f}]")
    return [f"- English inclination (EIR, Multi, CI low end >= 20%): {', '.join(shown) or 'none'}",
            f"- Little or none (CI low end < 20%): {', '.join(absent) or 'none'}"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="UDHR only")
    ap.add_argument("--model", default="multilingual-e5-small")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bias-baseline.md")
    args = ap.parse_args()
    directory = resolve_model(args.model)
    encoders = [Encoder.load(directory, onnx="model.onnx"), Encoder.load(directory, onnx="model.int8.onnx")]
    lines = ["# Bias baseline of the default model", "",
             f"Command: `python benchmarks/bias_baseline.py{' --quick' if args.quick else ''}`  ",
             f"Date: {time.strftime('%Y-%m-%d')}"]
    for name, (path, langs) in probe_sets(args.quick).items():
        corpus = load_corpus(path)
        t0 = time.perf_counter()
        report = audit(corpus, encoders, AuditSettings(scenarios=["multi", "mono-same", "mono-cross"], langs=langs,
                                                       bootstrap=1000, seed=0, cache_dir=default_cache_dir()))
        seconds = time.perf_counter() - t0
        env = report.environment
        lines += ["", f"## {name}: {len(corpus.docs)} documents, {len(corpus.queries)} queries "
                  f"({', '.join(corpus.doc_langs)}); pools audited: en + {', '.join(langs or corpus.doc_langs)}", "",
                  f"- queries: {corpus.meta.get('query_derivation', 'given')}",
                  f"- parallel: {corpus.meta.get('parallel', 'unknown')}; results hold *on this probe set*",
                  "- models: " + "; ".join(f"`{m.name}` = {m.onnx} sha256 `{m.sha256}`" for m in report.models),
                  f"- clbias {env['clbias']}, onnxruntime {env['onnxruntime']}, tokenizers {env['tokenizers']}, "
                  f"numpy {env['numpy']}, threads {env['threads']}, index {report.index.get('kind')}, "
                  f"bootstrap 1000 (seed 0), 95% CI in brackets; wall {seconds:.0f} s", ""]
        lines += inclination_summary(report, report.models[0].name)
        lines += ["", "| scenario | model | n | pool | " + " | ".join(METRICS) + " |", "|---" * (4 + len(METRICS)) + "|"]
        lines += scenario_rows(report)
        lines += ["", "Language gap (en queries − X queries), Multi:", "",
                  "| pool | X | model | Max@R_norm | Complete@10 | nDCG@10 | pairing |", "|---|---|---|---|---|---|---|"]
        lines += gap_rows(report)
        print(f"{name}: done in {seconds:.0f} s", file=sys.stderr)
    write_text_atomic(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
