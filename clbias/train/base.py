"""The model training starts from: a Hugging Face directory plus the contract of its exported manifest.

Prefixes, pooling and normalisation are part of the model (docs/export.md), so training embeds texts
exactly as the runtime will: they come from the base's `clbias.json` (the HF dir's own, e.g. an earlier
training run's, or that of its export under exported/NAME), or are given explicitly.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..io import read_json_object
from ..model_paths import exported_root, hf_root, resolve_model
from ..runtime.manifest import MANIFEST_NAME, POOLINGS, Prefixes

NOTE_SCHEMA = "clbias.train/1"


@dataclass(frozen=True)
class BaseModel:
    hf_dir: Path
    prefixes: Prefixes
    pooling: str = "mean"
    normalize: bool = True
    max_length: int = 512
    manifest: str | None = None  # where the contract came from; None when given explicitly

    @property
    def tokenizer_file(self) -> Path:
        return self.hf_dir / "tokenizer.json"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["hf_dir"] = str(self.hf_dir.resolve())
        return data


def resolve_base(spec: str | Path, query_prefix: str | None = None, passage_prefix: str | None = None) -> BaseModel:
    """`NAME` -> models/NAME with exported/NAME/clbias.json; a directory -> itself with its own clbias.json
    (or the export of it under exported/<dir name>). Explicit prefixes override the manifest's; with both
    given no manifest is needed."""
    text = str(spec)
    path = Path(text)
    by_name = not path.is_dir()
    if not by_name:
        hf_dir, name = path, path.name
    elif os.sep in text or text.startswith("."):
        raise ModelError(f"{path}: base model directory not found")
    else:
        hf_dir, name = hf_root() / text, text
        if not hf_dir.is_dir():
            raise ModelError(f"{hf_dir}: base model {text!r} not found (build it with `clbias models build {text}`, "
                             f"or pass a Hugging Face model directory)")
    for required in ("config.json", "tokenizer.json"):
        if not (hf_dir / required).is_file():
            raise ModelError(f"{hf_dir}: no {required} (not a Hugging Face model directory with a fast tokenizer)")
    manifest = _find_manifest(hf_dir, name, by_name)
    if manifest is None:
        if query_prefix is None or passage_prefix is None:
            raise ModelError(f"{hf_dir}: no clbias.json manifest here or in {exported_root() / name} to take the "
                             f"query/passage prefixes from; export the base first (`clbias export {hf_dir} --name "
                             f"{name}`) or pass --query-prefix and --passage-prefix")
        return BaseModel(hf_dir, Prefixes(query_prefix, passage_prefix))
    data = _read(manifest)
    given = data.get("prefixes") or {}
    if not isinstance(given, dict):
        raise ModelError(f"{manifest}: field 'prefixes': expected an object")
    prefixes = Prefixes(query_prefix if query_prefix is not None else str(given.get("query", "")),
                        passage_prefix if passage_prefix is not None else str(given.get("passage", "")))
    pooling = data.get("pooling", "mean")
    if pooling not in POOLINGS:
        raise ModelError(f"{manifest}: field 'pooling': {pooling!r} is not one of {POOLINGS}")
    max_length = data.get("max_length", 512)
    if not isinstance(max_length, int) or max_length < 2:
        raise ModelError(f"{manifest}: field 'max_length': expected an integer >= 2")
    return BaseModel(hf_dir, prefixes, pooling, bool(data.get("normalize", True)), max_length, str(manifest))


def _find_manifest(hf_dir: Path, name: str, by_name: bool) -> Path | None:
    """The HF dir's own clbias.json; else exported/NAME's, taken as is for a base given by name and, for a
    base given as a directory, only when that export records this directory as its source."""
    own = hf_dir / MANIFEST_NAME
    if own.is_file():
        return own
    exported = resolve_model(name) / MANIFEST_NAME
    if exported.is_file() and by_name:
        return exported
    if exported.is_file():
        source = _read(exported).get("source") or {}
        origins = [str(source[k]) for k in ("hf_dir", "model") if isinstance(source.get(k), str)]
        if any(Path(o).resolve() == hf_dir.resolve() for o in origins):
            return exported
    return None


def _read(path: Path) -> dict[str, Any]:
    return read_json_object(path, ModelError, "malformed manifest")