"""fastembed (torch-free onnxruntime) running a clbias model directory's fp32 graph with the same
tokenizer.json, mean pooling + L2, the same prefix. One whole process: imports, load, embed, save.

    python benchmarks/peers/fastembed_embed.py TEXTS.jsonl MODEL_DIR HF_DIR OUT.npy --prefix "passage: " --threads 2

fastembed wants config.json and the tokenizer configs beside the graph: a scratch directory of links to
MODEL_DIR/model.onnx, MODEL_DIR/tokenizer.json and HF_DIR's configs is made next to OUT.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

ARGS = argparse.ArgumentParser()
ARGS.add_argument("texts")
ARGS.add_argument("model_dir")
ARGS.add_argument("hf_dir")
ARGS.add_argument("out")
ARGS.add_argument("--graph", default="model.onnx")
ARGS.add_argument("--prefix", default="passage: ")
ARGS.add_argument("--threads", type=int, default=2)
ARGS.add_argument("--batch-size", type=int, default=32)
OPTS = ARGS.parse_args()

import numpy as np  # noqa: E402
from fastembed import TextEmbedding  # noqa: E402
from fastembed.common.model_description import ModelSource, PoolingType  # noqa: E402

scratch = Path(OPTS.out).with_suffix(".fastembed")
scratch.mkdir(exist_ok=True)
links = {"model.onnx": Path(OPTS.model_dir) / OPTS.graph, "tokenizer.json": Path(OPTS.model_dir) / "tokenizer.json",
         **{n: Path(OPTS.hf_dir) / n for n in ("config.json", "tokenizer_config.json", "special_tokens_map.json")}}
for name, target in links.items():
    if not (scratch / name).exists():
        os.symlink(target.resolve(), scratch / name)
TextEmbedding.add_custom_model(model="local/clbias-graph", pooling=PoolingType.MEAN, normalization=True,
                               sources=ModelSource(hf="local/clbias-graph"), dim=384, model_file="model.onnx")
model = TextEmbedding(model_name="local/clbias-graph", specific_model_path=str(scratch), threads=OPTS.threads)
with open(OPTS.texts, encoding="utf-8") as fh:
    texts = [OPTS.prefix + json.loads(line)["text"] for line in fh if line.strip()]
vectors = np.stack(list(model.embed(texts, batch_size=OPTS.batch_size)))
np.save(OPTS.out, vectors.astype(np.float32))
