"""The bias picture of the default model, fp32 and int8, and the int8 decision, from the probe sets.

    python benchmarks/bias_baseline.py                      # man pages (reference) + UDHR; writes
                                                            #   benchmarks/results/bias-baseline.md and int8-check.json
    python benchmarks/bias_baseline.py --sets udhr          # the bundled example only (seconds)
    python benchmarks/bias_baseline.py --manpages DIR       # a man-page set built elsewhere

The reference set is the translated Debian manual pages (`clbias probes build manpages --out DIR`, built into
the cache when missing): a page's NAME line is the query, its DESCRIPTION the relevant passage, with a real
monolingual retrieval signal. Only languages with at least `--min-queries` evaluation queries are audited.
UDHR (15 queries per language) and Quran (`--sets quran`; almost no monolingual signal) are context, not claims.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import cpu_info, load_average  # noqa: E402
from clbias.audit import AuditSettings, audit  # noqa: E402
from clbias.corpus import Corpus, load_corpus  # noqa: E402
from clbias.io import write_text_atomic  # noqa: E402
from clbias.metrics import stats  # noqa: E402
from clbias.model_paths import resolve_model  # noqa: E402
from clbias.report.model import Report, ScenarioResult  # noqa: E402
from clbias.report.noharm import DEFAULT_MARGIN, judge_no_harm  # noqa: E402
from clbias.report.verdict import judge  # noqa: E402
from clbias.runtime.cache import cache_root, default_cache_dir  # noqa: E402
from clbias.runtime.encoder import Encoder  # noqa: E402

CACHE = cache_root()
QURAN_LANGS = ["ar", "zh", "ru", "bn", "sv"]
BOOTSTRAP = 1000
# The int8 rule (clbias/report/noharm.py): on the reference set, over every language and each of these metrics
# in Multi (both query languages, parallel pools) and Mono-Same, the paired int8 - fp32 differences: harm =
# a significant loss under Holm's step-down over all cells (family-wise error 5%); no harm shown = every
# cell non-inferior at DEFAULT_MARGIN (1) point (95% CI). int8 may become the default only with both.
INT8_METRICS = ("max_r_norm", "complete@10", "ndcg@10", "recall@10", "mrr@10", "eir")
INT8_JUDGED = {"multi": INT8_METRICS, "mono-same": INT8_METRICS}  # EIR does not apply in Mono-Same


def manpages_dir(given: Path | None) -> Path:
    path = given or CACHE / "probes" / "manpages"
    if not (path / "corpus.jsonl").is_file():
        import subprocess

        subprocess.run([sys.executable, "-m", "clbias", "probes", "build", "manpages", "--out", str(path)],
                       check=True, cwd=REPO)
    return path


def quran_dir() -> Path:
    path = CACHE / "probes" / "quran"
    if not (path / "corpus.jsonl").is_file():
        from clbias.probes import QURAN_PACKAGE, QURAN_VERSION, build_quran, fetch_npm_tarball

        build_quran(fetch_npm_tarball(QURAN_PACKAGE, QURAN_VERSION), path)
    return path


def langs_with_queries(corpus: Corpus, minimum: int) -> list[str]:
    counts = Counter(q.lang for q in corpus.queries)
    return sorted(lang for lang, n in counts.items() if lang != "en" and n >= minimum)


def fmt(value: float | None, ci: list[float] | None = None, digits: int = 1) -> str:
    if value is None:
        return "–"
    text = f"{value:.{digits}f}"
    return f"{text} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else text


def per_query(s: ScenarioResult, model: str, metric: str) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in s.by_model[model].per_query[metric]], dtype=float)


class Views:
    """The scenarios of one report, looked up by (kind, pool languages, query language)."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.by_key = {(s.kind, tuple(s.pool_langs), s.query_lang): s for s in report.scenarios}

    def get(self, kind: str, pool: tuple[str, ...], query_lang: str) -> ScenarioResult | None:
        return self.by_key.get((kind, pool, query_lang))

    def multi(self, lang: str, query_lang: str) -> ScenarioResult | None:
        return self.get("multi", ("en", lang), query_lang)

    def gap(self, lang: str, model: str) -> dict | None:
        for g in self.report.gaps:
            if g.kind == "multi" and g.lang == lang and g.model == model:
                return {"metrics": g.metrics, "ci": g.ci, "paired": g.paired}
        return None


def preference(views: Views, lang: str, model: str) -> tuple[str, str]:
    """Which language the model prefers for X queries in Multi, by the report's own verdict rule
    (`clbias.report.verdict.judge`: twin preference CI vs 50, else EIR's CI vs its neutral value), with
    EIR minus its neutral value, paired over the same queries, as further evidence."""
    s = views.multi(lang, lang)
    if s is None:
        return "–", "no Multi scenario"
    scores = s.by_model[model]
    leaning, evidence = judge(scores.metrics, scores.ci)
    eir, neutral = per_query(s, model, "eir"), per_query(s, model, "eir_neutral")
    excess = stats.paired_comparison(eir, neutral, "eir", n_resamples=BOOTSTRAP, seed=0)
    excess_text = "–" if excess is None else f"{excess.difference:+.1f} [{excess.low:+.1f}, {excess.high:+.1f}]"
    if evidence is None:
        return "–", "neither twin pairs nor EIR apply"
    label = {"english": "English", "own": "own language", "neutral": "neutral"}[leaning]
    shown = fmt(evidence.value, list(evidence.ci) if evidence.ci else None)
    relation = {"english": ">", "own": "<", "neutral": "includes"}[leaning]
    name = "twin preference" if evidence.metric == "twin_pref" else "EIR"
    return label, f"{name} {shown} {relation} {evidence.reference_name}; EIR − neutral {excess_text}"


def picture_table(views: Views, langs: list[str], model: str, parallel_by_lang: dict[str, str]) -> list[str]:
    header = ["X", "parallel", "n (X q)", "pool", "Max@R", "Max@R_norm", "Complete@10", "EIR", "EIR neutral",
              "twin pref", "gap Max@R_norm (en − X)", "Mono-Same nDCG@10 X→X", "Mono-Cross nDCG@10 X→en",
              "Mono-Cross nDCG@10 en→X", "prefers"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for lang in langs:
        s = views.multi(lang, lang)
        if s is None:
            continue
        m, ci = s.by_model[model].metrics, s.by_model[model].ci
        gap = views.gap(lang, model)
        same = views.get("mono-same", (lang,), lang)
        cross_to_en = views.get("mono-cross", ("en",), lang)
        cross_from_en = views.get("mono-cross", (lang,), "en")

        def ndcg(x: ScenarioResult | None) -> str:
            return "–" if x is None else fmt(x.by_model[model].metrics.get("ndcg@10"), x.by_model[model].ci.get("ndcg@10"))

        kind = parallel_by_lang.get(lang) or views.report.corpus.get("parallel") or "?"
        rows.append("| " + " | ".join([
            lang, str(kind), str(s.n_queries), str(s.pool_size), fmt(m.get("max_r"), ci.get("max_r")),
            fmt(m.get("max_r_norm"), ci.get("max_r_norm")), fmt(m.get("complete@10"), ci.get("complete@10")),
            fmt(m.get("eir"), ci.get("eir")), fmt(m.get("eir_neutral"), ci.get("eir_neutral")),
            fmt(m.get("twin_pref"), ci.get("twin_pref")),
            "–" if gap is None else fmt(gap["metrics"].get("max_r_norm"), gap["ci"].get("max_r_norm")),
            ndcg(same), ndcg(cross_to_en), ndcg(cross_from_en), preference(views, lang, model)[0]]) + " |")
    en_same = views.get("mono-same", ("en",), "en")
    if en_same is not None:
        rows.append(f"\nEnglish Mono-Same nDCG@10 (en→en, {en_same.n_queries} queries): "
                    f"{fmt(en_same.by_model[model].metrics.get('ndcg@10'), en_same.by_model[model].ci.get('ndcg@10'))}")
    return rows


def plain_words(views: Views, langs: list[str], model: str) -> list[str]:
    groups: dict[str, list[str]] = {"English": [], "own language": [], "neutral": [], "–": []}
    evidence = []
    for lang in langs:
        verdict, why = preference(views, lang, model)
        groups[verdict].append(lang)
        evidence.append(f"  - {lang}: {why}")
    together = []
    for lang in langs:
        s = views.multi(lang, lang)
        if s is not None:
            together.append(f"{lang} {fmt(s.by_model[model].metrics.get('complete@10'))}")
    return [f"- **Prefers English** (X queries, Multi): {', '.join(groups['English']) or 'none'}",
            f"- **Prefers the query's own language**: {', '.join(groups['own language']) or 'none'}",
            f"- **Neutral** (CI includes 50): {', '.join(groups['neutral']) or 'none'}",
            *([f"- no evidence: {', '.join(groups['–'])}"] if groups["–"] else []),
            f"- Both versions of the relevant page in the top 10 (Complete@10, X queries): {', '.join(together)}",
            "- Evidence per language (twin preference rate with 95% CI; EIR minus neutral EIR, paired over queries):",
            *evidence]


def int8_rows(views: Views, langs: list[str], base: str, other: str) -> tuple[list[str], list[dict], Any]:
    """Paired int8 − fp32 differences per language, scenario and metric, judged by the no-harm rule:
    ✗ = harm (Holm-significant loss), ~ = not shown non-inferior at the margin."""
    verdict = judge_no_harm(views.report, base, other, INT8_JUDGED, langs, seed=0)
    cells = {(c.scenario, c.metric): c for c in verdict.cells}
    table = ["| X | scenario | " + " | ".join(INT8_METRICS) + " |", "|" + "---|" * (2 + len(INT8_METRICS))]
    records = []
    for lang in langs:
        for label, s in (("multi q=X", views.multi(lang, lang)), ("multi q=en", views.multi(lang, "en")),
                         ("mono-same", views.get("mono-same", (lang,), lang))):
            if s is None:
                continue
            row = []
            for name in INT8_METRICS:
                c = cells.get((s.name, name))
                if c is None:
                    row.append("–")
                    continue
                mark = " **✗**" if c.harm else "" if c.non_inferior else " ~"
                row.append(f"{c.diff:+.2f} [{c.ci[0]:+.2f}, {c.ci[1]:+.2f}]{mark}")
                records.append({"lang": lang, "scenario": label, "metric": name, "n": c.n, "diff": c.diff,
                                "ci": list(c.ci), "holm_confidence": round(c.holm_confidence, 6),
                                "holm_ci": None if c.holm_ci[0] != c.holm_ci[0] else list(c.holm_ci),
                                "harm": c.harm, "non_inferior": c.non_inferior})
            table.append(f"| {lang} | {label} | " + " | ".join(row) + " |")
    return table, records, verdict


def comparison_section(views: Views, langs: list[str], base: str, other: str) -> list[str]:
    """Two models side by side: each one's language preference per language, and the paired differences
    (other − base) of the metrics that say whether translations land together."""
    header = ["X", f"{base} prefers", f"{other} prefers", f"twin pref {base}", f"twin pref {other}",
              "Δ Max@R_norm (X q)", "Δ Complete@10 (X q)", "Δ Complete@10 (en q)", "Δ Mono-Same nDCG@10"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    splits_less: dict[str, list[str]] = {base: [], other: [], "neither": []}
    for lang in langs:
        s = views.multi(lang, lang)
        if s is None or other not in s.by_model:
            continue

        def delta(scenario: ScenarioResult | None, metric: str) -> tuple[str, float | None, list | None]:
            if scenario is None or not scenario.comparisons:
                return "–", None, None
            c = next(c for c in scenario.comparisons if c.other == other).metrics.get(metric) or {}
            if c.get("diff") is None:
                return "–", None, None
            return f"{c['diff']:+.1f} [{c['ci'][0]:+.1f}, {c['ci'][1]:+.1f}]", c["diff"], c["ci"]

        complete_x, diff, ci = delta(s, "complete@10")
        if ci is not None:
            splits_less[other if ci[0] > 0 else base if ci[1] < 0 else "neither"].append(lang)
        rows.append("| " + " | ".join([
            lang, preference(views, lang, base)[0], preference(views, lang, other)[0],
            fmt(s.by_model[base].metrics.get("twin_pref"), s.by_model[base].ci.get("twin_pref")),
            fmt(s.by_model[other].metrics.get("twin_pref"), s.by_model[other].ci.get("twin_pref")),
            delta(s, "max_r_norm")[0], complete_x, delta(views.multi(lang, "en"), "complete@10")[0],
            delta(views.get("mono-same", (lang,), lang), "ndcg@10")[0]]) + " |")
    words = [f"- `{other}` keeps translations together (Complete@10, X queries, paired CI above 0) more often "
             f"than `{base}` in: {', '.join(splits_less[other]) or 'none'}",
             f"- `{base}` does better in: {', '.join(splits_less[base]) or 'none'}; no significant difference: "
             f"{', '.join(splits_less['neither']) or 'none'}"]
    return words + [""] + rows


def pools_table(views: Views, langs: list[str], model: str, corpus: Corpus) -> list[str]:
    """The paper's parallel pool beside the corpus as it is (multi-all), X queries: what the pool's
    composition does to the pool-dependent numbers (method.md section 8)."""
    n_en = sum(d.lang == "en" for d in corpus.docs)
    header = ["X", "pool", "docs", "English share", "n (X q)", "EIR", "EIR neutral", "twin pref", "Complete@10",
              "gap Max@R_norm (en − X)", "pairs"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for lang in langs:
        for kind in ("multi", "multi-all"):
            s = views.get(kind, ("en", lang), lang)
            if s is None:
                continue
            m, ci = s.by_model[model].metrics, s.by_model[model].ci
            english = s.pool_size / 2 if kind == "multi" else n_en
            gap = next((g for g in views.report.gaps if g.kind == kind and g.lang == lang and g.model == model), None)
            rows.append("| " + " | ".join([
                lang, kind, str(s.pool_size), f"{100 * english / s.pool_size:.0f}%", str(s.n_queries),
                fmt(m.get("eir"), ci.get("eir")), fmt(m.get("eir_neutral"), ci.get("eir_neutral")),
                fmt(m.get("twin_pref"), ci.get("twin_pref")), fmt(m.get("complete@10"), ci.get("complete@10")),
                "–" if gap is None else fmt(gap.metrics.get("max_r_norm"), gap.ci.get("max_r_norm")),
                "–" if gap is None else (str(gap.pairs) if gap.paired else "unpaired")]) + " |")
    return rows


def udhr_summary(views: Views, model: str) -> list[str]:
    langs = sorted({s.query_lang for s in views.report.scenarios if s.kind == "multi" and s.query_lang != "en"})
    out = ["| X | EIR | EIR neutral | twin pref | prefers |", "|---|---|---|---|---|"]
    for lang in langs:
        s = views.multi(lang, lang)
        m, ci = s.by_model[model].metrics, s.by_model[model].ci
        out.append(f"| {lang} | {fmt(m.get('eir'), ci.get('eir'))} | {fmt(m.get('eir_neutral'), ci.get('eir_neutral'))} "
                   f"| {fmt(m.get('twin_pref'), ci.get('twin_pref'))} | {preference(views, lang, model)[0]} |")
    return out


def describe(report: Report, corpus: Corpus, seconds: float) -> list[str]:
    env = report.environment
    cpu = cpu_info()
    return [f"- queries: {corpus.meta.get('query_derivation', 'given')}",
            f"- parallel: {corpus.meta.get('parallel', 'unknown')}; results hold *on this probe set*",
            "- models: " + "; ".join(f"`{m.name}` = {m.onnx} sha256 `{m.sha256}`" for m in report.models),
            f"- clbias {env['clbias']}, onnxruntime {env['onnxruntime']}, tokenizers {env['tokenizers']}, "
            f"numpy {env['numpy']}, threads {env['threads']}, index {report.index.get('kind')}, "
            f"bootstrap {BOOTSTRAP} (seed 0), 95% CI in brackets; wall {seconds:.0f} s",
            f"- CPU: {cpu['model']}, {cpu['cores']} cores, {cpu['simd']}; load average {load_average()}"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="manpages,udhr", help="comma-separated: manpages, udhr, quran")
    ap.add_argument("--manpages", type=Path, help="a built man-page set (default: build into the cache)")
    ap.add_argument("--min-queries", type=int, default=150, help="evaluation queries a language needs")
    ap.add_argument("--model", default="multilingual-e5-small")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bias-baseline.md")
    ap.add_argument("--int8-out", type=Path, default=REPO / "benchmarks" / "results" / "int8-check.json")
    ap.add_argument("--compare", metavar="MODEL",
                    help="instead of fp32 vs int8: MODEL's fp32 graph beside --model's, each set audited on the "
                         "languages MODEL states it covers; writes benchmarks/results/bias-models.md")
    args = ap.parse_args()
    if args.compare:
        compare_models(args)
        return
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = set(sets) - {"manpages", "udhr", "quran"}
    if unknown:
        ap.error(f"unknown probe set(s): {', '.join(sorted(unknown))}")
    directory = resolve_model(args.model)
    encoders = [Encoder.load(directory, onnx="model.onnx"), Encoder.load(directory, onnx="model.int8.onnx")]
    base, other = f"{args.model}:fp32", f"{args.model}:int8"
    command = ("python benchmarks/bias_baseline.py" + ("" if args.sets == "manpages,udhr" else f" --sets {args.sets}")
               + (f" --manpages {args.manpages}" if args.manpages else "")
               + (f" --min-queries {args.min_queries}" if args.min_queries != 150 else ""))
    lines = ["# Bias baseline of the default model", "", f"Command: `{command}`  ", f"Date: {time.strftime('%Y-%m-%d')}", "",
             "A second model beside this one (language preference of each, paired differences): `bias-models.md`, "
             "from `python benchmarks/bias_baseline.py --compare use-multilingual-v3`.",
             "", "Pools (docs/pools-and-statistics.md): Multi holds only the pages present in English and X (the "
             "paper's pool, |R| = 2); multi-all is the corpus as it is. The language gap is paired by question "
             "(pairs shown). The int8 rule is clbias/report/noharm.py (Holm over all cells; non-inferiority at 1 "
             "point). Results before 2026-12-03 used all-documents Multi pools and a per-cell rule."]
    int8_result: dict | None = None
    for name in sets:
        path = {"manpages": lambda: manpages_dir(args.manpages), "udhr": lambda: REPO / "examples" / "udhr",
                "quran": quran_dir}[name]()
        corpus = load_corpus(path)
        langs = (langs_with_queries(corpus, args.min_queries) if name == "manpages"
                 else QURAN_LANGS if name == "quran" else None)
        t0 = time.perf_counter()
        report = audit(corpus, encoders, AuditSettings(scenarios=["multi", "multi-all", "mono-same", "mono-cross"],
                                                       langs=langs,
                                                       bootstrap=BOOTSTRAP, seed=0, cache_dir=default_cache_dir()))
        seconds = time.perf_counter() - t0
        base, other = report.models[0].name, report.models[1].name  # NAME:fp32, NAME:int8
        views = Views(report)
        audited = langs or sorted({s.query_lang for s in report.scenarios if s.query_lang != "en"})
        lines += ["", f"## {name}: {len(corpus.docs)} documents, {len(corpus.queries)} queries "
                  f"({', '.join(corpus.doc_langs)}); pools audited: en + {', '.join(audited)}", ""]
        lines += describe(report, corpus, seconds)
        if name == "udhr":
            lines += ["", "Context only (15 queries per language); fp32:", ""] + udhr_summary(views, base)
        else:
            lines += ["", "### In plain words (fp32, X queries in Multi)", ""] + plain_words(views, audited, base)
            lines += ["", "### Per language (fp32; Multi = the pages present in English and X, X queries unless noted)", ""]
            lines += picture_table(views, audited, base, corpus.meta.get("parallel_by_lang") or {})
            lines += ["", "### The same with the int8 graph", ""] + picture_table(views, audited, other, corpus.meta.get("parallel_by_lang") or {})
            lines += ["", "### Parallel pool (multi, the paper's) beside the corpus as it is (multi-all), fp32, "
                      "X queries", "", "multi holds the pages present in English and X; multi-all every English "
                      "page and every X page. EIR's neutral value, exposure and the gap depend on the pool's "
                      "composition; the verdict above reads multi.", ""]
            lines += pools_table(views, audited, base, corpus)
        if name == "manpages":
            table, records, verdict = int8_rows(views, audited, base, other)
            harmed = sorted({r["lang"] for r in records if r["harm"]})
            unshown = sorted({r["lang"] for r in records if not r["non_inferior"]})
            acceptable = verdict.may_replace
            lines += ["", "### int8 − fp32, paired over the same queries (95% CI; **✗** = harm: significant loss "
                      "under Holm over all cells; ~ = not shown non-inferior at "
                      f"{DEFAULT_MARGIN:g} point)", ""] + table
            lines += ["", f"Rule (clbias/report/noharm.py): {verdict.describe()}.", "",
                      f"**int8 decision: {'int8 may become the default' if acceptable else 'fp32 stays the default'}**"
                      + ("" if acceptable else
                         f" (harm in: {', '.join(harmed) or 'none'}; not shown non-inferior in: "
                         f"{', '.join(unshown) or 'none'})")]
            int8_result = {
                "rule": f"for every language with >= {args.min_queries} queries and each of {list(INT8_METRICS)} in "
                        "Multi (X and en queries, parallel pools) and Mono-Same: no harm (no significant "
                        "paired loss under Holm's step-down over all cells, family-wise error 0.05) and no harm shown "
                        f"(every cell's 95% CI of int8 - fp32 within {DEFAULT_MARGIN:g} point on the losing side)",
                "harm_cells": len(verdict.harmed), "cells": len(verdict.cells),
                "non_inferior_cells": sum(c.non_inferior for c in verdict.cells),
                "passes_harm_rule": verdict.passes, "no_harm_shown": verdict.no_harm_shown,
                "corpus": str(path), "corpus_name": corpus.meta.get("name", path.name), "languages": audited,
                "bootstrap": BOOTSTRAP, "seed": 0,
                "models": [{"name": m.name, "onnx": m.onnx, "sha256": m.sha256, "quantization": m.quantization}
                           for m in report.models],
                "cpu": cpu_info(), "environment": report.environment, "int8_acceptable": acceptable,
                "harm_languages": harmed, "not_shown_non_inferior_languages": unshown, "differences": records}
        print(f"{name}: done in {seconds:.0f} s", file=sys.stderr)
    write_text_atomic(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    if int8_result is not None:
        write_text_atomic(args.int8_out, json.dumps(int8_result, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {args.int8_out}")


def compare_models(args: argparse.Namespace) -> None:
    first = Encoder.load(resolve_model(args.model), onnx="model.onnx")
    second = Encoder.load(resolve_model(args.compare))
    base, other = args.model, args.compare
    covered = set(second.manifest.languages or []) or None
    out = args.out if args.out.name != "bias-baseline.md" else args.out.with_name("bias-models.md")
    lines = [f"# {base} vs {other}: language preference and split translations", "",
             f"Command: `python benchmarks/bias_baseline.py --compare {other}"
             + ("" if args.sets == "manpages,udhr" else f" --sets {args.sets}") + "`  ",
             f"Date: {time.strftime('%Y-%m-%d')}", "",
             "Δ = paired difference {other} − {base} over the same queries, 95% bootstrap CI (1,000 resamples, "
             "seed 0). \"prefers\" is the twin-preference verdict of `bias-baseline.md` (CI vs 50).".format(
                 other=other, base=base)]
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        path = manpages_dir(args.manpages) if name == "manpages" else REPO / "examples" / "udhr"
        corpus = load_corpus(path)
        candidates = (langs_with_queries(corpus, args.min_queries) if name == "manpages"
                      else sorted({q.lang for q in corpus.queries} - {"en"}))
        langs = [lang for lang in candidates if covered is None or lang in covered]
        t0 = time.perf_counter()
        report = audit(corpus, [first, second], AuditSettings(scenarios=["multi", "mono-same"], langs=langs,
                                                              bootstrap=BOOTSTRAP, seed=0,
                                                              cache_dir=default_cache_dir()))
        seconds = time.perf_counter() - t0
        left_out = sorted(set(candidates) - set(langs))
        lines += ["", f"## {name}: en + {', '.join(langs)}"
                  + (f" (left out, not among {other}'s languages: {', '.join(left_out)})" if left_out else ""), ""]
        lines += describe(report, corpus, seconds) + [""]
        lines += comparison_section(Views(report), langs, base, other)
        print(f"{name}: done in {seconds:.0f} s", file=sys.stderr)
    write_text_atomic(out, "\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
