"""Issue 10 items 2, 8, 9, 10: qrels scores and formats, BOMs, lone surrogates, non-object JSON, one reader."""
import codecs
import json
import math

import pytest

from clbias.cli.embed import read_texts
from clbias.corpus import load_corpus, read_records
from clbias.errors import InputError, ModelError
from clbias.runtime.manifest import load_manifest
from corpus_factory import parallel_corpus


def _error(root) -> InputError:
    with pytest.raises(InputError) as info:
        load_corpus(root)
    return info.value


def _qrels(root, text: str, name: str = "test.tsv"):
    for old in (root / "qrels").iterdir():
        old.unlink()
    (root / "qrels" / name).write_text(text, encoding="utf-8")
    return root


def test_fractional_scores_are_relevant_and_zero_or_negative_are_not(tmp_path):
    root = _qrels(parallel_corpus(tmp_path / "c"),
                  "query-id\tcorpus-id\tscore\nq-u1-de\tu1-de\t0.7\nq-u2-de\tu2-de\t0\nq-u3-de\tu3-de\t-1\n")
    corpus = load_corpus(root)
    assert corpus.qrels["q-u1-de"] == {"u1-de": 0.7}
    rel = corpus.relevant_docs(expand_translations=False)
    assert rel["q-u1-de"] == {"u1-de"} and rel["q-u2-de"] == set() and rel["q-u3-de"] == set()


@pytest.mark.parametrize("score", ["inf", "-inf", "nan", "NaN", "high", "1,5"])
def test_non_finite_or_non_numeric_scores_are_located_errors(tmp_path, score):
    root = _qrels(parallel_corpus(tmp_path / "c"), f"query-id\tcorpus-id\tscore\nq-u1-de\tu1-de\t1\nq-u2-de\tu2-de\t{score}\n")
    err = _error(root)
    assert err.line == 3 and err.field == "score" and repr(score) in str(err)
    assert str(err).startswith(f"{root / 'qrels' / 'test.tsv'}:3: field 'score'")


def test_trec_qrels_are_read_like_beir(tmp_path):
    beir = load_corpus(parallel_corpus(tmp_path / "beir"))
    trec_root = parallel_corpus(tmp_path / "trec")
    rows = [line.split("\t") for line in (trec_root / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    _qrels(trec_root, "".join(f"{q}  0 {d}\t{s}\n" if i % 2 else f"{q} 0 {d} {s}\n" for i, (q, d, s) in enumerate(rows)),
           name="test.txt")
    trec = load_corpus(trec_root)
    assert trec.qrels == beir.qrels and trec.split == "test" and len(trec.qrels) == 8


def test_qrels_header_with_other_names_says_which_format_was_expected(tmp_path):
    err = _error(_qrels(parallel_corpus(tmp_path / "c"), "qid\tdocid\trel\nq-u1-de\tu1-de\t1\n"))
    assert err.line == 1 and "query-id<TAB>corpus-id<TAB>score" in str(err) and "'qid docid rel'" in str(err)
    err = _error(_qrels(parallel_corpus(tmp_path / "d"), "qid iter docid rel\nq-u1-de 0 u1-de 1\n"))
    assert err.line == 1 and "TREC" in str(err) and "no header" in str(err)


def test_mixed_shapes_and_wrong_column_counts_are_errors(tmp_path):
    err = _error(_qrels(parallel_corpus(tmp_path / "c"), "q-u1-de 0 u1-de 1\nq-u2-de\tu2-de\t1\n"))
    assert err.line == 2 and "TREC" in str(err)
    err = _error(_qrels(parallel_corpus(tmp_path / "d"), "q-u1-de u1-de\n"))
    assert err.line == 1 and "got 2" in str(err)


def test_conflicting_duplicate_judgements_name_both_lines(tmp_path):
    root = _qrels(parallel_corpus(tmp_path / "c"),
                  "query-id\tcorpus-id\tscore\nq-u1-de\tu1-de\t1\nq-u2-de\tu2-de\t1\nq-u1-de\tu1-de\t0\n")
    err = _error(root)
    assert err.line == 4 and "line 2" in str(err) and "line 4" in str(err) and "conflicting" in str(err)
    same = _qrels(parallel_corpus(tmp_path / "d"), "query-id\tcorpus-id\tscore\nq-u1-de\tu1-de\t1\nq-u1-de\tu1-de\t1.0\n")
    assert load_corpus(same).qrels == {"q-u1-de": {"u1-de": 1.0}}  # a repeated identical judgement is harmless


def test_utf8_bom_is_accepted_in_every_input_file(tmp_path):
    plain = load_corpus(parallel_corpus(tmp_path / "plain"))
    root = parallel_corpus(tmp_path / "bom")
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "meta.json"):
        path = root / name
        path.write_bytes(codecs.BOM_UTF8 + path.read_bytes())
    with_bom = load_corpus(root)
    assert [d.id for d in with_bom.docs] == [d.id for d in plain.docs]
    assert with_bom.qrels == plain.qrels and with_bom.meta == plain.meta


@pytest.mark.parametrize("field", ["text", "_id", "title", "parallel_id"])
def test_lone_surrogates_are_located_errors(tmp_path, field):
    record = {"_id": "b", "text": "fine", "lang": "en", field: "bad \ud800 text"}
    root = tmp_path / "c"
    root.mkdir()
    rows = [{"_id": "a", "text": "ok", "lang": "en"}, record]
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))  # ASCII: "\ud800" escaped
    err = _error(root)
    assert err.line == 2 and err.field == field and "surrogate" in str(err) and "\\ud800" in str(err)


@pytest.mark.parametrize("meta", ["[1, 2]", '"name"', "3"])
def test_meta_json_must_be_an_object(tmp_path, meta):
    root = parallel_corpus(tmp_path / "c")
    (root / "meta.json").write_text(meta)
    err = _error(root)
    assert str(root / "meta.json") in str(err) and "expected a JSON object" in str(err)


@pytest.mark.parametrize("manifest", ["[]", '"x"', '{"schema": "clbias.model/1", "name": "m", "files": [], "onnx": "m"}'])
def test_model_manifest_that_is_not_an_object_is_a_model_error(tmp_path, manifest):
    (tmp_path / "clbias.json").write_text(manifest)
    with pytest.raises(ModelError) as info:
        load_manifest(tmp_path)
    assert str(tmp_path / "clbias.json") in str(info.value) and "\n" not in str(info.value)


def test_embed_reads_texts_with_the_corpus_reader(tmp_path):
    texts = tmp_path / "t.jsonl"
    texts.write_text('{"_id": 7, "text": "seven"}\n{"_id": "t2", "text": "two", "title": "Title", "lang": "DE"}\n')
    assert read_texts(texts, "passage") == (["7", "t2"], ["seven", "Title. two"])
    assert read_texts(texts, "query") == (["7", "t2"], ["seven", "two"])
    assert [r.lang for r in read_records(texts, "text", require_lang=False)] == ["", "de"]
    for bad, field in [('{"_id": "a", "text": "  "}', "text"), ('{"_id": "a", "text": "x", "lang": "xx"}', "lang"),
                       ('{"_id": "a", "text": "\\udfff"}', "text"), ('{"_id": "", "text": "x"}', "_id")]:
        texts.write_text(bad + "\n")
        with pytest.raises(InputError) as info:
            read_texts(texts)
        assert info.value.field == field and info.value.line == 1, bad


def test_embed_cli_rejects_what_audit_rejects_before_loading_a_model(tmp_path, capsys):
    from clbias.cli import main

    texts = tmp_path / "t.jsonl"
    texts.write_text('{"_id": "a", "text": ""}\n')
    assert main(["embed", str(texts), "--model", str(tmp_path / "no-model"), "--out", str(tmp_path / "v.npy")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{texts}:1: field 'text': empty text" in err[0]
    assert not (tmp_path / "v.npy").exists()


def test_scores_are_floats_through_relevance(tmp_path):
    root = _qrels(parallel_corpus(tmp_path / "c"), "q-u1-de\tu1-de\t2.5\n")  # no header: BEIR rows only
    corpus = load_corpus(root)
    assert math.isclose(corpus.qrels["q-u1-de"]["u1-de"], 2.5) and json.dumps(corpus.qrels)
