"""The Debian-documentation probe builder (clbias.probes.debian_docs) on the vendored installation-guide extract
(tests/fixtures/debian_docs: four real pages in en/de/fr/ja, GPL-2, see NOTE.md). No apt-get here."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from clbias.cli import main
from clbias.corpus import load_corpus
from clbias.errors import InputError
from clbias.probes import common
from clbias.probes.debian_docs import build_debian_docs, family_of, read_sections
from clbias.probes.debian_docs.sections import stable_keys
from clbias.probes.manpages.sources import Package

FIXTURE = Path(__file__).parent / "fixtures" / "debian_docs" / "installation-guide-amd64_20230508+deb12u1"
DOCS = Path("usr/share/doc/installation-guide-amd64")


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    target = tmp_path / FIXTURE.name
    shutil.copytree(FIXTURE, target)
    return target


def build(root: Path, out: Path, langs: tuple[str, ...] = ("de", "fr", "ja"), **kwargs):  # type: ignore[no-untyped-def]
    return build_debian_docs(Package.from_dir(root), out, langs, **kwargs)


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_sections_are_titles_and_direct_prose_paragraphs() -> None:
    html = (FIXTURE / DOCS / "en" / "apas02.html").read_text(encoding="utf-8")
    sections = {s.section_id: s for s in read_sections(html)}
    usb = sections["howto-getting-images-usb"]
    assert usb.title == "USB memory stick"  # "A.2.2. " numbering removed
    assert usb.paragraphs[0].startswith("It's also possible to install from removable USB storage devices.")
    parent = sections["howto-getting-images"]
    assert parent.title == "Booting the installer"
    # the parent's prose stops where its first sub-section starts
    assert not any("netinst CD image" in p for p in parent.paragraphs)
    assert [s.section_id for s in read_sections(html)][0] == "howto-getting-images"  # document order


def test_generated_ids_get_keys_that_match_across_languages() -> None:
    keys = {}
    for lang in ("en", "de"):
        html = (FIXTURE / DOCS / lang / "ch01s08.html").read_text(encoding="utf-8")
        sections = read_sections(html)
        assert any(s.generated_id for s in sections)
        keys[lang] = stable_keys("ch01s08", sections)
    assert keys["en"] == keys["de"] and "ch01s08.1" in keys["en"]
    raw = {lang: [s.section_id for s in read_sections((FIXTURE / DOCS / lang / "ch01s08.html").read_text())]
           for lang in ("en", "de")}
    assert raw["en"] != raw["de"]  # the generated ids themselves differ between languages


def test_build_pairs_sections_by_id_and_families_by_chapter(tree: Path, tmp_path: Path) -> None:
    out, report = build(tree, tmp_path / "dd")
    corpus = load_corpus(out)
    queries = {q["_id"]: q for q in rows(out / "queries.jsonl")}
    assert queries["q-what-is-debian-en"]["text"] == "What is Debian?"
    assert queries["q-what-is-debian-de"]["text"] == "Was ist Debian?"
    # "USB memory stick" occurs in an English document of its unit: a query inside its relevant text is left out
    assert "q-howto-getting-images-usb-en" not in queries and "q-howto-getting-images-usb-fr" in queries
    assert report.stats["de"].query_in_document + report.stats["fr"].query_in_document >= 0
    qrels = [line.split("\t") for line in (out / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    relevant = {d for q, d, _ in qrels if q == "q-what-is-debian-ja"}
    assert relevant == {f"what-is-debian-{lang}" for lang in ("en", "de", "fr", "ja")}
    assert set(corpus.doc_langs) == {"en", "de", "fr", "ja"}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["kind"] == "debian-docs" and meta["split"]["families"]["eval"] == ["apa", "apc", "ch01"]
    assert meta["source"]["packages"][0]["licence"] == ["GPL-2"]
    assert (out / "licences" / "installation-guide-amd64.copyright").read_text().startswith("The Installation Guide")
    assert family_of("ch01s08.html") == "ch01" and family_of("apas02.html") == "apa"
    assert [line.split(":")[0] for line in report.lines()] == ["de", "fr", "ja"]


def test_split_keeps_each_chapter_on_one_side(tree: Path, tmp_path: Path) -> None:
    out, report = build(tree, tmp_path / "dd", eval_per_lang=1, seed=3)
    meta = json.loads((out / "meta.json").read_text())
    fams = meta["split"]["families"]
    assert fams["train"] and fams["eval"] and not set(fams["train"]) & set(fams["eval"])
    train = rows(out / "train.jsonl")
    assert {r["family"] for r in train} == set(fams["train"])
    eval_units = {d["parallel_id"] for d in rows(out / "corpus.jsonl")}
    assert not eval_units & {r["parallel_id"] for r in train}
    same, _ = build(tree, tmp_path / "dd2", eval_per_lang=1, seed=3)
    assert (same / "train.jsonl").read_bytes() == (out / "train.jsonl").read_bytes()


def test_untranslated_sections_are_dropped_by_reason(tree: Path, tmp_path: Path) -> None:
    fr = tree / DOCS / "fr"
    en = tree / DOCS / "en"
    # a translation that left one page in English, differing only in whitespace
    text = (en / "ch01s01.html").read_text(encoding="utf-8").replace("<p>", "<p>\n   ")
    (fr / "ch01s01.html").write_text(text, encoding="utf-8")
    out, report = build(tree, tmp_path / "dd")
    dropped = report.stats["fr"].dropped
    assert dropped["title untranslated"] >= 1
    fr_docs = [d for d in rows(out / "corpus.jsonl") if d["lang"] == "fr"]
    en_docs = {d["parallel_id"]: d["text"] for d in rows(out / "corpus.jsonl") if d["lang"] == "en"}
    assert all(d["text"] != en_docs[d["parallel_id"]] for d in fr_docs)
    assert not any(d["parallel_id"] == "what-is-debian" for d in fr_docs)
    # same title but the body left in English is dropped too
    html = (en / "ch01s01.html").read_text(encoding="utf-8")
    de_title = re.search(r'<a name="what-is-debian"></a>([^<]*)<', (tree / DOCS / "de" / "ch01s01.html").read_text())
    assert de_title
    (tree / DOCS / "de" / "ch01s01.html").write_text(
        re.sub(r'(<a name="what-is-debian"></a>)[^<]*', lambda m: m.group(1) + de_title.group(1), html),
        encoding="utf-8")
    _, report2 = build(tree, tmp_path / "dd2")
    assert report2.stats["de"].dropped["text untranslated"] >= 1


def test_refuses_an_output_that_is_not_a_debian_docs_set(tree: Path, tmp_path: Path) -> None:
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a debian-docs probe set"):
        build(tree, other)
    assert (other / "notes.txt").read_text() == "keep me"
    out, _ = build(tree, tmp_path / "dd")
    build(tree, out)  # rebuilding its own kind is allowed
    (out / "meta.json").write_text(json.dumps({"kind": "manpages"}))
    with pytest.raises(InputError):
        build(tree, out)


def test_interrupted_build_leaves_no_output(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parent = tmp_path / "out"
    parent.mkdir()
    calls = {"n": 0}
    real_open = open

    def flaky_open(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated interruption")
        return real_open(*args, **kwargs)

    monkeypatch.setattr(common, "open", flaky_open, raising=False)
    with pytest.raises(KeyboardInterrupt):
        build(tree, parent / "dd")
    assert list(parent.iterdir()) == []


def test_cli_builds_from_a_source_tree_and_reports_bad_input_in_one_line(tree: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probes", "build", "debian-docs", "--source", str(tree), "--langs", "de,ja",
                 "--out", str(tmp_path / "dd")]) == 0
    assert "built" in capsys.readouterr().out
    assert load_corpus(tmp_path / "dd").doc_langs
    for argv, message in ((["--langs", "de,xx"], "unknown language 'xx'"),
                          (["--eval-per-lang", "0"], "must be at least 1"),
                          (["--workers", "2"], "applies to manpages only")):
        code = main(["probes", "build", "debian-docs", "--source", str(tree), *argv, "--out", str(tmp_path / "x")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("clbias: error:") and "\n" not in err and message in err, err
    assert not (tmp_path / "x").exists()
