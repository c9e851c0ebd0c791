"""Debian's translated documentation as a probe set (a second domain beside the manual pages): the
installation guide's sections, title -> first prose paragraphs, parallel by DocBook section id."""
from __future__ import annotations

from .build import (DEFAULT_LANGS, KIND, LOCALES, PACKAGE, BuildReport, build_debian_docs, build_from_debian,
                    check_langs, family_of)
from .sections import Section, read_sections

__all__ = ["DEFAULT_LANGS", "KIND", "LOCALES", "PACKAGE", "BuildReport", "Section", "build_debian_docs",
           "build_from_debian", "check_langs", "family_of", "read_sections"]
