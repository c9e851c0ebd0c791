"""Small file helpers: atomic writes and located JSONL reading."""
from __future__ import annotations

import codecs
import contextlib
import errno
import gzip
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import zlib
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .errors import InputError, OutputError


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


# Errors of the disk or the file system, not of clbias: reported in one line naming the file, exit 2.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.ENAMETOOLONG, errno.EACCES,
                         errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.ELOOP})
# Kept short so that a temporary name beside a long file name still fits the file system's name limit.
_TMP_STEM = 120


def _tmp_prefix(target: Path) -> str:
    return f".{target.name[:_TMP_STEM]}."


def output_error(exc: OSError, target: str | Path, option: str | None = None) -> OutputError:
    """An OSError while writing an output, as the one-line error naming the file and the option."""
    return OutputError(f"cannot write: {exc.strerror or exc}", target, field=option, errno=exc.errno)


def output_target(target: str | Path, option: str | None = None) -> tuple[Path, bool]:
    """Where an output named `target` is written, and whether it is written in place as a stream.

    A symlink is written through (its target is replaced, the link stays); a link to nothing is refused. A
    character device (/dev/null, a terminal) or a FIFO is written in place, never replaced by a file. A block
    device or a socket is refused. Everything else is a regular file replaced by an atomic rename."""
    target = Path(target)
    try:
        mode = os.stat(target).st_mode  # follows links
    except FileNotFoundError:
        if target.is_symlink():
            raise InputError(f"is a symbolic link to {os.path.realpath(target)}, which does not exist; refusing to "
                             f"write through it", target, field=option) from None
        return target, False
    except OSError as exc:
        raise output_error(exc, target, option) from None
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return target, True  # opened by the name given: /dev/stdout -> /proc/self/fd/1 -> a pipe works
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return target, False
    what = "block device" if stat.S_ISBLK(mode) else "socket" if stat.S_ISSOCK(mode) else "special file"
    raise InputError(f"is a {what}; refusing to write to it", target, field=option)


def _install(tmp: Path, target: Path, stream: bool) -> None:
    """Put the finished temporary file `tmp` at `target`: renamed over a regular file, copied into a stream."""
    if stream:
        with open(tmp, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.unlink()
    else:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, target)


def _staging_file(target: Path, stream: bool) -> Path:
    if not stream:
        target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(target), suffix=".tmp", dir=None if stream else target.parent)
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(target: str | Path, option: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it over `target` only on success (see `output_target`
    for symlinks and special files). A full disk or an unwritable place raises a one-line InputError."""
    target, stream = output_target(target, option)
    try:
        tmp_path = _staging_file(target, stream)
    except OSError as exc:
        raise output_error(exc, target, option) from None
    try:
        yield tmp_path
        _install(tmp_path, target, stream)
    except OSError as exc:
        if exc.errno in DISK_ERRNOS:
            raise output_error(exc, target, option) from None
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(target: str | Path, text: str, option: str | None = None) -> None:
    with atomic_path(target, option) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(target: str | Path, obj: Any, option: str | None = None) -> None:
    write_text_atomic(target, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n", option)


def check_replaceable_dir(target: str | Path, replaceable: Callable[[Path], bool], what: str,
                          option: str | None = None) -> None:
    """Refuse a directory output that exists, is not empty and is not `what` (`replaceable` says which are):
    replacing it would delete files the user did not ask to replace."""
    target = Path(target)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        kind = "a symbolic link" if target.is_symlink() else "an existing file"
        raise InputError(f"is {kind}, expected a directory; refusing to replace it", target, field=option)
    if target.is_dir() and any(target.iterdir()) and not replaceable(target):
        raise InputError(f"exists, is not empty and is not {what}; refusing to replace it (its files would be "
                         f"lost): choose a new or empty directory", target, field=option)


def is_model_dir(directory: Path) -> bool:
    """A directory clbias wrote as a model: an exported model or training checkpoint (clbias.json), or a
    converted Hugging Face model (config.json)."""
    return (directory / "clbias.json").is_file() or (directory / "config.json").is_file()


@contextlib.contextmanager
def atomic_dir(target: str | Path, replaceable: Callable[[Path], bool] = is_model_dir,
               what: str = "a model directory") -> Iterator[Path]:
    """Yield a temporary directory beside `target`; it replaces `target` only on success.

    A non-empty `target` is replaced only when `replaceable(target)` says it is an earlier output of the same
    kind (`check_replaceable_dir`; by default a model directory): never a directory of the user's own files.
    A build killed halfway leaves only a `.NAME.partial-*` directory that no reader looks at.
    """
    target = Path(target)
    check_replaceable_dir(target, replaceable, what)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name[:_TMP_STEM]}.partial-{os.getpid()}-", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        if target.exists():
            old = target.with_name(f".{target.name[:_TMP_STEM]}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


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
    for partial in target.parent.glob(f".{glob_escape(target.name[:_TMP_STEM])}.partial-*"):
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
    except RecursionError:
        raise error(f"{path}: {what} (nested too deeply)") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def lone_surrogate(obj: Any, where: str = "") -> tuple[str, str] | None:
    """(field, character) of the first lone surrogate in a parsed JSON value, or None. JSON can spell one
    (\\ud800); it is not Unicode text, no model can read it and UTF-8 cannot write it."""
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError as exc:
            return where, obj[exc.start]
        return None
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        if isinstance(key, str) and lone_surrogate(key) is not None:
            return where or str(key.encode("utf-8", "backslashreplace").decode()), "key"
        found = lone_surrogate(value, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


def read_input_bytes(path: Path) -> bytes:
    """A whole input file, gunzipped when its name ends in .gz; a located InputError when unreadable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a JSONL file", path) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", path) from None
    if path.name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"not a readable gzip file ({exc})", path) from None
    return raw


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line_number, object) for each non-blank line of a JSON Lines file (gzipped when it ends in .gz);
    bad lines raise a located InputError."""
    path = Path(path)
    raw = read_input_bytes(path)
    if raw.startswith(codecs.BOM_UTF8):  # editors on Windows write one; it is not part of the first record
        raw = raw[len(codecs.BOM_UTF8):]
    if raw.lstrip()[:1] == b"[":
        raise InputError("expected JSON Lines, one object per line; this file starts with '[' (a JSON array?)",
                         path, 1)
    first = True
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        is_first, first = first, False
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"invalid UTF-8 at byte {exc.start}", path, lineno) from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            hint = ""
            if is_first and _one_document(raw):
                hint = "; expected JSON Lines, one object per line, but the file is one JSON document over many lines"
            raise InputError(f"malformed JSON ({exc.msg}, column {exc.colno}){hint}", path, lineno) from None
        except RecursionError:
            raise InputError("JSON nested too deeply", path, lineno) from None
        if not isinstance(obj, dict):
            raise InputError(f"expected a JSON object (JSON Lines, one object per line), got "
                             f"{type(obj).__name__}", path, lineno)
        if _SURROGATE_ESCAPE.search(line):  # only an escape can spell a lone surrogate; UTF-8 bytes cannot
            bad = lone_surrogate(obj)
            if bad is not None:
                raise InputError(f"lone surrogate {bad[1]!r}: not valid Unicode text", path, lineno, bad[0])
        yield lineno, obj


def _one_document(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return True


def _name_max(directory: Path) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _is_within(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
        return True
    except ValueError:
        return False


def check_output_paths(files: dict[str, Path | None], dirs: dict[str, Path | None] | None = None,
                       inputs: Iterable[Path | None] = (), replace_dirs: bool = False) -> None:
    """Refuse, before any work, output paths that could only fail (or destroy something) after it: a file
    output that is a directory, a block device or a link to nothing; a directory output that is a file; a
    parent that is a file or not writable; a name longer than the file system allows; two outputs on one
    path; an output that is one of the command's `inputs` (files, or directories a directory output must not
    be, nor contain when `replace_dirs`: they replace the directory wholesale). Keys are the options that named the paths, for the error message."""
    seen: dict[Path, str] = {}
    given_inputs = [Path(p) for p in inputs if p is not None]
    for option, path, is_dir in [(o, p, False) for o, p in files.items()] + [(o, p, True) for o, p in (dirs or {}).items()]:
        if path is None:
            continue
        path = Path(path)
        parent = next(p for p in path.absolute().parents if p.exists())
        limit = _name_max(parent) if parent.is_dir() else 255
        for part in path.absolute().relative_to(parent).parts:
            if len(os.fsencode(part)) > limit:
                raise InputError(f"a name in this path is {len(os.fsencode(part))} bytes long; the file system "
                                 f"allows {limit}", path, field=option)
        if not is_dir and path.is_dir():
            raise InputError("is a directory, expected a file path", path, field=option)
        if is_dir and path.exists() and not path.is_dir():
            raise InputError("is an existing file, expected a directory", path, field=option)
        if not parent.is_dir():
            raise InputError(f"{parent} is a file, not a directory", path, field=option)
        stream = False if is_dir else output_target(path, option)[1]
        if not stream and not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(f"directory {parent} is not writable", path, field=option)
        for source in given_inputs:
            if _same_file(path, source) or (is_dir and replace_dirs and source.exists() and _is_within(source, path)):
                what = "is" if _same_file(path, source) else "contains"
                raise InputError(f"{what} an input of this command ({source}); refusing to overwrite it",
                                 path, field=option)
        key = path.resolve()
        if key in seen:
            raise InputError(f"same path as {seen[key]}", path, field=option)
        seen[key] = option


class StagedOutputs:
    """Outputs written beside their targets under temporary names and renamed into place only when every one
    of them is written: an error while writing any leaves none behind (use as a context manager). Symlinks
    and special files are handled as `output_target` says; a full disk raises a one-line InputError."""

    def __init__(self, options: dict[str, Path | None] | None = None) -> None:
        self._files: list[tuple[Path, Path, bool]] = []  # (temporary file, target, written in place)
        self._dirs: list[tuple[Path, Path]] = []  # (temporary directory, target directory)
        # the option that named each output, for error messages
        self._option = {Path(p).absolute(): o for o, p in (options or {}).items() if p is not None}

    def option(self, target: Path) -> str | None:
        return self._option.get(Path(target).absolute())

    def file(self, target: str | Path) -> Path:
        """A temporary path to write `target`'s content to."""
        option = self.option(Path(target))
        real, stream = output_target(target, option)
        try:
            tmp = _staging_file(real, stream)
        except OSError as exc:
            raise output_error(exc, target, option) from None
        self._files.append((tmp, real, stream))
        return tmp

    def text(self, target: str | Path, text: str) -> None:
        tmp = self.file(target)
        try:
            tmp.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise output_error(exc, target, self.option(Path(target))) from None

    def directory(self, target: str | Path) -> Path:
        """A temporary directory whose files are moved into `target` (created if missing) on commit."""
        target = Path(target)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name[:_TMP_STEM]}.partial-{os.getpid()}-",
                                        dir=target.parent))
        except OSError as exc:
            raise output_error(exc, target, self.option(target)) from None
        self._dirs.append((tmp, target))
        return tmp

    def commit(self) -> None:
        mode = 0o666 & ~_umask()
        for tmp, target, stream in self._files:
            try:
                _install(tmp, target, stream)
            except OSError as exc:
                raise output_error(exc, target, self.option(target)) from None
        for tmp, target in self._dirs:
            target.mkdir(parents=True, exist_ok=True)
            for file in sorted(tmp.iterdir()):
                os.chmod(file, mode)
                os.replace(file, target / file.name)
            shutil.rmtree(tmp, ignore_errors=True)
        self._files, self._dirs = [], []

    def discard(self) -> None:
        for tmp, _, _ in self._files:
            tmp.unlink(missing_ok=True)
        for tmp, _ in self._dirs:
            shutil.rmtree(tmp, ignore_errors=True)
        self._files, self._dirs = [], []

    def __enter__(self) -> "StagedOutputs":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.discard()
                raise
        else:
            self.discard()
            if isinstance(exc, OSError) and not isinstance(exc, InputError) and exc.errno in DISK_ERRNOS:
                raise output_error(exc, exc.filename or "an output") from None
