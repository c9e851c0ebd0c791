"""MkDocs hook: a relative link from a page to a repository file outside docs/ (`../benchmarks/results/x.md`)
becomes that file's repository path as text, so pages can link results and code that are readable on a
forge or in a checkout, while the site (which cannot serve them) builds with --strict. A link to a file that
does not exist is left alone, so the strict build still reports it."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]+)\]\((?P<target>[^)\s#]+)(?P<anchor>#[^)\s]*)?\)")
FENCE = re.compile(r"^(```|~~~)")
TOKEN = re.compile(LINK.pattern + r"|(?P<code>`+)[^`]*(?P=code)")


def repository_path(target: str, page_dir: Path, docs_dir: Path, repo: Path) -> str | None:
    """The repository path of `target` (relative to `page_dir`) when it is an existing file outside
    `docs_dir`, else None."""
    if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
        return None
    path = (page_dir / target).resolve()
    if docs_dir in path.parents or not path.exists() or repo not in path.parents:
        return None
    return path.relative_to(repo).as_posix()


def rewrite(markdown: str, page_dir: Path, docs_dir: Path, repo: Path) -> str:
    """`markdown` with such links rewritten; fenced blocks and inline code spans are left as written."""
    out, fenced = [], False

    def replace(m: re.Match[str]) -> str:
        if m.group("code") is not None:  # an inline code span, scanned before any link inside it
            return m.group(0)
        found = repository_path(m.group("target"), page_dir, docs_dir, repo)
        if found is None:
            return m.group(0)
        text = m.group("text")
        return f"`{found}`" if text.strip("`") == found else f"{text} (`{found}`)"

    for line in markdown.split("\n"):
        if FENCE.match(line.strip()):
            fenced = not fenced
        out.append(line if fenced else TOKEN.sub(replace, line))
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    docs_dir = Path(config["docs_dir"]).resolve()
    page_dir = (docs_dir / page.file.src_uri).parent
    return rewrite(markdown, page_dir, docs_dir, docs_dir.parent)
