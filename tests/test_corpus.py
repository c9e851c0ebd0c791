
from pathlib import Path

import pytest

from clbias.corpus import load_corpus
from clbias.errors import InputError
from clbias.scenarios import build_scenarios
from corpus_factory import parallel_corpus, write_corpus


def test_loads_parallel_corpus(tmp_path):
    corpus = load_corpus(parallel_corpus(tmp_path / "c"))
    assert len(corpus.docs) == 8 and len(corpus.queries) == 8
    assert corpus.doc_langs == ["de", "en"]
    assert corpus.split == "test"
    rel = corpus.relevant_docs()
    assert rel["q-u1-de"] == {"u1-de", "u1-en"}
    assert corpus.relevant_docs(expand_translations=False)["q-u1-de"] == {"u1-de"}


def test_language_tags_are_normalised(tmp_path):
    root = write_corpus(tmp_path / "c", [{"_id": "a", "text": "x", "lang": "EN-us"},
                                         {"_id": "b", "text": "y", "lang": "zh_hans"}])
    assert [d.lang for d in load_corpus(root).docs] == ["en", "zh-Hans"]


def _error(root) -> InputError:
    with pytest.raises(InputError) as info:
        load_corpus(root)
    return info.value


@pytest.mark.parametrize("line, field, reason", [
    ('{"_id": "a", "lang": "en"}', "text", "missing"),
    ('{"text": "x", "lang": "en"}', "_id", "missing"),
    ('{"_id": "a", "text": "x"}', "lang", "missing"),
    ('{"_id": "a", "text": "x", "lang": "xx"}', "lang", "unknown language"),
    ('{"_id": "a", "text": 5, "lang": "en"}', "text", "expected a string"),
])
def test_bad_document_fields_are_located(tmp_path, line, field, reason):
    root = tmp_path / "c"
    root.mkdir()
    (root / "corpus.jsonl").write_text('{"_id": "ok", "text": "fine", "lang": "en"}\n' + line + "\n")
    err = _error(root)
    assert err.line == 2 and err.field == field and reason in str(err)
    assert str(err).startswith(str(root / "corpus.jsonl") + ":2")


def test_malformed_json_invalid_utf8_duplicate_ids(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    (root / "corpus.jsonl").write_text('{"_id": "a", "text": "x", "lang": "en"}\n{"_id": "b", "text": \n')
    assert "malformed JSON" in str(_error(root)) and _error(root).line == 2
    (root / "corpus.jsonl").write_bytes(b'{"_id": "a", "text": "\xff", "lang": "en"}\n')
    assert "invalid UTF-8" in str(_error(root))
    (root / "corpus.jsonl").write_text('{"_id": "a", "text": "x", "lang": "en"}\n{"_id": "a", "text": "y", "lang": "en"}\n')
    err = _error(root)
    assert "duplicate" in str(err) and err.line == 2 and err.field == "_id"


def test_empty_corpus_and_missing_dir(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    (root / "corpus.jsonl").write_text("\n")
    assert "empty corpus" in str(_error(root))
    assert "not found" in str(_error(tmp_path / "nope"))


def test_qrels_naming_unknown_ids(tmp_path):
    root = parallel_corpus(tmp_path / "c")
    with open(root / "qrels" / "test.tsv", "a") as fh:
        fh.write("q-u1-en\tnope\t1\n")
    err = _error(root)
    assert err.field == "corpus-id" and err.line == 10 and "nope" in str(err)
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nghost\tu1-en\t1\n")
    assert _error(root).field == "query-id"


def test_scenarios_from_parallel_corpus(tmp_path):
    corpus = load_corpus(parallel_corpus(tmp_path / "c"))
    scenarios, notes = build_scenarios(corpus)
    labels = [s.label for s in scenarios]
    assert "multi [en+de] q=en" in labels and "multi [en+de] q=de" in labels
    assert "mono-same [de] q=de" in labels and "mono-cross [en] q=de" in labels and "full [de+en] q=de" in labels
    multi_de = next(s for s in scenarios if s.label == "multi [en+de] q=de")
    assert len(multi_de.pool) == 8 and len(multi_de.queries) == 4
    assert all(len(r) == 2 for r in multi_de.relevant)  # both language versions are relevant
    cross = next(s for s in scenarios if s.label == "mono-cross [en] q=de")
    assert all(len(r) == 1 for r in cross.relevant) and len(cross.pool) == 4
    only_multi, _ = build_scenarios(corpus, ["multi"], ["de"])
    assert {s.kind for s in only_multi} == {"multi"}


def test_scenario_without_judged_queries_is_skipped_with_note(tmp_path):
    corpus = load_corpus(parallel_corpus(tmp_path / "c"))
    scenarios, notes = build_scenarios(corpus, ["mono-cross"], expand_translations=False)
    assert scenarios == [] and len(notes) == 2 and all("skipped" in n for n in notes)


def partially_parallel_corpus(root, third_lang: bool = False):
    """The 4 parallel en/de units plus documents without a translation: 3 English pages with no parallel_id,
    an English page whose unit has no German version, a German page alone; queries on every one of them."""
    from corpus_factory import PARALLEL, QUERIES, write_corpus

    docs = [{"_id": f"{u}-{lang}", "text": text, "lang": lang, "parallel_id": u}
            for u, by_lang in PARALLEL.items() for lang, text in by_lang.items()]
    extra = [("solo-en-1", "en", None, "The museum opens at nine."), ("solo-en-2", "en", None, "Buses stop at night."),
             ("solo-en-3", "en", None, "Snow closed the pass."), ("u5-en", "en", "u5", "Bees make honey in summer."),
             ("solo-de-1", "de", None, "Der Markt ist sonntags geschlossen.")]
    docs += [{"_id": i, "text": t, "lang": lang, **({"parallel_id": pid} if pid else {})} for i, lang, pid, t in extra]
    if third_lang:
        docs += [{"_id": "u1-fr", "text": "Le chat dort sur le rebord chaud.", "lang": "fr", "parallel_id": "u1"},
                 {"_id": "u2-fr", "text": "Les trains partent toutes les quinze minutes.", "lang": "fr",
                  "parallel_id": "u2"},
                 {"_id": "solo-fr-1", "text": "La bibliothèque ferme tôt.", "lang": "fr"}]
    queries = [{"_id": f"q-{u}-{lang}", "text": text, "lang": lang}
               for u, by_lang in QUERIES.items() for lang, text in by_lang.items()]
    queries += [{"_id": f"q-{i}", "text": t.lower(), "lang": lang} for i, lang, _, t in extra]
    qrels = [(f"q-{u}-{lang}", f"{u}-{lang}", 1) for u in QUERIES for lang in ("en", "de")]
    qrels += [(f"q-{i}", i, 1) for i, _, _, _ in extra]
    return write_corpus(root, docs, queries, qrels, {"name": "partial", "parallel": "human"})


def test_multi_pools_hold_only_the_parallel_units(tmp_path):
    """method.md section 8: 4 parallel en/de units plus 5 untranslated documents give Multi pools of exactly the
    8 documents of the 4 units (|R| = 2); the corpus as it is (13 documents) is `full` here, so `multi-all`,
    which would repeat it, is not scored twice."""
    corpus = load_corpus(partially_parallel_corpus(tmp_path / "c"))
    scenarios, notes = build_scenarios(corpus)
    by_label = {s.label: s for s in scenarios}
    for q in ("en", "de"):
        multi = by_label[f"multi [en+de] q={q}"]
        assert len(multi.pool) == 8 and {corpus.docs[i].parallel_id for i in multi.pool} == {"u1", "u2", "u3", "u4"}
        assert len(multi.queries) == 4 and all(len(r) == 2 for r in multi.relevant)
    assert by_label["multi [en+de] q=en"].skipped_queries == 4  # the queries of the 4 untranslated English pages
    assert len(by_label["full [de+en] q=en"].pool) == 13
    assert not any(s.kind == "multi-all" for s in scenarios)
    assert any("multi-all [en+de]: the same documents as full [de+en]" in n for n in notes)
    only, _ = build_scenarios(corpus, ["multi-all"])
    assert {len(s.pool) for s in only} == {13} and {s.query_lang for s in only} == {"en", "de"}


def test_multi_all_beside_parallel_pools_with_three_languages(tmp_path):
    corpus = load_corpus(partially_parallel_corpus(tmp_path / "c", third_lang=True))
    scenarios, _ = build_scenarios(corpus, ["multi", "multi-all", "multi-n"])
    by_label = {s.label: s for s in scenarios}
    assert len(by_label["multi [en+fr] q=en"].pool) == 4  # u1 and u2 exist in French
    assert len(by_label["multi-all [en+fr] q=en"].pool) == 8 + 3  # all en (4 units, u5, 3 alone) + all fr (2 + 1 alone)
    assert len(by_label["multi-all [en+de] q=de"].pool) == 8 + 5  # all en (8) + all de (4 units + 1 alone)
    grown = by_label["multi-n [en+de+fr] q=de"]
    assert len(grown.pool) == 6 and {corpus.docs[i].parallel_id for i in grown.pool} == {"u1", "u2"}


def test_without_parallel_id_multi_is_skipped_and_says_where_to_look(tmp_path):
    from corpus_factory import write_corpus

    root = write_corpus(tmp_path / "c", [{"_id": "a", "text": "cats sleep", "lang": "en"},
                                         {"_id": "b", "text": "Katzen schlafen", "lang": "de"}],
                        [{"_id": "qa", "text": "cat", "lang": "en"}, {"_id": "qb", "text": "Katze", "lang": "de"}],
                        [("qa", "a", 1), ("qb", "b", 1)])
    scenarios, notes = build_scenarios(load_corpus(root), ["multi", "multi-all"])
    assert {s.kind for s in scenarios} == {"multi-all"}
    assert any("multi [en+de] q=de: skipped, no parallel unit" in n and "multi-all" in n for n in notes)


def test_a_fully_parallel_corpus_gets_one_repeat_note_not_one_per_language():
    """UDHR is parallel in every language, so each `multi-all` pool repeats `multi`: one line names them all."""
    corpus = load_corpus(Path(__file__).parent.parent / "examples" / "udhr")
    scenarios, notes = build_scenarios(corpus)
    repeats = [n for n in notes if "not scored twice" in n]
    assert len(repeats) == 1
    assert repeats[0].startswith("multi-all: the same documents as multi for ")
    assert "en+X, X = ar, de, " in repeats[0] and repeats[0].count(",") >= 10
    assert not any(s.kind == "multi-all" for s in scenarios)
