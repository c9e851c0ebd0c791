"""The model contract that travels with an exported model: `clbias.json`.

Pooling, normalisation, prefixes, max length and the output name are part of the model; an ONNX file
alone does not say them (sentence-transformers #3258, optimum #1145), so they live here, with the
sha256 of every file so that a swapped or truncated file is refused rather than silently used.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..io import read_json_object, sha256_file, write_json_atomic

MANIFEST_NAME = "clbias.json"
MANIFEST_SCHEMA = "clbias.model/1"
POOLINGS = ("mean", "cls")


@dataclass(frozen=True)
class Prefixes:
    query: str = ""
    passage: str = ""


@dataclass
class Manifest:
    name: str
    files: dict[str, str]  # relative file name -> sha256
    onnx: str  # the graph the runtime loads by default (e.g. "model.onnx" or "model.int8.onnx")
    tokenizer: str = "tokenizer.json"
    pooling: str = "mean"
    normalize: bool = True
    prefixes: Prefixes = field(default_factory=Prefixes)
    max_length: int = 512
    output_name: str = "last_hidden_state"
    dim: int | None = None
    source: dict[str, Any] = field(default_factory=dict)  # provenance: where the weights came from
    quantization: dict[str, Any] = field(default_factory=dict)  # per ONNX file: {"model.int8.onnx": {...}}
    versions: dict[str, str] = field(default_factory=dict)  # library versions used to export
    checks: dict[str, Any] = field(default_factory=dict)  # parity numbers measured at export time
    schema: str = MANIFEST_SCHEMA

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["prefixes"] = asdict(self.prefixes)
        return data

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / MANIFEST_NAME
        write_json_atomic(path, self.to_json())
        return path

    @property
    def sha256(self) -> str:
        """The hash that identifies this model in reports and caches: that of its default graph."""
        return self.files[self.onnx]

    @classmethod
    def from_json(cls, data: dict[str, Any], path: Path) -> "Manifest":
        if data.get("schema") != MANIFEST_SCHEMA:
            raise ModelError(f"{path}: field 'schema': expected {MANIFEST_SCHEMA!r}, got {data.get('schema')!r}")
        for key in ("name", "files", "onnx"):
            if key not in data:
                raise ModelError(f"{path}: field '{key}' is missing")
        if not isinstance(data["files"], dict) or not all(isinstance(v, str) for v in data["files"].values()):
            raise ModelError(f"{path}: field 'files': expected an object of file name -> sha256")
        if not isinstance(data.get("prefixes", {}), dict):
            raise ModelError(f"{path}: field 'prefixes': expected an object")
        if data.get("pooling", "mean") not in POOLINGS:
            raise ModelError(f"{path}: field 'pooling': {data.get('pooling')!r} is not one of {POOLINGS}")
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["prefixes"] = Prefixes(**data.get("prefixes", {}))
        return cls(**kwargs)


def load_manifest(directory: str | Path, verify: bool = True) -> Manifest:
    """Read `clbias.json` from a model directory; with `verify`, check every listed file's sha256."""
    directory = Path(directory)
    path = directory / MANIFEST_NAME
    if not directory.is_dir():
        raise ModelError(f"{directory}: model directory not found")
    if not path.is_file():
        raise ModelError(f"{path}: no manifest (export the model with `clbias export` first)")
    data = read_json_object(path, ModelError, "malformed manifest")
    manifest = Manifest.from_json(data, path)
    for required in (manifest.onnx, manifest.tokenizer):
        if required not in manifest.files:
            raise ModelError(f"{path}: field 'files' does not list {required!r}")
    if verify:
        for name, expected in manifest.files.items():
            file = directory / name
            if not file.is_file():
                raise ModelError(f"{path}: field 'files': {name} is missing from {directory}")
            actual = sha256_file(file)
            if actual != expected:
                raise ModelError(f"{file}: sha256 {actual[:12]}… does not match the manifest ({expected[:12]}…)")
    return manifest
