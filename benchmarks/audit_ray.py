"""Local engine vs Ray engine on this machine: the overhead ratio of embedding the same passages.

    python benchmarks/audit_ray.py [--texts 372] [--onnx int8|fp32]

Passages: examples/udhr documents (real text, 12 languages), repeated with a numbered suffix to reach
--texts. Both engines embed with the same exported model and 2 onnxruntime threads in total, without the
cache: the local engine in-process (`runtime.embed.embed_texts`), the Ray engine on a local Ray instance
(`num_cpus=2`; one actor with 2 threads, 1.5 Ray CPUs, leaving CPU for Ray Data's read side). Ray is timed
as (a) `ray.init`, (b) the embedding call, which includes starting the actor and loading the model in it.
Order alternates over rounds (local, ray, ray, local, ...) on the shared machine.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, environment, load_average, md_table, model_dir, write_result  # noqa: E402


def passages(n: int) -> list[str]:
    docs = [json.loads(line) for line in (ROOT / "examples" / "udhr" / "corpus.jsonl").open(encoding="utf-8")]
    return [docs[i % len(docs)]["text"] + ("" if i < len(docs) else f" ({i // len(docs)})") for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=372)
    parser.add_argument("--onnx", default="int8", choices=["int8", "fp32"])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from clbias.engine.ray_engine import RayOptions, RaySession, embed_texts_ray
    from clbias.runtime.embed import embed_texts
    from clbias.runtime.encoder import Encoder

    onnx = "model.int8.onnx" if args.onnx == "int8" else "model.onnx"
    env = environment(2, ["ray"])
    env["graph"] = onnx
    texts = passages(args.texts)
    encoder = Encoder.load(model_dir(), onnx, 2)
    t0 = time.perf_counter()
    session = RaySession(RayOptions(num_cpus=2, actors=1, threads=2, batch_rows=64)).__enter__()
    init_s = time.perf_counter() - t0
    local_s, ray_s = [], []
    reference = None
    try:
        for r in range(args.rounds):
            order = ("local", "ray") if r % 2 == 0 else ("ray", "local")
            for engine in order:
                start = time.perf_counter()
                if engine == "local":
                    vecs, _ = embed_texts(encoder, texts, "passage", None)
                    local_s.append(time.perf_counter() - start)
                else:
                    vecs, _ = embed_texts_ray(session, encoder, texts, "passage", None)
                    ray_s.append(time.perf_counter() - start)
                if reference is None:
                    reference = vecs
                else:
                    assert np.abs(vecs - reference).max() <= 1e-5
                print(f"round {r + 1} {engine}: {time.perf_counter() - start:.1f}s (load {load_average()})", flush=True)
    finally:
        session.__exit__(None, None, None)
    ratios = [b / a for a, b in zip(local_s, ray_s)]
    rows = [["local engine (in-process)", f"{np.median(local_s):.1f}", f"{args.texts / np.median(local_s):.1f}", "1.00"],
            ["Ray engine, embedding call (actor start + model load included)", f"{np.median(ray_s):.1f}",
             f"{args.texts / np.median(ray_s):.1f}", f"{np.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"],
            ["`ray.init(num_cpus=2)` (once per process)", f"{init_s:.1f}", "", ""]]
    body = (f"{args.texts} passages, graph {onnx}, 2 threads, {args.rounds} rounds (median; ratio per round, "
            f"Ray / local).\n\n" + md_table(["engine", "seconds", "passages/s", "time ratio vs local"], rows) +
            f"\n\nper round: local {[round(x, 1) for x in local_s]}, ray {[round(x, 1) for x in ray_s]}\n")
    print(body)
    path = write_result("audit-ray", "Local vs Ray engine on one 2-core machine", env, body)
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
