"""The metrics reference page, written from the metric registry (the docs site builds it; nothing is copied by hand).

`metric_reference_markdown()` lists every fixed metric and every family of the registry with the label,
direction, unit, number format and description that the renderers use, so the documentation cannot drift from
the code: a metric added to the registry appears on the next `mkdocs build`.
"""
from __future__ import annotations

from ..metrics.registry import FIXED_METRICS, METRIC_FAMILIES, Direction, Metric
from .display import display

DIRECTION_WORDS = {Direction.HIGHER: "higher is better", Direction.LOWER: "lower is better"}
ORIGIN_WORDS = {"paper": "the paper", "ours": "clbias"}


def _direction(metric: Metric) -> str:
    if metric.direction is Direction.TOWARD_IDEAL:
        return f"best at {metric.ideal:g}"
    return DIRECTION_WORDS[metric.direction]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(key: str, metric: Metric) -> str:
    d = display(metric.name)
    origin = ORIGIN_WORDS.get(metric.origin, metric.origin)
    source = str(getattr(metric, "source", "") or "")  # a publication, where the registry names one
    return (f"| `{key}` | {_cell(d.title)} | {_direction(metric)} | {metric.unit} | `{metric.fmt}` | "
            f"{_cell(source) if source else origin} | {_cell(metric.description)} |")


def metric_reference_markdown(example_k: int = 10) -> str:
    """A Markdown table of every registry metric: fixed names, then families as `<prefix>@k` (described at
    k = `example_k`, the audit's default cutoff)."""
    head = ["| key | label | direction | unit | format | defined by | meaning |", "|---|---|---|---|---|---|---|"]
    rows = [_row(m.name, m) for m in FIXED_METRICS]
    rows += [_row(f"{f.prefix}@k", f.at(example_k)) for f in METRIC_FAMILIES]
    families = ", ".join(f"`{f.prefix}@k`" for f in METRIC_FAMILIES)
    note = (f"Families ({families}) take any cutoff k >= 1 in the name (`ndcg@5`); their meaning is shown at "
            f"k = {example_k}, the audit's default `--k`.")
    return "\n".join(head + rows) + "\n\n" + note + "\n"
