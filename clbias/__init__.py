"""clbias: audit multilingual retrievers for English bias, fix it, and ship the result to CPU machines."""
__version__ = "0.1.0"

from .api import audit_corpus, embed, load_model  # noqa: E402

__all__ = ["__version__", "audit_corpus", "embed", "load_model"]
