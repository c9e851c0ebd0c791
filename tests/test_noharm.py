"""The int8 rule (clbias/report/noharm.py): harm detected with family-wise control, no harm shown at a margin."""
from __future__ import annotations

import numpy as np
import pytest

from clbias.report.model import ModelScores, ScenarioResult
from clbias.report.noharm import judge_no_harm
from report_factory import report

LANGS = ["ar", "de", "es", "fr", "ja", "pl", "ru", "tr", "uk", "zh"]
# the cells of benchmarks/int8.py: 10 languages x (Multi q=X 4, Multi q=en 3, Mono-Same 1, Mono-Cross 2)
JUDGED = {"multi": ("max_r_norm", "complete@10", "ndcg@10", "eir"), "mono-same": ("ndcg@10",),
          "mono-cross": ("ndcg@10",)}


def _truth(rng: np.random.Generator, metric: str, n: int) -> np.ndarray:
    """Per-query values of one model: what a real audit's per-query values look like."""
    if metric in ("complete@10", "eir"):
        return 100.0 * (rng.random(n) < rng.uniform(0.2, 0.7))
    return 100.0 * rng.beta(2.0, 2.0, size=n)


def _redraw(rng: np.random.Generator, metric: str, values: np.ndarray, changed: float) -> np.ndarray:
    """The same model's values again, with the noise of a re-quantised graph: a share `changed` of the queries
    get a fresh value from the same distribution (an unchanged model: no systematic difference)."""
    out = values.copy()
    flip = rng.random(values.size) < changed
    if metric in ("complete@10", "eir"):
        out[flip] = 100.0 * (rng.random(int(flip.sum())) < values.mean() / 100.0)
    else:
        out[flip] = np.clip(values[flip] + rng.normal(0.0, 8.0, size=int(flip.sum())), 0.0, 100.0)
        out[flip] = np.where(rng.random(int(flip.sum())) < 0.5, out[flip], 2 * values[flip] - out[flip]).clip(0, 100)
    return out


def _scenario(kind: str, pool: list[str], query: str, base: dict[str, np.ndarray],
              other: dict[str, np.ndarray]) -> ScenarioResult:
    def scores(values: dict[str, np.ndarray]) -> ModelScores:
        return ModelScores(metrics={m: float(v.mean()) for m, v in values.items()}, ci={m: None for m in values},
                           per_query={m: v.tolist() for m, v in values.items()})

    n = len(next(iter(base.values())))
    first = scores(base)
    return ScenarioResult(name=f"{kind} [{'+'.join(pool)}] q={query}", kind=kind, pool_langs=pool, query_lang=query,
                          n_queries=n, pool_size=2 * n, skipped_queries=0, metrics=first.metrics, ci=first.ci,
                          by_model={"fp32": first, "int8": scores(other)},
                          query_ids=[f"q{i}" for i in range(n)])


def _family(rng: np.random.Generator, n: int = 120, changed: float = 0.3, loss: tuple[str, str, float] | None = None):
    scenarios = []
    for lang in LANGS:
        for kind, pool, query, metrics in (("multi", ["en", lang], lang, JUDGED["multi"]),
                                           ("multi", ["en", lang], "en", JUDGED["multi"][:3]),
                                           ("mono-same", [lang], lang, ("ndcg@10",)),
                                           ("mono-cross", ["en"], lang, ("ndcg@10",)),
                                           ("mono-cross", [lang], "en", ("ndcg@10",))):
            base = {m: _truth(rng, m, n) for m in metrics}
            other = {m: _redraw(rng, m, v, changed) for m, v in base.items()}
            if loss and loss[0] == lang and kind == "multi" and query == lang:
                hit = rng.random(n) < loss[2]
                other[loss[1]] = np.where(hit, 0.0, other[loss[1]])
            scenarios.append(_scenario(kind, pool, query, base, other))
    return report(scenarios, ["en", *LANGS], models=["fp32", "int8"])


def test_the_int8_rule_passes_an_unchanged_model_at_least_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(2026)
    families, passed, alone_failed = 100, 0, 0
    for f in range(families):
        verdict = judge_no_harm(_family(rng), "fp32", "int8", JUDGED, LANGS, seed=f)
        assert len(verdict.cells) == 100
        passed += verdict.passes
        # the rule without family-wise control (each cell's own 95% CI) fails it most of the time
        alone_failed += any((c.ci[0] > 0) if c.metric == "eir" else (c.ci[1] < 0) for c in verdict.cells)
    assert passed / families >= 0.95
    assert alone_failed / families > 0.5


def test_the_int8_rule_finds_a_real_loss_and_no_harm_needs_narrow_intervals() -> None:
    rng = np.random.default_rng(7)
    harmed = judge_no_harm(_family(rng, n=300, loss=("de", "complete@10", 0.4)), "fp32", "int8", JUDGED, LANGS)
    assert not harmed.passes and not harmed.may_replace
    assert {(c.lang, c.metric) for c in harmed.harmed} == {("de", "complete@10")}
    # an unchanged model whose values barely move shows no harm at 1 point; a noisy one passes without showing it
    quiet = judge_no_harm(_family(rng, n=300, changed=0.001), "fp32", "int8", JUDGED, LANGS)
    assert quiet.passes and quiet.no_harm_shown and quiet.may_replace
    noisy = judge_no_harm(_family(rng, n=60, changed=0.5), "fp32", "int8", JUDGED, LANGS)
    assert noisy.passes and not noisy.no_harm_shown and not noisy.may_replace


def test_the_rule_refuses_a_metric_without_a_losing_side_and_a_report_without_per_query_values() -> None:
    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match="twin_pref"):
        judge_no_harm(_family(rng, n=20), "fp32", "int8", {"multi": ("twin_pref",)}, LANGS)
    bare = _family(rng, n=20)
    for r in bare.scenarios:
        for s in r.by_model.values():
            s.per_query.clear()
    with pytest.raises(ValueError, match="per-query"):
        judge_no_harm(bare, "fp32", "int8", JUDGED, LANGS)
