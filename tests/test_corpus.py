
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
