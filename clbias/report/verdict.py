"""The verdict: what an audit found, in a few sentences computed from the Report alone (never hand-written).

Rules, per model and per non-English language X:

Evidence scenario: the parallel pool `multi [en+X] q=X` (method.md section 8: units present in English and
X only); else the smallest parallel `multi-n` pool with X queries; else the corpus as it is, `multi-all
[en+X] q=X`, then `full` with X queries (a corpus without parallel_id has no parallel pool; the scenario's
name in the verdict says which pool was read). A language with none of these (or no English documents) is
"not measured".

Leaning, from the first evidence the scenario has, by its 95% CI:
  1. twin preference rate `twin_pref` (% of irrelevant parallel pairs in the head where the English twin
     ranks higher; 50 = neutral): English-preferring if the CI's low end > 50, own-language-preferring if its
     high end < 50, else neutral.
  2. else EIR against its neutral value `eir_neutral` (the EIR of a language-blind model of the same ranking
     quality): English-preferring if EIR's CI low > the neutral value, own-language if its CI high < it.
  3. else EIR against `EIR_BOUND` (20 %, the bound of the README's `--fail-if 'eir>20'` example):
     English-preferring if EIR's CI low > 20. Without a neutral value a low EIR cannot show own-language
     preference (good ranking alone gives it), so the other outcome is "no clear preference".
Together: the same scenario's Max@R_norm and Complete@k (X queries): "together" when Complete@k >=
  `TOGETHER_MIN` (50 %, most queries find both versions in the top k), else "apart".
Two models: every comparison (base, other) in each language's evidence scenario, on the evidence metric,
  Max@R_norm and Complete@k: a win when the paired 95% CI of the difference excludes 0 (the one rule,
  `clbias.metrics.stats.significant`), better or worse by the metric's direction. Each language is its own
  statement, read at 95% without family-wise correction over languages and metrics; the sentence says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .display import at_k, change_class, display
from .matrix import language_matrix, matrix_sentence
from .model import Report, ScenarioResult

from ..langs import ENGLISH
EVIDENCE_KINDS = ("multi", "multi-n", "multi-all", "full")  # parallel pools first
NEUTRAL_TWIN_PREF = 50.0
EIR_BOUND = 20.0
TOGETHER_MIN = 50.0
Leaning = Literal["english", "own", "neutral", "unmeasured"]
LEANING_WORDS = {"english": "prefers English", "own": "prefers the query's own language",
                 "neutral": "shows no clear language preference", "unmeasured": "has no bias evidence"}
LEANING_SHORT = {"english": "English", "own": "own", "neutral": "neutral", "unmeasured": ""}


@dataclass(frozen=True)
class Evidence:
    metric: str  # "twin_pref" or "eir"
    value: float
    ci: tuple[float, float] | None
    reference: float
    reference_name: str  # "50" | "neutral EIR" | "bound"


@dataclass(frozen=True)
class LanguageFinding:
    lang: str
    model: str
    scenario: str | None
    leaning: Leaning
    evidence: Evidence | None = None
    max_r_norm: tuple[float | None, list[float] | None] = (None, None)
    complete: tuple[float | None, list[float] | None] = (None, None)

    @property
    def together(self) -> bool | None:
        value = self.complete[0]
        return None if value is None else value >= TOGETHER_MIN


@dataclass(frozen=True)
class ModelChange:
    lang: str
    metric: str
    base: str
    other: str
    outcome: str  # "better" | "worse" (for `other`, against `base`)
    diff: float
    ci: list[float]


@dataclass
class Verdict:
    findings: list[LanguageFinding] = field(default_factory=list)
    changes: list[ModelChange] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)

    def finding(self, lang: str, model: str | None = None) -> LanguageFinding | None:
        return next((f for f in self.findings if f.lang == lang and (model is None or f.model == model)), None)

    def leaning(self, lang: str, model: str | None = None) -> Leaning:
        f = self.finding(lang, model)
        return f.leaning if f else "unmeasured"


def _is_en(lang: str) -> bool:
    return lang == ENGLISH or lang.startswith(ENGLISH + "-")


def evidence_scenario(report: Report, lang: str) -> ScenarioResult | None:
    """The scenario whose X-query results carry the verdict for language X (see the module's rules)."""
    with_x = [r for r in report.scenarios if r.query_lang == lang and any(_is_en(p) for p in r.pool_langs)]
    for kind in EVIDENCE_KINDS:
        found = sorted((r for r in with_x if r.kind == kind), key=lambda r: len(r.pool_langs))
        if found:
            return found[0]
    return None


def _ci(ci: list[float] | None) -> tuple[float, float] | None:
    return (float(ci[0]), float(ci[1])) if ci else None


def judge(metrics: dict[str, float | None], ci: dict[str, list[float] | None]) -> tuple[Leaning, Evidence | None]:
    """Leaning and the evidence behind it, from one scenario's aggregates (rules 1-3 of the module)."""
    pref, pref_ci = metrics.get("twin_pref"), _ci(ci.get("twin_pref"))
    if pref is not None:
        ev = Evidence("twin_pref", pref, pref_ci, NEUTRAL_TWIN_PREF, "50")
        if pref_ci and pref_ci[0] > NEUTRAL_TWIN_PREF:
            return "english", ev
        if pref_ci and pref_ci[1] < NEUTRAL_TWIN_PREF:
            return "own", ev
        return "neutral", ev
    eir, eir_ci = metrics.get("eir"), _ci(ci.get("eir"))
    if eir is None:
        return "unmeasured", None
    neutral = metrics.get("eir_neutral")
    if neutral is not None:
        ev = Evidence("eir", eir, eir_ci, neutral, "neutral EIR")
        if eir_ci and eir_ci[0] > neutral:
            return "english", ev
        if eir_ci and eir_ci[1] < neutral:
            return "own", ev
        return "neutral", ev
    ev = Evidence("eir", eir, eir_ci, EIR_BOUND, "bound")
    return ("english" if eir_ci and eir_ci[0] > EIR_BOUND else "neutral"), ev


def findings(report: Report) -> list[LanguageFinding]:
    k = int(report.settings.get("k", 10))
    langs = [l for l in report.corpus.get("doc_langs", []) if not _is_en(l)]
    langs += sorted({r.query_lang for r in report.scenarios if not _is_en(r.query_lang)} - set(langs))
    out = []
    for model in (m.name for m in report.models):
        for lang in langs:
            r = evidence_scenario(report, lang)
            scores = r.by_model.get(model) if r else None
            if r is None or scores is None:
                out.append(LanguageFinding(lang, model, None, "unmeasured"))
                continue
            leaning, ev = judge(scores.metrics, scores.ci)
            complete = at_k("complete@{k}", k)
            out.append(LanguageFinding(lang, model, r.name, leaning, ev,
                                       (scores.metrics.get("max_r_norm"), scores.ci.get("max_r_norm")),
                                       (scores.metrics.get(complete), scores.ci.get(complete))))
    return out


def model_changes(report: Report, found: list[LanguageFinding]) -> list[ModelChange]:
    k = int(report.settings.get("k", 10))
    by_name = {r.name: r for r in report.scenarios}
    out = []
    base_findings = [f for f in found if f.model == report.models[0].name and f.scenario]
    for f in base_findings:
        r = by_name[f.scenario]  # type: ignore[index]  # base_findings keeps findings with a scenario only
        keys = ([f.evidence.metric] if f.evidence else []) + ["max_r_norm", at_k("complete@{k}", k)]
        for comp in r.comparisons:
            for key in keys:
                change = comp.metrics.get(key) or {}
                outcome = change_class(key, change)
                if outcome != "same":
                    out.append(ModelChange(f.lang, key, comp.base, comp.other, outcome, float(change["diff"]),
                                           list(change["ci"])))
    return out


# ---------------------------------------------------------------- sentences


def _num(key: str, value: float | None, ci: list[float] | tuple[float, float] | None, sign: bool = False) -> str:
    d = display(key)
    text = d.value(value, sign=sign)
    return f"{text} [{d.ci(list(ci), sign)}]" if ci and value is not None else text


def _list(items: list[str]) -> str:
    return ", ".join(items)


def _evidence_text(f: LanguageFinding, with_label: bool) -> str:
    """`hi 71 [62–80]`, or with the label `hi (twin pref 71 [62–80])`; `de (EIR 30.0 [22–38] vs neutral 20.0)`."""
    ev = f.evidence
    assert ev is not None
    value = _num(ev.metric, ev.value, ev.ci)
    if ev.reference_name == "neutral EIR":
        value += f" vs neutral {display('eir_neutral').value(ev.reference)}"
    return f"{f.lang} ({display(ev.metric).label} {value})" if with_label else f"{f.lang} {value}"


def _leaning_sentences(report: Report, model_found: list[LanguageFinding], prefix: str) -> list[str]:
    groups: dict[str, list[LanguageFinding]] = {}
    for f in model_found:
        groups.setdefault(f.leaning, []).append(f)
    sentences = []
    for leaning in ("english", "own"):
        chosen = groups.get(leaning, [])
        if not chosen:
            continue
        metrics = {f.evidence.metric for f in chosen if f.evidence}
        shared = f" ({display(metrics.pop()).label})" if len(metrics) == 1 else ""
        sentences.append(f"{prefix}{LEANING_WORDS[leaning]} for {len(chosen)} language{'s' * (len(chosen) > 1)}"
                         f"{shared}: " + _list([_evidence_text(f, not shared) for f in chosen]) + ".")
    neutral = groups.get("neutral", [])
    if neutral:
        sentences.append(f"No clear preference (CI includes the reference) for {_list([f.lang for f in neutral])}.")
    unmeasured = groups.get("unmeasured", [])
    if unmeasured:
        sentences.append(f"Not measured (no English + X pool with X queries) for {_list([f.lang for f in unmeasured])}.")
    return sentences


def _together_sentences(report: Report, model_found: list[LanguageFinding]) -> list[str]:
    k = int(report.settings.get("k", 10))
    complete = at_k("complete@{k}", k)
    sentences = []
    for together, words in ((True, "land together"), (False, "land apart")):
        chosen = [f for f in model_found if f.together is together]
        if not chosen:
            continue
        mr = [f.max_r_norm[0] for f in chosen if f.max_r_norm[0] is not None]
        cp = [f.complete[0] for f in chosen if f.complete[0] is not None]
        span = (f"{display(complete).label} {_range(complete, cp)}" +
                (f", {display('max_r_norm').label} {_range('max_r_norm', mr)}" if mr else ""))
        rule = f"{display(complete).label} {'≥' if together else '<'} {TOGETHER_MIN:g}"
        who = (f"all {len(chosen)} languages" if len(chosen) == len(model_found) and len(chosen) > 2
               else _list([f.lang for f in chosen]))
        sentences.append(f"The two versions of a relevant text {words} ({rule}) for {who}: {span}.")
    return sentences


def _range(key: str, values: list[float]) -> str:
    d = display(key)
    lo, hi = min(values), max(values)
    return d.value(lo) if lo == hi else f"{d.value(lo)}–{d.value(hi)}"


def _change_sentences(report: Report, changes: list[ModelChange], found: list[LanguageFinding]) -> list[str]:
    sentences = []
    names = [m.name for m in report.models]
    measured = sorted({f.lang for f in found if f.model == names[0] and f.scenario})
    for other in names[1:]:
        mine = [c for c in changes if c.other == other]
        parts = []
        for outcome in ("better", "worse"):
            by_metric: dict[str, list[ModelChange]] = {}
            for c in mine:
                if c.outcome == outcome:
                    by_metric.setdefault(c.metric, []).append(c)
            for metric, cs in by_metric.items():
                parts.append(f"{outcome} on {display(metric).label} in " +
                             _list([f"{c.lang} {_num(metric, c.diff, c.ci, sign=True)}" for c in cs]))
        quiet = [l for l in measured if not any(c.lang == l for c in mine)]
        head = (f"{other} against {names[0]} (paired 95% CI excludes 0, per language and metric; "
                "not corrected for the number of comparisons): ")
        body = "; ".join(parts) if parts else "no significant difference in any language"
        tail = f"; no significant difference in {_list(quiet)}" if parts and quiet else ""
        sentences.append(head + body + tail + ".")
    return sentences


def evidence_note(found: list[LanguageFinding]) -> str:
    used = {(f.evidence.metric, f.evidence.reference_name) for f in found if f.evidence}
    words = {("twin_pref", "50"): "twin preference rate vs 50",
             ("eir", "neutral EIR"): "EIR vs its neutral value",
             ("eir", "bound"): f"EIR vs the {EIR_BOUND:g}% bound (no twin preference or neutral EIR in this report)"}
    kinds = sorted({f.scenario.split(" ")[0] for f in found if f.scenario})
    if not used:
        return "Evidence: none (the report has no scenario with English and X documents and X queries)."
    return (f"Evidence: {'; '.join(words[u] for u in sorted(used))}, by 95% CI, on "
            f"{'/'.join(kinds)} scenarios with X queries.")


def verdict(report: Report) -> Verdict:
    found = findings(report)
    changes = model_changes(report, found) if len(report.models) > 1 else []
    sentences: list[str] = []
    names = [m.name for m in report.models]
    if not any(f.scenario for f in found):
        names = []
        sentences.append("No English-preference verdict: the report has no scenario with English and X documents "
                         "and X queries (the multi scenario gives one).")
    for name in names:
        mine = [f for f in found if f.model == name]
        prefix = "" if len(names) > 1 else f"{name} "
        block = _leaning_sentences(report, mine, prefix) + _together_sentences(report, mine)
        sentences += [f"[{name}] {s}" for s in block] if len(names) > 1 else block
    sentences += _change_sentences(report, changes, found)
    for name in (m.name for m in report.models):
        m = language_matrix(report, name)
        if m is not None:
            sentences.append((f"[{name}] " if len(report.models) > 1 else "") + matrix_sentence(m))
    if any(f.scenario for f in found):
        sentences.append(evidence_note(found))
    return Verdict(found, changes, sentences)
