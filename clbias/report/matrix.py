"""The language matrix: query language X x single-language pool Y, from a report's `matrix` scenarios.

S(X, Y) is a cell's score (nDCG@k or Recall@k of X queries searching Y documents). Derived here:
  cross-lingual penalty  S(X, Y) - S(X, X)   how much a query loses when its relevant text is in Y, not X
  direction asymmetry    S(X, Y) - S(Y, X)   > 0: going X -> Y is easier than Y -> X
Summaries: the mean off-diagonal penalty per query language and per pool language, the overall mean, the
worst cell, and the largest asymmetry. Point values only: the cells of one row share queries, so the CIs
of the cells are in the report and a paired CI of a penalty would need the per-query values.
"""
from __future__ import annotations

from dataclasses import dataclass

from .display import at_k
from .model import Report

MATRIX_METRICS = ("ndcg@{k}", "recall@{k}")


@dataclass(frozen=True)
class LanguageMatrix:
    model: str
    metric: str
    langs: list[str]  # rows (query languages) and columns (pool languages), in corpus order
    cells: dict[tuple[str, str], float | None]  # (query lang, pool lang) -> score
    ci: dict[tuple[str, str], list[float] | None]

    def score(self, query: str, pool: str) -> float | None:
        return self.cells.get((query, pool))

    def penalty(self, query: str, pool: str) -> float | None:
        cross, mono = self.score(query, pool), self.score(query, query)
        return None if cross is None or mono is None else cross - mono

    def asymmetry(self, a: str, b: str) -> float | None:
        ab, ba = self.score(a, b), self.score(b, a)
        return None if ab is None or ba is None else ab - ba

    def _off_diagonal(self) -> list[tuple[str, str]]:
        return [(q, p) for q in self.langs for p in self.langs if q != p]

    def mean_penalty(self, query: str | None = None, pool: str | None = None) -> float | None:
        values = [self.penalty(q, p) for q, p in self._off_diagonal()
                  if (query is None or q == query) and (pool is None or p == pool)]
        present = [v for v in values if v is not None]
        return sum(present) / len(present) if present else None

    def worst_pair(self) -> tuple[str, str, float] | None:
        pairs = [(q, p, v) for q, p in self._off_diagonal() if (v := self.penalty(q, p)) is not None]
        return min(pairs, key=lambda t: (t[2], t[0], t[1])) if pairs else None

    def largest_asymmetry(self) -> tuple[str, str, float] | None:
        pairs = [(a, b, v) for a, b in self._off_diagonal() if (v := self.asymmetry(a, b)) is not None and v > 0]
        return max(pairs, key=lambda t: (t[2], t[0], t[1])) if pairs else None

    def mean_abs_asymmetry(self) -> float | None:
        values = [abs(v) for a, b in self._off_diagonal() if a < b and (v := self.asymmetry(a, b)) is not None]
        return sum(values) / len(values) if values else None


def language_matrix(report: Report, model: str | None = None, metric: str = "ndcg@{k}") -> LanguageMatrix | None:
    """The matrix of one model (default: the first) and metric; None when the report has no matrix scenario."""
    chosen = [r for r in report.scenarios if r.kind == "matrix"]
    if not chosen:
        return None
    model = model or report.models[0].name
    key = at_k(metric, int(report.settings.get("k", 10)))
    order = list(report.corpus.get("doc_langs", []))
    seen = {r.query_lang for r in chosen} | {r.pool_langs[0] for r in chosen}
    found = [l for l in order if l in seen] + sorted(seen - set(order))
    langs = sorted(found, key=lambda l: (l != "en", found.index(l)))  # English first, then corpus order
    cells: dict[tuple[str, str], float | None] = {}
    ci: dict[tuple[str, str], list[float] | None] = {}
    for r in chosen:
        scores = r.by_model.get(model)
        if scores is None:
            continue
        cells[(r.query_lang, r.pool_langs[0])] = scores.metrics.get(key)
        ci[(r.query_lang, r.pool_langs[0])] = scores.ci.get(key)
    return LanguageMatrix(model, key, langs, cells, ci)


def matrix_sentence(m: LanguageMatrix) -> str:
    """One sentence with the matrix's summaries, for the verdict."""
    from .display import display

    label = display(m.metric).label
    parts = []
    mean = m.mean_penalty()
    if mean is not None:
        parts.append(f"mean cross-lingual penalty S(X,Y) − S(X,X) {mean:+.1f}")
    worst = m.worst_pair()
    if worst:
        parts.append(f"worst {worst[0]}→{worst[1]} {worst[2]:+.1f}")
    asym = m.largest_asymmetry()
    if asym:
        parts.append(f"largest asymmetry {asym[0]}→{asym[1]} vs {asym[1]}→{asym[0]} {asym[2]:+.1f}")
    into_english = m.mean_penalty(pool="en") if "en" in m.langs else None
    if into_english is not None:
        parts.append(f"other languages' queries into English pools {into_english:+.1f} "
                     f"({'better' if into_english > 0 else 'worse'} than in their own language)")
    if not parts:
        return f"Language matrix ({label}): no cell pair to compare."
    return f"Language matrix ({label}, {len(m.langs)} languages): " + "; ".join(parts) + "."
