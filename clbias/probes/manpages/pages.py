"""Manual pages on disk: find them in extracted package trees, resolve links and `.so` stubs, render them with
groff (in parallel, cached by package version) and split the rendered text into sections and paragraphs.

groff is run with a line length of 4000 ens, hyphenation and adjustment off and no overstriking, so every
filled paragraph comes out as one line, indented as the page indents it; headings (`.SH`) are the lines at
column 0 between the running header (first line) and footer (last line).
"""
from __future__ import annotations

import gzip
import json
import os
import posixpath
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ...errors import InputError
from ...runtime.cache import make_private_dirs

GROFF_ARGS = ("-k", "-Kutf-8", "-man", "-Tutf8", "-rLL=4000n", "-rHY=0", "-rcR=1", "-P-c", "-P-b", "-P-u", "-P-o")
RENDER_FORMAT = 1  # bump when the cached text would change for the same package version
GROFF_TIMEOUT_S = 60
MAX_LINK_HOPS = 8

_SECTION_DIR = re.compile(r"^man[0-9n]$")
_PAGE_FILE = re.compile(r"^(?P<name>.+)\.(?P<section>[0-9n][A-Za-z0-9_+]*)(?:\.gz)?$")
_SO_REQUEST = re.compile(r"^\.so\s+(\S+)\s*$")
# A short `.TP` tag and its text on one line: "total  Total installed memory", "-e     same as -vE". groff
# also puts two spaces between a Latin word and CJK text ("acct()  システムコール"): CJK after the gap is prose.
_INLINE_TAG = re.compile(r"^[^\s.:;,。、]{1,14}\s{2,}[^\s\u2e80-\uffef]")


class PageSkip(Exception):
    """A page that is left out, with a short reason that the build counts (not an error)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TreeFile:
    """One file of a man tree: `relkey` is its place below the man root without `.gz` ("man1/ls.1")."""

    relkey: str
    path: Path
    package: str  # the package it came from ("manpages-de")
    man_root: Path  # usr/share/man[/<locale>] of that package


@dataclass
class ManTree:
    """The pages of one language: relkey -> file, merged over that language's packages (first one wins)."""

    files: dict[str, TreeFile] = field(default_factory=dict)

    def add_package(self, package: str, man_root: Path) -> int:
        """Index every page below `man_root` (manN/NAME.N[.gz]); return how many were new."""
        added = 0
        if not man_root.is_dir():
            return 0
        for section_dir in sorted(p for p in man_root.iterdir() if p.is_dir() and _SECTION_DIR.match(p.name)):
            for path in sorted(section_dir.iterdir()):
                if not _PAGE_FILE.match(path.name) or not (path.is_file() or path.is_symlink()):
                    continue
                relkey = f"{section_dir.name}/{path.name.removesuffix('.gz')}"
                if relkey not in self.files:
                    self.files[relkey] = TreeFile(relkey, path, package, man_root)
                    added += 1
        return added

    def resolve(self, relkey: str) -> TreeFile:
        """Follow symlinks and `.so` stubs to the file that holds the page; PageSkip when they lead nowhere."""
        seen: list[str] = []
        current = self.files.get(relkey)
        if current is None:
            raise PageSkip("no such page")
        while True:
            if current.relkey in seen:
                raise PageSkip("link loop")
            seen.append(current.relkey)
            if len(seen) > MAX_LINK_HOPS:
                raise PageSkip("too many links")
            target = self._next_hop(current)
            if target is None:
                return current
            nxt = self.files.get(target)
            if nxt is None:
                raise PageSkip("dangling link or .so")
            current = nxt

    def _next_hop(self, file: TreeFile) -> str | None:
        if file.path.is_symlink():
            link = os.readlink(file.path)
            here = posixpath.dirname(file.relkey)
            joined = posixpath.normpath(posixpath.join(here, link)) if not link.startswith("/") else None
            if joined is None:  # absolute: /usr/share/man/<...>/manN/x.N.gz
                parts = link.split("/")
                joined = "/".join(parts[-2:]) if len(parts) >= 2 else link
            return joined.removesuffix(".gz")
        target = so_target(read_source(file.path))
        return target.removesuffix(".gz") if target is not None else None


def read_source(path: Path) -> bytes:
    """The roff source of a page file, gunzipped when it ends in .gz; PageSkip when unreadable."""
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if path.name.endswith(".gz") else data
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise PageSkip(f"unreadable file ({exc.__class__.__name__})") from None


def so_target(source: bytes) -> str | None:
    """The target of a `.so` stub ("man7/uri.7"), or None for a real page: only a page whose first request
    (comments aside) is `.so` and that has no other text is a stub."""
    lines = [line for line in source.decode("utf-8", "replace").splitlines()
             if line.strip() and not line.startswith(('.\\"', "'\\\"", '\\"'))]
    if len(lines) == 1:
        match = _SO_REQUEST.match(lines[0])
        if match:
            return match.group(1)
    return None


def page_key(relkey: str) -> str:
    """The page's name and section as used in ids: "man1/ls.1" -> "ls.1"."""
    return relkey.split("/", 1)[1]


# --------------------------------------------------------------------------- rendering


def groff_version() -> str:
    """The first line of `groff --version`; InputError when groff is not installed."""
    try:
        result = subprocess.run(["groff", "--version"], capture_output=True, text=True, check=False, timeout=30)
    except FileNotFoundError:
        raise InputError("groff not found: install Debian's groff-base (apt-get install groff-base)") from None
    first = (result.stdout or "").splitlines()
    if result.returncode != 0 or not first:
        raise InputError("`groff --version` failed: is groff-base installed?")
    return first[0].strip()


def render_roff(source: bytes, cwd: Path) -> str:
    """Render one page; the text with trailing blanks removed from each line. PageSkip when groff fails."""
    try:
        result = subprocess.run(["groff", *GROFF_ARGS], input=source, capture_output=True, cwd=cwd,
                                check=False, timeout=GROFF_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise PageSkip("groff timed out") from None
    text = result.stdout.decode("utf-8", "replace")
    if result.returncode != 0 or not text.strip():
        raise PageSkip("groff cannot render it")
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n") + "\n"


@dataclass(frozen=True)
class RenderJob:
    package: str
    version: str
    path: Path
    cache_key: str  # "<package>:<relkey>", unique within one package version
    man_root: Path


class RenderCache:
    """Rendered text of pages, one gzipped JSON file per package version under `root`.

    Entries hold the rendered text, or {"skip": reason} for a page groff cannot render. A file is only valid
    for the groff version and arguments it was made with (recorded in it); a new package version is a new file.
    """

    def __init__(self, root: Path, groff: str) -> None:
        self.root = root
        self.groff = groff
        self._loaded: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
        self._dirty: set[tuple[str, str]] = set()

    def _file(self, package: str, version: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9.+-]", "_", f"{package}_{version}")
        return self.root / f"{safe}.json.gz"

    def _stamp(self) -> dict[str, object]:
        return {"format": RENDER_FORMAT, "groff": self.groff, "args": list(GROFF_ARGS)}

    def entries(self, package: str, version: str) -> dict[str, dict[str, str]]:
        key = (package, version)
        if key not in self._loaded:
            pages: dict[str, dict[str, str]] = {}
            path = self._file(package, version)
            if path.is_file():
                try:
                    data = json.loads(gzip.decompress(path.read_bytes()).decode("utf-8"))
                    if isinstance(data, dict) and data.get("stamp") == self._stamp():
                        pages = data.get("pages", {})
                except (OSError, EOFError, ValueError, gzip.BadGzipFile):
                    pages = {}  # a damaged cache file is rebuilt, not trusted
            self._loaded[key] = pages
        return self._loaded[key]

    def put(self, package: str, version: str, cache_key: str, entry: dict[str, str]) -> None:
        self.entries(package, version)[cache_key] = entry
        self._dirty.add((package, version))

    def save(self) -> None:
        for package, version in sorted(self._dirty):
            path = self._file(package, version)
            make_private_dirs(path.parent)
            payload = {"stamp": self._stamp(), "package": package, "version": version,
                       "pages": dict(sorted(self.entries(package, version).items()))}
            data = gzip.compress(json.dumps(payload, ensure_ascii=False).encode("utf-8"), mtime=0)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        self._dirty.clear()


def render_all(jobs: Sequence[RenderJob], cache: RenderCache | None, workers: int | None = None,
               progress: Callable[[int, int], None] | None = None) -> tuple[dict[str, dict[str, str]], int]:
    """Render every job not yet in the cache, `workers` groff processes at a time (default: all cores).

    Returns (cache_key -> {"text": ...} or {"skip": reason}, number of pages rendered now). The cache is saved
    even when interrupted, so a second attempt only renders what is left.
    """
    results: dict[str, dict[str, str]] = {}
    todo: list[RenderJob] = []
    for job in jobs:
        cached = cache.entries(job.package, job.version).get(job.cache_key) if cache else None
        if cached is not None:
            results[job.cache_key] = cached
        else:
            todo.append(job)

    def one(job: RenderJob) -> dict[str, str]:
        try:
            return {"text": render_roff(read_source(job.path), job.man_root)}
        except PageSkip as skip:
            return {"skip": skip.reason}

    done = 0
    pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1)
    try:
        for job, entry in zip(todo, pool.map(one, todo)):
            results[job.cache_key] = entry
            if cache is not None:
                cache.put(job.package, job.version, job.cache_key, entry)
            done += 1
            if progress is not None:
                progress(done, len(todo))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on Ctrl-C: finish the running groffs, drop the rest
        if cache is not None:
            cache.save()
    return results, len(todo)


# --------------------------------------------------------------------------- parsing rendered text


@dataclass(frozen=True)
class Line:
    indent: int
    text: str  # whitespace runs collapsed
    inline_tag: bool = False  # starts like `.TP` with a short tag: "total  Total installed memory"


@dataclass(frozen=True)
class Section:
    heading: str
    blocks: tuple[tuple[Line, ...], ...]  # runs of lines between blank lines


def _is_running_title(line: str) -> bool:
    return bool(line) and not line[0].isspace() and _TITLE_GAP.search(line.strip()) is not None


def split_sections(rendered: str) -> list[Section]:
    """Sections of a rendered page: the running header and footer are dropped,
    a line at column 0 starts a section, blank lines separate blocks."""
    lines = rendered.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    # man pages get a running header and footer ("LS(1)    User Commands    LS(1)"); mdoc pages rendered
    # continuously get neither, so only a column-0 line with a wide gap inside is dropped
    if lines and _is_running_title(lines[0]):
        lines.pop(0)
    if lines and _is_running_title(lines[-1]):
        lines.pop()
    body = lines
    sections: list[Section] = []
    heading: str | None = None
    blocks: list[tuple[Line, ...]] = []
    block: list[Line] = []

    def close_block() -> None:
        nonlocal block
        if block:
            blocks.append(tuple(block))
            block = []

    for raw in body:
        if not raw.strip():
            close_block()
            continue
        if not raw[0].isspace():
            close_block()
            if heading is not None:
                sections.append(Section(heading, tuple(blocks)))
            heading, blocks = " ".join(raw.split()), []
            continue
        if heading is None:
            continue  # text before the first heading (a stray header line)
        stripped = raw.lstrip()
        block.append(Line(len(raw) - len(stripped), " ".join(raw.split()), bool(_INLINE_TAG.match(stripped))))
    close_block()
    if heading is not None:
        sections.append(Section(heading, tuple(blocks)))
    return sections


SUBHEADING_INDENT = 3
_TITLE_GAP = re.compile(r"\S {3,}\S")
_OPTIONISH = re.compile(r"^[-+•·*◦‐–—]")


def paragraphs(section: Section) -> list[Line]:
    """The filled paragraphs of a section: every line that is neither a tag (a line followed directly by a
    deeper-indented one, as `.TP` renders) nor part of a no-fill block (two or more consecutive lines at
    the same indent: code, tables, synopses)."""
    out: list[Line] = []
    for block in section.blocks:
        for i, line in enumerate(block):
            nxt = block[i + 1] if i + 1 < len(block) else None
            prev = block[i - 1] if i > 0 else None
            if nxt is not None and nxt.indent > line.indent:
                continue  # a tag
            if (nxt is not None and nxt.indent == line.indent) or (prev is not None and prev.indent == line.indent):
                continue  # no-fill text
            out.append(line)
    return out


def prose_paragraphs(section: Section) -> list[str]:
    """Paragraphs at the section's body indent that do not start like an option or a list item. `.SS`
    subheadings render at indent 3 or less; the body indent is the smallest indent deeper than that."""
    paras = paragraphs(section)
    body = [line.indent for block in section.blocks for line in block if line.indent > SUBHEADING_INDENT]
    if not paras or not body:
        return []
    body_indent = min(body)
    return [p.text for p in paras
            if p.indent == body_indent and not p.inline_tag and not _OPTIONISH.match(p.text)]
