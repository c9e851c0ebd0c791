"""Write small corpora for tests."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence


def write_corpus(root: Path, docs: Sequence[dict[str, Any]], queries: Sequence[dict[str, Any]] = (),
                 qrels: Sequence[tuple[str, str, int]] = (), meta: dict[str, Any] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    if queries:
        (root / "queries.jsonl").write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries),
                                            encoding="utf-8")
    if qrels:
        (root / "qrels").mkdir(exist_ok=True)
        (root / "qrels" / "test.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels), encoding="utf-8")
    if meta is not None:
        (root / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


PARALLEL = {
    "u1": {"en": "The cat sleeps on the warm windowsill all afternoon.",
           "de": "Die Katze schläft den ganzen Nachmittag auf der warmen Fensterbank."},
    "u2": {"en": "Trains to the airport leave every fifteen minutes.",
           "de": "Züge zum Flughafen fahren alle fünfzehn Minuten."},
    "u3": {"en": "Fresh bread is baked in the village every morning.",
           "de": "Im Dorf wird jeden Morgen frisches Brot gebacken."},
    "u4": {"en": "The river floods the meadows every spring.",
           "de": "Der Fluss überschwemmt jeden Frühling die Wiesen."},
}
QUERIES = {
    "u1": {"en": "where does the cat sleep", "de": "wo schläft die Katze"},
    "u2": {"en": "how often do airport trains leave", "de": "wie oft fahren Züge zum Flughafen"},
    "u3": {"en": "when is bread baked", "de": "wann wird Brot gebacken"},
    "u4": {"en": "what floods in spring", "de": "was überschwemmt im Frühling"},
}


def parallel_corpus(root: Path) -> Path:
    """A tiny en+de parallel corpus: 4 units, queries in both languages, qrels to the same-language doc."""
    docs = [{"_id": f"{u}-{lang}", "text": text, "lang": lang, "parallel_id": u}
            for u, by_lang in PARALLEL.items() for lang, text in by_lang.items()]
    queries = [{"_id": f"q-{u}-{lang}", "text": text, "lang": lang}
               for u, by_lang in QUERIES.items() for lang, text in by_lang.items()]
    qrels = [(f"q-{u}-{lang}", f"{u}-{lang}", 1) for u in QUERIES for lang in ("en", "de")]
    return write_corpus(root, docs, queries, qrels, {"name": "tiny-parallel", "parallel": "human",
                                                     "query_derivation": "hand-written questions"})
