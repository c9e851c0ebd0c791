"""Sections of a DocBook HTML manual (Debian's installation guide): stable id, title, first prose paragraphs.

DocBook XSL writes every section as `<div class="sect1|sect2|...">` whose title is `<hN class="title"><a
name="ID"></a>4.2. Title</hN>`; the anchor name comes from the DocBook source, so it is the same in every
language. A section's prose is its `<p>` elements that are direct children of the section's own div (notes,
lists, tables, examples and sub-sections are skipped).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from html.parser import HTMLParser

SECTION_CLASSES = frozenset({"sect1", "sect2", "sect3", "sect4", "sect5", "section"})
TITLE_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
# "4.2. ", "A.2.1. ", "B.4.10 " at the start of a section title: the numbering, the same in every language
_NUMBERING = re.compile(r"^\s*(?:[A-Z]|\d+)(?:\.\d+)*\.?\s+")
_GENERATED = re.compile(r"^id[a-z]?\d+$")
_VOID = frozenset({"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr", "source"})


def normal(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


@dataclass
class Section:
    section_id: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    order: int = 0  # position of its opening tag among the page's sections

    @property
    def generated_id(self) -> bool:
        """DocBook XSL made the id up (idm1012): it differs between languages, unlike an id from the source."""
        return bool(_GENERATED.match(self.section_id))


@dataclass
class _Open:
    tag: str
    section: Section | None = None  # set for a section div


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[_Open] = []
        self.sections: list[Section] = []
        self._title: list[str] | None = None
        self._title_id: str | None = None
        self._para: list[str] | None = None
        self._para_owner: Section | None = None
        self._opened = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag in _VOID:
            return
        if tag == "p" and self._para is not None:  # an unclosed <p> ends at the next one
            self._close_paragraph()
            self._pop_to("p")
        opened = _Open(tag)
        classes = set(attr.get("class", "").split())
        if tag == "div" and classes & SECTION_CLASSES:
            opened.section = Section("", "", order=self._opened)
            self._opened += 1
        self.stack.append(opened)
        if tag in TITLE_TAGS and "title" in classes and self._owner_section() is not None:
            self._title, self._title_id = [], None
        elif tag == "a" and self._title is not None and attr.get("name") and self._title_id is None:
            self._title_id = attr["name"]
        elif tag == "p" and self._title is None:
            parent = self.stack[-2] if len(self.stack) > 1 else None
            if parent is not None and parent.section is not None:
                self._para, self._para_owner = [], parent.section

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if tag == "p" and self._para is not None:
            self._close_paragraph()
        if tag in TITLE_TAGS and self._title is not None:
            section = self._owner_section()
            if section is not None and self._title_id:
                section.section_id = self._title_id
                section.title = normal(_NUMBERING.sub("", normal("".join(self._title)), count=1))
            self._title, self._title_id = None, None
        closed = self._pop_to(tag)
        if closed is not None and closed.section is not None and closed.section.section_id:
            self.sections.append(closed.section)

    def handle_data(self, data: str) -> None:
        if self._title is not None:
            self._title.append(data)
        elif self._para is not None:
            self._para.append(data)

    def _owner_section(self) -> Section | None:
        for opened in reversed(self.stack):
            if opened.section is not None:
                return opened.section
        return None

    def _close_paragraph(self) -> None:
        text = normal("".join(self._para or []))
        if text and self._para_owner is not None:
            self._para_owner.paragraphs.append(text)
        self._para, self._para_owner = None, None

    def _pop_to(self, tag: str) -> _Open | None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i].tag == tag:
                closed = self.stack[i]
                for inner in self.stack[i + 1:]:  # unclosed inner elements end with their parent
                    if inner.section is not None and inner.section.section_id:
                        self.sections.append(inner.section)
                del self.stack[i:]
                return closed
        return None


def read_sections(html: str) -> list[Section]:
    """Every titled section of one HTML page, in document order."""
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return sorted(parser.sections, key=lambda s: s.order)


def stable_keys(page_stem: str, sections: list[Section]) -> list[str]:
    """A key per section that is the same in every language: its source id, or, for a generated id, the
    page and its rank among the page's generated-id sections (the translations share the DocBook source,
    so a page holds the same sections in the same order in every language)."""
    keys, generated = [], 0
    for section in sections:
        if section.generated_id:
            generated += 1
            keys.append(f"{page_stem}.{generated}")
        else:
            keys.append(section.section_id)
    return keys
