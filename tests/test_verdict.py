"""The verdict rules, the registry-driven display and the language matrix, on hand-made reports."""
from __future__ import annotations

import pytest

from clbias.report.display import change_class, display, significant
from clbias.report.matrix import language_matrix
from clbias.report.model import Comparison
from clbias.report.verdict import EIR_BOUND, verdict
from report_factory import change, report, scenario

LANGS = ["en", "de", "hi", "zh"]


def multi(lang: str, model: str = "m", comparisons: list[Comparison] | None = None, **metrics) -> object:
    values = {"max_r_norm": (40.0, [30.0, 50.0]), "complete@10": (20.0, [10.0, 30.0])}
    values.update(metrics)
    return scenario("multi", ["en", lang], lang, {model: values}, comparisons)


def test_twin_preference_decides_english_own_and_neutral_by_its_ci() -> None:
    r = report([multi("de", twin_pref=(52.0, [45.0, 59.0]), eir=(60.0, [50.0, 70.0])),
                multi("hi", twin_pref=(71.0, [62.0, 80.0]), eir=(5.0, [0.0, 10.0])),
                multi("zh", twin_pref=(31.0, [24.0, 38.0]), eir=(60.0, [50.0, 70.0]))], LANGS)
    v = verdict(r)
    # twin preference outranks EIR: de's high EIR does not make it English-preferring, nor zh's
    assert (v.leaning("de"), v.leaning("hi"), v.leaning("zh")) == ("neutral", "english", "own")
    assert all(f.evidence.metric == "twin_pref" for f in v.findings)
    text = " ".join(v.sentences)
    pref = display("twin_pref")
    assert f"m prefers English for 1 language (twin pref): hi {pref.value(71.0)} [{pref.ci([62.0, 80.0])}]" in text
    assert f"prefers the query's own language for 1 language (twin pref): zh {pref.value(31.0)} [24–38]" in text
    assert "No clear preference" in text and "for de." in text
    assert "twin preference rate vs 50" in text


def test_eir_against_its_neutral_value_in_both_directions() -> None:
    r = report([multi("de", eir=(30.0, [22.0, 38.0]), eir_neutral=(20.0, [18.0, 22.0])),
                multi("hi", eir=(10.0, [4.0, 16.0]), eir_neutral=(25.0, [20.0, 30.0])),
                multi("zh", eir=(24.0, [15.0, 33.0]), eir_neutral=(25.0, [20.0, 30.0]))], LANGS)
    v = verdict(r)
    assert (v.leaning("de"), v.leaning("hi"), v.leaning("zh")) == ("english", "own", "neutral")
    assert v.finding("de").evidence.reference == 20.0
    assert "English for 1 language (EIR): de 30.0 [22–38] vs neutral 20.0" in " ".join(v.sentences)
    assert "EIR vs its neutral value" in v.sentences[-1]


def test_eir_without_neutral_value_uses_the_bound_and_never_claims_own_language() -> None:
    r = report([multi("de", eir=(EIR_BOUND + 10, [EIR_BOUND + 1, 40.0])),
                multi("hi", eir=(EIR_BOUND + 10, [EIR_BOUND - 1, 40.0])),
                multi("zh", eir=(0.0, [0.0, 0.0]))], LANGS)
    v = verdict(r)
    assert (v.leaning("de"), v.leaning("hi"), v.leaning("zh")) == ("english", "neutral", "neutral")
    assert "no clear preference" in v.sentences[1].lower() and "hi, zh" in v.sentences[1]
    mixed = verdict(report([multi("de", eir=(60.0, [50.0, 70.0])), multi("hi", twin_pref=(80.0, [70.0, 90.0]))], LANGS))
    assert "2 languages: de (EIR 60.0 [50–70]), hi (twin pref" in mixed.sentences[0]  # each names its evidence
    assert f"EIR vs the {EIR_BOUND:g}% bound" in v.sentences[-1]


def test_full_scenario_is_the_fallback_and_missing_evidence_is_said() -> None:
    full = scenario("full", ["en", "de", "hi"], "de", {"m": {"eir": (50.0, [40.0, 60.0])}})
    mono = scenario("mono-same", ["hi"], "hi", {"m": {"ndcg@10": (50.0, [40.0, 60.0])}})
    v = verdict(report([full, mono], ["en", "de", "hi"]))
    assert v.finding("de").scenario == full.name and v.leaning("de") == "english"
    assert v.leaning("hi") == "unmeasured"
    assert any("Not measured" in s and "hi" in s for s in v.sentences)
    nothing = verdict(report([mono], ["en", "hi"]))
    assert nothing.sentences[0].startswith("No English-preference verdict")


def test_translations_together_or_apart_with_numbers_grouped() -> None:
    r = report([multi("de", eir=(5.0, [0.0, 10.0]), **{"complete@10": (80.0, [70.0, 90.0])}),
                multi("hi", eir=(5.0, [0.0, 10.0]), **{"complete@10": (10.0, [0.0, 20.0])}),
                multi("zh", eir=(5.0, [0.0, 10.0]), **{"complete@10": (30.0, [10.0, 50.0])})], LANGS)
    sentences = verdict(r).sentences
    together = next(s for s in sentences if "land together" in s)
    apart = next(s for s in sentences if "land apart" in s)
    assert "for de:" in together and "Complete@10 80.0" in together
    assert "for hi, zh:" in apart and "Complete@10 10.0–30.0" in apart and "Max@R_norm 40.0" in apart


def test_two_models_say_who_wins_where_by_direction() -> None:
    eir_down = Comparison("A", "B", {"eir": change(-12.0, [-20.0, -4.0], 40.0, 28.0),
                                     "max_r_norm": change(1.0, [-2.0, 4.0], 40.0, 41.0)})
    ndcg_down = Comparison("A", "B", {"eir": change(0.0, [-3.0, 3.0], 10.0, 10.0),
                                      "max_r_norm": change(-6.0, [-9.0, -3.0], 50.0, 44.0)})
    both = {"eir": (40.0, [30.0, 50.0]), "max_r_norm": (40.0, [30.0, 50.0]), "complete@10": (20.0, [10.0, 30.0])}
    r = report([scenario("multi", ["en", "de"], "de", {"A": both, "B": both}, [eir_down]),
                scenario("multi", ["en", "hi"], "hi", {"A": both, "B": both}, [ndcg_down]),
                scenario("multi", ["en", "zh"], "zh", {"A": both, "B": both}, [])], LANGS, models=["A", "B"])
    v = verdict(r)
    assert {(c.lang, c.metric, c.outcome) for c in v.changes} == {("de", "eir", "better"), ("hi", "max_r_norm", "worse")}
    line = next(s for s in v.sentences if s.startswith("B against A"))
    assert "better on EIR in de -12.0 [-20 to -4]" in line
    assert "worse on Max@R_norm in hi -6.0 [-9 to -3]" in line
    assert "no significant difference in zh" in line
    assert any(s.startswith("[A] ") for s in v.sentences) and any(s.startswith("[B] ") for s in v.sentences)


def test_one_significance_rule_and_direction_for_every_change() -> None:
    # English exposure is best at 1: rising from 1.2 to 1.5 is worse, although the difference is positive
    rise = change(0.3, [0.1, 0.5], 1.2, 1.5)
    assert significant(rise) and change_class("en_exposure@10", rise) == "worse"
    assert change_class("en_exposure@10", change(-0.3, [-0.5, -0.1], 1.5, 1.2)) == "better"
    assert change_class("eir", change(5.0, [1.0, 9.0], 10.0, 15.0)) == "worse"
    assert change_class("ndcg@10", change(5.0, [1.0, 9.0], 10.0, 15.0)) == "better"
    # a small p-value alone is not significance: the CI decides, for stars and colours alike
    assert change_class("ndcg@10", change(5.0, [-1.0, 9.0], 10.0, 15.0)) == "same"


def test_display_comes_from_the_registry_with_k_in_the_name() -> None:
    d = display("ndcg@5")
    assert d.label == "nDCG@5" and d.arrow == "↑" and "5" in d.description and d.unit == "points"
    assert display("eir").title == "EIR ↓" and display("en_exposure@3").arrow == "→1"
    assert display("en_exposure@10").value(1.234) == "1.23" and display("eir").value(12.345) == "12.3"
    assert display("eir").value(12.345, precise=True) == "12.35"  # the registry's own format
    unknown = display("from_a_newer_clbias")
    assert unknown.label == "from_a_newer_clbias" and unknown.value(3.0) == "3.0"
    assert display("ndcg@10").cell(45.0, [28.0, 63.0]) == "45.0 28–63"


def test_matrix_penalty_asymmetry_and_summaries() -> None:
    cells = {("en", "en"): 60.0, ("en", "de"): 40.0, ("de", "de"): 50.0, ("de", "en"): 45.0}
    r = report([scenario("matrix", [p], q, {"m": {"ndcg@10": (v, [v - 5, v + 5])}}) for (q, p), v in cells.items()],
               ["de", "en"])
    m = language_matrix(r)
    assert m.langs == ["en", "de"]  # English first
    assert m.penalty("en", "de") == pytest.approx(-20.0) and m.penalty("de", "en") == pytest.approx(-5.0)
    assert m.asymmetry("de", "en") == pytest.approx(5.0) and m.asymmetry("en", "de") == pytest.approx(-5.0)
    assert m.mean_penalty() == pytest.approx(-12.5) and m.mean_penalty(pool="de") == pytest.approx(-20.0)
    assert m.worst_pair() == ("en", "de", pytest.approx(-20.0))
    assert m.largest_asymmetry() == ("de", "en", pytest.approx(5.0))
    assert "worst en→de -20.0" in verdict(r).sentences[-1]
    assert language_matrix(report([multi("de", eir=(1.0, [0.0, 2.0]))], LANGS)) is None
