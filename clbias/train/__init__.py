"""Alignment training (the `train` extra): sqrt-JSD + InfoNCE on (q_en, p_en, p_tgt) triplets.

Importing this package does not import torch; `train` and `evaluate` import it when called.

    from clbias.train import TrainConfig, resolve_base, train
    result = train("triplets.jsonl", "models/e5-aligned", resolve_base("multilingual-e5-small"), TrainConfig())
"""
from __future__ import annotations

from .base import BaseModel, resolve_base
from .config import JSD_ONLY_WARNING, LOSSES, TrainConfig
from .data import Triplet, build_triplets, read_triplets, read_units, write_triplets
from .trainer import StepProgress, TrainResult, evaluate, train

__all__ = ["JSD_ONLY_WARNING", "LOSSES", "BaseModel", "StepProgress", "TrainConfig", "TrainResult", "Triplet",
           "build_triplets", "evaluate", "read_triplets", "read_units", "resolve_base", "train", "write_triplets"]
