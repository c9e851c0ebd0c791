"""The training loop: triplets -> aligned Hugging Face model in OUT, checkpointed and resumable.

Texts are embedded exactly as the runtime embeds them (tokenizer.json, manifest prefixes, truncation that
keeps the closing special token, zero token types, mean pooling over the mask with special tokens), so the
exported model sees in production what it was trained on.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import numpy as np

from ..errors import InputError, ModelError, first_line
from .base import NOTE_SCHEMA, BaseModel
from .checkpoint import has_checkpoint, load_state, read_log, read_note, save_checkpoint
from .config import JSD_ONLY_WARNING, TrainConfig
from .data import Triplet, check_tokenizable, read_triplets, sha256_text_file

if TYPE_CHECKING:
    import torch


class StepProgress(Protocol):
    def start(self, total: int, done: int) -> None: ...
    def step(self, step: int, losses: dict[str, float]) -> None: ...
    def finish(self) -> None: ...


@dataclass
class TrainResult:
    out: Path
    step: int
    total_steps: int
    resumed_from: int
    device: str
    truncated: int  # texts cut to max_length
    losses: dict[str, float] = field(default_factory=dict)  # mean over the steps run in this call
    seconds_per_step: float | None = None


@dataclass
class Encoded:
    """Token ids of every triplet text, and group ids that mark identical texts (false negatives)."""

    query: list[list[int]]
    p_en: list[list[int]]
    p_tgt: list[list[int]]
    query_group: np.ndarray
    p_en_group: np.ndarray
    truncated: int
    pad_id: int


def plan_steps(n: int, config: TrainConfig) -> int:
    per_epoch = n // (config.batch_size * config.grad_accum)
    if per_epoch < 1 and config.steps is None:
        raise InputError(f"{n} triplets are fewer than one optimiser step needs "
                         f"(batch_size {config.batch_size} x grad_accum {config.grad_accum})", field="batch_size")
    if n < config.batch_size:
        raise InputError(f"{n} triplets are fewer than one batch ({config.batch_size})", field="batch_size")
    return config.steps if config.steps is not None else max(1, math.ceil(config.epochs * per_epoch))


def train(data: str | Path, out: str | Path, base: BaseModel, config: TrainConfig | None = None, *,
          resume: bool = False, progress: StepProgress | None = None) -> TrainResult:
    """Train `base` on the triplets in `data`, writing checkpoints to `out` every `save_every` steps.

    Refuses to touch an existing checkpoint unless `resume`; with `resume`, continues from its step with
    its optimiser, scheduler and RNG state, and refuses settings or data that differ from the saved ones.
    """
    config = config or TrainConfig()
    if config.loss == "jsd":
        warnings.warn(JSD_ONLY_WARNING, stacklevel=2)
    data, out = Path(data), Path(out)
    triplets = read_triplets(data)
    check_tokenizable(triplets, base.tokenizer_file, data)
    data_sha = sha256_text_file(data)
    total = plan_steps(len(triplets), config)
    note = _check_out(out, resume, config, base, data_sha)

    import torch

    device = _device(config.device)
    _quiet_transformers()
    torch.manual_seed(config.seed)
    model = load_hf_model(out if resume else base.hf_dir).to(device)
    if config.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    encoded = encode_triplets(triplets, base, config.max_length)
    optimizer = _optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(total, config.warmup))
    start, log = 0, []
    if resume:
        state = load_state(out)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_cpu"])
        if device.type == "cuda" and "rng_cuda" in state:
            torch.cuda.set_rng_state(state["rng_cuda"])
        start = int(state["step"])
        log = [row for row in read_log(out) if row["step"] <= start]
    note = note or _new_note(base, config, data, data_sha, triplets)
    tokenizer_dir = out if resume else base.hf_dir
    result = TrainResult(out, start, total, start, device.type, encoded.truncated)
    if start >= total:
        return result
    if progress:
        progress.start(total, start)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    sums: dict[str, float] = {}
    elapsed = 0.0
    try:
        for step in range(start, total):
            began = time.perf_counter()
            parts = _optimizer_step(model, encoded, step, config, base, device, optimizer, trainable)
            scheduler.step()
            elapsed += time.perf_counter() - began
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
            log.append({"step": step + 1, **{k: round(v, 6) for k, v in parts.items()},
                        "lr": scheduler.get_last_lr()[0]})
            if progress:
                progress.step(step + 1, parts)
            if (step + 1) % config.save_every == 0 or step + 1 == total:
                note.update(step=step + 1, total_steps=total, complete=step + 1 == total)
                save_checkpoint(out, model, tokenizer_dir, note, _state(step + 1, optimizer, scheduler, device), log)
                tokenizer_dir = out
            result.step = step + 1
    finally:
        if progress:
            progress.finish()
    done = result.step - start
    result.losses = {k: v / done for k, v in sums.items()} if done else {}
    result.seconds_per_step = elapsed / done if done else None
    return result


def _check_out(out: Path, resume: bool, config: TrainConfig, base: BaseModel, data_sha: str) -> dict[str, Any] | None:
    """The saved note when resuming; None for a fresh run. Refuses every ambiguous case."""
    if not resume:
        if has_checkpoint(out):
            step = read_note(out).get("step")
            raise InputError(f"already holds a training checkpoint (step {step}); pass --resume to continue it, "
                             f"or choose another --out", out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise InputError("exists and is not an empty directory; refusing to replace it", out)
        return None
    if not has_checkpoint(out):
        raise InputError("nothing to resume: no training checkpoint here", out)
    note = read_note(out)
    saved = TrainConfig.from_json(note.get("config") or {})
    diffs = config.differences(saved)
    if diffs:
        raise InputError(f"settings differ from the checkpoint's (given vs saved): {'; '.join(diffs)}", out)
    if (note.get("data") or {}).get("sha256") != data_sha:
        raise InputError(f"the triplet file differs from the one this checkpoint was trained on "
                         f"({(note.get('data') or {}).get('path')})", out)
    saved_base = note.get("base") or {}
    if saved_base.get("hf_dir") != str(base.hf_dir.resolve()) or saved_base.get("prefixes") != base.to_json()["prefixes"]:
        raise InputError(f"the base model differs from the checkpoint's ({saved_base.get('hf_dir')})", out)
    return note


def _new_note(base: BaseModel, config: TrainConfig, data: Path, data_sha: str,
              triplets: Sequence[Triplet]) -> dict[str, Any]:
    langs: dict[str, int] = {}
    for t in triplets:
        langs[t.lang] = langs.get(t.lang, 0) + 1
    return {"schema": NOTE_SCHEMA,
            "prefixes": {"query": base.prefixes.query, "passage": base.prefixes.passage},
            "pooling": base.pooling, "normalize": base.normalize, "max_length": base.max_length,
            "base": base.to_json(), "data": {"path": str(data), "sha256": data_sha, "n": len(triplets), "langs": langs},
            "config": config.to_json(), "versions": _versions(), "step": 0, "total_steps": 0, "complete": False}


def _versions() -> dict[str, str]:
    out = {}
    for package in ("clbias", "torch", "transformers", "tokenizers"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return out


def _device(choice: str) -> "torch.device":
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise ModelError("--device cuda: no CUDA device is available")
    return torch.device("cuda" if choice != "cpu" and torch.cuda.is_available() else "cpu")


def _quiet_transformers() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()


def load_hf_model(src: Path) -> Any:
    from transformers import AutoModel

    try:
        try:
            return AutoModel.from_pretrained(str(src), add_pooling_layer=False)
        except TypeError:  # architectures without a pooler do not take the argument
            return AutoModel.from_pretrained(str(src))
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{src}: cannot load the model ({first_line(exc)})") from None


def encode_triplets(triplets: Sequence[Triplet], base: BaseModel, max_length: int) -> Encoded:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(base.tokenizer_file))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    limit = min(max_length, base.max_length)
    truncated = 0

    def ids(texts: list[str], prefix: str) -> list[list[int]]:
        nonlocal truncated
        rows = []
        for encoding in tokenizer.encode_batch([prefix + t for t in texts]):
            row = encoding.ids
            if len(row) > limit:
                truncated += 1
                row = row[: limit - 1] + row[-1:]
            rows.append(row)
        return rows

    q_texts = [t.q_en for t in triplets]
    en_texts = [t.p_en for t in triplets]
    pad = next((tokenizer.token_to_id(tok) for tok in ("<pad>", "[PAD]") if tokenizer.token_to_id(tok) is not None), 0)
    return Encoded(ids(q_texts, base.prefixes.query), ids(en_texts, base.prefixes.passage),
                   ids([t.p_tgt for t in triplets], base.prefixes.passage), _groups(q_texts), _groups(en_texts),
                   truncated, int(pad))


def _groups(texts: list[str]) -> np.ndarray:
    index: dict[str, int] = {}
    return np.array([index.setdefault(t, len(index)) for t in texts], dtype=np.int64)


def batch_indices(n: int, batch_size: int, seed: int, micro: int) -> np.ndarray:
    """Rows of micro-batch number `micro`: a seeded permutation per epoch, so any step can be rebuilt
    from its number alone (this is what makes resuming exact)."""
    per_epoch = n // batch_size
    epoch, k = divmod(micro, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return order[k * batch_size:(k + 1) * batch_size]


def _optimizer(model: Any, config: TrainConfig) -> "torch.optim.Optimizer":
    import torch

    decay, plain = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (plain if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr)


def _schedule(total: int, warmup: float) -> Any:
    warm = int(round(warmup * total))

    def factor(done: int) -> float:
        if done < warm:
            return (done + 1) / warm
        return max(0.0, (total - done) / max(1, total - warm))

    return factor


def _state(step: int, optimizer: Any, scheduler: Any, device: "torch.device") -> dict[str, Any]:
    import torch

    state = {"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "rng_cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["rng_cuda"] = torch.cuda.get_rng_state()
    return state


def _optimizer_step(model: Any, encoded: Encoded, step: int, config: TrainConfig, base: BaseModel,
                    device: "torch.device", optimizer: Any, trainable: list[Any]) -> dict[str, float]:
    import torch

    optimizer.zero_grad(set_to_none=True)
    totals: dict[str, float] = {}
    n = len(encoded.p_tgt)
    for a in range(config.grad_accum):
        rows = batch_indices(n, config.batch_size, config.seed, step * config.grad_accum + a)
        parts = loss_parts(model, encoded, rows, config, base, device)
        loss = sum(parts.values()) / config.grad_accum
        if not torch.isfinite(loss):
            raise ModelError(f"loss is not finite at step {step + 1} (try a lower --lr)")
        loss.backward()
        for key, value in parts.items():
            totals[key] = totals.get(key, 0.0) + float(value.detach()) / config.grad_accum
    if config.max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
    optimizer.step()
    totals["loss"] = sum(totals.values())
    return totals


def loss_parts(model: Any, encoded: Encoded, rows: np.ndarray, config: TrainConfig, base: BaseModel,
               device: "torch.device") -> dict[str, "torch.Tensor"]:
    """The loss components of one batch: `jsd`, `nce` (target doc -> English query), `nce_doc`."""
    import torch
    import torch.nn.functional as F

    from .losses import info_nce, sqrt_jsd

    def embed(ids: list[list[int]]) -> "torch.Tensor":
        return _embed(model, [ids[i] for i in rows], encoded.pad_id, device, base.pooling)

    def same(groups: np.ndarray) -> "torch.Tensor":
        g = torch.as_tensor(groups[rows], device=device)
        return g[:, None] == g[None, :]

    target = embed(encoded.p_tgt)
    english = embed(encoded.p_en) if config.uses_jsd or config.uses_doc_nce else None
    parts: dict[str, torch.Tensor] = {}
    if config.uses_jsd:
        assert english is not None
        a, b = (english, target) if config.jsd_input == "raw" else (F.normalize(english, dim=-1),
                                                                     F.normalize(target, dim=-1))
        parts["jsd"] = sqrt_jsd(a, b, config.eps)
    if config.uses_query_nce:
        parts["nce"] = info_nce(target, embed(encoded.query), config.tau, same(encoded.query_group))
    if config.uses_doc_nce:
        assert english is not None
        parts["nce_doc"] = info_nce(target, english, config.tau, same(encoded.p_en_group))
    return parts


def _embed(model: Any, rows: list[list[int]], pad_id: int, device: "torch.device", pooling: str) -> "torch.Tensor":
    """Pooled, *unnormalised* embeddings (normalisation is the loss's business)."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    ids, mask = ids.to(device), mask.to(device)
    extra = {"token_type_ids": torch.zeros_like(ids)} if _takes_token_types(model) else {}
    hidden = model(input_ids=ids, attention_mask=mask, **extra).last_hidden_state
    if pooling == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def _takes_token_types(model: Any) -> bool:
    import inspect

    return "token_type_ids" in inspect.signature(model.forward).parameters


def evaluate(model_dir: str | Path, triplets: Sequence[Triplet], base: BaseModel,
             config: TrainConfig | None = None) -> dict[str, float]:
    """Mean loss components over the triplets in file order, without dropout or gradients."""
    import torch

    config = config or TrainConfig()
    _quiet_transformers()
    device = _device(config.device)
    model = load_hf_model(Path(model_dir)).to(device).eval()
    encoded = encode_triplets(triplets, base, config.max_length)
    sums: dict[str, float] = {}
    batches = 0
    with torch.no_grad():
        for start in range(0, len(triplets) - config.batch_size + 1, config.batch_size):
            rows = np.arange(start, start + config.batch_size)
            for key, value in loss_parts(model, encoded, rows, config, base, device).items():
                sums[key] = sums.get(key, 0.0) + float(value)
            batches += 1
    out = {k: v / max(1, batches) for k, v in sums.items()}
    out["loss"] = sum(out.values())
    return out
