"""Whole-process embedding speed: `clbias embed --no-cache` (q4, fp32, int8 graphs) against sentence-transformers
fp32 (torch) and fastembed running the fp32 graph with the same tokenizer.json. Each engine is one fresh process
(imports, model load, tokenisation, embedding, writing the vectors), all on the same texts, 2 threads, run in
alternated rounds (A B C D, B C D A, ...); the ratios are per round, then the median.

    python benchmarks/embed_processes.py --model-dir DIR [--texts N] [--rounds R] [--threads 2]
        [--st-python PY] [--fastembed-python PY] [--clbias-python PY]

Texts: N passages from the man-page probe set (/work/data/manpages or --corpus), the same number per language,
seeded. Writes benchmarks/results/embed-processes.md (and .json).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, cpu_info, load_average, md_table, write_result  # noqa: E402

PEERS = Path(__file__).resolve().parent / "peers"
BASE = "sentence-transformers fp32 (torch)"
FASTEMBED = "fastembed fp32 graph"


def sample_texts(corpus: Path, n: int, out: Path) -> dict[str, int]:
    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    by: dict[str, list[dict]] = {}
    for row in rows:
        by.setdefault(row["lang"], []).append(row)
    rng = random.Random(0)
    per = -(-n // len(by))
    chosen = [r for lang in sorted(by) for r in rng.sample(by[lang], min(per, len(by[lang])))][:n]
    rng.shuffle(chosen)
    out.write_text("".join(json.dumps({"_id": r["_id"], "text": r["text"]}, ensure_ascii=False) + "\n"
                           for r in chosen), encoding="utf-8")
    counts: dict[str, int] = {}
    for r in chosen:
        counts[r["lang"]] = counts.get(r["lang"], 0) + 1
    return counts


def run(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """One whole process: wall seconds, CPU seconds and peak RSS (the kernel's accounting of the child)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err[-1500:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, required=True, help="the exported multilingual-e5-small directory")
    ap.add_argument("--hf-dir", type=Path, help="its Hugging Face directory (default: the manifest's source.hf_dir)")
    ap.add_argument("--corpus", type=Path, default=Path("/work/data/manpages/corpus.jsonl"))
    ap.add_argument("--texts", type=int, default=800)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--graphs", default="q4,fp32,int8", help="clbias graphs to time (comma-separated aliases)")
    ap.add_argument("--clbias-python", default=sys.executable)
    ap.add_argument("--st-python", default=sys.executable)
    ap.add_argument("--fastembed-python", help="a Python with fastembed 0.9.1 (skipped when not given)")
    args = ap.parse_args()
    manifest = json.loads((args.model_dir / "clbias.json").read_text())
    hf_dir = args.hf_dir or Path(manifest["source"]["hf_dir"])
    tmp = Path(tempfile.mkdtemp(prefix="clbias-embed-processes-"))
    texts = tmp / "texts.jsonl"
    langs = sample_texts(args.corpus, args.texts, texts)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "true",
           **{v: str(args.threads) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    engines: dict[str, list[str]] = {}
    outputs: dict[str, Path] = {}
    for graph in [g.strip() for g in args.graphs.split(",") if g.strip()]:
        outputs[f"clbias {graph}"] = tmp / f"clbias-{graph}.npy"
        engines[f"clbias {graph}"] = [args.clbias_python, "-m", "clbias", "embed", str(texts), "--model",
                                      f"{args.model_dir}:{graph}", "--kind", "passage", "--no-cache",
                                      "--threads", str(args.threads), "--out", str(outputs[f"clbias {graph}"])]
    outputs[BASE] = tmp / "st.npy"
    engines[BASE] = [args.st_python, str(PEERS / "st_embed.py"), str(texts), str(hf_dir), str(outputs[BASE]),
                     "--threads", str(args.threads)]
    if args.fastembed_python:
        outputs[FASTEMBED] = tmp / "fastembed.npy"
        engines[FASTEMBED] = [args.fastembed_python, str(PEERS / "fastembed_embed.py"), str(texts),
                              str(args.model_dir), str(hf_dir), str(outputs[FASTEMBED]), "--threads", str(args.threads)]
    cpu = cpu_info()
    head = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": "python " + " ".join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]]),
            "model": f"{manifest['name']} ({manifest['source'].get('description', '')})",
            "model sha256": ", ".join(f"{n} {s[:16]}" for n, s in manifest["files"].items() if n.endswith(".onnx")),
            "texts": f"{sum(langs.values())} man-page passages ({', '.join(f'{k} {v}' for k, v in langs.items())})",
            "threads": str(args.threads), "cpu": f"{cpu['model']}, {cpu['cores']} cores, {cpu['simd']}",
            "nproc": str(os.cpu_count()), "load average at start (1/5/15 min)": load_average()}
    print(json.dumps(head, indent=1), flush=True)
    names = list(engines)
    results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    loads: list[str] = []
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            loads.append(load_average())
            results[name].append(run(engines[name], env))
            print(f"round {r + 1} {name}: {results[name][-1]['wall']:.1f}s wall, "
                  f"{results[name][-1]['peak_mb']:.0f} MB, load {loads[-1]}", flush=True)
    base = np.array([x["wall"] for x in results[BASE]])
    reference = np.load(outputs[BASE])
    rows, raw = [], {}
    for name in names:
        wall = np.array([x["wall"] for x in results[name]])
        ratios = base / wall
        fe = [x["wall"] for x in results.get(FASTEMBED, [])]
        vs_fe = np.array(fe) / wall if fe else None
        vectors = np.load(outputs[name])
        cos = float(np.min(np.sum(vectors * reference, axis=1)))
        rows.append([name, f"{np.median(wall):.1f}", f"{np.median([x['cpu'] for x in results[name]]):.1f}",
                     f"{np.median([x['peak_mb'] for x in results[name]]):.0f}",
                     f"{np.median(ratios):.2f}x ({ratios.min():.2f}-{ratios.max():.2f})",
                     "-" if vs_fe is None else f"{np.median(vs_fe):.2f}x ({vs_fe.min():.2f}-{vs_fe.max():.2f})",
                     f"{cos:.6f}"])
        raw[name] = {"runs": results[name], "min_cosine_vs_st": cos}
    header = ["engine (whole process)", "median wall s", "median CPU s", "median peak RSS MB",
              "x sentence-transformers (per-round, range)", "x fastembed (per-round, range)", "min cos vs ST"]
    body = md_table(header, rows) + f"\n\nLoad average before each run: {'; '.join(loads)}.\n"
    (ROOT / "benchmarks" / "results" / "embed-processes.json").write_text(
        json.dumps({"environment": head, "engines": {n: " ".join(c) for n, c in engines.items()}, "results": raw},
                   indent=1) + "\n", encoding="utf-8")
    path = write_result("embed-processes", "Whole-process embedding speed: clbias vs sentence-transformers vs fastembed",
                        head, body)
    print(md_table(header, rows))
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
