"""A tiny random-weight BERT with an XLM-R-style tokenizer, built deterministically for the export tests
(torch, Optimum). The tokenizer is shared with the torch-free tiny model of tests/tiny_onnx.py.

The tokenizer emits no token types (like XLM-R / multilingual-e5), while the BertModel graph takes
`token_type_ids`: the runtime must zero-fill that input (optimum #1500, #1758).
"""
from __future__ import annotations

import json
from pathlib import Path

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
MODEL_MAX_LENGTH = 96  # below max_position_embeddings (128): the exporter must take the smaller one

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "How much protein should a woman eat every day?",
    "Mount Everest is the highest mountain above sea level.",
    "Photosynthesis turns light into chemical energy.",
    "Wie viel Eiweiß sollte eine Frau pro Tag essen?",
    "Die Straße führt über die Brücke zum Bahnhof.",
    "Quelle est la capitale de la France ? C'est Paris.",
    "L'œuvre d'art a été exposée au musée du Louvre.",
    "¿Cuánta proteína debe comer una mujer al día?",
    "El niño pequeño comió una manzana y bebió zumo.",
    "Сколько белка должна есть женщина в день?",
    "Москва — столица России, крупнейший город страны.",
    "一个成年女性每天应该摄入多少蛋白质？",
    "珠穆朗玛峰是世界上海拔最高的山峰。",
    "東京は日本の首都であり、世界最大級の都市圏を持つ。",
    "서울은 대한민국의 수도이며 한강이 흐른다.",
    "كم من البروتين يجب أن تأكل المرأة يوميا؟",
    "القاهرة هي عاصمة جمهورية مصر العربية.",
    "एक महिला को प्रतिदिन कितना प्रोटीन खाना चाहिए?",
    "भारत की राजधानी नई दिल्ली है।",
    "ประเทศไทยมีเมืองหลวงชื่อกรุงเทพมหานคร",
    "Hà Nội là thủ đô của nước Việt Nam.",
    "İstanbul, Türkiye'nin en kalabalık şehridir.",
    "Nairobi ni mji mkuu wa Kenya.",
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
    "ירושלים היא עיר עתיקה עם היסטוריה ארוכה.",
    "Polska stolica to Warszawa; żółw i gęś.",
    "Suomen pääkaupunki on Helsinki.",
    "query: passage: numbers 0 1 2 3 4 5 6 7 8 9 and punctuation , . ; : ! ? ( ) - —",
]


def _pieces(max_pieces: int) -> list[tuple[str, float]]:
    """Unigram pieces from CORPUS by counting (no trainer: its float scores vary in the last bit
    between runs): every character with and without the word marker, whole words, then the most
    frequent 2-4 character substrings. Scores are log frequencies, rounded so the file is stable."""
    import math
    from collections import Counter

    counts: Counter[str] = Counter()
    for line in CORPUS:
        for word in line.split():
            marked = "\u2581" + word
            counts[marked] += 1
            for n in (1, 2, 3, 4):
                for i in range(len(marked) - n + 1):
                    counts[marked[i:i + n]] += 1
    chars = {p for p in counts if len(p) == 1 or (len(p) == 2 and p[0] == "\u2581")}
    rest = sorted((p for p in counts if p not in chars), key=lambda p: (-counts[p], p))
    chosen = sorted(chars) + rest[: max(0, max_pieces - len(chars))]
    total = sum(counts[p] for p in chosen)
    return [(p, round(math.log(counts[p] / total), 6)) for p in chosen]


def build_tokenizer(max_pieces: int = 1500):
    """Unigram + Metaspace (SentencePiece-like), `<s> $A </s>`, no token types in use."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = [(s, 0.0) for s in SPECIALS] + _pieces(max_pieces)
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=SPECIALS.index("<unk>")))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.add_special_tokens(SPECIALS)
    bos, eos = tokenizer.token_to_id("<s>"), tokenizer.token_to_id("</s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)])
    return tokenizer


def build_tiny_hf_dir(out: str | Path, seed: int = 0) -> Path:
    """Write config.json, model.safetensors, tokenizer.json and tokenizer_config.json to `out`."""
    import torch
    from transformers import BertConfig, BertModel

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    tokenizer.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
        "model_max_length": MODEL_MAX_LENGTH,
        "model_input_names": ["input_ids", "attention_mask"],
    }, indent=2), encoding="utf-8")
    config = BertConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                        pad_token_id=tokenizer.token_to_id("<pad>"), type_vocab_size=2)
    torch.manual_seed(seed)
    model = BertModel(config, add_pooling_layer=False).eval()
    model.save_pretrained(out, safe_serialization=True)
    return out
