"""The translated-manual-pages probe set (Debian): `sources` fetches and unpacks the packages, `pages` renders
and splits pages, `build` matches translations to English pages, filters, splits and writes the set."""
from __future__ import annotations

from .build import DEFAULT_EVAL_PER_LANG, BuildReport, build_manpages, check_langs, english_packages
from .pages import RenderCache, groff_version
from .sources import (COMPARABLE_LANGS, DEFAULT_LANGS, ENGLISH_PACKAGES, TRANSLATIONS, Package,
                      default_cache_root, fetch_packages, packages_for)

__all__ = [
    "COMPARABLE_LANGS", "DEFAULT_EVAL_PER_LANG", "DEFAULT_LANGS", "ENGLISH_PACKAGES", "TRANSLATIONS",
    "BuildReport", "Package", "RenderCache",
    "build_manpages", "check_langs", "default_cache_root", "english_packages", "fetch_packages", "groff_version",
    "packages_for",
]
