"""Build the Debian-documentation probe set (a second domain beside the manual pages).

Source: `installation-guide-amd64`, the Debian installation guide as DocBook HTML in English and 18
translations (`usr/share/doc/installation-guide-amd64/<locale>/*.html`). A *unit* is one section, keyed by
its DocBook id (the HTML anchor name, the same in every language; for the sections whose id DocBook generated,
which differs between languages, the page and the section's rank among them: sections.stable_keys). Per language and section:
- query = the section title without its numbering ("Booting from hard disk");
- document = the first `DOC_PARAGRAPHS` prose paragraphs of the section (its own `<p>` elements, before and
  between sub-sections; notes, lists, tables and examples skipped).
A translation is dropped (and counted, by reason) when the section is missing, has no prose, its title or
document equals the English one after whitespace normalisation, or more than 30% of its wordy paragraphs are
identical to English ones (left untranslated).

Split by *family*: the sections of one chapter (or appendix) stay on one side. Families are ordered by
sha256("<seed>:<family>"); a family is an evaluation family while one of its languages has fewer than
`eval_per_lang` evaluation units, otherwise a training family (train.jsonl only). The default
(`eval_per_lang=None`) puts every unit in the evaluation corpus: the set is meant as an out-of-domain test.
Queries whose text repeats in a language keep the first unit's (in parallel_id order); the other units stay
in the pool as distractors. A query contained in one of its relevant documents is left out (counted).
"""
from __future__ import annotations

import hashlib
import json
import platform
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ...errors import InputError
from ..common import ProbeDoc, ProbeQrel, ProbeQuery, write_probe_set
from ..manpages.build import is_wordy
from ..manpages.sources import Package
from .sections import Section, read_sections, stable_keys

KIND = "debian-docs"
PACKAGE = "installation-guide-amd64"
DOC_PARAGRAPHS = 3
UNTRANSLATED_SHARE = 0.30
# language tag -> locale directory in the package (pt is European Portuguese)
LOCALES: dict[str, str] = {
    "ca": "ca", "cs": "cs", "da": "da", "de": "de", "el": "el", "es": "es", "fr": "fr", "id": "id", "it": "it",
    "ja": "ja", "ko": "ko", "nl": "nl", "pt": "pt", "ro": "ro", "ru": "ru", "sv": "sv", "vi": "vi", "zh": "zh_CN",
}
DEFAULT_LANGS: tuple[str, ...] = tuple(LOCALES)
_FAMILY = re.compile(r"^(ch\d+|ap[a-z]|pr\d+|pt\d+|index)")


@dataclass(frozen=True)
class SectionText:
    query: str
    document: str
    paragraphs: tuple[str, ...]


@dataclass
class LangStats:
    sections: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    kept: int = 0
    eval_units: int = 0
    train_units: int = 0
    eval_queries: int = 0
    duplicate_queries: int = 0
    query_in_document: int = 0


@dataclass
class Unit:
    parallel_id: str
    family: str
    pages: dict[str, SectionText]


@dataclass
class BuildReport:
    langs: list[str]
    stats: dict[str, LangStats]
    families: dict[str, int]  # evaluation / training families

    def lines(self) -> list[str]:
        out = []
        for lang in self.langs:
            s = self.stats[lang]
            reasons = ", ".join(f"{r} {n}" for r, n in sorted(s.dropped.items(), key=lambda kv: (-kv[1], kv[0])))
            out.append(f"{lang}: {s.sections} sections, kept {s.kept} (eval {s.eval_units}, train {s.train_units}, "
                       f"{s.eval_queries} eval queries, {s.duplicate_queries} duplicate titles made distractors, "
                       f"{s.query_in_document} titles inside their document); dropped {sum(s.dropped.values())}"
                       + (f": {reasons}" if reasons else ""))
        return out


def check_langs(langs: Sequence[str]) -> list[str]:
    selected = [lang for lang in dict.fromkeys(langs) if lang != "en"]
    for lang in selected:
        if lang not in LOCALES:
            raise InputError(f"unknown language '{lang}' (known: {', '.join(sorted(LOCALES))})", field="langs")
    if not selected:
        raise InputError("select at least one language other than English", field="langs")
    return selected


def family_of(html_name: str) -> str:
    """The chapter or appendix an HTML page belongs to: ch04s02.html -> ch04, apas02.html -> apa."""
    match = _FAMILY.match(html_name)
    return match.group(1) if match else Path(html_name).stem


def doc_root(package: Package) -> Path:
    return package.root / "usr" / "share" / "doc" / package.name


def read_language(folder: Path) -> dict[str, tuple[str, SectionText | str]]:
    """section id -> (family, its text, or why it is unusable) for one language's HTML pages."""
    out: dict[str, tuple[str, SectionText | str]] = {}
    for page in sorted(folder.glob("*.html")):
        try:
            html = page.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"invalid UTF-8 at byte {exc.start}", page) from None
        sections = read_sections(html)
        for key, section in zip(stable_keys(page.stem, sections), sections):
            out.setdefault(key, (family_of(page.name), _text(section)))
    return out


def _text(section: Section) -> SectionText | str:
    if not section.title:
        return "no title"
    if not section.paragraphs:
        return "no prose"
    return SectionText(section.title, " ".join(section.paragraphs[:DOC_PARAGRAPHS]), tuple(section.paragraphs))


def untranslated_share(page: SectionText, english: SectionText) -> float:
    wordy = [p for p in page.paragraphs[:DOC_PARAGRAPHS] if is_wordy(p)]
    if not wordy:
        return 0.0
    english_set = set(english.paragraphs)
    return sum(1 for p in wordy if p in english_set) / len(wordy)


def collect_units(package: Package, langs: Sequence[str]) -> tuple[list[Unit], dict[str, LangStats]]:
    root = doc_root(package)
    if not (root / "en").is_dir():
        raise InputError("no English HTML pages (en/) in the package", root)
    english = read_language(root / "en")
    stats = {lang: LangStats() for lang in langs}
    units: dict[str, Unit] = {}
    for lang in langs:
        folder = root / LOCALES[lang]
        if not folder.is_dir():
            raise InputError(f"no {lang} pages ({LOCALES[lang]}/) in the package", root, field="langs")
        translated = read_language(folder)
        s = stats[lang]
        for sid in sorted(set(english) | set(translated)):
            s.sections += sid in translated
            if sid not in english:
                s.dropped["no English section"] += 1
                continue
            family, en_text = english[sid]
            if isinstance(en_text, str):
                s.dropped[f"English section: {en_text}"] += sid in translated
                continue
            if sid not in translated:
                s.dropped["section missing"] += 1
                continue
            text = translated[sid][1]
            if isinstance(text, str):
                s.dropped[text] += 1
            elif text.query == en_text.query:
                s.dropped["title untranslated"] += 1
            elif text.document == en_text.document:
                s.dropped["text untranslated"] += 1
            elif untranslated_share(text, en_text) > UNTRANSLATED_SHARE:
                s.dropped["text partly untranslated"] += 1
            else:
                s.kept += 1
                units.setdefault(sid, Unit(sid, family, {"en": en_text})).pages[lang] = text
    return [units[k] for k in sorted(units)], stats


def split_families(units: Sequence[Unit], langs: Sequence[str], eval_per_lang: int | None, seed: int
                   ) -> tuple[list[Unit], list[Unit], dict[str, list[str]]]:
    """(evaluation units, training units, {"eval": families, "train": families}); see the module doc."""
    if eval_per_lang is not None and eval_per_lang < 1:
        raise InputError(f"must be at least 1, got {eval_per_lang}", field="eval-per-lang")
    by_family: dict[str, list[Unit]] = defaultdict(list)
    for unit in units:
        by_family[unit.family].append(unit)
    order = sorted(by_family, key=lambda f: hashlib.sha256(f"{seed}:{f}".encode()).hexdigest())
    taken: Counter[str] = Counter()
    evaluation: list[Unit] = []
    training: list[Unit] = []
    families: dict[str, list[str]] = {"eval": [], "train": []}
    for fam in order:
        members = by_family[fam]
        fam_langs = {lang for u in members for lang in u.pages if lang in langs}
        if eval_per_lang is None or any(taken[lang] < eval_per_lang for lang in fam_langs):
            evaluation.extend(members)
            families["eval"].append(fam)
            for u in members:
                taken.update(lang for lang in u.pages if lang in langs)
        else:
            training.extend(members)
            families["train"].append(fam)
    by_id = lambda u: u.parallel_id  # noqa: E731
    return sorted(evaluation, key=by_id), sorted(training, key=by_id), {k: sorted(v) for k, v in families.items()}


def probe_lists(evaluation: Sequence[Unit], all_langs: Sequence[str], stats: Mapping[str, LangStats]
                ) -> tuple[list[ProbeDoc], list[ProbeQuery], list[ProbeQrel]]:
    docs: list[ProbeDoc] = []
    queries: list[ProbeQuery] = []
    qrels: list[ProbeQrel] = []
    seen: dict[str, set[str]] = defaultdict(set)
    for unit in evaluation:
        langs = [lang for lang in all_langs if lang in unit.pages]
        docs.extend(ProbeDoc(f"{unit.parallel_id}-{lang}", unit.pages[lang].document, lang, unit.parallel_id)
                    for lang in langs)
        for lang in langs:
            text = unit.pages[lang].query
            s = stats.get(lang)
            if text in seen[lang]:
                if s is not None:
                    s.duplicate_queries += 1
                continue
            if any(text in unit.pages[other].document for other in langs):
                if s is not None:
                    s.query_in_document += 1
                continue
            seen[lang].add(text)
            qid = f"q-{unit.parallel_id}-{lang}"
            queries.append(ProbeQuery(qid, text, lang, f"q-{unit.parallel_id}"))
            qrels.extend(ProbeQrel(qid, f"{unit.parallel_id}-{other}") for other in langs)
            if s is not None:
                s.eval_queries += 1
    return docs, queries, qrels


def train_jsonl(training: Sequence[Unit], all_langs: Sequence[str]) -> str:
    rows = []
    for unit in training:
        langs = [lang for lang in all_langs if lang in unit.pages]
        rows.append({"parallel_id": unit.parallel_id, "family": unit.family,
                     "texts": {lang: unit.pages[lang].document for lang in langs},
                     "queries": {lang: unit.pages[lang].query for lang in langs}})
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


QUERY_DERIVATION = ("Each query is the title of a section of the Debian installation guide (numbering removed), in "
                    "English or in a translation; its relevant documents are the first prose paragraphs of that "
                    "section in English and in every kept translation.")


def check_out(out_dir: Path) -> None:
    """Refuse an output that exists and is not an empty folder or a probe set of this kind."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise InputError("exists and is not a directory", out_dir, field="out")
    if not any(out_dir.iterdir()):
        return
    meta = out_dir / "meta.json"
    try:
        kind = json.loads(meta.read_text(encoding="utf-8")).get("kind") if meta.is_file() else None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        kind = None
    if kind != KIND:
        raise InputError(f"exists, is not empty and is not a {KIND} probe set (no meta.json with kind "
                         f"{KIND!r}); refusing to replace it", out_dir, field="out")


def build_debian_docs(package: Package, out_dir: str | Path, langs: Sequence[str] = DEFAULT_LANGS,
                      eval_per_lang: int | None = None, seed: int = 0, name: str = KIND) -> tuple[Path, BuildReport]:
    """Build the set into `out_dir` (atomically) from the unpacked installation-guide package."""
    out_dir = Path(out_dir)
    langs = check_langs(langs)
    check_out(out_dir)
    units, stats = collect_units(package, langs)
    if not units:
        raise InputError("no section survived the filters: nothing to build", field="langs")
    evaluation, training, families = split_families(units, langs, eval_per_lang, seed)
    for group, key in ((evaluation, "eval_units"), (training, "train_units")):
        for unit in group:
            for lang in unit.pages:
                if lang in stats:
                    setattr(stats[lang], key, getattr(stats[lang], key) + 1)
    all_langs = ["en", *langs]
    docs, queries, qrels = probe_lists(evaluation, all_langs, stats)
    copyright_file = doc_root(package) / "copyright"
    licence = "GPL-2 (see licences/installation-guide-amd64.copyright)"
    meta: dict[str, Any] = {
        "name": name,
        "kind": KIND,
        "source": {"description": "Debian 12 installation guide (DocBook HTML), English and its translations",
                   "packages": [{"name": package.name, "version": package.version,
                                 **({"deb_sha256": package.deb_sha256} if package.deb_sha256 else {}),
                                 "licence": ["GPL-2"],
                                 "copyright_file": f"licences/{package.name}.copyright"}],
                   "platform": platform.platform()},
        "licence": licence,
        "parallel": "human",
        "parallel_by_lang": {"en": "original", **{lang: "human" for lang in langs}},
        "query_derivation": QUERY_DERIVATION,
        "languages": all_langs,
        "units": len(units), "eval_units": len(evaluation), "train_units": len(training),
        "documents": len(docs), "queries": len(queries),
        "per_language": {lang: {"sections": s.sections, "kept": s.kept, "eval_units": s.eval_units,
                                "train_units": s.train_units, "eval_queries": s.eval_queries,
                                "duplicate_queries": s.duplicate_queries, "query_in_document": s.query_in_document,
                                "dropped": dict(sorted(s.dropped.items()))} for lang, s in stats.items()},
        "filters": {"untranslated_share_above": UNTRANSLATED_SHARE, "doc_paragraphs": DOC_PARAGRAPHS,
                    "equal_after_whitespace_normalisation": ["title", "document"]},
        "split": {"seed": seed, "eval_per_lang": eval_per_lang, "by": "family (chapter or appendix)",
                  "families": families,
                  "method": "families ordered by sha256('<seed>:<family>'); a family is evaluation while one of its "
                            "languages has fewer than eval_per_lang evaluation units (all, when unset), else training",
                  "test": "corpus.jsonl, queries.jsonl, qrels/test.tsv",
                  "train": "train.jsonl only; never in corpus.jsonl or queries.jsonl"},
        "build_command": f"clbias probes build debian-docs --langs {','.join(langs)}"
                         + (f" --eval-per-lang {eval_per_lang}" if eval_per_lang else "") + f" --seed {seed} --out {name}",
    }
    licence_text = ("# Licence of this probe set\n\nThe texts are excerpts (section titles and first prose paragraphs) "
                    "of the Debian GNU/Linux Installation Guide\n(package installation-guide-amd64), licensed under "
                    "the GNU GPL, version 2; its copyright file is copied\nverbatim to licences/. Changes made: HTML "
                    "markup removed, whitespace normalised, section numbering removed\nfrom titles, only the first "
                    "prose paragraphs of each section kept.\n")
    extra = {"LICENSE.md": licence_text, "train.jsonl": train_jsonl(training, all_langs)}
    if copyright_file.is_file():
        extra[f"licences/{package.name}.copyright"] = copyright_file.read_text(encoding="utf-8", errors="replace")
    report = BuildReport(langs, stats, {k: len(v) for k, v in families.items()})
    return write_probe_set(out_dir, docs, queries, qrels, meta, extra_files=extra), report


def build_from_debian(out_dir: str | Path, langs: Sequence[str] = DEFAULT_LANGS, eval_per_lang: int | None = None,
                      seed: int = 0, cache_root: Path | None = None, name: str = KIND,
                      log: Callable[[str], None] | None = None) -> tuple[Path, BuildReport]:
    """`apt-get download` + unpack the installation guide into CACHE/debian-docs (once), then build."""
    from ..manpages.sources import default_cache_root, download_debs, unpack

    langs = check_langs(langs)
    check_out(Path(out_dir))
    if eval_per_lang is not None and eval_per_lang < 1:
        raise InputError(f"must be at least 1, got {eval_per_lang}", field="eval-per-lang")
    base = (cache_root or default_cache_root()) / KIND
    debs = download_debs([PACKAGE], base / "debs")
    if log is not None:
        log(f"{PACKAGE}: {debs[PACKAGE].name} in {base / 'debs'}")
    package = unpack(debs[PACKAGE], base / "unpacked")
    return build_debian_docs(package, out_dir, langs, eval_per_lang, seed, name)
