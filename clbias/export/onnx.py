"""Export a Hugging Face encoder to a self-describing ONNX model directory.

Output `OUT_ROOT/NAME/`: model.onnx (+ model.int8.onnx), tokenizer.json and clbias.json (the manifest).
Everything is built in a hidden `.NAME.partial-*` directory and renamed into place only after ONNX has
been shown to match torch, so a failed or killed export never leaves a directory that looks complete.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ModelError, first_line
from ..io import atomic_dir, portable_path, read_json_object, sha256_file
from ..runtime.manifest import ALL_POOLINGS, Manifest, Prefixes
from . import describe, verify
from .quantize import DEFAULT_SETTINGS, QuantSettings, quantize_file
from .quiet import quiet_frameworks

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
OUTPUT_NAME = "last_hidden_state"
VERSIONED = ("clbias", "torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "tokenizers",
             "numpy")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class ExtraGraph:
    """A further graph written from the verified fp32 graph (e.g. the 4-bit one of a model whose weights are
    4-bit already). `write(fp32_path, out_path)` writes it and returns its manifest record; the export then
    measures its drift from fp32 and refuses (nothing written) below `min_cosine`."""

    alias: str  # the name users pass (`--model NAME:ALIAS`, `default=`)
    file: str
    write: Callable[[Path, Path], dict[str, Any]]
    min_cosine: float


def export_model(src: str | Path, name: str, out_root: str | Path = Path("exported"), *, int8: bool = False,
                 default: str = "fp32", prefixes: Prefixes | None = None, pooling: str | None = None,
                 normalize: bool | None = None, max_length: int | None = None, source: dict[str, Any] | None = None,
                 query_prefix: str | None = None, passage_prefix: str | None = None,
                 output_name: str = OUTPUT_NAME, verify_texts: Sequence[str] | None = None, tolerance: float = 1e-4,
                 quantization: QuantSettings = DEFAULT_SETTINGS, int8_min_cosine: float | None = 0.95,
                 threads: int | None = None, progress: Callable[[str], None] | None = None,
                 extra_graphs: Sequence[ExtraGraph] = ()) -> Path:
    """Export SRC (a local HF model dir, or a hub id where a hub is reachable) to OUT_ROOT/NAME.

    Pooling, normalisation, prefixes (`prefixes` sets both) and max length not given here are taken from
    SRC's own files (sentence-transformers configs, a clbias training note), else defaults; the manifest's
    `settings_source` says which. `graph` pooling takes the graph output `output_name` as the sentence vector.
    Refuses (ModelError, nothing written) when ONNX and torch disagree beyond `tolerance` (1 - min cosine)
    or, with `int8`, when the int8 graph's min cosine to fp32 on the sample is below `int8_min_cosine`.
    `progress`, if given, is called with a short description of each step as it starts. Each of
    `extra_graphs` is written beside the fp32 graph and checked likewise; `default` may name one by alias.
    """
    step = progress or (lambda _: None)
    extras = tuple(g.alias for g in extra_graphs)
    extra_files = [g.file for g in extra_graphs]
    _check_args(src, name, int8, default, pooling, max_length, extras)
    if prefixes is not None:
        query_prefix, passage_prefix = prefixes.query, prefixes.passage
    pooling, normalize, prefixes, max_length, settings_source = describe.resolve(
        src, pooling=pooling, normalize=normalize, query_prefix=query_prefix, passage_prefix=passage_prefix,
        max_length=max_length)
    _check_args(src, name, int8, default, pooling, max_length, extras)
    if pooling == "graph" and output_name == OUTPUT_NAME:
        raise ModelError(f"{src}: graph pooling needs the name of the graph output that holds the sentence vector")
    if pooling == "last":
        _check_pad_token(src)
    texts, langs = verify.sample(verify_texts)
    if not texts:
        raise ModelError(f"{src}: no non-blank verification texts given")
    target = Path(out_root) / name
    hashes: dict[str, tuple[int, int, str]] = {}
    with quiet_frameworks(), atomic_dir(target) as tmp:
        staging = tmp / ".optimum"
        step(f"exporting {src} to ONNX")
        _optimum_export(src, staging)
        _take_graph(staging, tmp)
        _check_graph_output(tmp / FP32_FILE, output_name, pooling, f"{src}: output name")
        _take_tokenizer(src, staging, tmp)
        config = _read_json(staging / "config.json")
        length = max_length or _max_length(src, staging, config)
        settings_source.setdefault("max_length", "tokenizer_config.json model_max_length / config.json "
                                                 "max_position_embeddings (the smaller)")
        shutil.rmtree(staging)

        manifest = Manifest(
            name=name, files={}, onnx=FP32_FILE, tokenizer=TOKENIZER_FILE, pooling=pooling, normalize=normalize,
            prefixes=prefixes, max_length=length, output_name=output_name, dim=_dim(src, config),
            source=_provenance(src, config, source), versions=versions(), settings_source=settings_source)
        _save(manifest, tmp, hashes, extra_files)  # provisional: the runtime Encoder reads it during the checks

        step(f"checking ONNX against torch on {len(texts)} texts")
        reference = verify.torch_embeddings(src, tmp / TOKENIZER_FILE, texts, prefixes=prefixes, pooling=pooling,
                                            normalize=normalize, max_length=length, output_name=output_name)
        manifest.checks["parity"] = verify.onnx_parity(tmp, FP32_FILE, reference, texts, tolerance, threads)

        if int8:
            step("quantising to int8 and measuring its drift from fp32")
            result = quantize_file(tmp / FP32_FILE, tmp / INT8_FILE, quantization)
            _save(manifest, tmp, hashes, extra_files)
            record = {**result.to_json(), **verify.drift(tmp, FP32_FILE, INT8_FILE, texts, langs, threads)}
            record["int8_min_cosine"] = int8_min_cosine
            manifest.quantization[INT8_FILE] = record
            if int8_min_cosine is not None and record["min_cosine"] < int8_min_cosine:
                raise ModelError(f"{target / INT8_FILE}: int8 drifts from fp32: min cosine "
                                 f"{record['min_cosine']:.4f} < {int8_min_cosine} on the sample; nothing "
                                 f"was written (change the quantisation settings or drop --int8)")
            if default == "int8":
                manifest.onnx = INT8_FILE
        for extra in extra_graphs:
            step(f"writing {extra.file} and measuring its drift from fp32")
            record = dict(extra.write(tmp / FP32_FILE, tmp / extra.file))
            _save(manifest, tmp, hashes, extra_files)
            record.update(verify.drift(tmp, FP32_FILE, extra.file, texts, langs, threads))
            record["required_min_cosine"] = extra.min_cosine
            manifest.quantization[extra.file] = record
            if record["min_cosine"] < extra.min_cosine:
                raise ModelError(f"{target / extra.file}: drifts from fp32: min cosine {record['min_cosine']:.6f} "
                                 f"< {extra.min_cosine} on the sample; nothing was written")
            if default == extra.alias:
                manifest.onnx = extra.file
        _save(manifest, tmp, hashes, extra_files)
    return target


def _check_args(src: str | Path, name: str, int8: bool, default: str, pooling: str | None,
                max_length: int | None, extras: Sequence[str] = ()) -> None:
    if not name or name != Path(name).name or name.startswith("."):
        raise ModelError(f"{src}: model name {name!r} must be a plain directory name")
    if pooling is not None and pooling not in ALL_POOLINGS:
        raise ModelError(f"{src}: pooling {pooling!r} is not one of {ALL_POOLINGS}")
    if default not in ("fp32", "int8", *extras):
        raise ModelError(f"{src}: default graph {default!r} must be one of {', '.join(('fp32', 'int8', *extras))}")
    if default == "int8" and not int8:
        raise ModelError(f"{src}: default graph 'int8' needs the int8 export")
    if max_length is not None and max_length < 2:
        raise ModelError(f"{src}: max_length {max_length} is too small")


def _check_pad_token(src: str | Path) -> None:
    """Last-token pooling runs padded batches; a tokenizer that names no padding token (decoders often do
    not) is refused rather than padded with a guess. Set pad_token in tokenizer_config.json (e.g. to eos)."""
    path = Path(src) / "tokenizer_config.json"
    if not Path(src).is_dir():
        return
    pads = [_read_json(p).get("pad_token") for p in (path, Path(src) / "special_tokens_map.json") if p.is_file()]
    pads = [p.get("content") if isinstance(p, dict) else p for p in pads]
    if not any(pads):
        raise ModelError(f"{path}: field 'pad_token': the tokenizer has no padding token, which last-token pooling "
                         f"of padded batches needs; set it (e.g. to the eos token) and export again")


def _optimum_export(src: str | Path, out: Path) -> None:
    # HF_HUB_OFFLINE is read by huggingface_hub/transformers themselves; a local dir never touches a hub.
    from optimum.exporters.onnx import main_export

    try:
        # library_name: a sentence-transformers directory is exported as its Transformer module (token states);
        # clbias pools them itself, as the directory's Pooling config says.
        main_export(str(src), output=str(out), task="feature-extraction", do_validation=False, library_name="transformers",
                    local_files_only=os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"))
    except Exception as exc:  # Optimum/transformers raise many exception types; one clean line each
        raise ModelError(f"{src}: ONNX export failed ({type(exc).__name__}: {first_line(exc)})") from None


def _take_graph(staging: Path, tmp: Path) -> None:
    graph = staging / FP32_FILE
    if not graph.is_file():
        raise ModelError(f"{graph}: Optimum wrote no {FP32_FILE}")
    if any(staging.glob(f"{FP32_FILE}_data")) or any(staging.glob("*.onnx.data")):
        raise ModelError(f"{graph}: the graph uses external data (> 2 GB), which clbias does not ship")
    os.replace(graph, tmp / FP32_FILE)


def _check_graph_output(graph: Path, output_name: str, pooling: str, where: str) -> None:
    import onnxruntime as ort

    from ..runtime.encoder import check_output

    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    check_output(session, output_name, pooling, graph.name, where)


def _take_tokenizer(src: str | Path, staging: Path, tmp: Path) -> None:
    """The source's own tokenizer.json byte for byte; else the one Optimum saved; else a fast conversion."""
    candidates = [Path(src) / TOKENIZER_FILE, staging / TOKENIZER_FILE]
    for candidate in candidates:
        if candidate.is_file():
            shutil.copyfile(candidate, tmp / TOKENIZER_FILE)
            return
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(src), use_fast=True)
    except Exception as exc:  # conversion needs sentencepiece/protobuf for some models
        raise ModelError(f"{src}: no tokenizer.json and no fast tokenizer could be built "
                         f"({first_line(exc)})") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"{src}: no tokenizer.json and the tokenizer has no fast (tokenizers) version")
    tokenizer.save_pretrained(str(staging / "fast"))
    built = staging / "fast" / TOKENIZER_FILE
    if not built.is_file():
        raise ModelError(f"{src}: no tokenizer.json and save_pretrained wrote none")
    shutil.copyfile(built, tmp / TOKENIZER_FILE)


def _read_json(path: Path) -> dict[str, Any]:
    return read_json_object(path, ModelError)


def _max_length(src: str | Path, staging: Path, config: dict[str, Any]) -> int:
    """min(tokenizer model_max_length, max_position_embeddings), ignoring the 'unlimited' sentinel.

    XLM-R-style models reserve positions for padding (514 positions, 512 usable); the tokenizer's limit
    says so, and where it is missing we subtract pad_token_id + 1 for those models."""
    limits = []
    for path in (Path(src) / "tokenizer_config.json", staging / "tokenizer_config.json"):
        if path.is_file():
            value = _read_json(path).get("model_max_length")
            if isinstance(value, (int, float)) and 0 < value < 1_000_000:
                limits.append(int(value))
            break
    positions = config.get("max_position_embeddings")
    if isinstance(positions, int) and positions > 0:
        if config.get("model_type") in ("xlm-roberta", "roberta", "camembert") and not limits:
            positions -= int(config.get("pad_token_id", 1)) + 1
        limits.append(positions)
    if not limits:
        raise ModelError(f"{src}: cannot tell the maximum length (no model_max_length or "
                         f"max_position_embeddings); pass max_length")
    return min(limits)


def _dim(src: str | Path, config: dict[str, Any]) -> int:
    dim = config.get("hidden_size") or config.get("d_model") or config.get("dim")
    if not isinstance(dim, int):
        raise ModelError(f"{src}: config.json has no hidden_size")
    return dim


def _provenance(src: str | Path, config: dict[str, Any], given: dict[str, Any] | None) -> dict[str, Any]:
    local = Path(src).is_dir()
    info: dict[str, Any] = {"model": portable_path(src) if local else str(src),
                            "kind": "local" if local else "hub",
                            "model_type": config.get("model_type"),
                            "architectures": config.get("architectures")}
    if local:
        weights = {f: sha256_file(Path(src) / f) for f in WEIGHT_FILES if (Path(src) / f).is_file()}
        if weights:
            info["weights_sha256"] = weights
    info.update(given or {})
    return info


def versions(packages: Sequence[str] = VERSIONED) -> dict[str, str]:
    """Installed versions of the libraries an export depends on."""
    found = {}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def _save(manifest: Manifest, directory: Path, hashes: dict[str, tuple[int, int, str]],
          extra_files: Sequence[str] = ()) -> None:
    """Hash every model file present (re-hashing only changed files) and (re)write the manifest."""
    manifest.files = {}
    for name in (FP32_FILE, INT8_FILE, *extra_files, TOKENIZER_FILE):
        path = directory / name
        if not path.is_file():
            continue
        stat = path.stat()
        cached = hashes.get(name)
        if cached is None or cached[:2] != (stat.st_size, stat.st_mtime_ns):
            cached = hashes[name] = (stat.st_size, stat.st_mtime_ns, sha256_file(path))
        manifest.files[name] = cached[2]
    manifest.save(directory)
