"""Build the translated-manual-pages probe set from unpacked Debian packages.

A *unit* is one English manual page (name + section, e.g. "getgrent.3", its `parallel_id`) with the
translations of it that survive the filters. Per language and page:
- query = the NAME line's text after " - " (the one-line summary: "list directory contents");
- document = the first `DOC_PARAGRAPHS` prose paragraphs of DESCRIPTION (option lists, code and list items
  skipped); the runtime cuts it to the model's maximum length as usual.
A translation is dropped (and counted, by reason) when it cannot be matched to an English page, groff cannot
render it, NAME or DESCRIPTION cannot be found, its NAME summary equals the English one, more than 30% of its
DESCRIPTION paragraphs are identical to English ones (left untranslated), or its document equals the English
document after whitespace normalisation (zmore.1 in Polish: prose left in English, option list translated).

Split: units are ordered by sha256("<seed>:<parallel_id>") and walked in that order; a unit becomes an
evaluation unit when one of its languages still has fewer than `eval_per_lang` evaluation units, otherwise a
training unit. So every language gets min(eval_per_lang, its units) evaluation units (more where its units
are pulled in by another language), a language with fewer units than that is evaluation-only, and no
training unit is ever in the pool. Evaluation units go to corpus.jsonl / queries.jsonl / qrels/test.tsv,
training units to train.jsonl only.

Queries whose text repeats in a language among the evaluation units (the NAME summary of several pages) keep
the one of the first unit in parallel_id order; the other pages stay in the pool as distractor documents
for that language.
"""
from __future__ import annotations

import hashlib
import json
import platform
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ...errors import InputError
from ..common import ProbeDoc, ProbeQrel, ProbeQuery, write_probe_set
from .pages import (GROFF_ARGS, ManTree, PageSkip, RenderCache, RenderJob, Section, TreeFile, page_key,
                    paragraphs, prose_paragraphs, render_all, split_sections)
from .sources import COMPARABLE_LANGS, ENGLISH_PACKAGES, TRANSLATIONS, Package

DOC_PARAGRAPHS = 3
UNTRANSLATED_SHARE = 0.30
DEFAULT_EVAL_PER_LANG = 300
NAME_SEPARATORS = (" - ", " – ", " — ", " -- ", " ‐ ", "－", " −")

# DESCRIPTION in the languages whose pages rename it; others are found by the English page's heading order.
DESCRIPTION_HEADINGS: frozenset[str] = frozenset({
    "DESCRIPTION", "BESCHREIBUNG", "DESCRIPCIÓN", "DESCRIZIONE", "DESCRIÇÃO", "ОПИСАНИЕ", "ОПИС", "OPIS",
    "BESCHRIJVING", "BESKRIVNING", "BESKRIVELSE", "POPIS", "LEÍRÁS", "KUVAUS", "DESCRIERE", "AÇIKLAMA",
    "ΠΕΡΙΓΡΑΦΗ", "DESKRIPSI", "MÔ TẢ", "説明", "解説", "描述", "说明",
})
_HEADING_PARTS = re.compile(r"[\s()（）]+")
NAME_HEADING_POSITION = 0


@dataclass(frozen=True)
class PageText:
    """What a page contributes: its NAME summary, its document, and every DESCRIPTION paragraph."""

    query: str
    document: str
    paragraphs: tuple[str, ...]


@dataclass
class LangStats:
    pages: int = 0  # distinct translated pages (links and .so stubs resolved)
    aliases: int = 0  # links and stubs that named an already counted page
    dropped: Counter[str] = field(default_factory=Counter)
    kept: int = 0
    eval_units: int = 0
    train_units: int = 0
    eval_queries: int = 0
    duplicate_queries: int = 0
    query_in_document: int = 0


@dataclass
class BuildReport:
    langs: list[str]
    stats: dict[str, LangStats]
    rendered: int  # groff runs in this build (not from the cache)
    from_cache: int

    def lines(self) -> list[str]:
        out = []
        for lang in self.langs:
            s = self.stats[lang]
            by_count = sorted(s.dropped.items(), key=lambda kv: (-kv[1], kv[0]))
            reasons = ", ".join(f"{reason} {n}" for reason, n in by_count)
            out.append(f"{lang}: {s.pages} pages, kept {s.kept} (eval {s.eval_units}, train {s.train_units}, "
                       f"{s.eval_queries} eval queries, {s.duplicate_queries} duplicate queries made distractors); "
                       f"dropped {sum(s.dropped.values())}" + (f": {reasons}" if reasons else ""))
        return out


def check_langs(langs: Sequence[str]) -> list[str]:
    """Selected translation languages, in order, without repeats and without English."""
    selected = [lang for lang in dict.fromkeys(langs) if lang != "en"]
    for lang in selected:
        if lang not in TRANSLATIONS:
            raise InputError(f"unknown language '{lang}' (known: {', '.join(sorted(TRANSLATIONS))})", field="langs")
    if not selected:
        raise InputError("select at least one language other than English", field="langs")
    return selected


# --------------------------------------------------------------------------- reading one page


def name_summary(section: Section) -> str | None:
    """The NAME line's text after its first " - " (or a dash variant), or None."""
    text = " ".join(line.text for block in section.blocks for line in block)
    for sep in NAME_SEPARATORS:
        if sep in text:
            summary = text.split(sep, 1)[1].strip()
            return summary or None
    return None


def _normal(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def find_description(sections: Sequence[Section], english: Sequence[Section] | None) -> Section | None:
    """DESCRIPTION by its (translated) heading; otherwise the section at the English DESCRIPTION's position
    when the headings line up (same count, or one more: a translators' section at the end)."""
    for section in sections[1:]:
        if section.heading.upper() in DESCRIPTION_HEADINGS:
            return section
    for section in sections[1:]:  # zh writes both: "描述 (DESCRIPTION)", "DESCRIPTION(描述)"
        if {"DESCRIPTION", "描述"} & set(_HEADING_PARTS.split(section.heading.upper())):
            return section
    if english is None:
        return None
    positions = [i for i, s in enumerate(english) if s.heading == "DESCRIPTION"]
    if positions and len(english) <= len(sections) <= len(english) + 1 and positions[0] < len(sections):
        return sections[positions[0]]
    return None


def read_page(rendered: str, english: Sequence[Section] | None = None) -> PageText:
    """NAME summary and DESCRIPTION text of a rendered page; PageSkip(reason) when either is missing."""
    sections = split_sections(rendered)
    if not sections:
        raise PageSkip("no sections")
    query = name_summary(sections[NAME_HEADING_POSITION])
    if query is None:
        raise PageSkip("no NAME summary")
    description = find_description(sections, english)
    if description is None:
        raise PageSkip("no DESCRIPTION")
    prose = prose_paragraphs(description)
    if not prose:
        raise PageSkip("no prose in DESCRIPTION")
    return PageText(_normal(query), _normal(" ".join(prose[:DOC_PARAGRAPHS])),
                    tuple(_normal(p.text) for p in paragraphs(description)))


_WORD = re.compile(r"[^\W\d_]{2,}")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
MIN_WORDS = 4


def is_wordy(text: str) -> bool:
    """Text, not a formula or a line of code: CJK, or at least MIN_WORDS words of two letters or more.
    ("ccosh(z) = (exp(z)+exp(-z))/2" is the same in every language and says nothing about translation.)"""
    return bool(_CJK.search(text)) or len(_WORD.findall(text)) >= MIN_WORDS


def untranslated_share(page: PageText, english: PageText) -> float:
    """Share of the page's wordy DESCRIPTION paragraphs that are identical to a paragraph of the English page."""
    wordy = [p for p in page.paragraphs if is_wordy(p)]
    if not wordy:
        return 0.0
    english_set = set(english.paragraphs)
    return sum(1 for p in wordy if p in english_set) / len(wordy)


# --------------------------------------------------------------------------- matching and filtering


@dataclass
class Unit:
    parallel_id: str
    pages: dict[str, PageText]  # "en" and every kept translation


def _tree(packages: Sequence[Package], locale: str | None) -> ManTree:
    tree = ManTree()
    for package in packages:
        tree.add_package(package.name, package.man_root(locale))
    return tree


def _job(file: TreeFile, versions: Mapping[str, str]) -> RenderJob:
    return RenderJob(file.package, versions[file.package], file.path,
                     f"{file.package}:{file.relkey}", file.man_root)


def match_pages(tree: ManTree, en_tree: ManTree, stats: LangStats) -> dict[str, tuple[TreeFile, TreeFile]]:
    """English page key -> (translated file, English file), links and stubs resolved on both sides."""
    seen_files: set[str] = set()
    pairs: dict[str, tuple[TreeFile, TreeFile]] = {}
    for relkey in sorted(tree.files):
        try:
            file = tree.resolve(relkey)
        except PageSkip as skip:
            stats.pages += 1
            stats.dropped[skip.reason] += 1
            continue
        if file.relkey in seen_files:
            stats.aliases += 1
            continue
        seen_files.add(file.relkey)
        stats.pages += 1
        try:
            en_file = en_tree.resolve(file.relkey)
        except PageSkip:
            stats.dropped["no English page"] += 1
            continue
        key = page_key(en_file.relkey)
        if key in pairs:
            stats.dropped["another page translates the same English page"] += 1
            continue
        pairs[key] = (file, en_file)
    return pairs


def _read_rendered(entry: dict[str, str], english: Sequence[Section] | None = None) -> PageText:
    if "text" not in entry:
        raise PageSkip(entry.get("skip", "not rendered"))
    return read_page(entry["text"], english)


def collect_units(english: Sequence[Package], translations: Mapping[str, Sequence[Package]],
                  cache: RenderCache | None, workers: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> tuple[list[Unit], BuildReport]:
    """Match, render, read and filter every translated page; units with at least one kept translation."""
    langs = list(translations)
    versions = {p.name: p.version for group in (english, *translations.values()) for p in group}
    en_tree = _tree(english, None)
    stats = {lang: LangStats() for lang in langs}
    matched = {lang: match_pages(_tree(translations[lang], TRANSLATIONS[lang][1]), en_tree, stats[lang])
               for lang in langs}
    jobs = {job.cache_key: job for pairs in matched.values() for files in pairs.values()
            for job in (_job(files[0], versions), _job(files[1], versions))}
    rendered, fresh = render_all([jobs[key] for key in sorted(jobs)], cache, workers, progress)

    def entry(file: TreeFile) -> dict[str, str]:
        return rendered[_job(file, versions).cache_key]

    en_files = {key: files[1] for pairs in matched.values() for key, files in pairs.items()}
    en_sections: dict[str, list[Section]] = {}
    en_pages: dict[str, PageText | str] = {}  # a str: why the English page is unusable
    for key, file in sorted(en_files.items()):
        try:
            en_pages[key] = _read_rendered(entry(file))
            en_sections[key] = split_sections(entry(file)["text"])
        except PageSkip as skip:
            en_pages[key] = f"English page: {skip.reason}"

    units: dict[str, Unit] = {}
    for lang in langs:
        for key, (file, _) in sorted(matched[lang].items()):
            english_page = en_pages[key]
            if isinstance(english_page, str):
                stats[lang].dropped[english_page] += 1
                continue
            try:
                page = _read_rendered(entry(file), en_sections[key])
            except PageSkip as skip:
                stats[lang].dropped[skip.reason] += 1
                continue
            if page.query == english_page.query:
                stats[lang].dropped["NAME untranslated"] += 1
            elif untranslated_share(page, english_page) > UNTRANSLATED_SHARE:
                stats[lang].dropped["DESCRIPTION untranslated"] += 1
            elif page.document == english_page.document:  # both whitespace-normalised (`_normal`)
                stats[lang].dropped["DESCRIPTION same as English"] += 1
            else:
                stats[lang].kept += 1
                units.setdefault(key, Unit(key, {"en": english_page})).pages[lang] = page
    report = BuildReport(langs, stats, rendered=fresh, from_cache=len(jobs) - fresh)
    return [units[key] for key in sorted(units)], report


# --------------------------------------------------------------------------- split and output


def _split_key(seed: int, parallel_id: str) -> str:
    return hashlib.sha256(f"{seed}:{parallel_id}".encode()).hexdigest()


def split_units(units: Sequence[Unit], langs: Sequence[str], eval_per_lang: int, seed: int
                ) -> tuple[list[Unit], list[Unit]]:
    """(evaluation units, training units), each in parallel_id order; see the module doc for the rule."""
    if eval_per_lang < 1:
        raise InputError(f"must be at least 1, got {eval_per_lang}", field="eval-per-lang")
    taken: Counter[str] = Counter()
    evaluation: list[Unit] = []
    training: list[Unit] = []
    for unit in sorted(units, key=lambda u: _split_key(seed, u.parallel_id)):
        unit_langs = [lang for lang in langs if lang in unit.pages]
        if any(taken[lang] < eval_per_lang for lang in unit_langs):
            evaluation.append(unit)
            taken.update(unit_langs)
        else:
            training.append(unit)
    by_id = lambda u: u.parallel_id  # noqa: E731
    return sorted(evaluation, key=by_id), sorted(training, key=by_id)


def doc_id(parallel_id: str, lang: str) -> str:
    return f"{parallel_id}-{lang}"


def query_id(parallel_id: str, lang: str) -> str:
    return f"q-{parallel_id}-{lang}"


def probe_lists(evaluation: Sequence[Unit], all_langs: Sequence[str], stats: dict[str, LangStats]
                ) -> tuple[list[ProbeDoc], list[ProbeQuery], list[ProbeQrel]]:
    """Pool, queries (deduplicated per language) and qrels (a query's unit in every language is relevant)."""
    docs: list[ProbeDoc] = []
    queries: list[ProbeQuery] = []
    qrels: list[ProbeQrel] = []
    seen_query: dict[str, set[str]] = defaultdict(set)
    for unit in evaluation:
        langs = [lang for lang in all_langs if lang in unit.pages]
        docs.extend(ProbeDoc(doc_id(unit.parallel_id, lang), unit.pages[lang].document, lang, unit.parallel_id)
                    for lang in langs)
        for lang in langs:
            text = unit.pages[lang].query
            if text in seen_query[lang]:
                if lang in stats:
                    stats[lang].duplicate_queries += 1
                continue
            if any(text in unit.pages[other].document for other in langs):
                if lang in stats:
                    stats[lang].query_in_document += 1
                continue
            seen_query[lang].add(text)
            queries.append(ProbeQuery(query_id(unit.parallel_id, lang), text, lang, f"q-{unit.parallel_id}"))
            qrels.extend(ProbeQrel(query_id(unit.parallel_id, lang), doc_id(unit.parallel_id, other))
                         for other in langs)
            if lang in stats:
                stats[lang].eval_queries += 1
    return docs, queries, qrels


def train_jsonl(training: Sequence[Unit], all_langs: Sequence[str]) -> str:
    """One unit a line: {"parallel_id", "texts": {lang: document}, "queries": {lang: NAME summary}}."""
    rows = []
    for unit in training:
        langs = [lang for lang in all_langs if lang in unit.pages]
        rows.append({"parallel_id": unit.parallel_id,
                     "texts": {lang: unit.pages[lang].document for lang in langs},
                     "queries": {lang: unit.pages[lang].query for lang in langs}})
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _package_record(package: Package) -> dict[str, Any]:
    copyright_file = package.copyright_file()
    record: dict[str, Any] = {"name": package.name, "version": package.version}
    if package.deb_sha256:
        record["deb_sha256"] = package.deb_sha256
    licences = package.licences()
    linked = package.doc_link()
    if licences:
        record["licence"] = licences
    elif copyright_file is not None:
        record["licence"] = "not stated in a machine-readable field: see the copyright file"
    elif linked is not None:
        record["licence"] = f"as {linked} (its doc directory is a link to {linked}'s)"
    else:
        record["licence"] = "no copyright file"
    record["copyright_file"] = (f"licences/{package.name}.copyright" if copyright_file else None)
    return record


QUERY_DERIVATION = (
    "Each query is the one-line summary of a Debian manual page (its NAME line after ' - ', e.g. 'list "
    "directory contents'), in English or in a translation; its relevant documents are the first prose "
    "paragraphs of that page's DESCRIPTION in English and in every kept translation."
)


def _licence_line(package: Package) -> str:
    if package.licences():
        return ", ".join(package.licences())
    if package.copyright_file() is not None:
        return "see its copyright file (no machine-readable licence field)"
    linked = package.doc_link()
    return f"as `{linked}` (shares its copyright file)" if linked else "no copyright file in the package"


def _licence_text(packages: Sequence[Package]) -> str:
    rows = "".join(f"- `{p.name}` {p.version}: {_licence_line(p)}\n" for p in packages)
    return (
        "# Licence of this probe set\n\n"
        "The texts in corpus.jsonl, queries.jsonl and train.jsonl are excerpts of Debian manual pages (the NAME\n"
        "summary and the first DESCRIPTION paragraphs), rendered to plain text with groff. Each page keeps the\n"
        "licence of the package it comes from; the copyright file of every package is copied verbatim to\n"
        "licences/. Translations from manpages-l10n are GPL-3+; the English man-pages project's pages carry\n"
        "their own (GPL-2+, BSD, the Linux man-pages copyleft licence, ...); manpages-ja follows each original\n"
        "page; manpages-zh is GFDL-1.2+; manpages-tr's copyright file leaves the licence field empty.\n\n"
        "Changes made: rendered to text, whitespace normalised, only the NAME summary and the first prose\n"
        "paragraphs of DESCRIPTION kept.\n\n"
        "Packages:\n\n" + rows
    )


def build_manpages(english: Sequence[Package], translations: Mapping[str, Sequence[Package]],
                   out_dir: str | Path, eval_per_lang: int = DEFAULT_EVAL_PER_LANG, seed: int = 0,
                   cache: RenderCache | None = None, workers: int | None = None, name: str = "manpages",
                   progress: Callable[[int, int], None] | None = None,
                   groff: str | None = None) -> tuple[Path, BuildReport]:
    """Build the set into `out_dir` (atomically) from unpacked packages; returns (out_dir, per-language report).

    `english`: the English packages in priority order (a page in two of them comes from the first);
    `translations`: language -> its packages. InputError for an unknown language or an empty result.
    """
    langs = check_langs(list(translations))
    if eval_per_lang < 1:
        raise InputError(f"must be at least 1, got {eval_per_lang}", field="eval-per-lang")
    if not english:
        raise InputError("no English package given", field="langs")
    units, report = collect_units(english, {lang: translations[lang] for lang in langs}, cache, workers, progress)
    if not units:
        raise InputError("no page survived the filters: nothing to build (see the per-language counts)",
                         field="langs")
    evaluation, training = split_units(units, langs, eval_per_lang, seed)
    for unit in evaluation:
        for lang in unit.pages:
            if lang in report.stats:
                report.stats[lang].eval_units += 1
    for unit in training:
        for lang in unit.pages:
            if lang in report.stats:
                report.stats[lang].train_units += 1
    all_langs = ["en", *langs]
    docs, queries, qrels = probe_lists(evaluation, all_langs, report.stats)
    packages = [*english, *(p for lang in langs for p in translations[lang])]
    parallel = {lang: ("comparable" if lang in COMPARABLE_LANGS else "human") for lang in langs}
    comparable = [lang for lang in langs if lang in COMPARABLE_LANGS]
    meta: dict[str, Any] = {
        "name": name,
        "source": {
            "description": "Debian 12 manual pages: English and their translations, rendered with groff",
            "packages": [_package_record(p) for p in packages],
            "groff": groff,
            "groff_args": list(GROFF_ARGS),
            "platform": platform.platform(),
        },
        "licence": "per package (GPL-3+ for manpages-l10n translations; see LICENSE.md and licences/)",
        "parallel": "human" if not comparable else f"human, except comparable for {', '.join(comparable)}",
        "parallel_by_lang": {"en": "original", **parallel},
        "query_derivation": QUERY_DERIVATION,
        "scenario_note": "Comparable languages (ja, zh, tr) come from separate translation projects: their pages "
                         "describe the same command but are not translations of the English text.",
        "languages": all_langs,
        "units": len(units),
        "eval_units": len(evaluation),
        "train_units": len(training),
        "documents": len(docs),
        "queries": len(queries),
        "per_language": {lang: {"pages": s.pages, "kept": s.kept, "eval_units": s.eval_units,
                                "train_units": s.train_units, "eval_queries": s.eval_queries,
                                "duplicate_queries": s.duplicate_queries, "query_in_document": s.query_in_document,
                                "dropped": dict(sorted(s.dropped.items()))}
                         for lang, s in report.stats.items()},
        "filters": {"untranslated_share_above": UNTRANSLATED_SHARE, "doc_paragraphs": DOC_PARAGRAPHS},
        "split": {
            "seed": seed,
            "eval_per_lang": eval_per_lang,
            "method": "units ordered by sha256('<seed>:<parallel_id>'); a unit is an evaluation unit while one of "
                      "its languages has fewer than eval_per_lang evaluation units, else a training unit",
            "test": "corpus.jsonl, queries.jsonl, qrels/test.tsv",
            "train": "train.jsonl only; never in corpus.jsonl or queries.jsonl",
        },
        "train_file": {"path": "train.jsonl",
                       "row": {"parallel_id": "page.section", "texts": "{lang: document}",
                               "queries": "{lang: NAME summary}"}},
        "build_command": f"clbias probes build manpages --langs {','.join(langs)} --eval-per-lang {eval_per_lang} "
                         f"--seed {seed} --out {name}",
    }
    extra = {"LICENSE.md": _licence_text(packages), "train.jsonl": train_jsonl(training, all_langs)}
    for package in packages:
        copyright_file = package.copyright_file()
        if copyright_file is not None:
            extra[f"licences/{package.name}.copyright"] = copyright_file.read_text(encoding="utf-8", errors="replace")
    return write_probe_set(out_dir, docs, queries, qrels, meta, extra_files=extra), report


def english_packages(available: Mapping[str, Package]) -> list[Package]:
    """The English packages in priority order, those present in `available`."""
    return [available[name] for name in ENGLISH_PACKAGES if name in available]


def build_from_debian(out_dir: str | Path, langs: Sequence[str], eval_per_lang: int = DEFAULT_EVAL_PER_LANG,
                      seed: int = 0, cache_root: Path | None = None, workers: int | None = None,
                      name: str = "manpages", log: Callable[[str], None] | None = None,
                      progress: Callable[[int, int], None] | None = None) -> tuple[Path, BuildReport]:
    """Fetch (apt-get download, into the cache) and unpack the packages `langs` need, then `build_manpages`."""
    from .pages import groff_version
    from .sources import default_cache_root, fetch_packages, packages_for

    langs = check_langs(langs)
    if eval_per_lang < 1:
        raise InputError(f"must be at least 1, got {eval_per_lang}", field="eval-per-lang")
    groff = groff_version()
    root = cache_root or default_cache_root()
    available = fetch_packages(packages_for(langs), root, log)
    translations = {lang: [available[p] for p in TRANSLATIONS[lang][0]] for lang in langs}
    cache = RenderCache(root / "manpages" / "rendered", groff)
    return build_manpages(english_packages(available), translations, out_dir, eval_per_lang, seed, cache, workers,
                          name, progress, groff)
