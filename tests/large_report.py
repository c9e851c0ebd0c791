"""A real audit at the size where reports used to break: 1,200 parallel units in en, de and fr, so every Multi
row has 1,200 queries, audited with the tiny ONNX model (seconds, no torch).

`python tests/large_report.py OUT.png` also renders it with headless Chromium and saves the screenshot the
documentation shows (docs/img/report-1200-queries.png): the top 2,000 px, down to the rank plots.
"""
from __future__ import annotations

import sys
from pathlib import Path

from corpus_factory import write_corpus

UNITS = 1200
WORDS = {
    "en": ["cat", "train", "bread", "river", "window", "garden", "music", "winter", "market", "letter", "bridge",
           "school", "doctor", "forest", "kitchen", "island"],
    "de": ["Katze", "Zug", "Brot", "Fluss", "Fenster", "Garten", "Musik", "Winter", "Markt", "Brief", "Brücke",
           "Schule", "Arzt", "Wald", "Küche", "Insel"],
    "fr": ["chat", "train", "pain", "rivière", "fenêtre", "jardin", "musique", "hiver", "marché", "lettre", "pont",
           "école", "médecin", "forêt", "cuisine", "île"],
}
FRAMES = {"en": ("The {a} near the {b} is number {n}.", "which {a} is near the {b} {n}"),
          "de": ("Die {a} bei der {b} ist Nummer {n}.", "welche {a} ist bei der {b} {n}"),
          "fr": ("Le {a} près du {b} est le numéro {n}.", "quel {a} est près du {b} {n}")}


def large_corpus(root: Path, units: int = UNITS) -> Path:
    docs, queries, qrels = [], [], []
    for u in range(units):
        a, b = u % 16, (u * 7 + 3) % 16
        for lang, (doc, query) in FRAMES.items():
            words = WORDS[lang]
            docs.append({"_id": f"u{u}-{lang}", "lang": lang, "parallel_id": f"u{u}",
                         "text": doc.format(a=words[a], b=words[b], n=u)})
            queries.append({"_id": f"q{u}-{lang}", "lang": lang, "parallel_id": f"q{u}",
                            "text": query.format(a=words[a], b=words[b], n=u)})
            qrels.append((f"q{u}-{lang}", f"u{u}-{lang}", 1))
    return write_corpus(root, docs, queries, qrels, {"name": "large-parallel", "parallel": "human"})


def main(out: Path) -> None:
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    from clbias.api import audit_corpus, load_model
    from clbias.report.render_html import write_html
    from test_html_scale import screenshot
    from tiny_onnx import build_tiny_onnx_dir

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = build_tiny_onnx_dir(work / "tiny", prefixes={"query": "query: ", "passage": "passage: "})
        corpus = large_corpus(work / "corpus")
        models = [load_model(model), load_model(model, onnx="model.int8.onnx")]
        report = audit_corpus(corpus, models, bootstrap=50, cache_dir=work / "cache", scenarios=["multi", "mono-same"])
        page = work / "report.html"
        write_html(report, page)
        screenshot(page, out, work, size=(1400, 2000))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
