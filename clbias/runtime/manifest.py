"""The model contract that travels with an exported model: `clbias.json`.

Pooling, normalisation, prefixes, max length and the output name are part of the model; an ONNX file
alone does not say them (sentence-transformers #3258, optimum #1145), so they live here, with the
sha256 of every file so that a swapped or truncated file is refused rather than silently used.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..errors import ModelError
from ..io import read_json_object, sha256_file, write_json_atomic
from .cache import cache_root, make_private_dirs, trusted_dir

MANIFEST_NAME = "clbias.json"
MANIFEST_SCHEMA = "clbias.model/1"
# `mean`/`cls`/`last` pool the graph's token states over the attention mask; `graph` takes a graph output
# that already is the sentence vector (a sentence-transformers export, or a converted model like USE).
ALL_POOLINGS = ("mean", "cls", "last", "graph")
# The poolings every part of clbias computes, training included (clbias/train re-implements them in torch).
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
    settings_source: dict[str, str] = field(default_factory=dict)  # setting -> where its value came from
    languages: list[str] | None = None  # languages the model's source states it was trained on; None: unstated
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
        if data.get("pooling", "mean") not in ALL_POOLINGS:
            raise ModelError(f"{path}: field 'pooling': {data.get('pooling')!r} is not one of {ALL_POOLINGS}")
        _check_values(data, path)
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["prefixes"] = Prefixes(**data.get("prefixes", {}))
        return cls(**kwargs)


MAX_LENGTH_RANGE = (2, 1 << 20)  # a [CLS] and a [SEP] at least; beyond any position table


def _check_values(data: dict[str, Any], path: Path) -> None:
    """Types and ranges of the manifest's values: a hand-edited or damaged manifest is refused naming the
    field, instead of embedding every text wrongly (a max_length of 0, normalize "no", a numeric prefix)."""
    def bad(key: str, expected: str) -> ModelError:
        return ModelError(f"{path}: field '{key}': expected {expected}, got {data.get(key)!r}")

    for key in ("name", "onnx", "tokenizer", "output_name"):
        if key in data and (not isinstance(data[key], str) or not data[key]):
            raise bad(key, "a non-empty string")
    for name in data["files"]:
        parts = Path(name).parts
        if not name or Path(name).is_absolute() or ".." in parts or "\\" in name:
            raise ModelError(f"{path}: field 'files': {name!r} is not a file inside the model directory")
    max_length = data.get("max_length", 512)
    if not isinstance(max_length, int) or isinstance(max_length, bool) \
            or not MAX_LENGTH_RANGE[0] <= max_length <= MAX_LENGTH_RANGE[1]:
        raise bad("max_length", f"an integer from {MAX_LENGTH_RANGE[0]} to {MAX_LENGTH_RANGE[1]}")
    if not isinstance(data.get("normalize", True), bool):
        raise bad("normalize", "true or false")
    dim = data.get("dim")
    if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or dim < 1):
        raise bad("dim", "a positive integer or null")
    prefixes = data.get("prefixes", {})
    unknown = sorted(set(prefixes) - {"query", "passage"})
    if unknown:
        raise ModelError(f"{path}: field 'prefixes': unknown key(s) {', '.join(map(repr, unknown))} (query, passage)")
    for kind, value in prefixes.items():
        if not isinstance(value, str) or len(value) > 1000:
            raise ModelError(f"{path}: field 'prefixes.{kind}': expected a string of at most 1000 characters, "
                             f"got {value!r:.80}")
    languages = data.get("languages")
    if languages is not None and (not isinstance(languages, list) or not all(isinstance(x, str) for x in languages)):
        raise bad("languages", "a list of language codes or null")
    for key in ("source", "quantization", "versions", "checks", "settings_source"):
        if not isinstance(data.get(key, {}), dict):
            raise bad(key, "an object")


def language_note(label: str, manifest: Manifest, langs: Iterable[str]) -> str | None:
    """A report note naming the corpus languages outside those the model's source states (None if all are
    covered or the source states none); regional and script variants count as their primary language."""
    if manifest.languages is None:
        return None
    stated = {lang.split("-", 1)[0] for lang in manifest.languages}
    outside = sorted({lang for lang in langs if lang.split("-", 1)[0] not in stated})
    if not outside:
        return None
    return (f"model {label}: corpus language(s) {', '.join(outside)} are outside the {len(stated)} languages its "
            f"source states ({', '.join(sorted(stated))}); its numbers there measure an untrained language")


def _stat_key(file: Path) -> dict[str, int]:
    st = file.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "ino": st.st_ino,
            "dev": st.st_dev}


def verified_sha256(file: Path) -> str:
    """sha256 of `file`, remembered per file identity (device, inode, size, mtime and ctime, which any
    write changes and no tool can set back) under $CLBIAS_CACHE/hashes: an audit re-run does not re-read
    a 470 MB graph. An unwritable cache only means hashing again next time."""
    resolved = file.resolve()
    record = cache_root() / "hashes" / (hashlib.sha256(str(resolved).encode()).hexdigest()[:32] + ".json")
    key = _stat_key(resolved)
    if trusted_dir(record.parent) is not None:  # records anyone else can write could vouch for a swapped file
        return sha256_file(resolved)
    try:
        saved = json.loads(record.read_text(encoding="utf-8"))
        if isinstance(saved, dict) and saved.get("path") == str(resolved) and saved.get("stat") == key \
                and isinstance(saved.get("sha256"), str):
            return saved["sha256"]
    except (OSError, ValueError, RecursionError):
        pass
    digest = sha256_file(resolved)
    if _stat_key(resolved) == key:  # not written to while it was read
        try:
            make_private_dirs(record.parent)
            write_json_atomic(record, {"path": str(resolved), "stat": key, "sha256": digest})
        except OSError:
            pass
    return digest


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
            actual = verified_sha256(file)
            if actual != expected:
                raise ModelError(f"{file}: sha256 {actual[:12]}… does not match the manifest ({expected[:12]}…)")
    return manifest
