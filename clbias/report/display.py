"""How every renderer shows a metric: label, unit, number format, direction and description.

Units, formats, directions, ideals and descriptions come from the metric registry; this module adds only the
human label of each registry name (or family prefix, so `ndcg@5` is labelled `nDCG@5`). A key the registry does
not know (a metric from a newer clbias, read back from JSON) is still shown, under its own name.

One significance rule serves stars and colours alike: a paired difference is significant when its 95% CI
excludes 0 (`significant`), and it is better or worse by the metric's direction (`improvement_sign`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..errors import InputError
from ..metrics import stats
from ..metrics.registry import Direction, Metric, get_metric

LABELS: dict[str, str] = {
    "max_r": "Max@R", "max_r_norm": "Max@R_norm", "eir": "EIR", "eir_neutral": "neutral EIR",
    "twin_pref": "twin pref", "twin_rank_gap": "twin rank gap", "twin_score_gap": "twin score gap",
    "complete": "Complete", "ndcg": "nDCG", "recall": "Recall", "mrr": "MRR", "en_exposure": "EN exposure",
    "top1_rel_same": "rel·same", "top1_rel_en": "rel·en", "top1_rel_other": "rel·other",
    "top1_irr_same": "irr·same", "top1_irr_en": "irr·en", "top1_irr_other": "irr·other",
    "peer": "PEER", "lpr": "LPR", "lang_ndcg": "Lang-nDCG", "tlr": "TLR", "lang_pref": "lang pref",
}
SHORT_LABELS: dict[str, str] = {"max_r_norm": "MaxR_norm", "complete": "Compl", "en_exposure": "EN exp",
                                "twin_pref": "twin pref", "eir_neutral": "EIR neutral"}
ARROWS = {Direction.HIGHER: "↑", Direction.LOWER: "↓"}


@dataclass(frozen=True)
class MetricDisplay:
    key: str
    label: str
    short: str
    unit: str
    fmt: str  # the registry's format of one aggregate value
    cell_fmt: str  # one decimal fewer, for table cells with a CI beside the value
    direction: Direction | None
    ideal: float | None
    description: str

    @property
    def arrow(self) -> str:
        """`↑`, `↓`, or `→1` for a metric best at an ideal value; empty when unknown."""
        if self.direction is Direction.TOWARD_IDEAL:
            return f"→{self.ideal:g}" if self.ideal is not None else "→"
        return ARROWS.get(self.direction, "") if self.direction else ""

    @property
    def title(self) -> str:
        return f"{self.label} {self.arrow}".strip()

    def value(self, value: float | None, precise: bool = False, sign: bool = False) -> str:
        if value is None or value != value:
            return "–"
        spec = self.fmt if precise else self.cell_fmt
        return format(value, ("+" if sign else "") + spec)

    def ci(self, ci: list[float] | tuple[float, float] | None, sign: bool = False) -> str:
        """The interval one decimal coarser than the value, as in `58–66`."""
        if not ci:
            return ""
        spec = ("+" if sign else "") + _fewer_decimals(self.cell_fmt)
        sep = "–" if ci[0] >= 0 and ci[1] >= 0 and not sign else " to "
        return f"{format(ci[0], spec)}{sep}{format(ci[1], spec)}"

    def cell(self, value: float | None, ci: list[float] | None = None, sign: bool = False) -> str:
        text = self.value(value, sign=sign)
        return f"{text} {self.ci(ci, sign)}" if value is not None and ci else text


def _fewer_decimals(spec: str) -> str:
    head, dot, tail = spec.partition(".")
    if not dot or not tail[:-1].isdigit():
        return spec
    return f"{head}.{max(int(tail[:-1]) - 1, 0)}{tail[-1]}"


def _label(name: str, table: Mapping[str, str]) -> str:
    if name in table:
        return table[name]
    prefix, at, k = name.partition("@")
    if at and prefix in table:
        return f"{table[prefix]}@{k}"
    return LABELS.get(name) or (f"{LABELS[prefix]}@{k}" if at and prefix in LABELS else name)


def _metric(key: str) -> Metric | None:
    try:
        return get_metric(key)
    except InputError:
        return None


def display(key: str) -> MetricDisplay:
    metric = _metric(key)
    label = _label(key, LABELS)
    short = _label(key, SHORT_LABELS)
    if metric is None:
        return MetricDisplay(key, label, short, "", ".2f", ".1f", None, None, key)
    return MetricDisplay(key, label, short, metric.unit, metric.fmt, _fewer_decimals(metric.fmt), metric.direction,
                         metric.ideal, metric.description)


# The field's metrics (docs/field-metrics.md), shown together in the detailed views
FIELD_COLUMNS = ("peer@{k}", "lpr", "lang_ndcg@{k}", "tlr@{k}", "lang_pref")


def field_keys(k: int, present: Iterable[str]) -> list[str]:
    """The field's metric keys at cutoff k that the report holds values for."""
    have = set(present)
    return [key for key in (at_k(t, k) for t in FIELD_COLUMNS) if key in have]


def at_k(template: str, k: int) -> str:
    """A registry key for cutoff k: `ndcg@{k}` -> `ndcg@5`; fixed names pass through."""
    return template.format(k=k)


def improvement_sign(key: str, other: float | None, base: float | None, diff: float | None = None) -> float:
    """> 0 when `other` is better than `base` under the metric's direction (Metric.improvement).

    With only a difference known (no means), higher-better and lower-better metrics still have a sign;
    toward-ideal metrics need both means."""
    metric = _metric(key)
    if metric is None:
        metric = get_metric("ndcg@10")  # unknown keys: higher is better
    if other is not None and base is not None:
        return float(metric.improvement(other, base))
    if diff is None:
        return 0.0
    if metric.direction is Direction.LOWER:
        return -diff
    return diff if metric.direction is Direction.HIGHER else 0.0


def significant(change: Mapping[str, Any]) -> bool:
    """The one significance rule (`clbias.metrics.stats.significant`) read from a comparison's paired CI."""
    ci = change.get("ci")
    return ci is not None and len(ci) == 2 and stats.significant(ci[0], ci[1])


def change_class(key: str, change: Mapping[str, Any]) -> str:
    """"better", "worse" (significant changes, by direction) or "same"."""
    if change.get("diff") is None or not significant(change):
        return "same"
    sign = improvement_sign(key, change.get("other"), change.get("base"), change.get("diff"))
    return "better" if sign > 0 else "worse" if sign < 0 else "same"


def gap_pairs(gap: Any) -> str:
    """How a language gap was paired: the number of questions asked in both languages, or "unpaired"."""
    if not gap.paired:
        return "unpaired"
    return str(gap.pairs) if gap.pairs else "paired"  # reports written before pairs were counted


def parallel_text(value: Any) -> str | None:
    """meta.json `parallel`: one word for the corpus, or per language ({"de": "human", "ko": "comparable"})."""
    if isinstance(value, dict):
        groups: dict[str, list[str]] = {}
        for lang, kind in value.items():
            groups.setdefault(str(kind), []).append(str(lang))
        return "; ".join(f"{kind} ({', '.join(langs)})" for kind, langs in groups.items()) or None
    return None if value in (None, "") else str(value)
