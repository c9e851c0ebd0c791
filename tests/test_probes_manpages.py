"""The man-page probe builder (clbias.probes.manpages) on the vendored fixture: real Debian pages in en/de/fr.

No apt-get here: the tests feed unpacked trees (tests/fixtures/manpages/PACKAGE_VERSION/) to the builder and
render them with the system's groff (Debian groff-base, present in CI).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from clbias.cli import main
from clbias.corpus import load_corpus
from clbias.errors import InputError
from clbias.probes import common
from clbias.probes.manpages import Package, RenderCache, build_manpages, check_langs
from clbias.probes.manpages.build import read_page, split_units
from clbias.probes.manpages.pages import ManTree, PageSkip, page_key, so_target
from clbias.probes.manpages.sources import download_debs
from clbias.train.data import build_triplets, read_units

FIXTURE = Path(__file__).parent / "fixtures" / "manpages"
ENGLISH = ("manpages_6.03-2", "manpages-dev_6.03-2", "coreutils_9.1-1")
TRANSLATED = {"de": ("manpages-de_4.18.1-1", "manpages-de-dev_4.18.1-1"),
              "fr": ("manpages-fr_4.18.1-1", "manpages-fr-dev_4.18.1-1")}


def _need_groff() -> None:
    if shutil.which("groff") is None:
        if os.environ.get("CI"):
            pytest.fail("groff is not installed (Debian groff-base): cannot test the man-page builder")
        pytest.skip("groff is not installed (Debian groff-base)")


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """A writable copy of the fixture (symlinks kept), to damage or extend in a test."""
    _need_groff()
    target = tmp_path / "fixture"
    shutil.copytree(FIXTURE, target, symlinks=True)
    return target


def packages(root: Path, langs: tuple[str, ...] = ("de", "fr")) -> tuple[list[Package], dict[str, list[Package]]]:
    english = [Package.from_dir(root / name) for name in ENGLISH]
    return english, {lang: [Package.from_dir(root / name) for name in TRANSLATED[lang]] for lang in langs}


def build(root: Path, out: Path, **kwargs):  # type: ignore[no-untyped-def]
    english, translations = packages(root, kwargs.pop("langs", ("de", "fr")))
    return build_manpages(english, translations, out, **{"eval_per_lang": 100, **kwargs})


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_qrels(path: Path) -> list[tuple[str, str, int]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "query-id\tcorpus-id\tscore"
    return [(q, d, int(s)) for q, d, s in (line.split("\t") for line in lines[1:])]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def roff_name_summary(path: Path) -> str:
    """The NAME summary as written in the roff source: the text lines after the first `.SH`, after `\\-`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    first_heading = next(i for i, line in enumerate(lines) if line.startswith(".SH"))
    text = []
    for line in lines[first_heading + 1:]:
        if line.startswith("."):
            break
        text.append(line)
    return " ".join(" ".join(text).split("\\-", 1)[1].split())


@pytest.fixture()
def built(tree: Path, tmp_path: Path) -> tuple[Path, object]:
    return build(tree, tmp_path / "mp")


# --------------------------------------------------------------------------- extraction


def test_queries_are_the_name_summaries_of_the_roff_sources(built: tuple[Path, object], tree: Path) -> None:
    out, _ = built
    queries = {q["_id"]: q for q in read_jsonl(out / "queries.jsonl")}
    sources = {
        "q-getgrent.3-en": tree / "manpages-dev_6.03-2/usr/share/man/man3/getgrent.3",
        "q-getgrent.3-de": tree / "manpages-de-dev_4.18.1-1/usr/share/man/de/man3/getgrent.3",
        "q-getgrent.3-fr": tree / "manpages-fr-dev_4.18.1-1/usr/share/man/fr/man3/getgrent.3",
        "q-tan.3-de": tree / "manpages-de-dev_4.18.1-1/usr/share/man/de/man3/tan.3",
        "q-rmdir.1-de": tree / "manpages-de_4.18.1-1/usr/share/man/de/man1/rmdir.1",
    }
    for qid, source in sources.items():
        assert queries[qid]["text"] == roff_name_summary(source), qid
    assert queries["q-getgrent.3-en"]["text"] == "get group file entry"
    assert queries["q-rmdir.1-fr"]["parallel_id"] == "q-rmdir.1" and queries["q-rmdir.1-fr"]["lang"] == "fr"


def test_documents_are_the_first_prose_paragraphs_of_description(built: tuple[Path, object]) -> None:
    out, _ = built
    docs = {d["_id"]: d for d in read_jsonl(out / "corpus.jsonl")}
    # rmdir.1 (help2man): one prose paragraph, then the option list, which is left out
    assert docs["rmdir.1-en"]["text"] == "Remove the DIRECTORY(ies), if they are empty."
    assert "ignore-fail-on-non-empty" not in docs["rmdir.1-de"]["text"]
    getgrent = docs["getgrent.3-en"]["text"]
    assert getgrent.startswith("The getgrent() function returns a pointer to a structure containing the broken-out "
                               "fields of a record in the group database")
    assert "setgrent() function rewinds" in getgrent  # second paragraph: up to three are joined
    assert "gr_name" not in getgrent  # the struct in the same section is code, not prose
    assert "\n" not in getgrent and "  " not in getgrent
    assert docs["getgrent.3-de"]["parallel_id"] == docs["getgrent.3-fr"]["parallel_id"] == "getgrent.3"


def test_translated_headings_and_heading_positions_find_description() -> None:
    _need_groff()
    from clbias.probes.manpages.pages import render_roff

    page = (b".TH X 1\n.SH NAME\nx \\- do a thing\n.SH SYNOPSIS\nx\n.SH BESCHREIBUNG\nErster Absatz.\n"
            b".TP\n.B \\-a\nOption.\n")
    rendered = render_roff(page, FIXTURE)
    assert read_page(rendered).document == "Erster Absatz."
    english = render_roff(b".TH X 1\n.SH NAME\nx \\- a\n.SH SYNOPSIS\nx\n.SH DESCRIPTION\nFirst.\n", FIXTURE)
    renamed = render_roff(b".TH X 1\n.SH NAME\nx \\- b\n.SH SYNOPSIS\nx\n.SH QQQ\nZweiter.\n.SH UBERSETZUNG\nt\n",
                          FIXTURE)
    from clbias.probes.manpages.pages import split_sections

    assert read_page(renamed, split_sections(english)).document == "Zweiter."  # by position (+ translators')
    with pytest.raises(PageSkip, match="no DESCRIPTION"):
        read_page(renamed)
    zh = render_roff('.TH X 1\n.SH NAME\nx \\- 摘要\n.SH "描述 (DESCRIPTION)"\n中文段落。\n'.encode(), FIXTURE)
    assert read_page(zh).query == "摘要" and read_page(zh).document == "中文段落。"
    with pytest.raises(PageSkip, match="no NAME summary"):
        read_page(render_roff(b".TH X 1\n.SH NAME\nx\n.SH DESCRIPTION\nText.\n", FIXTURE))


# --------------------------------------------------------------------------- links, stubs, filters


def test_symlinks_and_so_stubs_resolve_to_one_page(tree: Path, tmp_path: Path) -> None:
    de = tree / "manpages-de-dev_4.18.1-1/usr/share/man/de/man3"
    (de / "tanl.3").write_text(".\\\" a stub, as Debian ships many\n.so man3/tan.3\n", encoding="utf-8")
    (de / "gone.3").symlink_to("nowhere.3")
    (de / "loop1.3").symlink_to("loop2.3")
    (de / "loop2.3").symlink_to("loop1.3")
    man_tree = ManTree()
    man_tree.add_package("manpages-de-dev", de.parent)
    assert man_tree.resolve("man3/tanl.3").relkey == "man3/tan.3"
    assert man_tree.resolve("man3/endgrent.3").relkey == "man3/getgrent.3"
    assert man_tree.resolve("man3/tan.3").relkey == "man3/tan.3"
    with pytest.raises(PageSkip, match="dangling"):
        man_tree.resolve("man3/gone.3")
    with pytest.raises(PageSkip, match="loop"):
        man_tree.resolve("man3/loop1.3")
    assert so_target(b".so man7/uri.7\n") == "man7/uri.7"
    assert so_target(b".TH A 1\n.so man7/uri.7\ntext\n") is None  # an inclusion inside a real page
    assert page_key("man3/tan.3") == "tan.3"

    out, report = build(tree, tmp_path / "mp")
    stats = report.stats["de"]
    assert stats.aliases == 3  # endgrent.3, tanf.3 (links) and tanl.3 (stub) name pages already counted
    assert stats.dropped["dangling link or .so"] == 1 and stats.dropped["link loop"] == 2
    docs = read_jsonl(out / "corpus.jsonl")
    assert [d["_id"] for d in docs if d["parallel_id"].startswith("tan")] == ["tan.3-en", "tan.3-de", "tan.3-fr"]
    assert not any(d["parallel_id"] in ("endgrent.3", "setgrent.3", "tanf.3", "tanl.3") for d in docs)


def test_untranslated_pages_are_dropped_by_reason(built: tuple[Path, object]) -> None:
    out, report = built
    fr, de = report.stats["fr"], report.stats["de"]
    assert fr.dropped["DESCRIPTION untranslated"] == 1  # issue.5: DESCRIPTION left in English
    assert fr.dropped["NAME untranslated"] == 1  # memfrob.3: NAME left in English
    assert de.dropped["DESCRIPTION untranslated"] == 1  # casin.3: half of DESCRIPTION in English
    langs_by_unit: dict[str, set[str]] = {}
    for doc in read_jsonl(out / "corpus.jsonl"):
        langs_by_unit.setdefault(doc["parallel_id"], set()).add(doc["lang"])
    assert "issue.5" not in langs_by_unit and "memfrob.3" not in langs_by_unit and "casin.3" not in langs_by_unit
    assert langs_by_unit["getgrent.3"] == {"en", "de", "fr"}
    assert (fr.pages, fr.kept, de.pages, de.kept) == (7, 5, 6, 5)
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta["per_language"]["fr"]["dropped"] == {"DESCRIPTION untranslated": 1, "NAME untranslated": 1}
    lines = report.lines()
    assert lines[1].startswith("fr: 7 pages, kept 5") and "DESCRIPTION untranslated 1" in lines[1]


def test_unrenderable_and_unreadable_pages_are_counted_skips(tree: Path, tmp_path: Path) -> None:
    en = tree / "manpages-dev_6.03-2/usr/share/man/man3"
    fr = tree / "manpages-fr-dev_4.18.1-1/usr/share/man/fr/man3"
    for name in ("empty.3", "broken.3.gz"):
        (en / name.removesuffix(".gz")).write_text(".TH E 3\n.SH NAME\ne \\- e\n.SH DESCRIPTION\nSome text here.\n")
    (fr / "empty.3").write_text(".\\\" nothing to render\n")
    (fr / "broken.3.gz").write_bytes(b"\x1f\x8b not really gzip")
    _, report = build(tree, tmp_path / "mp")
    assert report.stats["fr"].dropped["groff cannot render it"] == 1
    assert report.stats["fr"].dropped["unreadable file (BadGzipFile)"] == 1


# --------------------------------------------------------------------------- dedup and split


def test_repeated_queries_keep_one_and_leave_distractors(built: tuple[Path, object]) -> None:
    out, report = built
    queries = read_jsonl(out / "queries.jsonl")
    for lang in ("en", "de", "fr"):
        texts = [q["text"] for q in queries if q["lang"] == lang]
        assert len(texts) == len(set(texts)), lang
    # memcpy.3 and memmove.3 share their summary in all three languages: memcpy (first by id) keeps it
    ids = {q["_id"] for q in queries}
    assert {"q-memcpy.3-en", "q-memcpy.3-de", "q-memcpy.3-fr"} <= ids
    assert not any(q["parallel_id"] == "q-memmove.3" for q in queries)
    docs = {d["_id"] for d in read_jsonl(out / "corpus.jsonl")}
    assert {"memmove.3-en", "memmove.3-de", "memmove.3-fr"} <= docs  # distractors
    assert report.stats["de"].duplicate_queries == 1 and report.stats["fr"].duplicate_queries == 1
    judged = {d for _, d, _ in read_qrels(out / "qrels" / "test.tsv")}
    assert not judged & {"memmove.3-en", "memmove.3-de", "memmove.3-fr"}


def test_split_is_disjoint_seeded_and_trainable(tree: Path, tmp_path: Path) -> None:
    out, report = build(tree, tmp_path / "mp", eval_per_lang=2, seed=1)
    docs = read_jsonl(out / "corpus.jsonl")
    queries = read_jsonl(out / "queries.jsonl")
    train = read_jsonl(out / "train.jsonl")
    eval_ids = {d["parallel_id"] for d in docs}
    train_ids = {row["parallel_id"] for row in train}
    assert train_ids and eval_ids and not train_ids & eval_ids
    assert not train_ids & {q["parallel_id"].removeprefix("q-") for q in queries}
    assert len(eval_ids | train_ids) == json.loads((out / "meta.json").read_text())["units"]
    for lang in ("de", "fr"):  # every language reached its quota of evaluation units before training got any
        assert sum(1 for d in docs if d["lang"] == lang) >= 2
    pool_texts = {d["text"] for d in docs}
    for row in train:
        assert "en" in row["texts"] and "en" in row["queries"] and set(row["texts"]) == set(row["queries"])
        assert not set(row["texts"].values()) & pool_texts
    units = read_units(out / "train.jsonl")  # what `clbias train data --from DIR` reads
    assert {u.parallel_id for u in units} == train_ids
    triplets, summary = build_triplets(out, n=4, seed=0)  # its leak check passes: no unit is in the pool
    assert summary["written"] == len(triplets) > 0
    other, _ = build(tree, tmp_path / "mp2", eval_per_lang=2, seed=2)
    same, _ = build(tree, tmp_path / "mp3", eval_per_lang=2, seed=1)
    assert tree_bytes(same) == tree_bytes(out)
    assert {row["parallel_id"] for row in read_jsonl(other / "train.jsonl")} != train_ids


def test_split_rule_counts_languages() -> None:
    from clbias.probes.manpages.build import PageText, Unit

    page = PageText("q", "d", ())
    units = [Unit(f"p{i}.1", {"en": page, "de": page, **({"fr": page} if i < 3 else {})}) for i in range(10)]
    for seed in range(5):
        evaluation, training = split_units(units, ["de", "fr"], eval_per_lang=3, seed=seed)
        assert sorted(u.parallel_id for u in evaluation + training) == sorted(u.parallel_id for u in units)
        assert all("fr" in u.pages for u in units[:3]) and all(u in evaluation for u in units[:3])  # fr: 3 of 3
        de_only = [u for u in evaluation if "fr" not in u.pages]
        assert len(de_only) <= 3  # taken only while de had fewer than 3 evaluation units
        # a unit is training only when each of its languages already has its quota
        assert sum(1 for u in evaluation if "de" in u.pages) >= 3 and all("fr" not in u.pages for u in training)
    with pytest.raises(InputError, match="at least 1"):
        split_units(units, ["de"], 0, 0)


# --------------------------------------------------------------------------- meta, licences, cache


def test_meta_records_packages_licences_and_parallelism(built: tuple[Path, object]) -> None:
    out, _ = built
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    by_name = {p["name"]: p for p in meta["source"]["packages"]}
    assert by_name["manpages-de"]["version"] == "4.18.1-1" and by_name["manpages-de"]["licence"] == ["GPL-3+"]
    assert by_name["manpages"]["licence"] == ["GPL-2+", "Linux-man-pages-copyleft"]
    assert by_name["manpages-dev"]["licence"].startswith("as manpages")
    assert by_name["coreutils"]["copyright_file"] == "licences/coreutils.copyright"
    assert (out / "licences" / "coreutils.copyright").read_text(encoding="utf-8") == \
        (FIXTURE / "coreutils_9.1-1/usr/share/doc/coreutils/copyright").read_text(encoding="utf-8")
    assert meta["parallel"] == "human" and meta["parallel_by_lang"] == {"en": "original", "de": "human", "fr": "human"}
    assert "GPL-3+" in (out / "LICENSE.md").read_text(encoding="utf-8")
    corpus = load_corpus(out)  # the audit's loader accepts the set
    assert sorted(corpus.doc_langs) == ["de", "en", "fr"]


def test_comparable_languages_are_marked() -> None:
    from clbias.probes.manpages.sources import COMPARABLE_LANGS, TRANSLATIONS

    assert COMPARABLE_LANGS == {"ja", "zh", "tr"} and COMPARABLE_LANGS <= set(TRANSLATIONS)


def test_rebuild_from_cache_renders_nothing_and_matches(tree: Path, tmp_path: Path) -> None:
    cache = RenderCache(tmp_path / "cache", "groff test-stamp")
    first, report1 = build(tree, tmp_path / "a", cache=cache)
    assert report1.rendered > 0 and report1.from_cache == 0
    again = RenderCache(tmp_path / "cache", "groff test-stamp")
    second, report2 = build(tree, tmp_path / "b", cache=again)
    assert report2.rendered == 0 and report2.from_cache == report1.rendered
    assert tree_bytes(first) == tree_bytes(second)
    other_groff = RenderCache(tmp_path / "cache", "groff another-version")
    _, report3 = build(tree, tmp_path / "c", cache=other_groff)
    assert report3.rendered == report1.rendered  # a cache made by another groff is not trusted
    for path in (tmp_path / "cache").iterdir():
        path.write_bytes(b"not gzip")  # a damaged cache file is re-rendered, not an error
    _, report4 = build(tree, tmp_path / "d", cache=RenderCache(tmp_path / "cache", "groff test-stamp"))
    assert report4.rendered == report1.rendered


# --------------------------------------------------------------------------- errors and atomic output


def test_interrupted_build_leaves_no_output(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out_parent = tmp_path / "out"
    out_parent.mkdir()
    calls = {"n": 0}
    real_open = open

    def flaky_open(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated interruption")
        return real_open(*args, **kwargs)

    monkeypatch.setattr(common, "open", flaky_open, raising=False)
    with pytest.raises(KeyboardInterrupt):
        build(tree, out_parent / "mp")
    assert list(out_parent.iterdir()) == []


def test_bad_languages_are_input_errors() -> None:
    with pytest.raises(InputError, match="unknown language 'xx'") as info:
        check_langs(["de", "xx"])
    assert info.value.field == "langs"
    with pytest.raises(InputError, match="other than English"):
        check_langs(["en"])
    assert check_langs(["en", "fr", "fr", "de"]) == ["fr", "de"]


def test_nothing_surviving_is_an_input_error(tree: Path, tmp_path: Path) -> None:
    english, _ = packages(tree)
    empty = tmp_path / "manpages-fr_4.18.1-1"
    (empty / "usr/share/man/fr/man1").mkdir(parents=True)
    with pytest.raises(InputError, match="no page survived"):
        build_manpages(english, {"fr": [Package.from_dir(empty)]}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _fake_tool(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_a_package_apt_does_not_know_says_run_apt_get_update(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_tool(bin_dir, "apt-cache", 'echo "Package: manpages-de"')  # knows one of the two
    _fake_tool(bin_dir, "apt-get", "exit 99")
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(InputError, match=r"apt cannot find package 'manpages-xx'.*run `apt-get update`"):
        download_debs(["manpages-de", "manpages-xx"], tmp_path / "debs")
    assert list((tmp_path / "debs").iterdir()) == []


def test_cli_reports_bad_input_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, message in (
        (["--langs", "de,xx"], "unknown language 'xx'"),
        (["--eval-per-lang", "0"], "must be at least 1"),
        (["--test-units", "5"], "applies to quran only"),
    ):
        code = main(["probes", "build", "manpages", *argv, "--out", str(tmp_path / "mp")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("clbias: error:") and "\n" not in err and message in err, err
    assert main(["probes", "build", "quran", "--eval-per-lang", "3", "--out", str(tmp_path / "q")]) == 2
    assert "applies to manpages and debian-docs only" in capsys.readouterr().err
    assert not (tmp_path / "mp").exists() and not (tmp_path / "q").exists()


def test_report_lines_name_every_language(built: tuple[Path, object]) -> None:
    _, report = built
    lines = report.lines()
    assert [line.split(":", 1)[0] for line in lines] == ["de", "fr"]
    for line in lines:
        assert re.search(r"\d+ pages, kept \d+ \(eval \d+, train \d+, \d+ eval queries", line)


def test_interrupted_rendering_keeps_what_was_rendered(tree: Path, tmp_path: Path) -> None:
    seen = {"n": 0}

    def stop_after_three(done: int, total: int) -> None:
        seen["n"] = done
        if done == 3:
            raise KeyboardInterrupt("simulated Ctrl-C")

    with pytest.raises(KeyboardInterrupt):
        build(tree, tmp_path / "mp", cache=RenderCache(tmp_path / "cache", "groff stamp"), progress=stop_after_three)
    assert seen["n"] == 3 and not (tmp_path / "mp").exists()
    _, full = build(tree, tmp_path / "full")  # no cache: how many pages there are
    _, resumed = build(tree, tmp_path / "mp", cache=RenderCache(tmp_path / "cache", "groff stamp"))
    assert resumed.from_cache >= 3 and resumed.rendered == full.rendered - resumed.from_cache


def test_a_page_whose_document_is_the_english_text_is_dropped(tree: Path, tmp_path: Path) -> None:
    """Like zmore.1 in Polish (manpages-pl 4.18.1): NAME translated, the DESCRIPTION's prose left in English
    (re-wrapped), its option list translated, so under 30% of its paragraphs equal English ones. The document
    the probe set would keep is the English text after whitespace normalisation: a translation it is not."""
    page = tree / "manpages-de-dev_4.18.1-1/usr/share/man/de/man3/tan.3"
    source = page.read_text(encoding="utf-8")
    head, rest = source.split(".SH BESCHREIBUNG\n", 1)
    items = "".join(f".IP {i}\nDieser Listenpunkt beschreibt auf Deutsch eine weitere Eigenschaft Nummer {i}.\n"
                    for i in range(1, 5))
    body = ("These functions return the tangent of \\fIx\\fP,\nwhere \\fIx\\fP is   given\nin radians.\n"
            + items)
    page.write_text(head + ".SH BESCHREIBUNG\n" + body + ".SH RÜCKGABEWERT" + rest.split(".SH RÜCKGABEWERT", 1)[1],
                    encoding="utf-8")
    out, report = build(tree, tmp_path / "mp")
    de = report.stats["de"]
    assert de.dropped["DESCRIPTION same as English"] == 1
    assert "tan.3-de" not in {d["_id"] for d in read_jsonl(out / "corpus.jsonl")}
    assert "tan.3-fr" in {d["_id"] for d in read_jsonl(out / "corpus.jsonl")}
