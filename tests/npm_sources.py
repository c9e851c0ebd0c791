"""npm tarballs the probe tests build from: fetched into ~/.cache/clbias when missing."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from clbias.probes import fetch_npm_tarball, npm_tarball_path


def npm_tarball(package: str, version: str, what: str) -> Path:
    """Skipped only where npm is absent and nothing is cached; under CI (env CI set) that is a failure."""
    cached = npm_tarball_path(package, version)
    if cached.is_file() or shutil.which("npm"):
        return fetch_npm_tarball(package, version)
    message = f"npm is not installed and {cached} is missing: cannot build {what}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
