"""The Python API in a few calls; the CLI uses the same functions.

    import clbias
    model = clbias.load_model("exported/multilingual-e5-small")
    vectors = clbias.embed(["query text"], model, kind="query")
    report = clbias.audit_corpus("examples/udhr", [model])
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .audit import AuditSettings, audit
from .corpus import load_corpus
from .model_paths import resolve_model
from .report.model import Report
from .runtime.embed import embed_texts
from .runtime.cache import prepare_cache_dir
from .runtime.encoder import Encoder, Kind


def load_model(spec: str | Path, onnx: str | None = None, threads: int | None = None) -> Encoder:
    """An exported model by directory or by name under `exported/`."""
    return Encoder.load(resolve_model(str(spec)), onnx=onnx, threads=threads)


def embed(texts: Sequence[str], model: Encoder | str | Path, kind: Kind = "passage",
          cache_dir: Path | None = None, batch_size: int = 32) -> np.ndarray:
    cache_dir = prepare_cache_dir(cache_dir)  # refused or dropped here, before any model work
    encoder = model if isinstance(model, Encoder) else load_model(model)
    return embed_texts(encoder, list(texts), kind, cache_dir, batch_size)[0]


def audit_corpus(corpus: str | Path, models: Sequence[Encoder | str | Path], **settings: Any) -> Report:
    encoders = [m if isinstance(m, Encoder) else load_model(m) for m in models]
    split = settings.pop("split", None)
    return audit(load_corpus(corpus, split), encoders, AuditSettings(**settings))
