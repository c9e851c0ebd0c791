"""Tiny randomly initialised models of the architectures the paper's embedders use, built from configs.

XLM-RoBERTa (bge-m3, multilingual-e5-base) and a Qwen2 decoder (Qwen3-Embedding / e5-mistral style, last-token
pooling) with hidden size 32 and 2 layers, sharing the deterministic Unigram tokenizer of tests/tiny_model.py;
and sentence-transformers directories made by writing its JSON files next to a Hugging Face directory
(no sentence-transformers package needed).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tiny_model import MODEL_MAX_LENGTH, build_tokenizer

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


def _tokenizer_files(out: Path, *, pad: str | None, append_eos_only: bool = False) -> Any:
    from tokenizers import processors

    tokenizer = build_tokenizer()
    if append_eos_only:  # decoder embedders append an end token and pool it
        eos = tokenizer.token_to_id("</s>")
        tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                                 special_tokens=[("</s>", eos)])
    tokenizer.save(str(out / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
              "unk_token": "<unk>", "model_max_length": MODEL_MAX_LENGTH,
              "model_input_names": ["input_ids", "attention_mask"]}
    if pad is not None:
        config["pad_token"] = pad
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return tokenizer


def build_tiny_xlmr_dir(out: str | Path, seed: int = 0) -> Path:
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer_files(out, pad="<pad>")
    config = XLMRobertaConfig(vocab_size=tokenizer.get_vocab_size(), max_position_embeddings=130, type_vocab_size=1,
                              pad_token_id=tokenizer.token_to_id("<pad>"), bos_token_id=0, eos_token_id=2, **TINY)
    torch.manual_seed(seed)
    XLMRobertaModel(config, add_pooling_layer=False).eval().save_pretrained(out, safe_serialization=True)
    return out


def build_tiny_qwen2_dir(out: str | Path, seed: int = 0, pad: str | None = "</s>") -> Path:
    import torch
    from transformers import Qwen2Config, Qwen2Model

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer_files(out, pad=pad, append_eos_only=True)
    config = Qwen2Config(vocab_size=tokenizer.get_vocab_size(), num_key_value_heads=1, max_position_embeddings=128,
                         rope_theta=10000.0, tie_word_embeddings=False, use_cache=False,
                         bos_token_id=tokenizer.token_to_id("<s>"), eos_token_id=tokenizer.token_to_id("</s>"),
                         attn_implementation="eager", **TINY)
    torch.manual_seed(seed)
    Qwen2Model(config).eval().save_pretrained(out, safe_serialization=True)
    return out


def make_sentence_transformers_dir(hf_dir: Path, out: Path, *, pooling: dict[str, Any] | None = None,
                                   normalize: bool = True, prompts: Any = None, max_seq_length: int | None = 64,
                                   extra_modules: list[dict[str, Any]] | None = None,
                                   similarity: str | None = "cosine") -> Path:
    """A copy of HF_DIR with the files sentence-transformers writes (its save() layout)."""
    shutil.copytree(hf_dir, out)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    modules += extra_modules or []
    (out / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
    (out / "1_Pooling").mkdir()
    flags = {"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
             "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
             "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False, "include_prompt": True}
    (out / "1_Pooling" / "config.json").write_text(json.dumps({**flags, **(pooling or {})}, indent=2),
                                                   encoding="utf-8")
    if normalize:
        (out / "2_Normalize").mkdir()
    config: dict[str, Any] = {"__version__": {"sentence_transformers": "3.4.1"}, "default_prompt_name": None,
                              "similarity_fn_name": similarity}
    if prompts is not None:
        config["prompts"] = prompts
    (out / "config_sentence_transformers.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    if max_seq_length is not None:
        (out / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}), encoding="utf-8")
    return out
