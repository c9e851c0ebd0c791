"""Export a Hugging Face encoder to ONNX with its manifest; torch, transformers, optimum and onnx are
imported only when an export runs, so importing this package stays light."""
from __future__ import annotations

from .onnx import FP32_FILE, INT8_FILE, export_model
from .quantize import DEFAULT_SETTINGS, QuantSettings, quantize_file

__all__ = ["DEFAULT_SETTINGS", "FP32_FILE", "INT8_FILE", "QuantSettings", "export_model", "quantize_file"]
