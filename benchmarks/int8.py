"""int8 recipes of multilingual-e5-small against fp32: file size, speed, and per-language paired deltas on
the man-page evaluation set, judged by the rule of issue 9 item 4.

    python benchmarks/int8.py --corpus DIR [--calibration DIR/train.jsonl] [--recipes a,b] [--keep 4]
                              [--queries-per-lang 150] [--bootstrap 500] [--rounds 3] [--threads 2] [--apply]

1. Builds every recipe (clbias/export/int8_search.py) that the model does not already hold from the same
   settings and calibration text (man-page train.jsonl: every language, never the evaluation pages).
2. Speed: fp32, today's model.int8.onnx and every evaluated recipe embed the same passages in interleaved rounds (Encoder.encode, no embedding cache);
   ratio = median over rounds of time(fp32) / time(recipe).
3. Accuracy, for the `--keep` recipes with the smallest recorded drift (median cosine to fp32 on the fixed
   multilingual sample; `--keep 0`: every recipe): one audit per recipe, fp32 and the recipe side by side,
   paired bootstrap CI per scenario and metric. Languages with >= `--min-queries` evaluation queries only.
   `--queries-per-lang 0` judges the whole set; otherwise, to bound time, the corpus is subsampled by unit
   (page), deterministically: units in sha256 order are kept while some language has fewer than
   `--queries-per-lang` queries; every document and query of a kept unit stays, the others go.
4. The rule (clbias/report/noharm.py, the one place it lives): a recipe *passes* when no judged cell (language x
   scenario x metric) shows a significant loss under Holm's step-down over all its cells (family-wise error
   5%: an unchanged model fails at most 5% of the time, tests/test_noharm.py), and *shows no harm* when
   every cell's paired 95% CI stays within 1 point on the losing side (non-inferiority). With `--apply`, the
   fastest recipe that passes and shows no harm becomes the default graph of exported/multilingual-e5-small.

Writes benchmarks/results/int8.md and benchmarks/results/int8.json.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ARGS = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ARGS.add_argument("--corpus", type=Path, required=True, help="the man-page probe set (clbias probes build manpages)")
ARGS.add_argument("--calibration", type=Path, help="calibration text (default: CORPUS/train.jsonl)")
ARGS.add_argument("--recipes", help="comma-separated recipes (default: all)")
ARGS.add_argument("--keep", type=int, default=3, help="recipes evaluated on the set, by smallest recorded drift "
                  "(0: all)")
ARGS.add_argument("--queries-per-lang", type=int, default=150, help="subsample to about this many queries per "
                  "language (0: the whole set)")
ARGS.add_argument("--no-speed", action="store_true", help="skip the timing rounds (accuracy only)")
ARGS.add_argument("--min-queries", type=int, default=150, help="languages with fewer evaluation queries are left out")
ARGS.add_argument("--bootstrap", type=int, default=500)
ARGS.add_argument("--rounds", type=int, default=3)
ARGS.add_argument("--speed-texts", type=int, default=48, help="passages per timed round")
ARGS.add_argument("--threads", type=int, default=2)
ARGS.add_argument("--apply", action="store_true", help="make the fastest passing recipe the default graph")
OPTS = ARGS.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(OPTS.threads)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA_DIR, RESULTS, environment, interleaved, md_table, model_dir, write_result  # noqa: E402

from clbias.audit import AuditSettings, audit  # noqa: E402
from clbias.corpus import load_corpus  # noqa: E402
from clbias.export import int8_search as search  # noqa: E402
from clbias.io import write_json_atomic  # noqa: E402
from clbias.report.noharm import DEFAULT_MARGIN, judge_no_harm  # noqa: E402
from clbias.runtime.encoder import Encoder  # noqa: E402
from clbias.runtime.manifest import load_manifest  # noqa: E402

ENGLISH = "en"
BASELINE = "dyn-pc-s8-gather"  # the settings of today's model.int8.onnx
JUDGED = {"multi": ("max_r_norm", "complete@10", "ndcg@10", "eir"), "mono-same": ("ndcg@10",),
          "mono-cross": ("ndcg@10",)}
CACHE = DATA_DIR / "int8-embeddings"


def log(msg: str) -> None:
    print(f"[int8 {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def read_rows(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def subsample(corpus: Path, per_lang: int, min_queries: int) -> tuple[Path, dict[str, Any]]:
    """The evaluation subset described in the module docstring, written once under DATA_DIR."""
    docs = read_rows(corpus / "corpus.jsonl")
    queries = {q["_id"]: q for q in read_rows(corpus / "queries.jsonl")}
    with open(corpus / "qrels" / "test.tsv", encoding="utf-8") as fh:
        qrels = [r for r in csv.reader(fh, delimiter="\t") if r and r[0] != "query-id"]
    unit_of_doc = {d["_id"]: d.get("parallel_id") for d in docs}
    unit_queries: dict[str, set[str]] = defaultdict(set)
    for qid, did, _ in qrels:
        if qid in queries and unit_of_doc.get(did):
            unit_queries[unit_of_doc[did]].add(qid)
    full = Counter(queries[q]["lang"] for qs in unit_queries.values() for q in qs)
    langs = sorted(l for l, n in full.items() if l != ENGLISH and n >= min_queries)
    dropped = sorted(l for l, n in full.items() if l != ENGLISH and n < min_queries)
    keep_units: set[str] = set()
    counts: Counter[str] = Counter()
    for unit in sorted(unit_queries, key=lambda u: hashlib.sha256(f"0:{u}".encode()).hexdigest()):
        unit_langs = {queries[q]["lang"] for q in unit_queries[unit]}
        if any(counts[l] < per_lang for l in unit_langs if l in langs):
            keep_units.add(unit)
            counts.update(queries[q]["lang"] for q in unit_queries[unit])
    keep_langs = set(langs) | {ENGLISH}
    kept_docs = [d for d in docs if d.get("parallel_id") in keep_units and d["lang"] in keep_langs]
    kept_doc_ids = {d["_id"] for d in kept_docs}
    kept_q = sorted({q for u in keep_units for q in unit_queries[u] if queries[q]["lang"] in keep_langs})
    digest = hashlib.sha256(json.dumps([sorted(keep_units), langs]).encode()).hexdigest()[:12]
    out = DATA_DIR / f"int8-manpages-{digest}"
    info = {"source": str(corpus), "units": len(keep_units), "documents": len(kept_docs), "queries": len(kept_q),
            "languages": langs, "left_out_languages": dropped, "queries_per_lang": dict(sorted(counts.items())),
            "full_queries_per_lang": dict(sorted(full.items())), "path": str(out),
            "method": f"units in sha256('0:<parallel_id>') order, kept while a language has < {per_lang} queries"}
    if not (out / "corpus.jsonl").is_file():
        tmp = out.with_name(out.name + f".partial-{os.getpid()}")
        (tmp / "qrels").mkdir(parents=True, exist_ok=True)
        (tmp / "corpus.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in kept_docs))
        (tmp / "queries.jsonl").write_text("".join(json.dumps(queries[q], ensure_ascii=False) + "\n" for q in kept_q))
        kq = set(kept_q)
        (tmp / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
            f"{q}\t{d}\t{s}\n" for q, d, s in qrels if q in kq and d in kept_doc_ids))
        meta = json.loads((corpus / "meta.json").read_text(encoding="utf-8"))
        meta = {k: meta[k] for k in ("name", "licence", "parallel", "parallel_by_lang", "query_derivation") if k in meta}
        (tmp / "meta.json").write_text(json.dumps({**meta, "subsample": info}, ensure_ascii=False, indent=2))
        os.replace(tmp, out)
    return out, info


def whole_set(corpus: Path, min_queries: int) -> tuple[Path, dict[str, Any]]:
    """The whole evaluation set, described like a subsample; languages with < min_queries queries left out."""
    queries = read_rows(corpus / "queries.jsonl")
    counts = Counter(q["lang"] for q in queries)
    langs = sorted(l for l, n in counts.items() if l != ENGLISH and n >= min_queries)
    docs = sum(1 for _ in open(corpus / "corpus.jsonl", encoding="utf-8"))
    return corpus, {"source": str(corpus), "units": len({q.get("parallel_id") for q in queries}) or None,
                    "documents": docs, "queries": len(queries), "languages": langs,
                    "left_out_languages": sorted(l for l, n in counts.items() if l != ENGLISH and n < min_queries),
                    "queries_per_lang": dict(sorted(counts.items())), "full_queries_per_lang": dict(sorted(counts.items())),
                    "path": str(corpus), "method": "the whole evaluation set (no subsample)"}


def build_recipes(directory: Path, recipes: list[search.Recipe], calibration: search.Calibration) -> dict[str, float]:
    seconds = {}
    for recipe in recipes:
        if search.is_current(directory, recipe, calibration):
            log(f"{recipe.name}: already built from the same settings and calibration")
            continue
        log(f"building {recipe.name}")
        start = time.perf_counter()
        search.build_recipe(directory, recipe, calibration, threads=OPTS.threads)
        seconds[recipe.name] = round(time.perf_counter() - start, 1)
    return seconds


def speed(directory: Path, files: dict[str, str], texts: list[str]) -> dict[str, dict[str, float]]:
    encoders = {name: Encoder.load(directory, onnx=file, threads=OPTS.threads) for name, file in files.items()}
    variants = {name: (lambda e=e: e.encode(texts, "passage")) for name, e in encoders.items()}
    timings = interleaved(variants, OPTS.rounds, log=log)
    out = {name: {"median_s": round(timings.median(name), 2),
                  "ratio_vs_fp32": round(timings.ratio(name, "fp32"), 2),
                  "ratio_range": [round(x, 2) for x in timings.ratio_range(name, "fp32")]} for name in files}
    del encoders
    return out


def judge(report: Any, langs: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows (scenario, language, metric, fp32, int8, diff, CI, Holm CI, loss, harm, non-inferior) and the
    verdict of the no-harm rule (clbias/report/noharm.py)."""
    fp32, other = report.models[0].name, report.models[1].name
    verdict = judge_no_harm(report, fp32, other, {k: list(v) for k, v in JUDGED.items()}, langs)
    rows = [{"scenario": c.kind, "lang": c.lang, "name": c.scenario, "metric": c.metric, "n": c.n,
             "fp32": c.base, "int8": c.other, "diff": c.diff, "ci": list(c.ci),
             "holm_ci": None if c.holm_ci[0] != c.holm_ci[0] else list(c.holm_ci),
             "holm_confidence": round(c.holm_confidence, 6), "loss": c.loss, "harm": c.harm,
             "non_inferior": c.non_inferior, "fails": c.harm} for c in verdict.cells]
    worst = max(rows, key=lambda r: r["loss"]) if rows else None
    by_lang: dict[str, dict[str, Any]] = {}
    for r in rows:
        cur = by_lang.get(r["lang"])
        if cur is None or r["loss"] > cur["loss"]:
            by_lang[r["lang"]] = {"loss": r["loss"], "where": f"{r['scenario']} {r['metric']}",
                                  "significant": r["harm"]}
    return rows, {"passes": verdict.passes, "no_harm_shown": verdict.no_harm_shown,
                  "may_replace": verdict.may_replace, "failing": len(verdict.harmed), "judged": len(rows),
                  "non_inferior": sum(c.non_inferior for c in verdict.cells), "describe": verdict.describe(),
                  "worst": worst and {k: worst[k] for k in ("scenario", "lang", "metric", "diff", "ci", "loss")},
                  "worst_by_lang": by_lang}


def main() -> int:
    directory = model_dir()
    calibration_path = OPTS.calibration or OPTS.corpus / "train.jsonl"
    calibration = search.read_calibration(calibration_path)
    recipes = search.resolve_recipes([r for r in (OPTS.recipes or "").split(",") if r] or None)
    t0 = time.perf_counter()
    built = build_recipes(directory, recipes, calibration)
    env = environment(OPTS.threads)  # after the builds: it lists every graph's sha256
    manifest = load_manifest(directory, verify=False)
    records = {r.name: manifest.quantization[r.file] for r in recipes}
    # today's model.int8.onnx has exactly this recipe's settings: timed and listed, not rebuilt
    records.setdefault(BASELINE, {**manifest.quantization["model.int8.onnx"], "size_bytes":
                                  (directory / "model.int8.onnx").stat().st_size})

    subset, info = (whole_set(OPTS.corpus, OPTS.min_queries) if OPTS.queries_per_lang == 0
                    else subsample(OPTS.corpus, OPTS.queries_per_lang, OPTS.min_queries))
    log(f"evaluation subset {subset}: {info['documents']} documents, {info['queries']} queries, "
        f"languages {', '.join(info['languages'])}")
    corpus = load_corpus(subset)
    ranked = sorted(recipes, key=lambda r: -records[r.name]["median_cosine"])
    evaluated = ranked[:OPTS.keep] if OPTS.keep > 0 else ranked

    passages = [d.text for d in corpus.docs][:: max(1, len(corpus.docs) // OPTS.speed_texts)][:OPTS.speed_texts]
    files = {"fp32": "model.onnx", BASELINE: "model.int8.onnx", **{r.name: r.file for r in evaluated}}
    if OPTS.no_speed:
        speeds: dict[str, dict[str, float] | None] = {name: None for name in files}
    else:
        log(f"timing {len(files)} graphs on {len(passages)} passages, {OPTS.rounds} rounds")
        speeds = dict(speed(directory, files, passages))

    results: dict[str, Any] = {}
    fp32 = Encoder.load(directory, onnx="model.onnx", threads=OPTS.threads)
    settings = AuditSettings(scenarios=list(JUDGED), bootstrap=OPTS.bootstrap, cache_dir=CACHE)
    for recipe in evaluated:
        log(f"auditing fp32 vs {recipe.name}")
        other = Encoder.load(directory, onnx=recipe.file, threads=OPTS.threads)
        report = audit(corpus, [fp32, other], settings)
        rows, verdict = judge(report, info["languages"])
        results[recipe.name] = {"verdict": verdict, "rows": rows, "embed_s": report.timings.get("embed_s")}
        log(f"{recipe.name}: {'passes' if verdict['passes'] else 'fails'}; {verdict['describe']}; "
            f"worst {verdict['worst']}")
        del other
    passing = [r for r in evaluated if results[r.name]["verdict"]["may_replace"] and speeds.get(r.name)]
    chosen = max(passing, key=lambda r: speeds[r.name]["ratio_vs_fp32"]) if passing else None  # type: ignore[index]
    if chosen and OPTS.apply:
        search.set_default_graph(directory, chosen.file, {
            "rule": "no significant loss in any language x scenario x metric under Holm's step-down (family-wise "
                    f"error 0.05) and every cell non-inferior at {DEFAULT_MARGIN:g} point (paired 95% bootstrap CI)",
            "corpus": info, "speed_ratio_vs_fp32": speeds[chosen.name]["ratio_vs_fp32"],
            "benchmark": "benchmarks/results/int8.md"})
    total = round(time.perf_counter() - t0, 1)
    data = {"environment": env, "subset": info, "calibration": calibration.to_json(), "build_s": built,
            "recipes": {r.name: {"note": r.note, "size_mb": round(records[r.name]["size_bytes"] / 1e6, 1),
                                 "min_cosine": records[r.name]["min_cosine"],
                                 "median_cosine": records[r.name]["median_cosine"],
                                 "kept_fp32": [k["name"] for k in records[r.name].get("kept_fp32", [])],
                                 "file": r.file if r.name != BASELINE else "model.int8.onnx",
                                 "speed": speeds.get(r.name)} for r in [*recipes, search.RECIPES[BASELINE]]
                        if r.name in records},
            "fp32_speed": speeds.get("fp32"), "fp32_size_mb": round((directory / "model.onnx").stat().st_size / 1e6, 1),
            "evaluated": results, "chosen": chosen and chosen.name, "applied": bool(chosen and OPTS.apply),
            "rule": {"judged": JUDGED, "non_inferiority_margin": DEFAULT_MARGIN, "family_wise_alpha": 0.05,
                     "significance": "paired bootstrap CI (clbias.metrics.stats); Holm's step-down over all cells",
                     "code": "clbias/report/noharm.py"},
            "bootstrap": OPTS.bootstrap, "total_s": total}
    write_json_atomic(RESULTS / "int8.json", data)
    write_result("int8", "int8 recipes vs fp32 on the man-page set", env, render(data))
    log(f"done in {total:.0f} s: chosen {data['chosen']}")
    return 0


def render(data: dict[str, Any]) -> str:
    info = data["subset"]
    lines = [
        "## Rule",
        "",
        "Cells: every language and judged metric (Multi, parallel pools: Max@R_norm, Complete@10, nDCG@10, EIR; "
        "Mono-Same nDCG@10; Mono-Cross nDCG@10, by the pool's language), paired difference int8 − fp32 over the same "
        f"queries ({data['bootstrap']} bootstrap resamples). A recipe **passes** when no cell shows a significant "
        "loss under Holm's step-down over all its cells (family-wise error "
        f"{data['rule']['family_wise_alpha']:g}; EIR loses upwards) and **shows no harm** when every cell's 95% CI "
        f"stays within {data['rule']['non_inferiority_margin']:g} point on the losing side. It may become the "
        "default graph only with both; among those the fastest is chosen (clbias/report/noharm.py).",
        "",
        f"Evaluation subset: {info['units']} pages, {info['documents']} documents, {info['queries']} queries, "
        f"languages {', '.join(info['languages'])} + en ({info['method']}; queries per language "
        + ", ".join(f"{k} {v}" for k, v in info["queries_per_lang"].items())
        + f"; left out for < 150 queries: {', '.join(info['left_out_languages']) or 'none'}).",
        f"Calibration: {data['calibration']['texts']} texts from {data['calibration']['source']} "
        f"({', '.join(f'{k} {v}' for k, v in data['calibration']['langs'].items())}).",
        "",
        "## Recipes",
        "",
        md_table(["recipe", "MB", "speed vs fp32 (range)", "min / median cos (fixed sample)", "kept fp32", "evaluated",
                  "verdict", "worst loss"],
                 [["fp32 (model.onnx)", data["fp32_size_mb"], "1.00", "–", "–", "–", "–", "–"]] +
                 [[f"{name} ({r['file']})", r["size_mb"], _speed(r["speed"]), f"{r['min_cosine']:.4f} / {r['median_cosine']:.4f}",
                   len(r["kept_fp32"]), "yes" if name in data["evaluated"] else "no",
                   _verdict(data["evaluated"].get(name)), _worst(data["evaluated"].get(name))]
                  for name, r in data["recipes"].items()]),
        "",
        "Speed: median over interleaved rounds of time(fp32)/time(recipe) on the same passages, same process "
        "(no embedding cache).",
        "",
    ]
    for name, result in data["evaluated"].items():
        langs = sorted({r["lang"] for r in result["rows"]})
        cells: dict[tuple[str, str], str] = {}
        for r in result["rows"]:
            mark = " **✗**" if r["harm"] else "" if r["non_inferior"] else " ~"
            cells[(r["lang"], f"{r['scenario']} {r['metric']}")] = (
                f"{r['diff']:+.2f} [{r['ci'][0]:+.2f}, {r['ci'][1]:+.2f}]{mark}")
        columns = [f"{k} {m}" for k, ms in data["rule"]["judged"].items() for m in ms]
        lines += [f"### {name}: int8 − fp32 per language (95% CI; ✗ = harm under Holm; ~ = not shown within "
                  f"{data['rule']['non_inferiority_margin']:g} point)", "", result["verdict"]["describe"] + ".", "",
                  md_table(["lang", *columns], [[l, *[cells.get((l, c), "–") for c in columns]] for l in langs]), ""]
        worst = result["verdict"]["worst_by_lang"]
        lines += ["Worst loss per language (points): " + ", ".join(
            f"{l} {w['loss']:+.2f} ({w['where']}{', harm' if w['significant'] else ''})"
            for l, w in sorted(worst.items())), ""]
    chosen = data["chosen"]
    lines += ["## Decision", "",
              (f"**{chosen}** passes the rule, shows no harm, and is the fastest such recipe "
               f"({data['recipes'][chosen]['speed']['ratio_vs_fp32']:.2f}x fp32)" +
               (": it is now the default graph." if data["applied"] else " (not applied: run with --apply).")
               if chosen else "**No recipe both passes the rule and shows no harm (or none was timed): fp32 stays "
               "the default graph.**"), ""]
    lines += [f"Total time {data['total_s']:.0f} s (builds: " +
              (", ".join(f"{k} {v:.0f} s" for k, v in data["build_s"].items()) or "none needed") + ")."]
    return "\n".join(lines)


def _speed(s: dict[str, Any] | None) -> str:
    if s is None:
        return "not timed"
    return f"{s['ratio_vs_fp32']:.2f}x ({s['ratio_range'][0]:.2f}–{s['ratio_range'][1]:.2f})"


def _verdict(result: dict[str, Any] | None) -> str:
    if result is None:
        return "–"
    v = result["verdict"]
    shown = f"non-inferior {v['non_inferior']}/{v['judged']}"
    return (f"passes; {shown}" if v["passes"] else f"fails ({v['failing']}/{v['judged']} harm); {shown}")


def _worst(result: dict[str, Any] | None) -> str:
    if result is None or not result["verdict"]["worst"]:
        return "–"
    w = result["verdict"]["worst"]
    return f"{w['loss']:+.2f} ({w['lang']} {w['scenario']} {w['metric']})"


if __name__ == "__main__":
    sys.exit(main())
