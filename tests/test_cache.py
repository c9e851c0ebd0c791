import numpy as np

from clbias.runtime.cache import EmbeddingCache, text_key


def test_cache_round_trip_and_partial_hits(tmp_path):
    ns = EmbeddingCache.namespace("a" * 64, "query: ", 512, "mean", True, tokenizer_sha256="t" * 64)
    cache = EmbeddingCache(tmp_path, ns)
    keys = [text_key(t) for t in ("one", "two", "three")]
    vecs = np.arange(12, dtype=np.float32).reshape(3, 4)
    hit, found = cache.lookup(keys)
    assert not hit.any() and found is None
    cache.store(keys[:2], vecs[:2])
    cache.store(keys[2:], vecs[2:])
    hit, found = EmbeddingCache(tmp_path, ns).lookup([keys[2], text_key("four"), keys[0]])
    assert hit.tolist() == [True, False, True]
    assert np.array_equal(found, vecs[[2, 0]])


def test_namespaces_separate_models_and_prefixes(tmp_path):
    a = EmbeddingCache.namespace("a" * 64, "query: ", 512, "mean", True, tokenizer_sha256="t" * 64)
    assert a != EmbeddingCache.namespace("b" * 64, "query: ", 512, "mean", True, tokenizer_sha256="t" * 64)
    assert a != EmbeddingCache.namespace("a" * 64, "passage: ", 512, "mean", True, tokenizer_sha256="t" * 64)
    EmbeddingCache(tmp_path, a).store([text_key("x")], np.ones((1, 2), np.float32))
    hit, _ = EmbeddingCache(tmp_path, EmbeddingCache.namespace("b" * 64, "query: ", 512, "mean", True, tokenizer_sha256="t" * 64)).lookup([text_key("x")])
    assert not hit.any()


def test_cache_files_are_plain_npy_without_pickles(tmp_path):
    cache = EmbeddingCache(tmp_path, "ns")
    cache.store([text_key("x")], np.ones((1, 2), np.float32))
    for f in (tmp_path / "ns").glob("*.npy"):
        np.load(f, allow_pickle=False)
    assert not list((tmp_path / "ns").glob("*.tmp"))


def test_atomic_dir_cleans_up_builds_of_killed_processes(tmp_path):
    import subprocess
    import sys

    from clbias.io import atomic_dir

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    abandoned = tmp_path / f".model.partial-{dead.stdout.strip()}-abc"
    abandoned.mkdir()
    (abandoned / "model.onnx").write_bytes(b"half")
    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "model.onnx").write_bytes(b"whole")
    assert not abandoned.exists()
    assert (tmp_path / "model" / "model.onnx").read_bytes() == b"whole"
    assert oct((tmp_path / "model").stat().st_mode & 0o777) != "0o700"


def test_keys_ending_in_a_zero_byte_hit_the_cache(tmp_path):
    text = next(f"text {i}" for i in range(10_000) if text_key(f"text {i}").endswith(b"\x00"))
    cache = EmbeddingCache(tmp_path, "ns")
    cache.store([text_key(text)], np.ones((1, 2), np.float32))
    hit, found = EmbeddingCache(tmp_path, "ns").lookup([text_key(text)])
    assert hit.tolist() == [True] and np.array_equal(found, np.ones((1, 2), np.float32))
