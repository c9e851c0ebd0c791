"""Small file helpers: atomic writes and located JSONL reading."""
from __future__ import annotations

import codecs
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import InputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it over `target` only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(target: str | Path, obj: Any) -> None:
    write_text_atomic(target, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def _usual_file_modes(root: Path) -> None:
    """Give files that a writer created private (0600: safetensors' save_file, mkstemp) the mode their
    siblings get from the umask, so one file of a model directory is not unreadable to the others' readers."""
    usual = 0o666 & ~_umask()
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_mode & 0o077 == 0 and usual & 0o077:
            os.chmod(path, usual | (path.stat().st_mode & 0o111))


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside `target`; it replaces `target` only on success.

    A build killed halfway leaves only a `.NAME.partial-*` directory that no reader looks at.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        _usual_file_modes(tmp)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_abandoned(target: Path) -> None:
    """Delete partial builds of `target` left by processes that were killed (they can be hundreds of MB)."""
    for partial in target.parent.glob(f".{target.name}.partial-*"):
        pid = partial.name.rsplit(".partial-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)) and partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)


def read_json_object(path: str | Path, error: type[Exception], what: str = "cannot read") -> dict[str, Any]:
    """A JSON file that must hold an object; any problem raises `error` with a one-line message."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: {what} ({exc})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line_number, object) for each non-blank line; bad lines raise a located InputError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a JSONL file", path) from None
    if raw.startswith(codecs.BOM_UTF8):  # editors on Windows write one; it is not part of the first record
        raw = raw[len(codecs.BOM_UTF8):]
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"invalid UTF-8 at byte {exc.start}", path, lineno) from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"malformed JSON ({exc.msg}, column {exc.colno})", path, lineno) from None
        if not isinstance(obj, dict):
            raise InputError("expected a JSON object", path, lineno)
        yield lineno, obj


def check_output_paths(files: dict[str, Path | None], dirs: dict[str, Path | None] | None = None) -> None:
    """Refuse, before any work, output paths that could only fail (or overwrite each other) after it: a file
    output that is a directory, a directory output that is a file, a parent that is a file or not writable,
    two outputs on one path. Keys are the options that named the paths, for the error message."""
    seen: dict[Path, str] = {}
    for option, path, is_dir in [(o, p, False) for o, p in files.items()] + [(o, p, True) for o, p in (dirs or {}).items()]:
        if path is None:
            continue
        path = Path(path)
        if not is_dir and path.is_dir():
            raise InputError("is a directory, expected a file path", path, field=option)
        if is_dir and path.exists() and not path.is_dir():
            raise InputError("is an existing file, expected a directory", path, field=option)
        parent = next(p for p in path.absolute().parents if p.exists())
        if not parent.is_dir():
            raise InputError(f"{parent} is a file, not a directory", path, field=option)
        if not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(f"directory {parent} is not writable", path, field=option)
        key = path.resolve()
        if key in seen:
            raise InputError(f"same path as {seen[key]}", path, field=option)
        seen[key] = option


class StagedOutputs:
    """Outputs written beside their targets under temporary names and renamed into place only when every one
    of them is written: an error while writing any leaves none behind (use as a context manager)."""

    def __init__(self) -> None:
        self._files: list[tuple[Path, Path]] = []  # (temporary file, target)
        self._dirs: list[tuple[Path, Path]] = []  # (temporary directory, target directory)

    def file(self, target: str | Path) -> Path:
        """A temporary path to write `target`'s content to."""
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        self._files.append((Path(tmp), target))
        return Path(tmp)

    def text(self, target: str | Path, text: str) -> None:
        self.file(target).write_text(text, encoding="utf-8")

    def directory(self, target: str | Path) -> Path:
        """A temporary directory whose files are moved into `target` (created if missing) on commit."""
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))
        self._dirs.append((tmp, target))
        return tmp

    def commit(self) -> None:
        mode = 0o666 & ~_umask()
        for tmp, target in self._files:
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        for tmp, target in self._dirs:
            target.mkdir(parents=True, exist_ok=True)
            for file in sorted(tmp.iterdir()):
                os.chmod(file, mode)
                os.replace(file, target / file.name)
            shutil.rmtree(tmp, ignore_errors=True)
        self._files, self._dirs = [], []

    def discard(self) -> None:
        for tmp, _ in self._files:
            tmp.unlink(missing_ok=True)
        for tmp, _ in self._dirs:
            shutil.rmtree(tmp, ignore_errors=True)
        self._files, self._dirs = [], []

    def __enter__(self) -> "StagedOutputs":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def portable_path(path: str | Path) -> str:
    """A local path as a manifest or report may record it: relative as the user gave it, else only the last
    component. An absolute path names someone's home directory and machine layout and identifies nothing the
    recorded hashes do not."""
    path = Path(path)
    return path.as_posix() if not path.is_absolute() else path.name
