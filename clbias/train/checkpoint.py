"""Checkpoints: the output directory *is* the latest checkpoint, replaced atomically each time.

    OUT/
      config.json, model.safetensors       Hugging Face save_pretrained: `clbias export OUT` takes it as is
      tokenizer.json, tokenizer_config.json, ...   copied from the base
      clbias.json            note: prefixes/pooling for `clbias export`, base, data, settings, step
      training/state.pt      optimiser, scheduler and RNG state (tensors only: read with weights_only)
      training/log.jsonl     one line per optimiser step: loss components and learning rate
      selected/              with `--select neutral`: the model of the validation step the rule chose (an HF
                             model dir with its own clbias.json; `clbias export OUT/selected`)
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

from ..errors import ModelError
from ..io import atomic_dir, is_model_dir
from ..runtime.manifest import MANIFEST_NAME
from .base import NOTE_SCHEMA

STATE_FILE = Path("training") / "state.pt"
SELECTED = "selected"
LOG_FILE = Path("training") / "log.jsonl"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "sentencepiece.bpe.model",
                   "spiece.model", "vocab.txt", "vocab.json", "merges.txt", "added_tokens.json")


def has_checkpoint(out: Path) -> bool:
    return (out / STATE_FILE).is_file() and (out / MANIFEST_NAME).is_file()


def read_note(out: Path) -> dict[str, Any]:
    path = out / MANIFEST_NAME
    try:
        note = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: unreadable checkpoint note ({exc})") from None
    if not isinstance(note, dict) or note.get("schema") != NOTE_SCHEMA:
        raise ModelError(f"{path}: field 'schema': not a clbias training checkpoint (expected {NOTE_SCHEMA!r})")
    return note


def read_log(out: Path) -> list[dict[str, Any]]:
    path = out / LOG_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_state(out: Path) -> dict[str, Any]:
    import torch

    try:
        return torch.load(out / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged or foreign file
        raise ModelError(f"{out / STATE_FILE}: unreadable training state ({type(exc).__name__})") from None


def save_checkpoint(out: Path, model: Any, tokenizer_dir: Path, note: dict[str, Any], state: dict[str, Any],
                    log: Sequence[dict[str, Any]]) -> None:
    import torch

    with atomic_dir(out, _checkpoint_dir) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        for name in TOKENIZER_FILES:
            if (tokenizer_dir / name).is_file():
                shutil.copyfile(tokenizer_dir / name, tmp / name)
        (tmp / "training").mkdir()
        torch.save(state, tmp / STATE_FILE)
        (tmp / LOG_FILE).write_text("".join(json.dumps(row) + "\n" for row in log), encoding="utf-8")
        (tmp / MANIFEST_NAME).write_text(json.dumps(note, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if (out / SELECTED).is_dir():  # carried over by hard links: the swap below replaces OUT as a whole
            shutil.copytree(out / SELECTED, tmp / SELECTED, copy_function=os.link)


def _checkpoint_dir(directory: Path) -> bool:
    """A training output: a model dir, or one holding only the selected model written before the first
    checkpoint (`--select neutral` can keep a validation step that comes before `save_every`)."""
    return is_model_dir(directory) or all(p.name == SELECTED for p in directory.iterdir())


def save_selected(out: Path, model: Any, tokenizer_dir: Path, note: dict[str, Any]) -> Path:
    """OUT/selected: the current weights as an exportable model dir, its note saying which step and why."""
    target = out / SELECTED
    with atomic_dir(target) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        for name in TOKENIZER_FILES:
            if (tokenizer_dir / name).is_file():
                shutil.copyfile(tokenizer_dir / name, tmp / name)
        (tmp / MANIFEST_NAME).write_text(json.dumps(note, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return target
