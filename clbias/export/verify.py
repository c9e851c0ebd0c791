"""Export-time checks: the ONNX graph, run through the runtime Encoder, must reproduce torch.

The torch side is an independent reference: its own tokenisation of the same tokenizer.json, one text at a
time (no padding), its own pooling. The ONNX side is the real runtime path (manifest prefixes, zero-filled
token types, length-sorted padded batches) run at several batch sizes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ModelError, first_line
from ..runtime.encoder import Encoder, Kind
from ..runtime.manifest import Prefixes

# Short sentences in many scripts, with a few longer ones so that padded batches mix lengths.
DEFAULT_SAMPLE: tuple[tuple[str, str], ...] = (
    ("en", "How much protein should a woman eat every day?"),
    ("en", "Photosynthesis converts light energy into chemical energy that is stored in glucose, "
           "which plants then use to grow, repair tissue and make seeds."),
    ("de", "Die Straße führt über die Brücke zum Bahnhof."),
    ("fr", "Quelle est la capitale de la France ? C'est Paris, bien sûr !"),
    ("es", "¿Cuánta proteína debe comer una mujer al día?"),
    ("pt", "São Paulo é a maior cidade do Brasil e uma das maiores do mundo."),
    ("it", "La pizza napoletana è patrimonio dell'umanità."),
    ("ru", "Москва — столица России, крупнейший город страны."),
    ("uk", "Київ є столицею України."),
    ("el", "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας."),
    ("zh", "珠穆朗玛峰是世界上海拔最高的山峰，位于中国和尼泊尔边境。"),
    ("ja", "東京は日本の首都であり、世界最大級の都市圏を持つ。"),
    ("ko", "서울은 대한민국의 수도이며 한강이 도시를 가로질러 흐른다."),
    ("ar", "القاهرة هي عاصمة جمهورية مصر العربية وأكبر مدنها."),
    ("he", "ירושלים היא עיר עתיקה עם היסטוריה ארוכה."),
    ("fa", "تهران پایتخت ایران است."),
    ("hi", "भारत की राजधानी नई दिल्ली है और यह एक विशाल देश है।"),
    ("bn", "বাংলাদেশের রাজধানী ঢাকা।"),
    ("ta", "தமிழ் ஒரு பழமையான மொழி ஆகும்."),
    ("th", "ประเทศไทยมีเมืองหลวงชื่อกรุงเทพมหานคร"),
    ("vi", "Hà Nội là thủ đô của nước Việt Nam."),
    ("tr", "İstanbul, Türkiye'nin en kalabalık şehridir."),
    ("sw", "Nairobi ni mji mkuu wa Kenya na ni kitovu cha biashara."),
    ("id", "Jakarta adalah ibu kota Indonesia."),
)
KINDS: tuple[Kind, ...] = ("query", "passage")


def sample(texts: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """(texts, language labels); user-given texts are labelled '?'."""
    if texts is None:
        return [t for _, t in DEFAULT_SAMPLE], [lang for lang, _ in DEFAULT_SAMPLE]
    texts = [t for t in texts if t.strip()]
    return texts, ["?"] * len(texts)


def tokenize(tokenizer_file: Path, texts: Sequence[str], prefix: str, max_length: int) -> list[list[int]]:
    """Token ids with the runtime's rule: no padding; if too long keep the first max_length-1 and the last."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    out = []
    for encoding in tokenizer.encode_batch([prefix + t for t in texts]):
        ids = encoding.ids
        out.append(ids if len(ids) <= max_length else ids[: max_length - 1] + ids[-1:])
    return out


def torch_embeddings(src: str | Path, tokenizer_file: Path, texts: Sequence[str], *, prefixes: Prefixes,
                     pooling: str, normalize: bool, max_length: int,
                     output_name: str = "last_hidden_state") -> dict[Kind, np.ndarray]:
    """Reference embeddings per kind from the source weights in torch, one text per forward pass.

    `graph` pooling takes the model output named `output_name` (Optimum names graph outputs after them)."""
    import inspect

    import torch
    from transformers import AutoModel

    try:
        model = AutoModel.from_pretrained(str(src)).eval()
    except Exception as exc:  # transformers raises OSError/ValueError/... for a bad model dir
        raise ModelError(f"{src}: torch cannot load the source model ({first_line(exc)})") from None
    takes_types = "token_type_ids" in inspect.signature(model.forward).parameters
    out: dict[Kind, np.ndarray] = {}
    with torch.inference_mode():
        for kind in KINDS:
            prefix = prefixes.query if kind == "query" else prefixes.passage
            rows = []
            for ids in tokenize(tokenizer_file, texts, prefix, max_length):
                input_ids = torch.tensor([ids], dtype=torch.long)
                kwargs: dict[str, Any] = {"attention_mask": torch.ones_like(input_ids)}
                if takes_types:
                    kwargs["token_type_ids"] = torch.zeros_like(input_ids)
                outputs = model(input_ids=input_ids, **kwargs)
                if pooling == "graph":
                    vector = _named_output(outputs, output_name, src)[0].double()
                else:
                    hidden = outputs.last_hidden_state[0].double()
                    vector = {"cls": hidden[0], "last": hidden[-1]}.get(pooling, hidden.mean(dim=0))
                if normalize:
                    vector = vector / vector.norm().clamp_min(1e-12)
                rows.append(vector.numpy())
            out[kind] = np.stack(rows)
    return out


def _named_output(outputs: Any, name: str, src: str | Path) -> Any:
    value = outputs.get(name) if hasattr(outputs, "get") else None
    if value is None:
        raise ModelError(f"{src}: the torch model has no output {name!r} to compare the graph's with")
    return value


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    num = (a * b).sum(axis=1)
    return num / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-300)


def summary(cosines: np.ndarray) -> dict[str, float]:
    return {"min_cosine": float(cosines.min()), "median_cosine": float(np.median(cosines))}


def batch_sizes(n: int) -> list[int]:
    """Batch 1, a small batch that mixes lengths, and everything in one padded batch."""
    return sorted({1, min(4, n), n})


def load_encoder(model_dir: Path, onnx: str, threads: int | None) -> Encoder:
    encoder = Encoder.load(model_dir, onnx=onnx, threads=threads, verify=False)
    for inp in encoder.session.get_inputs():
        if any(isinstance(d, int) for d in inp.shape[:2]):
            raise ModelError(f"{model_dir / onnx}: input {inp.name!r} has a fixed batch or sequence axis "
                             f"{inp.shape}; export with dynamic axes")
    return encoder


def onnx_parity(model_dir: Path, onnx: str, reference: dict[Kind, np.ndarray], texts: Sequence[str],
                tolerance: float, threads: int | None = None) -> dict[str, Any]:
    """Compare the runtime's embeddings of `onnx` with the torch reference; refuse below 1 - tolerance."""
    encoder = load_encoder(model_dir, onnx, threads)
    sizes = batch_sizes(len(texts))
    cosines = []
    for kind in KINDS:
        for size in sizes:
            got = encoder.encode(texts, kind=kind, batch_size=size)
            if got.shape != reference[kind].shape:
                raise ModelError(f"{model_dir / onnx}: embeddings have shape {got.shape}, torch gives "
                                 f"{reference[kind].shape}")
            cosines.append(row_cosines(got, reference[kind]))
    all_cos = np.concatenate(cosines)
    result = {"reference": "torch", "graph": onnx, "texts": len(texts), "kinds": list(KINDS),
              "batch_sizes": sizes, **summary(all_cos), "tolerance": tolerance}
    if not np.isfinite(all_cos).all() or all_cos.min() < 1.0 - tolerance:
        raise ModelError(f"{model_dir / onnx}: ONNX does not match torch: min cosine {all_cos.min():.7f} "
                         f"< {1.0 - tolerance:.7f} (tolerance {tolerance:g}); nothing was written")
    return result


def drift(model_dir: Path, base: str, other: str, texts: Sequence[str], langs: Sequence[str],
          threads: int | None = None, batch_size: int = 8) -> dict[str, Any]:
    """Cosine of `other` (e.g. the int8 graph) to `base` on the sample, overall and per language."""
    first, second = load_encoder(model_dir, base, threads), load_encoder(model_dir, other, threads)
    cos = [row_cosines(first.encode(texts, kind=kind, batch_size=batch_size),
                       second.encode(texts, kind=kind, batch_size=batch_size)) for kind in KINDS]
    per_text = np.minimum.reduce(cos)
    result: dict[str, Any] = {"drift_vs": base, "texts": len(texts), **summary(np.concatenate(cos))}
    if any(lang != "?" for lang in langs):
        result["per_language_min_cosine"] = {
            lang: round(float(min(c for c, l in zip(per_text, langs) if l == lang)), 6)
            for lang in dict.fromkeys(langs)}
    return result
