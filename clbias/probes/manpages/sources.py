"""Where the manual pages come from: Debian packages, fetched with `apt-get download` into the clbias cache
and unpacked there with `dpkg-deb -x` (never installed), and the licence of each.

The fetch step is separate from everything else: the builder takes `Package`s, i.e. an unpacked tree plus its
name and version, so tests feed it a vendored tree and never run apt-get.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ...errors import InputError
from ...runtime.cache import make_private_dirs

# Translations: language tag -> (packages, locale directory below usr/share/man).
TRANSLATIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "cs": (("manpages-cs", "manpages-cs-dev"), "cs"),
    "da": (("manpages-da", "manpages-da-dev"), "da"),
    "de": (("manpages-de", "manpages-de-dev"), "de"),
    "el": (("manpages-el",), "el"),
    "es": (("manpages-es", "manpages-es-dev"), "es"),
    "fi": (("manpages-fi",), "fi"),
    "fr": (("manpages-fr", "manpages-fr-dev"), "fr"),
    "hu": (("manpages-hu",), "hu"),
    "id": (("manpages-id",), "id"),
    "it": (("manpages-it", "manpages-it-dev"), "it"),
    "ja": (("manpages-ja", "manpages-ja-dev"), "ja"),
    "mk": (("manpages-mk",), "mk"),
    "nb": (("manpages-nb",), "nb"),
    "nl": (("manpages-nl", "manpages-nl-dev"), "nl"),
    "pl": (("manpages-pl", "manpages-pl-dev"), "pl"),
    "pt-BR": (("manpages-pt-br", "manpages-pt-br-dev"), "pt_BR"),
    "ro": (("manpages-ro",), "ro"),
    "ru": (("manpages-ru", "manpages-ru-dev"), "ru"),
    "sr": (("manpages-sr",), "sr"),
    "sv": (("manpages-sv",), "sv"),
    "tr": (("manpages-tr",), "tr"),
    "uk": (("manpages-uk", "manpages-uk-dev"), "uk"),
    "vi": (("manpages-vi",), "vi"),
    "zh": (("manpages-zh",), "zh_CN"),  # zh_TW in the same package is derived from zh_CN: left out
}

# ja, zh and tr come from separate, older translation projects, not from manpages-l10n: their pages describe
# the same commands but are not translations of the English text the set pairs them with.
COMPARABLE_LANGS = frozenset({"ja", "zh", "tr"})

# The languages with at least 150 usable pages (measured, see README); the default selection.
DEFAULT_LANGS: tuple[str, ...] = ("de", "es", "fr", "ja", "pl", "ru", "tr", "uk", "zh")

# English: man-pages (sections 2-7; 6.03, the version manpages-l10n translated) first, then the packages that
# own the English pages of sections 1, 5 and 8 that have translations (measured on Debian 12, see data.md),
# then a few more owners of translated pages.
ENGLISH_PACKAGES: tuple[str, ...] = (
    "manpages", "manpages-dev",
    "systemd", "coreutils", "util-linux", "e2fsprogs", "gettext", "binutils-common", "uuid-dev", "gzip",
    "bsdextrautils", "udev", "openssh-client", "net-tools", "x11-xserver-utils", "procps", "bsdutils", "xz-utils",
    "systemd-sysv", "mount", "init-system-helpers", "groff-base", "bzip2", "util-linux-extra", "passwd",
    "diffutils", "upower", "tar", "ncurses-bin", "less", "gettext-base", "bash", "zstd", "systemd-timesyncd",
    "psmisc", "login", "locales", "libc-bin", "findutils", "wget", "time", "rpcsvc-proto", "perl-base", "patch",
    "make", "logsave", "libpq-dev", "libpam-systemd", "libpam-runtime", "libnss-systemd", "libcrypt-dev",
    "libc-devtools", "libc-dev-bin", "hostname", "grep", "gdb", "file", "ed", "dash", "bc",
    # owners of further translated pages, found by the build's "no English page" count
    "cpio", "kbd", "at", "mtools", "cron", "eject", "psutils", "sysstat", "ncal", "dpkg", "apt", "debianutils",
    "man-db", "sudo", "procmail", "grub-common", "acct",
)

_LICENSE_FIELD = re.compile(r"^License:[ \t]*(.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Package:
    """An unpacked Debian package: `root` holds its usr/share/... tree."""

    name: str
    version: str
    root: Path
    deb_sha256: str | None = None  # of the .deb it was unpacked from, when known

    @classmethod
    def from_dir(cls, root: str | Path) -> "Package":
        """An unpacked tree in a folder named NAME_VERSION (as `unpack` names them; Debian names have no "_")."""
        root = Path(root)
        name, sep, version = root.name.partition("_")
        if not sep or not name or not version:
            raise InputError("expected a folder named PACKAGE_VERSION", root)
        return cls(name, version, root)

    def man_root(self, locale: str | None) -> Path:
        base = self.root / "usr" / "share" / "man"
        return base / locale if locale else base

    def copyright_file(self) -> Path | None:
        path = self.root / "usr" / "share" / "doc" / self.name / "copyright"
        return path if path.is_file() else None

    def doc_link(self) -> str | None:
        """The package whose doc directory this one's links to (manpages-dev -> manpages), if any."""
        path = self.root / "usr" / "share" / "doc" / self.name
        if path.is_symlink():
            target = os.readlink(path).rstrip("/").rsplit("/", 1)[-1]
            return target or None
        return None

    def licences(self) -> list[str]:
        """The distinct `License:` short names of its DEP-5 copyright file, in order of appearance."""
        path = self.copyright_file()
        if path is None:
            return []
        found: list[str] = []
        for match in _LICENSE_FIELD.finditer(path.read_text(encoding="utf-8", errors="replace")):
            name = match.group(1).strip()
            if name and name not in found:
                found.append(name)
        return found


def packages_for(langs: Sequence[str]) -> list[str]:
    """Every package a build of `langs` needs: the translations of each language, then English."""
    names: list[str] = []
    for lang in langs:
        names.extend(TRANSLATIONS[lang][0])
    return names + list(ENGLISH_PACKAGES)


def default_cache_root() -> Path:
    """$CLBIAS_CACHE, else $XDG_CACHE_HOME/clbias, else ~/.cache/clbias (as the embedding cache)."""
    if os.environ.get("CLBIAS_CACHE"):
        return Path(os.environ["CLBIAS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "clbias"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _deb_field(deb: Path, name: str) -> str:
    result = subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        raise InputError(f"not a readable Debian package (dpkg-deb -f {name} failed)", deb)
    return result.stdout.strip()


def _require(tool: str, hint: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise InputError(f"{tool} not found: {hint}")
    return found


def download_debs(names: Sequence[str], deb_dir: Path) -> dict[str, Path]:
    """`apt-get download` the packages not yet in `deb_dir`; return name -> .deb of every package."""
    make_private_dirs(deb_dir)
    have = _debs_in(deb_dir)
    missing = [name for name in names if name not in have]
    if missing:
        apt = _require("apt-get", "building the man-page set needs a Debian system (apt-get, dpkg-deb)")
        unknown = _unknown_packages(missing)
        if unknown:
            raise InputError(f"apt cannot find package {unknown[0]!r}"
                             f"{f' (and {len(unknown) - 1} more)' if len(unknown) > 1 else ''}: "
                             f"run `apt-get update` (as root) and try again")
        result = subprocess.run([apt, "download", *missing], cwd=deb_dir, capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            lines = [line for line in result.stderr.splitlines() if line.startswith("E:")] or \
                    [line for line in result.stderr.splitlines() if line.strip()]
            reason = lines[0] if lines else f"exit status {result.returncode}"
            raise InputError(f"`apt-get download` failed: {reason} (try `apt-get update`)", deb_dir)
        have = _debs_in(deb_dir)
    absent = [name for name in names if name not in have]
    if absent:
        raise InputError(f"`apt-get download {absent[0]}` wrote no .deb: run `apt-get update` and try again", deb_dir)
    return {name: have[name] for name in names}


def _unknown_packages(names: Sequence[str]) -> list[str]:
    apt_cache = _require("apt-cache", "building the man-page set needs a Debian system (apt-get, dpkg-deb)")
    result = subprocess.run([apt_cache, "show", "--no-all-versions", *names], capture_output=True, text=True,
                            check=False)
    known = set(re.findall(r"^Package: (\S+)$", result.stdout, re.MULTILINE))
    return [name for name in names if name not in known]


def _debs_in(deb_dir: Path) -> dict[str, Path]:
    """name -> newest-looking .deb in the folder (file names are NAME_VERSION_ARCH.deb)."""
    found: dict[str, Path] = {}
    for path in sorted(deb_dir.glob("*.deb")):
        found[path.name.split("_", 1)[0]] = path
    return found


def unpack(deb: Path, unpack_root: Path) -> Package:
    """`dpkg-deb -x` a package into unpack_root/NAME_VERSION (once; atomic), and describe it."""
    _require("dpkg-deb", "building the man-page set needs a Debian system (apt-get, dpkg-deb)")
    name = _deb_field(deb, "Package")
    version = _deb_field(deb, "Version")
    target = unpack_root / re.sub(r"[^A-Za-z0-9.+-]", "_", f"{name}_{version}")
    digest = _sha256(deb)
    stamp = target / ".clbias-deb-sha256"
    if not (stamp.is_file() and stamp.read_text().strip() == digest):
        make_private_dirs(unpack_root)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=unpack_root))
        try:
            result = subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], capture_output=True, text=True,
                                    check=False)
            if result.returncode != 0:
                reason = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[0]
                raise InputError(f"dpkg-deb -x failed: {reason}", deb)
            (tmp / ".clbias-deb-sha256").write_text(digest + "\n")
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return Package(name, version, target, digest)


def fetch_packages(names: Sequence[str], cache_root: Path | None = None,
                   log: Callable[[str], None] | None = None) -> dict[str, Package]:
    """Download (when missing) and unpack every named package below CACHE/manpages; name -> Package."""
    base = (cache_root or default_cache_root()) / "manpages"
    debs = download_debs(list(dict.fromkeys(names)), base / "debs")
    if log is not None:
        log(f"{len(debs)} Debian packages in {base / 'debs'}")
    return {name: unpack(deb, base / "unpacked") for name, deb in debs.items()}
