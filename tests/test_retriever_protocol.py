"""The Python protocol example of docs/retrievers.md runs as written, and the protocol's three shapes work."""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest

from clbias.audit import AuditSettings, audit
from clbias.corpus import load_corpus
from clbias.retrievers import as_system
from corpus_factory import parallel_corpus

REPO = Path(__file__).resolve().parents[1]


def test_docs_example_runs(monkeypatch):
    text = (REPO / "docs" / "retrievers.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    code = blocks[0]
    assert len([l for l in code.splitlines() if l.strip()]) <= 30  # "about 20 lines"
    monkeypatch.chdir(REPO)
    out = io.StringIO()
    namespace: dict = {}
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/retrievers.md", "exec"), namespace)  # noqa: S102 - the project's own docs
    report = namespace["report"]
    assert report.models[0].name == "my-bm25" and report.models[0].kind == "bm25 (bm25s, whitespace tokens)"
    printed = out.getvalue().split()
    assert printed[:3] == ["multi", "[en+de]", "q=de"]
    multi = next(s for s in report.scenarios if s.name == "multi [en+de] q=de")
    assert 0 < multi.metrics["ndcg@10"] <= 100 and not multi.by_model["my-bm25"].bounds


class Overlap:
    """A scorer: the number of shared lower-case words."""

    name = "overlap"

    def score(self, docs, queries):
        words = [set(d.text.lower().split()) for d in docs]
        return np.array([[len(set(q.text.lower().split()) & w) for w in words] for q in queries], float)


class OverlapRanks:
    """The same system through `rank`, every document returned."""

    name = "overlap-ranked"

    def rank(self, docs, queries, depth):
        scores = Overlap().score(docs, queries)
        return {q.id: [(docs[j].id, float(scores[i, j])) for j in np.argsort(-scores[i], kind="stable")[:depth]]
                for i, q in enumerate(queries)}


class Letters:
    """An embedder: letter counts."""

    name = "letters"

    def _vec(self, texts):
        v = np.array([[t.lower().count(c) for c in "abcdefghijklmnopqrstuvwxyzäöü"] for t in texts], np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)

    def embed_documents(self, docs):
        return self._vec([d.text for d in docs])

    def embed_queries(self, queries):
        return self._vec([q.text for q in queries])


def test_scorer_and_full_ranking_agree_and_embedder_runs(tmp_path):
    corpus = load_corpus(parallel_corpus(tmp_path / "c"))
    report = audit(corpus, [Overlap(), OverlapRanks(), Letters()], AuditSettings(bootstrap=100))
    assert [m.kind for m in report.models] == ["scorer", "custom", "embedder"]
    for r in report.scenarios:
        a, b, _ = r.by_model.values()
        assert a.per_query["max_r"] == b.per_query["max_r"] and not b.bounds  # ties: corpus order in both


def test_not_a_retriever_is_refused():
    with pytest.raises(TypeError, match="is not a retriever"):
        as_system(type("Nope", (), {"name": "x"})())
    with pytest.raises(TypeError, match="non-empty string `name`"):
        as_system(Overlap.__new__(type("NoName", (), {"score": Overlap.score})))


def test_layers_report_and_search_do_not_import_the_audit():
    """report/ reads reports and search/ ranks pools; neither reaches back up into clbias.audit."""
    for folder in ("report", "search", "metrics"):
        for path in (REPO / "clbias" / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "from ..audit import" not in text and "from ...audit import" not in text, path
            assert "from clbias.audit import" not in text, path
