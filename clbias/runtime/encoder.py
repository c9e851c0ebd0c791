"""Torch-free text encoder: onnxruntime + tokenizers + numpy, driven by the model's manifest."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np

from ..errors import ModelError
from .manifest import Manifest, load_manifest

Kind = Literal["query", "passage", "raw"]
FEEDABLE_INPUTS = {"input_ids", "attention_mask", "token_type_ids"}


@dataclass(frozen=True)
class EncodeStats:
    """What tokenisation did to a batch of texts: token counts before truncation, and who was cut."""

    n_tokens: np.ndarray  # int, tokens each text would need (special tokens included), [n]
    truncated: np.ndarray  # bool, [n]


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


class Encoder:
    """Embeds texts exactly as the exported model's manifest says (prefix, pooling, normalisation)."""

    def __init__(self, model_dir: Path, manifest: Manifest, onnx: str, threads: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_dir = model_dir
        self.manifest = manifest
        self.onnx = onnx
        self.threads = threads
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(model_dir / onnx), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
            raise ModelError(f"{model_dir / onnx}: onnxruntime cannot load the graph ({str(exc).splitlines()[0]})") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        unknown = [n for n in self.input_names if n not in FEEDABLE_INPUTS]
        if unknown or "input_ids" not in self.input_names:
            raise ModelError(f"{model_dir / onnx}: graph inputs {self.input_names} do not fit a tokenizer "
                             f"(expected input_ids, attention_mask and optionally token_type_ids)")
        outputs = [o.name for o in self.session.get_outputs()]
        if manifest.output_name not in outputs:
            raise ModelError(f"{model_dir / 'clbias.json'}: field 'output_name': {manifest.output_name!r} "
                             f"is not a graph output ({outputs})")
        self.tokenizer = Tokenizer.from_file(str(model_dir / manifest.tokenizer))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.pad_id = self._pad_id()

    @classmethod
    def load(cls, model_dir: str | Path, onnx: str | None = None, threads: int | None = None,
             verify: bool = True) -> "Encoder":
        model_dir = Path(model_dir)
        manifest = load_manifest(model_dir, verify=verify)
        chosen = onnx or manifest.onnx
        if chosen not in manifest.files:
            raise ModelError(f"{model_dir / 'clbias.json'}: field 'files' has no {chosen!r}")
        return cls(model_dir, manifest, chosen, threads or default_threads())

    @property
    def sha256(self) -> str:
        return self.manifest.files[self.onnx]

    @property
    def max_length(self) -> int:
        return int(self.manifest.max_length)

    def _pad_id(self) -> int:
        for token in ("<pad>", "[PAD]"):
            token_id = self.tokenizer.token_to_id(token)
            if token_id is not None:
                return int(token_id)
        return 0

    def prefix(self, kind: Kind) -> str:
        if kind == "raw":
            return ""
        return self.manifest.prefixes.query if kind == "query" else self.manifest.prefixes.passage

    def tokenize(self, texts: Sequence[str], kind: Kind = "passage") -> tuple[list[list[int]], EncodeStats]:
        """Token ids per text, truncated to max_length keeping the closing special token."""
        prefix = self.prefix(kind)
        encodings = self.tokenizer.encode_batch([prefix + t for t in texts])
        ids = [e.ids for e in encodings]
        n_tokens = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        limit = self.max_length
        truncated = n_tokens > limit
        for i in np.flatnonzero(truncated):
            row = ids[i]
            ids[i] = row[: limit - 1] + row[-1:]
        return ids, EncodeStats(n_tokens=n_tokens, truncated=truncated)

    def encode(self, texts: Sequence[str], kind: Kind = "passage", batch_size: int = 32,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self.encode_with_stats(texts, kind, batch_size, progress)[0]

    def encode_with_stats(self, texts: Sequence[str], kind: Kind = "passage", batch_size: int = 32,
                          progress: Callable[[int], None] | None = None,
                          max_batch_tokens: int = 16384) -> tuple[np.ndarray, EncodeStats]:
        ids, stats = self.tokenize(texts, kind)
        return self.embed_ids(ids, batch_size, progress, max_batch_tokens), stats

    def embed_ids(self, ids: list[list[int]], batch_size: int = 32,
                  progress: Callable[[int], None] | None = None, max_batch_tokens: int = 16384) -> np.ndarray:
        """Run the graph over token ids in length-sorted batches; rows come back in input order."""
        out: np.ndarray | None = None
        for batch in length_batches([len(x) for x in ids], batch_size, max_batch_tokens):
            vectors = self._run([ids[i] for i in batch])
            if out is None:
                out = np.empty((len(ids), vectors.shape[1]), dtype=np.float32)
            out[batch] = vectors
            if progress is not None:
                progress(len(batch))
        if out is None:
            return np.empty((0, self.manifest.dim or 0), dtype=np.float32)
        return out

    def _run(self, rows: list[list[int]]) -> np.ndarray:
        width = max(len(r) for r in rows)
        input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        feed = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        hidden = self.session.run([self.manifest.output_name], {n: feed[n] for n in self.input_names})[0]
        pooled = pool(hidden, mask, self.manifest.pooling)
        if self.manifest.normalize:
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32, copy=False)


def pool(hidden: np.ndarray, mask: np.ndarray, pooling: str) -> np.ndarray:
    if pooling == "cls":
        return hidden[:, 0, :].astype(np.float32)
    weights = mask.astype(hidden.dtype)[:, :, None]
    return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)


def length_batches(lengths: Sequence[int], batch_size: int, max_batch_tokens: int) -> list[np.ndarray]:
    """Group indices of similar length so that padding is small; a batch holds at most
    `batch_size` texts and about `max_batch_tokens` padded tokens."""
    order = np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        end = start
        longest = 0
        while end < len(order) and end - start < batch_size:
            longest = max(longest, lengths[order[end]])
            if end > start and longest * (end - start + 1) > max_batch_tokens:
                break
            end += 1
        batches.append(order[start:end])
        start = end
    return batches
