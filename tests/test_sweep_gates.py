"""Issue 10 item 1: a --fail-if gate either checks something or is an error; it never passes silently."""
import pytest

from clbias.cli import main
from clbias.errors import InputError
from clbias.gate import GateTarget, broken_gates, check_gates, parse_gates
from clbias.report.model import Report, ScenarioResult
from corpus_factory import parallel_corpus


def _scenario(kind, lang, eir, ci=None, ndcg=50.0):
    return ScenarioResult(name=f"{kind} [en+{lang}] q={lang}", kind=kind, pool_langs=["en", lang], query_lang=lang,
                          n_queries=5, pool_size=10, skipped_queries=0,
                          metrics={"eir": eir, "max_r_norm": 70.0, "ndcg@10": ndcg}, ci={"eir": ci})


def _report() -> Report:
    return Report(corpus={"doc_langs": ["de", "en", "zh"], "query_langs": ["de", "en", "zh"]}, models=[], index={},
                  settings={"k": 10}, environment={},
                  scenarios=[_scenario("multi", "de", 10.0, [2.0, 18.0]), _scenario("multi", "zh", 40.0, [25.0, 55.0]),
                             _scenario("multi", "en", None), _scenario("mono-same", "zh", None)])


def test_language_alone_selects_that_query_language():
    hits = broken_gates(parse_gates("zh:eir>20"), _report())
    assert hits == ["multi [en+zh] q=zh: eir=40 (zh:eir>20)"]
    assert broken_gates(parse_gates("de:eir>20"), _report()) == []


def test_language_is_normalised_like_langs():
    assert len(broken_gates(parse_gates("multi:DE:eir>5"), _report())) == 1
    assert len(broken_gates(parse_gates("MULTI:Zh:eir>=40"), _report())) == 1


@pytest.mark.parametrize("expr, message", [
    ("mult:eir>20", "'mult' is neither a scenario kind"),
    ("mult:de:eir>20", "unknown scenario kind 'mult'"),
    ("multi:xx:eir>20", "unknown language code 'xx'"),
    ("a:b:c:eir>1", "cannot parse"),
    ("eir.mid>1", "cannot parse metric"),
    ("eir>1,,max_r<3", "empty gate"),
])
def test_typos_are_parse_errors_naming_the_gate(expr, message):
    with pytest.raises(InputError) as info:
        parse_gates(expr)
    assert message in str(info.value) and "--fail-if" in str(info.value)


@pytest.mark.parametrize("expr, message", [
    ("multi:fr:eir>20", "language 'fr' is not in the corpus (de, en, zh)"),
    ("ndcg@5<10", "'ndcg@5' is not computed by this audit (it runs with k=10: use ndcg@10, or --k 5)"),
    ("mono-cross:eir>20", "matches no scenario"),
    ("mono-same:de:eir>20", "matches no scenario"),
    ("en:eir>20", "undefined in every scenario"),
    ("mono-same:eir.low>1", "undefined in every scenario"),
])
def test_a_gate_that_matches_nothing_is_an_error(expr, message):
    with pytest.raises(InputError) as info:
        broken_gates(parse_gates(expr), _report())
    text = str(info.value)
    assert message in text and repr(expr) in text and "\n" not in text


def test_gates_on_a_ci_bound():
    report = _report()
    assert broken_gates(parse_gates("eir.low>20"), report) == ["multi [en+zh] q=zh: eir.low=25 (eir.low>20)"]
    assert len(broken_gates(parse_gates("eir.high>15"), report)) == 2
    assert broken_gates(parse_gates("eir.low>30"), report) == []


def test_check_gates_on_planned_scenarios():
    targets = [GateTarget("multi [en+de] q=de", "multi", "de"), GateTarget("multi [en+de] q=en", "multi", "en")]
    check_gates(parse_gates("de:eir>20,multi:max_r_norm<60"), targets, ["eir", "max_r_norm"], ["de", "en"], 10)
    with pytest.raises(InputError, match="matches no scenario"):
        check_gates(parse_gates("full:eir>20"), targets, ["eir"], ["de", "en"], 10)


@pytest.mark.parametrize("expr, message", [
    ("multi:fr:eir>20", "'fr' is not in the corpus"),
    ("ndcg@5<10", "k=10"),
    ("mono-same:de:eir>1,multi-n:eir>1", "multi-n:eir>1"),
    ("zh:eir>1", "'zh' is not in the corpus"),
])
def test_cli_refuses_gates_before_loading_a_model(tmp_path, capsys, expr, message):
    corpus = parallel_corpus(tmp_path / "c")
    missing_model = tmp_path / "no-such-model"  # if the gate were checked after loading, this error would win
    assert main(["audit", str(corpus), "--model", str(missing_model), "--fail-if", expr, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "--fail-if" in err[0] and "no-such-model" not in err[0], err
