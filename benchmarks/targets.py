"""The alignment targets (issue 15, item 5) judged from an audit report's JSON by the one statistics rule.

Each target is a claim about every language, so each language must meet it on its own (an intersection-union
test: no multiplicity correction is needed for "met in every language", and none is applied). The four:

1. Multi Max@R_norm up significantly (X queries): the paired 95% CI of variant - base lies above 0
   (`stats.significant`, on the gaining side).
2. Twin preference never past 55 (X queries): the variant's 95% CI of `twin_pref` ends at or below 55.
3. EIR within 5 points of its neutral value (X queries): the 95% CI of the per-query difference
   EIR - neutral EIR lies within [-5, +5] (`stats.equivalent`); needs per-query values in the report.
4. Mono-Same nDCG@10 within 1 point of the base (every query language, English included): non-inferior at
   1 point (`stats.non_inferior`: the CI's lower end >= -1).
A language where the numbers do not apply (no twin pairs, no per-query values) is "not measured", never met.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from clbias.metrics import stats

TWIN_PREF_CEILING = 55.0
EIR_MARGIN = 5.0
MONO_MARGIN = 1.0


def _values(v: list[float | None]) -> np.ndarray:
    return np.array([np.nan if x is None else x for x in v], dtype=float)


def _comparison(s: dict[str, Any], variant: str, metric: str) -> dict[str, Any] | None:
    for c in s.get("comparisons", []):
        if c["other"] == variant:
            d = c["metrics"].get(metric) or {}
            return d if d.get("diff") is not None and d.get("ci") else None
    return None


def judge_targets(report: dict[str, Any], variant: str, seed: int = 0) -> dict[str, dict[str, Any]]:
    """target -> {"met": [langs], "missed": [langs], "unmeasured": [langs]} for `variant` against the report's
    first model."""
    out = {name: {"met": [], "missed": [], "unmeasured": []} for name in
           ("Multi Max@R_norm up significantly", f"twin preference CI <= {TWIN_PREF_CEILING:g}",
            f"EIR within {EIR_MARGIN:g} of neutral (95% CI)", f"Mono-Same nDCG@10 within {MONO_MARGIN:g} point")}
    names = list(out)
    bootstrap = int(report.get("settings", {}).get("bootstrap", 1000))
    for s in report["scenarios"]:
        lang = s["query_lang"]
        scores = s["by_model"].get(variant)
        if scores is None:
            continue
        if s["kind"] == "multi" and lang != "en":
            d = _comparison(s, variant, "max_r_norm")
            _put(out[names[0]], lang, None if d is None else stats.significant(*d["ci"]) and d["diff"] > 0)
            ci = scores["ci"].get("twin_pref")
            _put(out[names[1]], lang, None if not ci else ci[1] <= TWIN_PREF_CEILING)
            pq = scores.get("per_query") or {}
            if pq.get("eir") and pq.get("eir_neutral"):
                c = stats.paired_comparison(_values(pq["eir"]), _values(pq["eir_neutral"]), "eir",
                                            n_resamples=bootstrap, seed=seed)
                _put(out[names[2]], lang, None if c is None else stats.equivalent(c.low, c.high, EIR_MARGIN))
            else:
                _put(out[names[2]], lang, None)
        elif s["kind"] == "mono-same":
            d = _comparison(s, variant, "ndcg@10")
            _put(out[names[3]], lang, None if d is None else stats.non_inferior(*d["ci"], MONO_MARGIN))
    return out


def _put(target: dict[str, list[str]], lang: str, met: bool | None) -> None:
    target["unmeasured" if met is None else "met" if met else "missed"].append(lang)


def targets_table(report: dict[str, Any], variants: list[str]) -> list[str]:
    """A Markdown table: one row per target, one column per variant (met in k of n languages; misses named)."""
    judged = {v: judge_targets(report, v) for v in variants}
    targets = list(next(iter(judged.values()))) if judged else []
    lines = ["| target (computed, benchmarks/targets.py) | " + " | ".join(variants) + " |",
             "|---|" + "---|" * len(variants)]
    for t in targets:
        cells = []
        for v in variants:
            r = judged[v][t]
            n = len(r["met"]) + len(r["missed"])
            text = f"{len(r['met'])} of {n}" + (f" (missed: {', '.join(r['missed'])})" if r["missed"] else "")
            if r["unmeasured"]:
                text += f"; not measured: {', '.join(r['unmeasured'])}"
            cells.append(("met" if n and not r["missed"] and not r["unmeasured"] else "**not met**") + f": {text}")
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return lines
