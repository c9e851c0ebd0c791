"""Training settings: one dataclass, validated up front, recorded in every checkpoint."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import InputError

LOSSES = ("jsd+nce", "nce", "jsd", "nce-psg", "mono")
JSD_INPUTS = ("raw", "normalized")
DEVICES = ("auto", "cpu", "cuda")
ATTENTIONS = ("eager", "sdpa")
SELECTIONS = ("last", "neutral")
JSD_ONLY_WARNING = ("--loss jsd trains the distribution alignment alone; the paper's ablation shows it collapses "
                    "retrieval (Max@R_norm 68 -> 15). Use it only to reproduce that ablation.")
# Fields that may differ between the original run and a resumed one: they do not change the maths
# (bucketing, threads and compilation change only how the same sums are computed).
RESUMABLE_CHANGES = ("save_every", "device", "bucket", "threads", "compile", "attention", "checkpointing")
# Our terms beyond the paper (docs/method.md, section 7: the paper's recipe costs Mono-Same nDCG): each is added to
# the paper's loss with its weight; all weights 0 is exactly the paper's recipe.
EXTRA_TERMS = ("mono", "distill", "query", "hard")
# Named weight sets for `clbias train --recipe` (evidence: benchmarks/results/alignment-manpages.md).
# `paper`, the default: the paper's loss alone; on the man-page benchmark it raised Multi Max@R_norm by
# 22-48 points in every language, kept Mono-Same nDCG@10 (+1 to +6) and moved twin preference to 18-32%,
# but left EIR 8-17 points below its neutral value. `neutral`: + monolingual InfoNCE, distillation from the
# base and the query-side term; EIR within 5 points of neutral in 8 of 9 languages and the largest gains,
# but English ranks above its own translation in 55-81% of irrelevant pairs in 6 languages.
# `query`: the paper's loss + the query-side term at weight 0.3 (between the 0.1 and 0.5 the issue asks to try):
# target-language queries are pulled toward the English passage, the side `paper` leaves untrained.
RECIPES: dict[str, dict[str, float]] = {
    "paper": {"mono_weight": 0.0, "distill_weight": 0.0, "query_weight": 0.0, "hard_weight": 0.0},
    "query": {"mono_weight": 0.0, "distill_weight": 0.0, "query_weight": 0.3, "hard_weight": 0.0},
    "neutral": {"mono_weight": 1.0, "distill_weight": 1.0, "query_weight": 0.5, "hard_weight": 0.0},
}
DEFAULT_RECIPE = "paper"


@dataclass
class TrainConfig:
    """What `clbias train` optimises and how.

    Defaults (the paper gives no hyperparameters; docs/method.md, section 4):
    - `loss="jsd+nce"` with equal weights, as in the paper. `jsd` alone is never a default. `mono` is the
      monolingual-only control of the alignment protocol: only the same-language InfoNCE term (q_en -> p_en,
      q_tgt -> p_tgt; weight `mono_weight`, 1 when unset), no cross-lingual pair, so whatever it gains is
      domain adaptation, not alignment.
    - `jsd_input="raw"`: the softmax runs over the pooled embedding *before* L2 normalisation. For a unit
      vector the softmax is nearly uniform and sqrt-JSD is about |x - y| / sqrt(8 d), so the term would hardly
      train next to InfoNCE. Raw pooled e5-small vectors have norm ~4.9, which scales that signal (and its
      gradient) about 5x: on Quran triplets sqrt-JSD is 0.042 raw vs 0.0088 normalised, next to InfoNCE
      2.6 at batch 16. Both readings stay available for the ablation.
    - `tau=0.05`: the common InfoNCE temperature (the sister paper CLEAR's scale 20).
    - `lr=2e-5`, `batch_size=32`, one epoch (~90 steps on 2.8k triplets), 10% linear warm-up then linear
      decay: close to CLEAR's 50 steps at 5e-5, a little gentler since the step count is larger.
    - `max_length=256`: batches are padded to their longest text only, so short texts cost nothing extra;
      longer texts are cut (the number cut is reported).
    - `freeze_embeddings=True`: the 250k x 384 word-embedding table is 96M of e5-small's 118M parameters;
      freezing it cuts AdamW state by ~0.8 GB and keeps rare-language tokens where pre-training put them.
    - `grad_accum=1`: with k > 1 the optimiser steps once per k batches; in-batch negatives stay those of
      each batch of `batch_size` (cheap, but not the same as one batch of k * batch_size).

    Ours, all off by default (weights 0; see `losses.py` for the exact terms):
    - `jsd_weight`: the paper's JSD weight is 1 ("untuned"); raw sqrt-JSD is ~0.04 against InfoNCE ~2.
    - `mono_weight`: retention, monolingual InfoNCE q_en -> p_en and q_tgt -> p_tgt (same-language negatives).
    - `distill_weight`: retention, KL(base || tuned) of the in-batch monolingual score distributions, the
      base being the frozen starting model (CLEAR-style).
    - `query_weight`: query side, InfoNCE q_tgt -> p_en where the triplet has a target query.
    - `hard_weight`, `hard_negatives`: doc-doc InfoNCE p_tgt -> its English twin, against the batch's English
      passages plus `hard_negatives` irrelevant English passages per anchor that the base model ranks closest.
    - `train_layers`: train only the top N encoder layers (embeddings and lower layers frozen).
    - `dropout`: override the model's dropout (None keeps it: 0.1 for e5).
    Checkpoint choice: `select="neutral"` (needs validation data) also keeps, in OUT/selected, the model of
    the validation step whose twin preference is closest to 50 (smallest `val_twin_dev`) among the steps
    whose validation Mono-Same nDCG@10 is at least the base's minus `select_margin` points; `last` keeps
    only the final model.
    Execution only (same maths): `bucket` (embed each step's distinct texts once, in length-sorted chunks
    padded to their own longest text), `threads` (torch intra-op threads; None: one thread when the machine's
    load average exceeds its cores, else torch's default), `compile` (torch.compile), `attention` (eager:
    the plain matmul-softmax attention, faster than SDPA on the CPU with attention dropout, which SDPA then
    computes on its slow reference path), `checkpointing` (gradient checkpointing per encoder layer: keeps
    only each layer's input for the backward pass and recomputes the rest with the same dropout masks; cuts
    peak memory at batch 32 from ~9 GB to under 4 GB for about a third more forward work;
    benchmarks/results/train-speed.md).
    """

    loss: str = "jsd+nce"
    jsd_input: str = "raw"
    tau: float = 0.05
    eps: float = 1e-8
    lr: float = 2e-5
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    batch_size: int = 32
    grad_accum: int = 1
    steps: int | None = None  # optimiser steps; None = `epochs` passes over the data
    epochs: float = 1.0
    warmup: float = 0.1  # fraction of the steps
    max_length: int = 256
    seed: int = 0
    freeze_embeddings: bool = True
    save_every: int = 50
    device: str = "auto"
    jsd_weight: float = 1.0
    mono_weight: float = 0.0
    distill_weight: float = 0.0
    query_weight: float = 0.0
    hard_weight: float = 0.0
    hard_negatives: int = 1
    train_layers: int | None = None
    dropout: float | None = None
    bucket: bool = True
    threads: int | None = None
    compile: bool = False
    attention: str = "eager"
    checkpointing: bool = True
    select: str = "last"
    select_margin: float = 1.0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise InputError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}", field="loss")
        if self.loss == "mono" and self.mono_weight == 0:
            self.mono_weight = 1.0  # the monolingual-only control is the mono term alone
        if self.jsd_input not in JSD_INPUTS:
            raise InputError(f"must be one of {', '.join(JSD_INPUTS)}", field="jsd_input")
        if self.select not in SELECTIONS:
            raise InputError(f"must be one of {', '.join(SELECTIONS)}", field="select")
        if not (self.select_margin >= 0 and math.isfinite(self.select_margin)):
            raise InputError(f"must be a finite number >= 0, got {self.select_margin}", field="select_margin")
        if self.attention not in ATTENTIONS:
            raise InputError(f"must be one of {', '.join(ATTENTIONS)}", field="attention")
        if self.device not in DEVICES:
            raise InputError(f"must be one of {', '.join(DEVICES)}", field="device")
        positive = {"tau": self.tau, "eps": self.eps, "lr": self.lr, "epochs": self.epochs}
        for name, value in positive.items():
            if not value > 0:
                raise InputError(f"must be > 0, got {value}", field=name)
        at_least = {"batch_size": (self.batch_size, 2), "grad_accum": (self.grad_accum, 1),
                    "max_length": (self.max_length, 8), "save_every": (self.save_every, 1)}
        if self.steps is not None:
            at_least["steps"] = (self.steps, 1)
        for name, (value, low) in at_least.items():
            if value < low:
                raise InputError(f"must be >= {low}, got {value}", field=name)
        if not 0 <= self.warmup < 1:
            raise InputError(f"must be a fraction in [0, 1), got {self.warmup}", field="warmup")
        if self.weight_decay < 0 or self.max_grad_norm < 0:
            raise InputError("weight_decay and max_grad_norm must be >= 0")
        for name in ("jsd_weight", *(f"{term}_weight" for term in EXTRA_TERMS)):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise InputError(f"must be a finite number >= 0, got {value}", field=name)
        if self.uses_jsd and self.jsd_weight == 0:
            raise InputError(f"--loss {self.loss} with weight 0 leaves the JSD term out: use --loss nce instead",
                             field="jsd_weight")
        optional_low: dict[str, tuple[int | None, int]] = {
            "hard_negatives": (self.hard_negatives, 1), "train_layers": (self.train_layers, 1),
            "threads": (self.threads, 1)}
        for name, (given, low) in optional_low.items():
            if given is not None and given < low:
                raise InputError(f"must be >= {low}, got {given}", field=name)
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise InputError(f"must be a fraction in [0, 1), got {self.dropout}", field="dropout")

    @property
    def uses_jsd(self) -> bool:
        return self.loss in ("jsd+nce", "jsd")

    @property
    def uses_query_nce(self) -> bool:
        return self.loss in ("jsd+nce", "nce", "nce-psg")

    @property
    def uses_doc_nce(self) -> bool:
        return self.loss == "nce-psg"

    @property
    def needs_base_model(self) -> bool:
        """The frozen starting model is needed beside the trained one (distillation, mining)."""
        return self.distill_weight > 0 or self.hard_weight > 0

    def weights(self) -> dict[str, float]:
        """The weight of every loss component this configuration computes (component name -> weight)."""
        out: dict[str, float] = {}
        if self.uses_jsd:
            out["jsd"] = self.jsd_weight
        if self.uses_query_nce:
            out["nce"] = 1.0
        if self.uses_doc_nce:
            out["nce_doc"] = 1.0
        for term in EXTRA_TERMS:
            weight = getattr(self, f"{term}_weight")
            if weight > 0:
                out[term] = weight
        return out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def differences(self, other: "TrainConfig") -> list[str]:
        """Fields (other than the harmless ones) whose values differ, as 'name: this vs other'."""
        mine, theirs = self.to_json(), other.to_json()
        return [f"{k}: {mine[k]!r} vs {theirs[k]!r}" for k in mine
                if k not in RESUMABLE_CHANGES and mine[k] != theirs[k]]
