"""The Python API in a few calls; the CLI uses the same functions.

    import clbias
    model = clbias.load_model("multilingual-e5-small")   # by name (docs/models.md) or a directory
    vectors = clbias.embed(["query text"], model, kind="query")
    report = clbias.audit_corpus("examples/udhr", [model])
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .audit import AuditSettings, audit
from .corpus import load_corpus
from .model_paths import require_model
from .report.model import Report
from .runtime.embed import embed_texts
from .runtime.cache import prepare_cache_dir
from .runtime.encoder import Encoder, Kind


def load_model(spec: str | Path, onnx: str | None = None, threads: int | None = None) -> Encoder:
    """An exported model by directory or by name (looked up as clbias.model_paths says: $CLBIAS_EXPORTED,
    ./exported, $CLBIAS_HOME/models)."""
    return Encoder.load(require_model(str(spec)), onnx=onnx, threads=threads)


def embed(texts: Sequence[str], model: Encoder | str | Path, kind: Kind = "passage",
          cache_dir: Path | None = None, batch_size: int = 32) -> np.ndarray:
    cache_dir = prepare_cache_dir(cache_dir)  # refused or dropped here, before any model work
    encoder = model if isinstance(model, Encoder) else load_model(model)
    return embed_texts(encoder, list(texts), kind, cache_dir, batch_size)[0]


def audit_corpus(corpus: str | Path, models: Sequence[Any], **settings: Any) -> Report:
    """`models`: exported models (Encoder, directory or name) or any retriever `clbias.retrievers` takes."""
    encoders = [load_model(m) if isinstance(m, (str, Path)) else m for m in models]
    split = settings.pop("split", None)
    return audit(load_corpus(corpus, split), encoders, AuditSettings(**settings))
