"""Issue 10 item 3: the embedding cache verifies every shard, drops damaged ones, and never pairs the keys of one
writer with the vectors of another; its key includes the tokenizer."""
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clbias.api import audit_corpus, load_model
from clbias.io import sha256_file
from clbias.runtime.cache import EmbeddingCache, text_key
from clbias.runtime.embed import embed_texts
from corpus_factory import parallel_corpus


def _shards(ns_dir: Path) -> list[str]:
    return sorted(p.name.removesuffix(".sum.json") for p in ns_dir.glob("*.sum.json"))


def _filled(tmp_path, n=60, dim=8):
    cache = EmbeddingCache(tmp_path, "ns")
    keys = [text_key(f"text {i}") for i in range(n)]
    vecs = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    cache.store(keys, vecs, np.arange(n))
    return keys, vecs, tmp_path / "ns"


@pytest.mark.parametrize("damage", ["random-rows", "truncated", "missing", "bad-sum"])
def test_a_damaged_shard_is_dropped_with_a_warning_naming_it(tmp_path, caplog, damage):
    keys, vecs, ns_dir = _filled(tmp_path)
    stem = _shards(ns_dir)[0]
    vec_file = ns_dir / f"{stem}.vecs.npy"
    data = bytearray(vec_file.read_bytes())
    if damage == "random-rows":  # same size, 50 rows of noise: the case that gave silently wrong metrics
        start = len(data) - 50 * 8 * 4
        data[start:] = np.random.default_rng(1).bytes(len(data) - start)
        vec_file.write_bytes(bytes(data))
    elif damage == "truncated":
        vec_file.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == "missing":
        vec_file.unlink()
    else:
        (ns_dir / f"{stem}.sum.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="clbias.cache"):
        hit, found = EmbeddingCache(tmp_path, "ns").lookup(keys)
    assert not hit.any() and found is None
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and str(ns_dir / stem) in warnings[0] and "\n" not in warnings[0]
    assert not list(ns_dir.glob(f"{stem}.*"))  # dropped, so the recomputed texts go into a fresh shard


def test_intact_shards_still_hit_next_to_a_damaged_one(tmp_path, caplog):
    keys, vecs, ns_dir = _filled(tmp_path)
    cache = EmbeddingCache(tmp_path, "ns")
    other = [text_key(f"other {i}") for i in range(3)]
    cache.store(other, np.ones((3, 8), np.float32))
    first = _shards(ns_dir)[0]
    (ns_dir / f"{first}.keys.npy").write_bytes(b"\x93NUMPY garbage")
    hit, found = EmbeddingCache(tmp_path, "ns").lookup(other + keys[:2])
    assert hit.tolist() == [True, True, True, False, False] and np.array_equal(found, np.ones((3, 8), np.float32))


def test_a_shard_without_its_checksum_file_is_not_read(tmp_path):
    keys, vecs, ns_dir = _filled(tmp_path)
    (ns_dir / f"{_shards(ns_dir)[0]}.sum.json").unlink()  # a writer that has not committed yet
    hit, _ = EmbeddingCache(tmp_path, "ns").lookup(keys)
    assert not hit.any()
    assert list(ns_dir.glob("*.vecs.npy"))  # left alone: it may still be being written


WRITER = """
import sys
import numpy as np
from clbias.runtime.cache import EmbeddingCache, text_key
root, writer = sys.argv[1], int(sys.argv[2])
cache = EmbeddingCache(root, "ns")
for i in range(40):
    keys = [text_key(f"w{writer}-{i}-{j}") for j in range(5)]
    cache.store(keys, np.full((5, 4), writer * 1000 + i, np.float32), np.full(5, writer))
"""


def test_concurrent_writers_never_pair_keys_and_vectors_of_different_writers(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(w)]) for w in (1, 2, 3)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    cache = EmbeddingCache(tmp_path, "ns")
    for writer in (1, 2, 3):
        keys = [text_key(f"w{writer}-{i}-{j}") for i in range(40) for j in range(5)]
        hit, found = cache.lookup(keys)
        assert hit.all()
        expected = np.repeat([writer * 1000 + i for i in range(40)], 5).astype(np.float32)
        assert np.array_equal(found[:, 0], expected)
        assert set(cache.token_counts(keys).tolist()) == {writer}
    assert len(_shards(tmp_path / "ns")) == 120


def test_cache_key_includes_the_tokenizer(tmp_path, tiny_model_dir):
    common = dict(model_sha256="a" * 64, prefix="query: ", max_length=512, pooling="mean", normalize=True)
    assert EmbeddingCache.namespace(**common, tokenizer_sha256="1" * 64) != \
        EmbeddingCache.namespace(**common, tokenizer_sha256="2" * 64)
    retok = tmp_path / "retok"
    shutil.copytree(tiny_model_dir, retok)
    tok = json.loads((retok / "tokenizer.json").read_text())
    (retok / "tokenizer.json").write_text(json.dumps(tok, indent=1))  # same graph, another tokenizer file
    manifest = json.loads((retok / "clbias.json").read_text())
    manifest["files"]["tokenizer.json"] = sha256_file(retok / "tokenizer.json")
    (retok / "clbias.json").write_text(json.dumps(manifest))
    a, b = load_model(tiny_model_dir), load_model(retok)
    assert a.sha256 == b.sha256
    embed_texts(a, ["one text"], "query", tmp_path / "cache")
    embed_texts(b, ["one text"], "query", tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 2  # the second model did not read the first one's rows


def test_audit_after_shard_damage_equals_a_no_cache_audit(tmp_path, tiny_model_dir, caplog):
    corpus = parallel_corpus(tmp_path / "c")
    cache = tmp_path / "cache"
    settings = dict(bootstrap=50, scenarios=["multi"])
    reference = audit_corpus(corpus, [tiny_model_dir], **settings).metrics_only()
    assert audit_corpus(corpus, [tiny_model_dir], cache_dir=cache, **settings).metrics_only() == reference
    passage_ns = next(p.parent for p in cache.rglob("*.vecs.npy") if np.load(p).shape[0] == 8)
    vec_file = next(passage_ns.glob("*.vecs.npy"))
    noisy = np.load(vec_file).copy()
    noisy[:5] = np.random.default_rng(0).standard_normal(noisy[:5].shape)
    with open(vec_file, "wb") as fh:  # same shape, valid .npy, wrong numbers
        np.save(fh, noisy)
    with caplog.at_level(logging.WARNING, logger="clbias.cache"):
        damaged = audit_corpus(corpus, [tiny_model_dir], cache_dir=cache, **settings).metrics_only()
    assert damaged == reference
    assert any(vec_file.name.removesuffix(".vecs.npy") in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="clbias.cache"):
        again = audit_corpus(corpus, [tiny_model_dir], cache_dir=cache, **settings).metrics_only()
    assert again == reference and not caplog.records  # the recomputed rows were cached again, intact
