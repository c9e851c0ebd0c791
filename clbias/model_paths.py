"""Where exported models live and how a `--model` argument resolves to a directory."""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL = "multilingual-e5-small"


def exported_root() -> Path:
    return Path(os.environ.get("CLBIAS_EXPORTED", "exported"))


def resolve_model(spec: str) -> Path:
    """A path to a model directory, or the name of one under the exported root."""
    path = Path(spec)
    if path.is_dir() or os.sep in spec or spec.startswith("."):
        return path
    return exported_root() / spec


def hf_root() -> Path:
    """Where Hugging Face model directories built or trained locally live (the export and train inputs)."""
    return Path(os.environ.get("CLBIAS_MODELS", "models"))
