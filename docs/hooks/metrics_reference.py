"""MkDocs hook: fills the metrics reference page from clbias's metric registry at build time.

The page `metrics.md` holds the marker below; the build replaces it with the table that
`clbias.report.metric_reference.metric_reference_markdown()` writes from the registry, so the reference
cannot drift from the code. A page without the marker fails the build (mkdocs build --strict in CI).
"""
from __future__ import annotations

from typing import Any

MARKER = "<!-- metrics-reference -->"
PAGE = "metrics.md"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE} lost its marker {MARKER}: the metrics reference would not be generated")
    from clbias.report.metric_reference import metric_reference_markdown

    return markdown.replace(MARKER, metric_reference_markdown())
