"""The HTML renderer lives in the `html` package; this name stays for existing imports."""
from .html import to_html, twin_ranks, write_html

__all__ = ["to_html", "twin_ranks", "write_html"]
