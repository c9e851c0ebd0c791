"""Self-contained HTML rendering of a Report: inline CSS and inline SVG plots, no JavaScript, no external URLs.

    to_html(report) -> str        write_html(report, path)

Where things are: `page.py` (section order, CSS), `tables.py` (tables and the verdict), `cards.py` (header),
`svg.py` (primitives, palette, scales), and one file per plot: `plot_twins.py` (rank of the two relevant
versions), `plot_topk_mix.py` (language mix of the top results), `plot_metric_bars.py` (per-language bars),
`plot_comparison.py` (two models), `plot_matrix.py` (language matrix heatmap). Each plot sits in a
<figure data-plot="...">.
"""
from .page import to_html, write_html
from .plot_twins import twin_ranks

__all__ = ["to_html", "twin_ranks", "write_html"]
