"""What a model directory says about how to embed with it: pooling, normalisation, prompts, max length.

A sentence-transformers directory states them in its own files:
  modules.json                       the module chain: Transformer, Pooling, optionally Normalize
  1_Pooling/config.json              pooling_mode_* flags (exactly one of cls / mean / lasttoken)
  config_sentence_transformers.json  prompts {"query": ..., "passage" | "document": ...}, similarity_fn_name
  sentence_bert_config.json          max_seq_length, do_lower_case
A directory written by `clbias train` states them in its clbias.json note. Values given by the caller win;
each resolved value records where it came from. Contradictory or unsupported files are one-line errors.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..runtime.manifest import Prefixes

ST_MODULES = "modules.json"
ST_CONFIG = "config_sentence_transformers.json"
ST_BERT_CONFIG = "sentence_bert_config.json"
CLBIAS_NOTE = "clbias.json"
POOLING_MODES = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean",
                 "pooling_mode_lasttoken": "last", "pooling_mode_max_tokens": "max",
                 "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len", "pooling_mode_weightedmean_tokens": "weightedmean"}
SUPPORTED_MODES = ("cls", "mean", "last")
QUERY_PROMPTS = ("query",)
PASSAGE_PROMPTS = ("passage", "document")
KNOWN_MODULES = {"Transformer", "Pooling", "Normalize"}
DEFAULTS = {"pooling": "mean", "normalize": True}


@dataclass
class Described:
    """Settings a directory states, each with the file (and field) it came from."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    is_sentence_transformers: bool = False

    def set(self, key: str, value: Any, source: str) -> None:
        self.values[key] = value
        self.sources[key] = source


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: cannot read it as JSON ({type(exc).__name__}: {exc})") from None


def _object(path: Path) -> dict[str, Any]:
    data = _read(path)
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def describe(src: str | Path) -> Described:
    """The settings SRC's own files state (nothing, for a plain Hugging Face directory or a hub id)."""
    src = Path(src)
    found = Described()
    if not src.is_dir():
        return found
    if (src / ST_MODULES).is_file():
        found.is_sentence_transformers = True
        _describe_modules(src, found)
    if (src / ST_CONFIG).is_file():
        _describe_prompts(src / ST_CONFIG, found)
    if (src / ST_BERT_CONFIG).is_file():
        _describe_bert_config(src / ST_BERT_CONFIG, found)
    if (src / CLBIAS_NOTE).is_file():
        _describe_clbias_note(src / CLBIAS_NOTE, found)
    return found


def _describe_modules(src: Path, found: Described) -> None:
    path = src / ST_MODULES
    modules = _read(path)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise ModelError(f"{path}: expected a list of module objects")
    kinds = []
    for i, module in enumerate(modules):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind not in KNOWN_MODULES:
            raise ModelError(f"{path}: module {i} ({module.get('type')!r}) is not supported; clbias exports "
                             f"Transformer + Pooling (+ Normalize) chains")
        kinds.append(kind)
        if kind == "Transformer" and module.get("path", "") not in ("", "."):
            raise ModelError(f"{path}: module {i} (Transformer) lives in {module.get('path')!r}; export that "
                             f"directory, or move the weights to the top level")
        if kind == "Pooling":
            _describe_pooling(src / str(module.get("path", "")) / "config.json", found)
    if kinds.count("Pooling") != 1 or kinds[0] != "Transformer":
        raise ModelError(f"{path}: expected a Transformer module first and exactly one Pooling module, got "
                         f"{kinds}")
    if "Normalize" in kinds:
        found.set("normalize", True, f"{path} (Normalize module)")


def _describe_pooling(path: Path, found: Described) -> None:
    if not path.is_file():
        raise ModelError(f"{path}: missing (modules.json names a Pooling module here)")
    config = _object(path)
    modes = [POOLING_MODES[k] for k in POOLING_MODES if config.get(k) is True]
    if isinstance(config.get("pooling_mode"), str):  # newer sentence-transformers also write the name
        named = {"lasttoken": "last", "mean_tokens": "mean", "cls_token": "cls"}.get(config["pooling_mode"],
                                                                                        config["pooling_mode"])
        if modes and named not in modes:
            raise ModelError(f"{path}: field 'pooling_mode' says {config['pooling_mode']!r} but the flags say "
                             f"{', '.join(modes)}")
        modes = modes or [named]
    if len(modes) != 1:
        raise ModelError(f"{path}: pooling config names {len(modes)} modes ({', '.join(modes) or 'none'}); "
                         f"exactly one of cls, mean, lasttoken is needed")
    if modes[0] not in SUPPORTED_MODES:
        raise ModelError(f"{path}: pooling mode {modes[0]!r} is not supported (cls, mean or lasttoken)")
    if config.get("include_prompt") is False:
        raise ModelError(f"{path}: field 'include_prompt' is false (prompt tokens left out of the pooling), which "
                         f"clbias does not reproduce")
    found.set("pooling", modes[0], f"{path} (pooling_mode_*)")


def _describe_prompts(path: Path, found: Described) -> None:
    config = _object(path)
    prompts = config.get("prompts", {})
    if not isinstance(prompts, dict):
        raise ModelError(f"{path}: field 'prompts' must map prompt names to strings, got {type(prompts).__name__}")
    for name, text in prompts.items():
        if not isinstance(name, str) or not name.strip():
            raise ModelError(f"{path}: field 'prompts': a prompt has no name ({text!r}); name it query or passage")
        if not isinstance(text, str):
            raise ModelError(f"{path}: field 'prompts.{name}' must be a string, got {type(text).__name__}")
    default = config.get("default_prompt_name")
    if default is not None and default not in prompts:
        raise ModelError(f"{path}: field 'default_prompt_name' names {default!r}, which is not in 'prompts'")
    for key, names in (("query_prefix", QUERY_PROMPTS), ("passage_prefix", PASSAGE_PROMPTS)):
        given = {n: prompts[n] for n in names if n in prompts}
        if len(set(given.values())) > 1:
            raise ModelError(f"{path}: field 'prompts': {' and '.join(given)} differ; which one do passages use?")
        if given:
            name = next(iter(given))
            found.set(key, given[name], f"{path} (prompts.{name})")
        elif default is not None:
            found.set(key, prompts[default], f"{path} (default_prompt_name {default!r})")
    similarity = config.get("similarity_fn_name")
    if "normalize" not in found.values and found.is_sentence_transformers:
        if similarity in (None, "cosine"):
            found.set("normalize", True, f"{path} (similarity_fn_name {similarity or 'unset: cosine'})")
        elif similarity in ("dot", "dot_product"):
            found.set("normalize", False, f"{path} (similarity_fn_name {similarity!r}, no Normalize module)")
        else:
            raise ModelError(f"{path}: field 'similarity_fn_name' {similarity!r} is not cosine or dot")


def _describe_bert_config(path: Path, found: Described) -> None:
    config = _object(path)
    if config.get("do_lower_case") is True:
        raise ModelError(f"{path}: field 'do_lower_case' is true; clbias feeds text as is (lower-case it in the "
                         f"tokenizer.json normaliser instead)")
    length = config.get("max_seq_length")
    if length is not None:
        if not isinstance(length, int) or isinstance(length, bool) or length < 2:
            raise ModelError(f"{path}: field 'max_seq_length' must be an integer >= 2, got {length!r}")
        found.set("max_length", length, f"{path} (max_seq_length)")


def _describe_clbias_note(path: Path, found: Described) -> None:
    """The note `clbias train` writes beside its checkpoint; sentence-transformers files win over it."""
    note = _object(path)
    prefixes = note.get("prefixes") or {}
    for key, value in (("query_prefix", prefixes.get("query")), ("passage_prefix", prefixes.get("passage")),
                       ("pooling", note.get("pooling")), ("normalize", note.get("normalize")),
                       ("max_length", note.get("max_length"))):
        if value is not None and key not in found.values:
            found.set(key, value, f"{path} ({key.replace('_prefix', ' prefix')})")


def resolve(src: str | Path, *, pooling: str | None = None, normalize: bool | None = None,
            query_prefix: str | None = None, passage_prefix: str | None = None, max_length: int | None = None
            ) -> tuple[str, bool, Prefixes, int | None, dict[str, str]]:
    """Given values, else what SRC states, else defaults (e5-style prefixes for a name with 'e5' in it).

    max_length may stay None: the exporter then takes it from the tokenizer and config."""
    found = describe(src)
    sources: dict[str, str] = {}

    def pick(key: str, given: Any, fallback: Any, fallback_source: str) -> Any:
        if given is not None:
            sources[key] = "given"
            return given
        if key in found.values:
            sources[key] = found.sources[key]
            return found.values[key]
        if fallback is not None:
            sources[key] = fallback_source
        return fallback

    e5 = "e5" in Path(src).name.lower()
    chosen_pooling = pick("pooling", pooling, DEFAULTS["pooling"], "default")
    chosen_normalize = pick("normalize", normalize, DEFAULTS["normalize"], "default")
    query = pick("query_prefix", query_prefix, "query: " if e5 else "",
                 "guessed: 'e5' in the name" if e5 else "default (none)")
    passage = pick("passage_prefix", passage_prefix, "passage: " if e5 else "",
                   "guessed: 'e5' in the name" if e5 else "default (none)")
    length = pick("max_length", max_length, None, "")
    return chosen_pooling, bool(chosen_normalize), Prefixes(query, passage), length, sources
