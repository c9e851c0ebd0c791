import pytest

from clbias.errors import InputError
from clbias.gate import broken_gates, parse_gates
from clbias.report.model import Report, ScenarioResult


def report_with(eir_de: float, eir_zh: float) -> Report:
    def scenario(lang, eir):
        return ScenarioResult(name=f"multi [en+{lang}] q={lang}", kind="multi", pool_langs=["en", lang],
                              query_lang=lang, n_queries=5, pool_size=10, skipped_queries=0,
                              metrics={"eir": eir, "max_r_norm": 70.0}, ci={})
    return Report(corpus={}, models=[], index={}, settings={}, environment={},
                  scenarios=[scenario("de", eir_de), scenario("zh", eir_zh)])


def test_gates_fire_on_matching_scenarios_only():
    report = report_with(10.0, 40.0)
    assert len(broken_gates(parse_gates("eir>20"), report)) == 1
    assert broken_gates(parse_gates("multi:de:eir>20"), report) == []
    assert len(broken_gates(parse_gates("multi:zh:eir>=40, max_r_norm<80"), report)) == 3
    assert broken_gates(parse_gates("eir>50"), report) == []


@pytest.mark.parametrize("expr", ["eir>>20", "eir>", "nonsense_metric>3", "eir > twenty", ""])
def test_bad_gate_expressions_are_input_errors(expr):
    with pytest.raises(InputError) as info:
        parse_gates(expr)
    assert "--fail-if" in str(info.value)
