"""Torch-free text encoder: onnxruntime + tokenizers + numpy, driven by the model's manifest."""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal, Sequence

import numpy as np

from ..errors import ModelError, first_line
from .manifest import Manifest, load_manifest

if TYPE_CHECKING:
    from tokenizers import Tokenizer

Kind = Literal["query", "passage", "raw"]
FEEDABLE_INPUTS = {"input_ids", "attention_mask", "token_type_ids", "position_ids"}
# Padded tokens per graph call. Large batches spill the activations out of cache and pad more: on real
# multilingual passages 2048 ran 1.2x faster than 16384 (fp32 and int8); smaller calls pay per-call overhead.
# With threads that do not spin (below): 1.6x fp32, 2.3x int8 (benchmarks/results/embed.md).
MAX_BATCH_TOKENS = 2048
# Attention cells (texts x length^2) per graph call: the attention scores of a call are texts x 12 heads x
# length^2 floats, so long texts go in small batches (1 x 512 tokens, 16 x 128). The onnxruntime arena keeps
# the largest call's activations for the session's lifetime: peak RSS of a cold int8 audit of examples/udhr
# 610 -> 572 MB with this cap (benchmarks/memory.py).
MAX_BATCH_ATTENTION = 2048 * 128
# Texts per tokenizer call: all Encoding objects of a call are alive at once (218 MB for 11k passages in one
# call, 60 MB in calls of 1024), and the batches stay large enough for the tokenizer's own threads.
TOKENIZE_CHUNK = 1024


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

        self.model_dir = model_dir
        self.manifest = manifest
        self.onnx = onnx
        self.threads = threads
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads sleep instead of spinning: on a small shared machine spinning steals the core
        # the other thread needs (fp32 passages 1.2x slower with spinning; benchmarks/results/embed.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(model_dir / onnx), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
            raise ModelError(f"{model_dir / onnx}: onnxruntime cannot load the graph ({first_line(exc)})") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        unknown = [n for n in self.input_names if n not in FEEDABLE_INPUTS]
        if unknown or "input_ids" not in self.input_names:
            raise ModelError(f"{model_dir / onnx}: graph inputs {self.input_names} do not fit a tokenizer "
                             f"(expected input_ids, attention_mask and optionally token_type_ids, position_ids)")
        check_output(self.session, manifest.output_name, manifest.pooling, onnx,
                     f"{model_dir / 'clbias.json'}: field 'output_name'")

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

    @cached_property
    def tokenizer(self) -> "Tokenizer":
        """Loaded on first use (about 1 s and 280 MB for a 250k-piece vocabulary): an audit whose embeddings
        and token counts are all in the cache never needs it."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.model_dir / self.manifest.tokenizer))
        tokenizer.no_padding()
        tokenizer.no_truncation()
        return tokenizer

    @cached_property
    def pad_id(self) -> int:
        for token in ("<pad>", "[PAD]"):
            token_id = self.tokenizer.token_to_id(token)
            if token_id is not None:
                return int(token_id)
        return 0

    def prefix(self, kind: Kind) -> str:
        if kind == "raw":
            return ""
        return self.manifest.prefixes.query if kind == "query" else self.manifest.prefixes.passage

    def empty_texts(self, n_tokens: np.ndarray, kind: Kind = "passage") -> np.ndarray:
        """Mask of texts that tokenised to no more tokens than the prefix alone: nothing of the text is left
        (zero-width or control characters only). Only short texts can be; the tokenizer loads only for them."""
        n_tokens = np.asarray(n_tokens)
        prefix = self.prefix(kind)
        candidates = (n_tokens >= 0) & (n_tokens <= len(prefix.encode("utf-8")) + 4)
        if not candidates.any():
            return np.zeros(len(n_tokens), dtype=bool)
        baseline = len(self.tokenizer.encode(prefix).ids)
        return candidates & (n_tokens <= baseline)

    def tokenize(self, texts: Sequence[str], kind: Kind = "passage") -> tuple[list[list[int]], EncodeStats]:
        """Token ids per text, truncated to max_length keeping the closing special token."""
        prefix = self.prefix(kind)
        full = [prefix + t for t in texts]
        ids: list[list[int]] = []
        for start in range(0, len(full), TOKENIZE_CHUNK):
            ids.extend(e.ids for e in self.tokenizer.encode_batch(full[start:start + TOKENIZE_CHUNK]))
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
                          max_batch_tokens: int = MAX_BATCH_TOKENS) -> tuple[np.ndarray, EncodeStats]:
        ids, stats = self.tokenize(texts, kind)
        return self.embed_ids(ids, batch_size, progress, max_batch_tokens), stats

    def embed_ids(self, ids: list[list[int]], batch_size: int = 32,
                  progress: Callable[[int], None] | None = None, max_batch_tokens: int = MAX_BATCH_TOKENS) -> np.ndarray:
        """Run the graph over token ids in length-sorted batches; rows come back in input order."""
        out: np.ndarray | None = None
        for batch in length_batches([len(x) for x in ids], batch_size, max_batch_tokens, MAX_BATCH_ATTENTION):
            vectors = self._run([ids[i] for i in batch])
            if out is None:
                out = np.empty((len(ids), vectors.shape[1]), dtype=np.float32)
            out[batch] = vectors
            if progress is not None:
                progress(len(batch))
        if out is None:
            return np.empty((0, self.manifest.dim or 0), dtype=np.float32)
        return out

    def feed(self, rows: list[list[int]]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The graph's inputs for token-id rows, right-padded to the longest row, and the attention mask."""
        width = max(len(r) for r in rows)
        input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        full = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids),
                "position_ids": position_ids(mask)}
        return {n: full[n] for n in self.input_names}, mask

    def _run(self, rows: list[list[int]]) -> np.ndarray:
        feed, mask = self.feed(rows)
        hidden = self.session.run([self.manifest.output_name], feed)[0]
        pooled = pool(hidden, mask, self.manifest.pooling)
        if self.manifest.normalize:
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32, copy=False)


def check_output(session: object, output_name: str, pooling: str, graph_name: str, where: str) -> None:
    """The named output exists and has the rank its pooling needs: [batch, dim] for `graph`, else
    [batch, tokens, dim]. `where` names the setting in the error (file and field, or option)."""
    outputs = {o.name: o for o in session.get_outputs()}  # type: ignore[attr-defined]  # an onnxruntime session, typed object to keep onnxruntime out of the signature
    if output_name not in outputs:
        raise ModelError(f"{where}: {output_name!r} is not an output of {graph_name} (outputs: {', '.join(outputs)})")
    rank = len(outputs[output_name].shape or ())
    wanted = 2 if pooling == "graph" else 3
    if rank != wanted:
        raise ModelError(f"{where}: {output_name!r} has rank {rank}; {pooling} pooling needs rank {wanted}")


def position_ids(mask: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... over each row's real tokens (right or left padding); padding positions get 0."""
    return (np.maximum(np.cumsum(mask, axis=1) - 1, 0) * (mask > 0)).astype(np.int64)


def pool(hidden: np.ndarray, mask: np.ndarray, pooling: str) -> np.ndarray:
    """Sentence vectors from token states [batch, tokens, dim] (or, for `graph`, sentence vectors as given).

    `cls` is the first real token and `last` the last one, wherever the padding is (left or right)."""
    if pooling == "graph":
        return np.array(hidden, dtype=np.float32)
    rows = np.arange(len(mask))
    if pooling == "cls":
        return hidden[rows, np.argmax(mask > 0, axis=1)].astype(np.float32)
    if pooling == "last":
        last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1] > 0, axis=1)
        return hidden[rows, last].astype(np.float32)
    if pooling != "mean":
        raise ModelError(f"unknown pooling {pooling!r}")
    weights = mask.astype(hidden.dtype)[:, :, None]
    return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)


def length_batches(lengths: Sequence[int], batch_size: int, max_batch_tokens: int,
                   max_batch_attention: int | None = None) -> list[np.ndarray]:
    """Group indices of similar length so that padding is small; a batch holds at most
    `batch_size` texts, about `max_batch_tokens` padded tokens and, if given, about `max_batch_attention`
    texts x longest^2 attention cells."""
    order = np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        end = start
        longest = 0
        while end < len(order) and end - start < batch_size:
            longest = max(longest, lengths[order[end]])
            count = end - start + 1
            if end > start and (longest * count > max_batch_tokens or
                                 (max_batch_attention is not None and longest * longest * count > max_batch_attention)):
                break
            end += 1
        batches.append(order[start:end])
        start = end
    return batches
