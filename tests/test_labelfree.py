"""Audits without qrels (twin probes from parallel_id, or neighbour mix only) and multi-n pools."""
import json

import numpy as np

from clbias.api import audit_corpus
from clbias.corpus import load_corpus
from clbias.labelfree import neighbour_mix, twin_probes
from clbias.scenarios import build_scenarios
from corpus_factory import PARALLEL, write_corpus

FR = {"u1": "Le chat dort tout l'après-midi sur le rebord chaud de la fenêtre.",
      "u2": "Les trains pour l'aéroport partent toutes les quinze minutes.",
      "u3": "Du pain frais est cuit au village chaque matin.",
      "u4": "La rivière inonde les prairies chaque printemps."}


def translation_memory(root, with_parallel=True):
    docs = [{"_id": f"{u}-{lang}", "text": text, "lang": lang, **({"parallel_id": u} if with_parallel else {})}
            for u, by_lang in PARALLEL.items() for lang, text in {**by_lang, "fr": FR[u]}.items()]
    return write_corpus(root, docs)


def test_twin_probes_exclude_the_source_document(tmp_path):
    corpus = twin_probes(load_corpus(translation_memory(tmp_path / "tm")))
    assert len(corpus.queries) == 12
    assert corpus.qrels["twin:u1-de"] == {"u1-en": 1, "u1-fr": 1}
    scenarios, _ = build_scenarios(corpus, ["multi"])
    s = next(s for s in scenarios if s.label == "multi [en+de] q=de")
    pool_ids = [corpus.docs[i].id for i in s.pool]
    for qi, excluded, relevant in zip(s.queries, s.excluded, s.relevant):
        source = corpus.queries[qi].id.removeprefix("twin:")
        assert [pool_ids[e] for e in excluded] == [source]
        assert source not in [pool_ids[r] for r in relevant]


def test_label_free_audit_with_parallel_ids(tmp_path, tiny_model_dir):
    report = audit_corpus(translation_memory(tmp_path / "tm"), [tiny_model_dir], bootstrap=50)
    assert report.corpus["label_free"] is True and "twin probes" in report.notes[0]
    multi = next(s for s in report.scenarios if s.name == "multi [en+de] q=de")
    assert multi.n_queries == 4
    # the source document is never in its own ranking: every top list is free of it
    for qid, docs, _ in multi.by_model[report.model.name].run:
        assert qid.removeprefix("twin:") not in docs
    assert multi.metrics["max_r"] is not None and 1 <= multi.metrics["max_r"] <= 7


def test_label_free_audit_without_parallel_ids_shows_neighbour_mix(tmp_path, tiny_model_dir):
    report = audit_corpus(translation_memory(tmp_path / "tm", with_parallel=False), [tiny_model_dir], bootstrap=50)
    assert report.scenarios == []
    assert report.neighbours["langs"] == ["de", "en", "fr"]
    for lang, row in report.neighbours["mix"].items():
        assert abs(sum(row.values()) - 100) < 0.1
    assert "cannot be computed" in report.notes[0]
    assert json.loads(json.dumps(report.to_json()))["neighbours"]["k"] == report.neighbours["k"]


def test_neighbour_mix_counts_languages_of_neighbours():
    # two clusters: en docs near each other, de docs near each other
    vecs = np.array([[1, 0], [0.99, 0.14], [0, 1], [0.14, 0.99]], dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    mix = neighbour_mix(vecs, np.array(["en", "en", "de", "de"], dtype=object), k=1)
    assert mix["mix"]["en"] == {"de": 0.0, "en": 100.0} and mix["mix"]["de"] == {"de": 100.0, "en": 0.0}
    assert mix["en_exposure"]["de"] == 0.0 and mix["en_exposure"]["en"] == 2.0


def test_multi_n_pools_grow_one_language_at_a_time(tmp_path, tiny_model_dir):
    root = translation_memory(tmp_path / "tm")
    corpus = twin_probes(load_corpus(root))
    scenarios, _ = build_scenarios(corpus, ["multi-n"])
    de = [s for s in scenarios if s.query_lang == "de"]
    assert [s.pool_langs for s in de] == [("en", "de", "fr")]
    assert len(de[0].pool) == 12
    report = audit_corpus(root, [tiny_model_dir], bootstrap=20, scenarios=["multi-n"])
    assert {s.kind for s in report.scenarios} == {"multi-n"}
