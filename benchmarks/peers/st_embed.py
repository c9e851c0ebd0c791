"""sentence-transformers fp32 (torch) on the Hugging Face directory the exported model was built from: mean
pooling + L2, the same prefix. One whole process: imports, load, embed, save.

    python benchmarks/peers/st_embed.py TEXTS.jsonl HF_DIR OUT.npy --prefix "passage: " --threads 2
"""
from __future__ import annotations

import argparse
import json
import os

ARGS = argparse.ArgumentParser()
ARGS.add_argument("texts")
ARGS.add_argument("hf_dir")
ARGS.add_argument("out")
ARGS.add_argument("--prefix", default="passage: ")
ARGS.add_argument("--threads", type=int, default=2)
ARGS.add_argument("--batch-size", type=int, default=32)
OPTS = ARGS.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(OPTS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sentence_transformers import SentenceTransformer, models  # noqa: E402

torch.set_num_threads(OPTS.threads)
with open(OPTS.texts, encoding="utf-8") as fh:
    texts = [OPTS.prefix + json.loads(line)["text"] for line in fh if line.strip()]
transformer = models.Transformer(OPTS.hf_dir, max_seq_length=512)
model = SentenceTransformer(modules=[transformer, models.Pooling(transformer.get_word_embedding_dimension(), "mean"),
                                     models.Normalize()], device="cpu")
with torch.inference_mode():
    vectors = model.encode(texts, batch_size=OPTS.batch_size, convert_to_numpy=True)
np.save(OPTS.out, vectors.astype(np.float32))
