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
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

import numpy as np

from ..errors import InputError, ModelError, first_line
from .base import NOTE_SCHEMA, BaseModel
from .checkpoint import has_checkpoint, load_state, read_log, read_note, save_checkpoint, save_selected
from .config import JSD_ONLY_WARNING, TrainConfig
from .data import Triplet, check_tokenizable, read_triplets, sha256_text_file
from .embedding import Embedder, FrozenEmbeddings
from .terms import BatchLoss, Encoded, mine, planned_rows
from .validation import MONO, TWIN_DEV, Validation, check_disjoint

MINE_POOL = 2048  # English passages searched for hard negatives (one per distinct passage, seeded sample)

if TYPE_CHECKING:
    import torch


class StepProgress(Protocol):
    def start(self, total: int, done: int) -> None: ...
    def step(self, step: int, losses: dict[str, float]) -> None: ...
    def finish(self) -> None: ...
    def validated(self, step: int, values: dict[str, float]) -> None: ...


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
    tokens_per_second: float | None = None  # real (non-padding) tokens through forward + backward
    padding_share: float | None = None  # share of forwarded tokens that were padding
    validation: list[dict[str, float]] = field(default_factory=list)  # {"step", metric: value}, step 0 = base
    threads: int | None = None  # torch intra-op threads the run used


def plan_steps(n: int, config: TrainConfig) -> int:
    per_epoch = n // (config.batch_size * config.grad_accum)
    if per_epoch < 1 and config.steps is None:
        raise InputError(f"{n} triplets are fewer than one optimiser step needs "
                         f"(batch_size {config.batch_size} x grad_accum {config.grad_accum})", field="batch_size")
    if n < config.batch_size:
        raise InputError(f"{n} triplets are fewer than one batch ({config.batch_size})", field="batch_size")
    return config.steps if config.steps is not None else max(1, math.ceil(config.epochs * per_epoch))


def train(data: str | Path, out: str | Path, base: BaseModel, config: TrainConfig | None = None, *,
          resume: bool = False, progress: StepProgress | None = None, val_data: str | Path | None = None,
          val_every: int = 0) -> TrainResult:
    """Train `base` on the triplets in `data`, writing checkpoints to `out` every `save_every` steps.

    Refuses to touch an existing checkpoint unless `resume`; with `resume`, continues from its step with
    its optimiser, scheduler and RNG state, and refuses settings or data that differ from the saved ones.
    With `val_data` (triplets sharing no unit with `data`), measures validation retrieval before the first
    step, every `val_every` steps and at the end (validation.py); it reads no random numbers, so the
    training itself is unchanged by it.
    """
    config = config or TrainConfig()
    if config.loss == "jsd":
        warnings.warn(JSD_ONLY_WARNING, stacklevel=2)
    data, out = Path(data), Path(out)
    triplets = read_triplets(data)
    check_tokenizable(triplets, base.tokenizer_file, data)
    if config.query_weight > 0 and not any(t.q_tgt is not None for t in triplets):
        raise InputError("--query-weight needs target queries (field q_tgt), and no triplet has one", data)
    val_triplets = _validation_triplets(val_data, val_every, triplets, base)
    if config.select != "last" and val_triplets is None:
        raise InputError(f"--select {config.select} needs --val-data", field="select")
    _check_layers(base, config)
    data_sha = sha256_text_file(data)
    total = plan_steps(len(triplets), config)
    note = _check_out(out, resume, config, base, data_sha)

    import torch

    device = _device(config.device)
    _quiet_transformers()
    threads = config.threads or (auto_threads() if device.type == "cpu" else None)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(config.seed)
    model = load_hf_model(out if resume else base.hf_dir, config.dropout, config.attention).to(device)
    set_trainable(model, config)
    encoded = encode_triplets(triplets, base, config.max_length)
    optimizer = _optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(total, config.warmup))
    start, log, state = 0, [], None
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
    result = TrainResult(out, start, total, start, device.type, encoded.truncated, threads=torch.get_num_threads())
    if start >= total:
        return result
    rng_after_setup = torch.get_rng_state()
    frozen, hard = _reference(config, base, encoded, device, state,
                              lambda: planned_rows(len(encoded), config, total))
    torch.set_rng_state(rng_after_setup)
    embedder = Embedder(_maybe_compiled(model, config), encoded.pad_id, device, base.pooling, config.bucket)
    batch_loss = BatchLoss(embedder, encoded, config, frozen, hard)
    validation = None
    if val_triplets is not None:
        validation = Validation(encode_triplets(val_triplets, base, config.max_length), val_every)
        val_embedder = Embedder(model, encoded.pad_id, device, base.pooling, bucket=True)
        history = [row for row in note.get("validation", []) if row["step"] <= start]
        if not history:
            history = [{"step": start, **validation.measure(val_embedder)}]
        note["validation"] = history
        if progress:
            _report_validation(progress, history[-1])
    if progress:
        progress.start(total, start)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    sums: dict[str, float] = {}
    elapsed = 0.0
    try:
        for step in range(start, total):
            began = time.perf_counter()
            parts = _optimizer_step(batch_loss, step, optimizer, trainable)
            scheduler.step()
            elapsed += time.perf_counter() - began
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
            log.append({"step": step + 1, **{k: round(v, 6) for k, v in parts.items()},
                        "lr": scheduler.get_last_lr()[0]})
            if progress:
                progress.step(step + 1, parts)
            if validation is not None and validation.due(step + 1, total):
                note["validation"].append({"step": step + 1, **validation.measure(val_embedder)})
                if progress:
                    _report_validation(progress, note["validation"][-1])
                if config.select == "neutral" and better_neutral(note, note["validation"][-1], config.select_margin):
                    note["selected"] = {"step": step + 1, "rule": selection_rule(config),
                                        "validation": note["validation"][-1]}
                    save_selected(out, model, base.hf_dir, {**note, "step": step + 1})
            if (step + 1) % config.save_every == 0 or step + 1 == total:
                note.update(step=step + 1, total_steps=total, complete=step + 1 == total)
                saved = _state(step + 1, optimizer, scheduler, device)
                if hard is not None:
                    saved["hard_negatives"] = torch.as_tensor(hard)
                save_checkpoint(out, model, tokenizer_dir, note, saved, log)
                tokenizer_dir = out
            result.step = step + 1
    finally:
        if progress:
            progress.finish()
    done = result.step - start
    result.losses = {k: v / done for k, v in sums.items()} if done else {}
    result.seconds_per_step = elapsed / done if done else None
    result.tokens_per_second = embedder.tokens / elapsed if elapsed else None
    result.padding_share = 1 - embedder.tokens / embedder.padded if embedder.padded else None
    result.validation = list(note.get("validation", []))
    return result


def selection_rule(config: TrainConfig) -> str:
    return (f"smallest {TWIN_DEV} (mean |twin preference - 50| over languages) among validation steps with "
            f"{MONO} >= the base's - {config.select_margin}")


def better_neutral(note: dict[str, Any], row: dict[str, float], margin: float) -> bool:
    """Whether validation row `row` beats the selection so far: Mono-Same non-inferior to the base's (step
    0's) at `margin` points, and twin preference closer to 50 than the kept step's."""
    history = note.get("validation") or []
    if not history or math.isnan(row.get(TWIN_DEV, math.nan)):
        return False
    if row[MONO] < history[0][MONO] - margin:
        return False
    kept = (note.get("selected") or {}).get("validation")
    return kept is None or row[TWIN_DEV] < kept[TWIN_DEV]


def _validation_triplets(val_data: str | Path | None, val_every: int, triplets: Sequence[Triplet],
                         base: BaseModel) -> list[Triplet] | None:
    if val_data is None:
        if val_every:
            raise InputError("--val-every needs --val-data", field="val_every")
        return None
    if val_every < 0:
        raise InputError(f"must be >= 0, got {val_every}", field="val_every")
    val = read_triplets(val_data)
    check_tokenizable(val, base.tokenizer_file, val_data)
    check_disjoint(triplets, val, val_data)
    return val


def _report_validation(progress: StepProgress, row: dict[str, float]) -> None:
    report = getattr(progress, "validated", None)
    if report is not None:
        report(int(row["step"]), {k: v for k, v in row.items() if k != "step"})


def _check_layers(base: BaseModel, config: TrainConfig) -> None:
    """--train-layers against the base's config.json, before any model is loaded."""
    if config.train_layers is None:
        return
    import json

    layers = json.loads((base.hf_dir / "config.json").read_text(encoding="utf-8")).get("num_hidden_layers")
    if isinstance(layers, int) and config.train_layers > layers:
        raise InputError(f"the model has {layers} encoder layers, got {config.train_layers}", field="train_layers")


def set_trainable(model: Any, config: TrainConfig) -> None:
    """Freeze what the configuration keeps fixed: the word embeddings, or everything below the top
    `train_layers` encoder layers."""
    if config.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    if config.checkpointing and getattr(model, "supports_gradient_checkpointing", False):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if config.train_layers is None:
        return
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if layers is None:
        raise ModelError(f"--train-layers: {type(model).__name__} has no encoder.layer stack to choose from")
    if config.train_layers > len(layers):
        raise InputError(f"the model has {len(layers)} encoder layers, got {config.train_layers}",
                         field="train_layers")
    for param in model.parameters():
        param.requires_grad_(False)
    for layer in list(layers)[-config.train_layers:]:
        for param in layer.parameters():
            param.requires_grad_(True)


def _reference(config: TrainConfig, base: BaseModel, encoded: Encoded, device: "torch.device",
               state: dict[str, Any] | None, anchors: Callable[[], np.ndarray]
               ) -> tuple[FrozenEmbeddings | None, np.ndarray | None]:
    """The frozen base model's embeddings (a second copy, eval mode) and the mined hard negatives, when the
    configuration uses them. A resumed run takes its mined negatives from the checkpoint."""
    if not config.needs_base_model:
        return None, None
    reference = load_hf_model(base.hf_dir).to(device).eval()
    for param in reference.parameters():
        param.requires_grad_(False)
    frozen = FrozenEmbeddings(Embedder(reference, encoded.pad_id, device, base.pooling, bucket=True),
                              encoded.texts())
    hard = None
    if config.hard_weight > 0:
        if state is not None and "hard_negatives" in state:
            hard = state["hard_negatives"].cpu().numpy()
        else:
            hard = mine(frozen, encoded, anchors(), config.hard_negatives, MINE_POOL, config.seed)
    return frozen, hard


def _maybe_compiled(model: Any, config: TrainConfig) -> Any:
    if not config.compile:
        return model
    import torch

    return torch.compile(model, dynamic=True)


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


def auto_threads() -> int | None:
    """1 when the machine's 1-minute load average exceeds its usable cores (other processes compete for
    them: OpenMP threads then wait on each other, and one thread ran 5x faster than two on a loaded 2-core
    machine, benchmarks/results/train-speed.md); None (torch's default) otherwise."""
    import os

    try:
        load = os.getloadavg()[0]
    except OSError:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1 if cores > 1 and load > cores + 0.5 else None


def load_hf_model(src: Path, dropout: float | None = None, attention: str | None = None) -> Any:
    from transformers import AutoModel

    extra: dict[str, Any] = {} if dropout is None else {"hidden_dropout_prob": dropout,
                                                        "attention_probs_dropout_prob": dropout}
    if attention is not None:
        extra["attn_implementation"] = attention
    try:
        try:
            return AutoModel.from_pretrained(str(src), add_pooling_layer=False, **extra)
        except TypeError:  # architectures without a pooler do not take the argument
            return AutoModel.from_pretrained(str(src), **extra)
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
    tgt_texts = [t.p_tgt for t in triplets]
    with_query = [i for i, t in enumerate(triplets) if t.q_tgt is not None]
    q_tgt: list[list[int] | None] = [None] * len(triplets)
    for i, row in zip(with_query, ids([triplets[i].q_tgt or "" for i in with_query], base.prefixes.query)):
        q_tgt[i] = row
    q_tgt_group = np.full(len(triplets), -1, dtype=np.int64)
    if with_query:
        q_tgt_group[with_query] = _groups([triplets[i].q_tgt or "" for i in with_query])
    pad_ids = (tokenizer.token_to_id(tok) for tok in ("<pad>", "[PAD]"))
    pad: int = next((i for i in pad_ids if i is not None), 0)
    return Encoded(ids(q_texts, base.prefixes.query), ids(en_texts, base.prefixes.passage),
                   ids(tgt_texts, base.prefixes.passage), q_tgt, _groups(q_texts), _groups(en_texts),
                   _groups(tgt_texts), q_tgt_group, _groups([t.lang for t in triplets]), truncated, pad)


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


def _optimizer(model: Any, config: TrainConfig, fused: bool = True) -> "torch.optim.Optimizer":
    import torch

    decay: list[Any] = []
    plain: list[Any] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (plain if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": plain, "weight_decay": 0.0}]
    # fused: one kernel over all parameters instead of a dozen per tensor (same update up to rounding)
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr, fused=fused)


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


def _optimizer_step(batch_loss: BatchLoss, step: int, optimizer: Any, trainable: list[Any]) -> dict[str, float]:
    import torch

    config = batch_loss.config
    weights = config.weights()
    optimizer.zero_grad(set_to_none=True)
    totals: dict[str, float] = {}
    n = len(batch_loss.encoded)
    for a in range(config.grad_accum):
        rows = batch_indices(n, config.batch_size, config.seed, step * config.grad_accum + a)
        parts = batch_loss(rows)
        loss: Any = sum(weights[k] * v for k, v in parts.items()) / config.grad_accum
        if not torch.isfinite(loss):
            raise ModelError(f"loss is not finite at step {step + 1} (try a lower --lr)")
        loss.backward()
        for key, value in parts.items():
            totals[key] = totals.get(key, 0.0) + float(value.detach()) / config.grad_accum
    if config.max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
    optimizer.step()
    totals["loss"] = sum(weights[k] * v for k, v in totals.items())
    return totals


def evaluate(model_dir: str | Path, triplets: Sequence[Triplet], base: BaseModel,
             config: TrainConfig | None = None) -> dict[str, float]:
    """Mean loss components (unweighted) and the weighted total `loss` over the triplets in file order,
    without dropout or gradients. Hard negatives are mined by the base model over these triplets."""
    import torch

    config = config or TrainConfig()
    _quiet_transformers()
    device = _device(config.device)
    model = load_hf_model(Path(model_dir)).to(device).eval()
    encoded = encode_triplets(triplets, base, config.max_length)
    frozen, hard = _reference(config, base, encoded, device, None, lambda: np.arange(len(encoded)))
    batch_loss = BatchLoss(Embedder(model, encoded.pad_id, device, base.pooling, config.bucket), encoded, config,
                           frozen, hard)
    sums: dict[str, float] = {}
    batches = 0
    with torch.no_grad():
        for start in range(0, len(triplets) - config.batch_size + 1, config.batch_size):
            for key, value in batch_loss(np.arange(start, start + config.batch_size)).items():
                sums[key] = sums.get(key, 0.0) + float(value)
            batches += 1
    out = {k: v / max(1, batches) for k, v in sums.items()}
    weights = config.weights()
    out["loss"] = sum(weights[k] * v for k, v in out.items())
    return out
