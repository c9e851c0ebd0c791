"""The Ray engine on a local Ray instance (num_cpus=2): same vectors and the same store as the local engine,
the same audit metrics, an actor killed mid-run is retried, and bad addresses fail in one line.

Every test is bounded by an alarm: a Ray pipeline that stalls (for example an actor pool holding every CPU)
fails the test instead of hanging the suite.
"""
from __future__ import annotations

import json
import os
import signal
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.data", reason="the ray extra is not installed")

from clbias.api import audit_corpus  # noqa: E402
from clbias.cli import main  # noqa: E402
from clbias.engine.ray_engine import RayOptions, RaySession, embed_texts_ray, retrieve_ray  # noqa: E402
from clbias.metrics import PoolInfo  # noqa: E402
from clbias import retrieval  # noqa: E402
from clbias.retrieval import retrieve  # noqa: E402
from clbias.runtime.cache import text_key  # noqa: E402
from clbias.runtime.embed import embed_texts, encoder_cache  # noqa: E402
from clbias.runtime.encoder import Encoder  # noqa: E402
from corpus_factory import parallel_corpus  # noqa: E402
from tiny_model import CORPUS  # noqa: E402

TEST_SECONDS = 300

pytestmark = pytest.mark.slow


class Stalled(Exception):
    pass


@pytest.fixture(autouse=True)
def bounded():
    def fail(signum, frame):  # type: ignore[no-untyped-def]
        raise Stalled(f"a Ray test ran past {TEST_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(TEST_SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def session():
    with RaySession(RayOptions(num_cpus=2, batch_rows=8, shard_rows=16)) as s:
        yield s


def texts(n: int = 48) -> list[str]:
    return [f"{CORPUS[i % len(CORPUS)]} ({i})" for i in range(n)]


def test_ray_vectors_and_store_equal_the_local_engine(session, tiny_model_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = Encoder.load(tiny_model_dir, threads=1)
    local, local_stats = embed_texts(encoder, texts(), "passage", None)
    cache = tmp_path / "cache"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vectors, stats = embed_texts_ray(session, encoder, texts(), "passage", cache)
    # Ray shows its RayDeprecationWarnings (a filter it installs); plain DeprecationWarnings raised inside Ray's
    # own code stay hidden by Python's default filters. clbias's calls must trigger none of the shown kind.
    from ray.util.annotations import RayDeprecationWarning

    shown = [str(w.message) for w in caught if issubclass(w.category, RayDeprecationWarning)]
    assert not shown, shown  # they would be printed over the progress bar
    assert vectors.shape == local.shape and np.abs(vectors - local).max() <= 1e-6
    assert np.array_equal(stats.n_tokens, local_stats.n_tokens)
    assert len(list((next(cache.iterdir())).glob("*.keys.npy"))) == 3  # 48 rows in shards of >= 16 rows
    monkeypatch.setattr(Encoder, "embed_ids", lambda *a, **k: pytest.fail("the store should be warm"))
    warm, warm_stats = embed_texts(encoder, texts(), "passage", cache)  # the local engine reads Ray's store
    assert np.array_equal(warm, vectors) and np.array_equal(warm_stats.n_tokens, stats.n_tokens)


def test_an_actor_killed_mid_run_is_retried_and_the_store_is_complete(session, tiny_model_dir: Path,
                                                                      tmp_path: Path) -> None:
    encoder = Encoder.load(tiny_model_dir, threads=1)
    batch = texts(96)
    killed: list[int] = []

    def kill_first_worker(result: dict[str, np.ndarray]) -> None:
        if not killed:
            killed.append(int(result["pid"][0]))
            os.kill(killed[0], signal.SIGKILL)

    cache = tmp_path / "cache"
    vectors, _ = embed_texts_ray(session, encoder, batch, "query", cache, on_batch=kill_first_worker)
    local, _ = embed_texts(encoder, batch, "query", None)
    assert killed and np.abs(vectors - local).max() <= 1e-6
    store = encoder_cache(encoder, "query", cache)
    hit, stored = store.lookup([text_key(encoder.prefix("query") + t) for t in batch])
    assert hit.all() and np.abs(stored - local).max() <= 1e-6


def test_audit_with_the_ray_engine_gives_identical_metrics(session, tiny_model_dir: Path, tmp_path: Path) -> None:
    corpus = parallel_corpus(tmp_path / "corpus")
    local = audit_corpus(corpus, [tiny_model_dir], bootstrap=100, cache_dir=tmp_path / "local-cache")
    on_ray = audit_corpus(corpus, [tiny_model_dir], bootstrap=100, cache_dir=tmp_path / "ray-cache", engine="ray",
                          ray=RayOptions(batch_rows=8))
    a, b = local.to_json(), on_ray.to_json()
    assert [s["metrics"] for s in a["scenarios"]] == [s["metrics"] for s in b["scenarios"]]
    assert [s["ci"] for s in a["scenarios"]] == [s["ci"] for s in b["scenarios"]]
    assert a["gaps"] == b["gaps"]


def test_scoring_as_ray_tasks_over_query_chunks_equals_local(session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retrieval, "MAX_CHUNK_CELLS", 1200)  # 4 queries per matrix product, several per task
    rng = np.random.default_rng(4)
    n_docs = 300
    pool = PoolInfo(doc_ids=np.array([f"d{i}" for i in range(n_docs)]), langs=rng.choice(["en", "zh"], n_docs),
                    parallel_ids=np.array([f"p{i // 2}" for i in range(n_docs)], dtype=object))
    docs = rng.normal(size=(n_docs, 8)).astype(np.float32)
    queries = rng.normal(size=(23, 8)).astype(np.float32)
    relevant = tuple(np.sort(rng.choice(n_docs, 2, replace=False)) for _ in range(23))
    args = (queries, docs, [f"q{i}" for i in range(23)], list(rng.choice(["en", "zh"], 23)), relevant, pool)
    local = retrieve(*args, depth=20, k=10, index="exact").columns
    remote = retrieve_ray(session, *args, depth=20, k=10, chunks=3).columns
    for name in ("top", "top_scores", "relevant_ranks", "best_irrelevant_rank", "best_irrelevant_twinned_rank"):
        assert np.array_equal(getattr(local, name), getattr(remote, name), equal_nan=True), name


def test_an_unreachable_cluster_is_one_line_and_exit_2(tiny_model_dir: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "texts.jsonl"
    source.write_text("".join(json.dumps({"_id": f"t{i}", "text": t}) + "\n" for i, t in enumerate(texts(4))))
    out = tmp_path / "vectors.npy"
    rc = main(["embed", str(source), "--model", str(tiny_model_dir), "--out", str(out), "--engine", "ray",
               "--ray-address", "127.0.0.1:9"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "cannot reach the Ray cluster at 127.0.0.1:9" in err[0]
    assert not out.exists() and list(tmp_path.iterdir()) == [source]
    rc = main(["embed", str(source), "--model", str(tiny_model_dir), "--out", str(out), "--ray-address", "x:1"])
    assert rc == 2 and "needs --engine ray" in capsys.readouterr().err
