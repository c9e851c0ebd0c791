"""Systems named on the command line (`--model`, `--run NAME=PATH`, `--bm25`, `--hybrid`), made into the
audit's systems in the order given: the library the CLI calls."""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..errors import InputError
from ..runtime.encoder import Encoder
from .base import System
from .builtin import FUSIONS, BM25System, HybridSystem
from .dense import EncoderSystem
from .lists import PoolRunsSystem, RunFileSystem

if TYPE_CHECKING:
    from ..audit import AuditPlan, AuditSettings

__all__ = ["FUSIONS", "SystemRequest", "check_system_options", "load_runs", "make_systems", "parse_run_spec"]
_NAME = re.compile(r"[^\s=]+")


@dataclass(frozen=True)
class SystemRequest:
    kind: str  # "model" | "run" | "bm25" | "hybrid"
    value: Any  # model spec, (name, path), or True


def parse_run_spec(text: str) -> tuple[str, Path]:
    """`NAME=PATH` -> (name, path); the path must exist (a run file, or a directory of per-pool runs)."""
    name, sep, path = text.partition("=")
    if not sep or not _NAME.fullmatch(name) or not path:
        raise InputError(f"expected NAME=PATH (a name without spaces, then the run file or directory), got {text!r}",
                         field="--run")
    if not Path(path).exists():
        raise InputError("run file or directory not found", path, field="--run")
    return name, Path(path)


def check_system_options(rrf_k: int, bm25_weight: float) -> None:
    if isinstance(rrf_k, bool) or rrf_k < 1:
        raise InputError(f"must be an integer >= 1, got {rrf_k!r}", field="--rrf-k")
    if not 0.0 <= bm25_weight <= 1.0:
        raise InputError(f"must be between 0 and 1, got {bm25_weight!r}", field="--bm25-weight")


def load_runs(requests: Sequence[SystemRequest], plan: "AuditPlan") -> dict[str, System]:
    """Every requested run read and checked against the corpus (and its pools) now, before models load."""
    from .base import AuditContext
    import numpy as np

    names = [r.value[0] for r in requests if r.kind == "run"]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"run name {repeated[0]!r} given twice", field="--run")
    ctx = AuditContext(plan.corpus, cast("AuditSettings", None),  # runs read no settings
                       queries_needed=np.unique(np.concatenate([s.queries for s in plan.scenarios]))
                       if plan.scenarios else np.empty(0, np.int64), scenarios=plan.scenarios)
    out: dict[str, System] = {}
    for r in requests:
        if r.kind != "run":
            continue
        name, path = r.value
        system: Any = PoolRunsSystem(name, path) if Path(path).is_dir() else RunFileSystem(name, path)
        system.load(ctx)
        out[name] = system
    return out


def make_systems(requests: Sequence[SystemRequest], runs: dict[str, System],
                 load_encoders: Callable[[list[str]], list[Encoder]], fusion: str = "rrf", rrf_k: int = 60,
                 bm25_weight: float = 0.5) -> list[System]:
    """The systems in request order. A hybrid fuses BM25 with the first --model (the default model when none
    is given; it is then not audited on its own); the hybrid and a --model share one embedding pass."""
    model_specs = [r.value for r in requests if r.kind == "model"]
    wants_hybrid = any(r.kind == "hybrid" for r in requests)
    encoders = load_encoders(model_specs) if model_specs or wants_hybrid else []
    dense = [EncoderSystem(e) for e in encoders]
    models = iter(dense)
    bm25 = BM25System()
    out: list[System] = []
    for r in requests:
        if r.kind == "model":
            out.append(next(models))
        elif r.kind == "run":
            out.append(runs[r.value[0]])
        elif r.kind == "bm25":
            out.append(bm25)
        elif r.kind == "hybrid":
            out.append(HybridSystem(dense[0], bm25, fusion, rrf_k, bm25_weight))
        else:
            raise ValueError(f"unknown system kind {r.kind!r}")
    return out
