"""The Quran probe builder (clbias.probes.quran): derivation, train/test split, errors, atomic writes."""
from __future__ import annotations

import json
import shutil
import tarfile
from collections import defaultdict
from pathlib import Path

import pytest
from npm_sources import npm_tarball

from clbias.cli import main
from clbias.corpus import load_corpus
from clbias.errors import InputError
from clbias.probes import common

from clbias.probes.quran import (PASSAGE_MIN_EN_CHARS, QURAN_LANGS, QURAN_PACKAGE, QURAN_VERSION, Book,
                                 build_quran, clean_verse, derive_units, source_file, split_units)

LANGS = ["en", "ar", "tr", "zh"]  # tr: the translation with joint renderings of verse runs
SMALL = {"test_units": 40, "distractor_units": 60, "train_units": 100, "seed": 1}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_qrels(path: Path) -> list[tuple[str, str, int]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "query-id\tcorpus-id\tscore"
    return [(qid, did, int(score)) for qid, did, score in (line.split("\t") for line in lines[1:])]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def quran_tarball() -> Path:
    return npm_tarball(QURAN_PACKAGE, QURAN_VERSION, "the Quran probe set")


@pytest.fixture(scope="session")
def quran_extracted(quran_tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's whole-book files only (not its 7,500 per-chapter and per-verse files)."""
    root = tmp_path_factory.mktemp("quran-extracted")
    wanted = {f"package/{source_file(lang)}" for lang in QURAN_LANGS} | {"package/LICENSE.txt"}
    with tarfile.open(quran_tarball) as tar:
        for member in tar.getmembers():
            if member.name in wanted:
                target = root / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                handle = tar.extractfile(member)
                assert handle is not None
                target.write_bytes(handle.read())
    return root / "package"


@pytest.fixture(scope="session")
def small_set(quran_extracted: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_quran(quran_extracted, tmp_path_factory.mktemp("built") / "quran-small", LANGS, **SMALL)


def package_copy(extracted: Path, tmp_path: Path, langs: list[str]) -> Path:
    """A package folder with only the files of `langs` (and the licence), to damage in a test."""
    dist = tmp_path / "package" / "dist"
    dist.mkdir(parents=True)
    for lang in langs:
        shutil.copyfile(extracted / source_file(lang), tmp_path / "package" / source_file(lang))
    shutil.copyfile(extracted / "LICENSE.txt", tmp_path / "package" / "LICENSE.txt")
    return tmp_path / "package"


# --------------------------------------------------------------------------- the built set


def test_built_set_is_well_formed(small_set: Path) -> None:
    docs = read_jsonl(small_set / "corpus.jsonl")
    queries = read_jsonl(small_set / "queries.jsonl")
    qrels = read_qrels(small_set / "qrels" / "test.tsv")
    doc_by_id = {d["_id"]: d for d in docs}
    query_by_id = {q["_id"]: q for q in queries}
    assert len(doc_by_id) == len(docs) and len(query_by_id) == len(queries), "duplicate ids"
    assert len(set(qrels)) == len(qrels)
    for qid, did, score in qrels:
        assert qid in query_by_id and did in doc_by_id and score == 1

    for rows in (docs, queries):  # every unit and every query group in every language, once
        langs_by_unit: dict[str, list[str]] = defaultdict(list)
        for row in rows:
            langs_by_unit[row["parallel_id"]].append(row["lang"])
        assert all(sorted(langs) == sorted(LANGS) for langs in langs_by_unit.values())
    meta = json.loads((small_set / "meta.json").read_text(encoding="utf-8"))
    assert len({d["parallel_id"] for d in docs}) == meta["test_units"] + meta["distractor_units"]
    assert meta["test_units"] + len(meta["test_units_dropped"]) == SMALL["test_units"]
    assert meta["distractor_units"] == SMALL["distractor_units"] and meta["train_units"] == SMALL["train_units"]
    assert meta["parallel"] == "human" and meta["languages"] == LANGS
    assert meta["documents"] == len(docs) and meta["queries"] == len(queries)

    relevant: dict[str, set[str]] = defaultdict(set)
    for qid, did, _ in qrels:
        relevant[qid].add(did)
    pool_by_lang: dict[str, list[str]] = defaultdict(list)
    for doc in docs:
        pool_by_lang[doc["lang"]].append(doc["text"])
    for query in queries:
        rel_docs = [doc_by_id[d] for d in relevant[query["_id"]]]
        assert sorted(d["lang"] for d in rel_docs) == sorted(LANGS)  # both versions for the Multi scenario
        assert {d["parallel_id"] for d in rel_docs} == {query["parallel_id"].removeprefix("q-")}
        assert all(query["text"] not in text for text in pool_by_lang[query["lang"]]), query["_id"]
    corpus = load_corpus(small_set)  # and the audit's own loader accepts it
    assert len(corpus.docs) == len(docs)


def test_licence_note_attributes_every_text(small_set: Path) -> None:
    licence = (small_set / "LICENSE.md").read_text(encoding="utf-8")
    assert "CC BY-SA 4.0" in licence and "Attribution-ShareAlike 4.0 International" in licence
    assert "Risan Bagja Pradana" in licence and "Saheeh International" in licence and "Diyanet" in licence
    assert "Changes made" in licence


def test_train_units_never_reach_the_pool(small_set: Path) -> None:
    train = read_jsonl(small_set / "train.jsonl")
    assert len(train) == SMALL["train_units"]
    train_ids = {row["parallel_id"] for row in train}
    for row in train:
        assert sorted(row["texts"]) == sorted(LANGS) and sorted(row["queries"]) == sorted(LANGS)
        assert all(row["texts"][lang].strip() and row["queries"][lang].strip() for lang in LANGS)
        assert all(row["queries"][lang] not in row["texts"][lang] for lang in LANGS)
    docs = read_jsonl(small_set / "corpus.jsonl")
    queries = read_jsonl(small_set / "queries.jsonl")
    assert not train_ids & {d["parallel_id"] for d in docs}
    assert not train_ids & {q["parallel_id"].removeprefix("q-") for q in queries}
    test_qrel_ids = {i for qid, did, _ in read_qrels(small_set / "qrels" / "test.tsv") for i in (qid, did)}
    assert not any(i.removeprefix("q-").rsplit("-", 1)[0] in train_ids for i in test_qrel_ids)
    pool_texts = {d["text"] for d in docs}
    assert not any(text in pool_texts for row in train for text in row["texts"].values())
    # qrels/train.tsv names exactly the training units, in every language pair
    train_qrels = read_qrels(small_set / "qrels" / "train.tsv")
    assert {did.rsplit("-", 1)[0] for _, did, _ in train_qrels} == train_ids
    assert len(train_qrels) == len(train) * len(LANGS) ** 2


def test_rebuild_is_byte_identical_from_tarball_and_folder(quran_tarball: Path, quran_extracted: Path,
                                                           small_set: Path, tmp_path: Path) -> None:
    again = build_quran(quran_tarball, tmp_path / "quran-small", LANGS, **SMALL)
    assert tree_bytes(again) == tree_bytes(small_set)


def test_seed_changes_the_split_not_the_units(quran_extracted: Path, small_set: Path, tmp_path: Path) -> None:
    other = build_quran(quran_extracted, tmp_path / "quran-small", LANGS, **{**SMALL, "seed": 2})
    meta_a = json.loads((small_set / "meta.json").read_text(encoding="utf-8"))
    meta_b = json.loads((other / "meta.json").read_text(encoding="utf-8"))
    assert meta_a["units"] == meta_b["units"]
    ids_a = {q["parallel_id"] for q in read_jsonl(small_set / "queries.jsonl")}
    ids_b = {q["parallel_id"] for q in read_jsonl(other / "queries.jsonl")}
    assert ids_a != ids_b


# --------------------------------------------------------------------------- the derivation itself


def book(verses: list[str]) -> Book:
    return {1: verses}


def test_units_hold_out_the_query_verse_and_skip_dishonest_queries() -> None:
    english = ["Ha, Meem",  # too short to be a query
               "This is the first real query verse",
               "short passage verse one", "short passage verse two", "short passage verse three",
               "A refrain that repeats itself here", "A refrain that repeats itself here",
               "Another honest query verse is this one", "x" * (PASSAGE_MIN_EN_CHARS + 5), "never reached"]
    turkish = [f"tr {i}" for i in range(len(english))]
    turkish[2] = turkish[3] = "tr joint rendering of two verses"
    units = derive_units({"en": book(english), "tr": book(turkish)})
    assert [(u.query_verse, u.passage_verses) for u in units] == [(2, (3, 5)), (8, (9, 9))]
    first = units[0]
    assert first.query == {"en": english[1], "tr": "tr 1"}
    assert first.passage["en"] == " ".join(english[2:5])
    assert first.passage["tr"] == "tr joint rendering of two verses tr 4"  # the joint text written once
    assert first.unit_id == "s001v002" and first.query_ref == "1:2" and first.passage_ref == "1:3-5"


def test_a_query_repeated_in_another_language_is_skipped() -> None:
    english = ["an honest query verse number one", "its passage", "second honest query verse here", "passage"]
    turkish = ["tr same", "tr a", "tr same", "tr b"]  # a joint rendering: verse 1 and 3 share one text
    units = derive_units({"en": book(english), "tr": book(turkish)})
    assert units == []


def test_cleaning_repairs_known_source_faults() -> None:
    assert clean_verse("dan menginfakkan6) sebagian,7) rezeki (Muhammad)", "id") == \
        "dan menginfakkan sebagian, rezeki (Muhammad)"
    assert clean_verse("সামর্থ?2480;য়েছে", "bn") == "সামর্থরয়েছে"
    assert clean_verse("রে?480; কারণ", "bn") == "রের কারণ"
    assert clean_verse("a\tb  c ", "sv") == "a b c"


def test_split_is_seeded_and_checks_counts() -> None:
    english = [f"query or passage verse number {i} " + "y" * 300 for i in range(40)]
    units = derive_units({"en": book(english), "zh": book([f"zh <{i}>" for i in range(40)])})
    assert len(units) == 20
    split = split_units(units, ["en", "zh"], 5, 5, None, seed=3)
    assert (len(split.test), len(split.distractors), len(split.train)) == (5, 5, 10)
    assert split_units(units, ["en", "zh"], 5, 5, None, seed=3) == split
    assert split_units(units, ["en", "zh"], 5, 5, None, seed=4).test != split.test
    with pytest.raises(InputError, match="21 units requested"):
        split_units(units, ["en", "zh"], 5, 5, 11, seed=3)
    with pytest.raises(InputError, match="at least one test unit"):
        split_units(units, ["en", "zh"], 0, 5, None, seed=3)


# --------------------------------------------------------------------------- errors


def test_missing_source_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="source not found"):
        build_quran(tmp_path / "nope.tgz", tmp_path / "out", LANGS)
    assert not (tmp_path / "out").exists()


def test_truncated_tarball_is_an_input_error(quran_tarball: Path, tmp_path: Path) -> None:
    cut = tmp_path / "quran-cut.tgz"
    data = quran_tarball.read_bytes()
    cut.write_bytes(data[: len(data) * 9 // 10])  # the whole-book files sit at the end of the archive
    with pytest.raises(InputError):
        build_quran(cut, tmp_path / "out", LANGS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quran-cut.tgz"]


@pytest.mark.parametrize("cut", [100_000, 100_001])  # one of the two ends inside a UTF-8 character
def test_truncated_book_is_an_input_error(quran_extracted: Path, tmp_path: Path, cut: int) -> None:
    package = package_copy(quran_extracted, tmp_path / "src", ["en", "tr"])
    path = package / source_file("tr")
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(InputError, match="truncated") as info:
        build_quran(package, tmp_path / "out", ["en", "tr"])
    assert info.value.path and info.value.path.endswith("quran_tr.json") and info.value.line is not None
    assert not (tmp_path / "out").exists()


def test_misaligned_book_is_an_input_error(quran_extracted: Path, tmp_path: Path) -> None:
    package = package_copy(quran_extracted, tmp_path / "src", ["en", "zh"])
    path = package / source_file("zh")
    chapters = json.loads(path.read_text(encoding="utf-8"))
    chapters[1]["verses"].pop()
    path.write_text(json.dumps(chapters, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InputError, match="chapter 2 has 285 verses, English has 286"):
        build_quran(package, tmp_path / "out", ["en", "zh"])


@pytest.mark.parametrize("langs, message", [
    (["en", "xx"], "unknown language 'xx'"),
    (["ar", "zh"], "must include 'en'"),
    (["en"], "at least one other language"),
])
def test_bad_language_selection_is_an_input_error(quran_tarball: Path, tmp_path: Path, langs: list[str],
                                                  message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        build_quran(quran_tarball, tmp_path / "out", langs)
    assert info.value.field == "langs"
    assert not (tmp_path / "out").exists()


def test_language_the_source_lacks_is_an_input_error(quran_extracted: Path, tmp_path: Path) -> None:
    package = package_copy(quran_extracted, tmp_path / "src", ["en"])
    with pytest.raises(InputError, match="no text for language 'sv'") as info:
        build_quran(package, tmp_path / "out", ["en", "sv"])
    assert info.value.field == "langs"
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- atomic writes and the CLI


def test_interrupted_build_leaves_no_output(quran_extracted: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real_open = open

    def flaky_open(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:  # corpus.jsonl and queries.jsonl written, then a crash
            raise KeyboardInterrupt("simulated interruption")
        return real_open(*args, **kwargs)

    monkeypatch.setattr(common, "open", flaky_open, raising=False)
    with pytest.raises(KeyboardInterrupt):
        build_quran(quran_extracted, tmp_path / "out", LANGS, **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_cli_builds_and_prints_one_line(quran_extracted: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "q"
    code = main(["probes", "build", "quran", "--source", str(quran_extracted), "--langs", "en,fr",
                 "--test-units", "5", "--distractor-units", "5", "--train-units", "7", "--seed", "9",
                 "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out.strip()
    assert "\n" not in printed and "20 documents, 10 queries, 7 training units" in printed
    assert len(read_jsonl(out / "train.jsonl")) == 7


def test_cli_reports_bad_input_in_one_line(quran_extracted: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["probes", "build", "quran", "--source", str(quran_extracted), "--langs", "fr,de",
                 "--out", str(tmp_path / "q")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("clbias: error:") and "\n" not in err and "unknown language 'de'" in err
    assert main(["probes", "build", "udhr", "--test-units", "5", "--out", str(tmp_path / "u")]) == 2
    assert not (tmp_path / "q").exists() and not (tmp_path / "u").exists()
