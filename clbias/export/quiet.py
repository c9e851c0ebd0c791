"""Keep the frameworks' export chatter (tracer, deprecation and 'weights not initialised' notes about the
unused pooler) off the user's terminal; real failures still raise and become one-line errors."""
from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Iterator

NOISY_LOGGERS = ("transformers", "optimum", "torch.onnx", "onnxruntime", "root", "")


@contextlib.contextmanager
def quiet_frameworks() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    hf_verbosity = None
    try:
        import transformers

        hf_verbosity = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()
    except ImportError:
        pass
    try:
        from optimum.utils import logging as optimum_logging

        optimum_logging.set_verbosity_error()  # configures (and would otherwise reset) optimum's root logger
    except ImportError:
        pass
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if hf_verbosity is not None:
            import transformers

            transformers.logging.set_verbosity(hf_verbosity)
