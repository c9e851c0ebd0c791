"""Our loss terms beyond the paper (issue 15): hand-computed cases, their wiring, tiny-model steps that
lower them, and the speed work (bucketed embedding) leaving the losses unchanged."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clbias.errors import InputError
from clbias.train import TrainConfig, read_triplets, resolve_base

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

PREFIXES = ("query: ", "passage: ")
# (English passage, English query, German passage, German query, French passage)
UNITS = [
    ("The cat sleeps on the warm windowsill.", "where does the cat sleep",
     "Die Katze schläft auf der warmen Fensterbank.", "wo schläft die Katze", "Le chat dort sur le rebord chaud."),
    ("Trains to the airport leave every hour.", "how often do airport trains leave",
     "Züge zum Flughafen fahren jede Stunde.", "wie oft fahren Züge zum Flughafen",
     "Les trains pour l'aéroport partent chaque heure."),
    ("Fresh bread is baked in the village every morning.", "when is bread baked",
     "Im Dorf wird jeden Morgen frisches Brot gebacken.", "wann wird Brot gebacken",
     "Le pain frais est cuit au village chaque matin."),
    ("The river floods the meadows every spring.", "what floods in spring",
     "Der Fluss überschwemmt jeden Frühling die Wiesen.", "was überschwemmt im Frühling",
     "La rivière inonde les prés chaque printemps."),
    ("Paris is the capital of France.", "what is the capital of France",
     "Paris ist die Hauptstadt von Frankreich.", "was ist die Hauptstadt von Frankreich",
     "Paris est la capitale de la France."),
    ("Mount Everest is the highest mountain.", "which mountain is the highest",
     "Der Mount Everest ist der höchste Berg.", "welcher Berg ist der höchste", "L'Everest est la plus haute montagne."),
    ("The museum shows old paintings.", "what does the museum show",
     "Das Museum zeigt alte Gemälde.", "was zeigt das Museum", "Le musée expose de vieux tableaux."),
    ("The bridge leads to the station.", "where does the bridge lead",
     "Die Brücke führt zum Bahnhof.", "wohin führt die Brücke", "Le pont mène à la gare."),
]
# The tiny model's random word embeddings are its only lexical signal: they train here (default: frozen).
SMALL = dict(batch_size=4, steps=6, lr=5e-3, warmup=0.0, save_every=6, max_length=64, freeze_embeddings=False)


def rows_with_queries() -> list[dict[str, str]]:
    rows = []
    for i, (en, q, de, q_de, fr) in enumerate(UNITS):
        rows.append({"q_en": q, "p_en": en, "p_tgt": de, "q_tgt": q_de, "lang": "de", "parallel_id": f"u{i}"})
        rows.append({"q_en": q, "p_en": en, "p_tgt": fr, "lang": "fr", "parallel_id": f"u{i}"})
    return rows


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("terms") / "triplets.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows_with_queries()), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def base(tiny_hf_dir: Path):
    return resolve_base(tiny_hf_dir, *PREFIXES)


def softmax_ce(logits: np.ndarray, keep: np.ndarray) -> float:
    """Mean over rows of -log softmax(logits[i])[i], over the kept candidates only."""
    out = []
    for i, row in enumerate(logits):
        kept = row[keep[i]]
        out.append(-(row[i] - np.log(np.exp(kept).sum())))
    return float(np.mean(out))


def unit(m: np.ndarray) -> np.ndarray:
    return m / np.linalg.norm(m, axis=1, keepdims=True)


# --------------------------------------------------------------------------- the loss functions


def test_info_nce_with_extra_negative_candidates_matches_hand_computation():
    from clbias.train.losses import info_nce

    anchors = np.array([[1.0, 0.0], [0.0, 1.0]])
    candidates = np.array([[1.0, 0.2], [0.1, 1.0], [1.0, 1.0], [-1.0, 0.5]])  # rows 2, 3: extra negatives
    tau = 0.5
    logits = unit(anchors) @ unit(candidates).T / tau
    expected = softmax_ce(logits, np.ones((2, 4), dtype=bool))
    assert info_nce(torch.tensor(anchors), torch.tensor(candidates), tau).item() == pytest.approx(expected, rel=1e-6)
    exclude = torch.tensor([[True, False, True, False], [False, True, False, True]])  # the positive stays in
    keep = np.array([[True, True, False, True], [True, True, True, False]])
    got = info_nce(torch.tensor(anchors), torch.tensor(candidates), tau, exclude).item()
    assert got == pytest.approx(softmax_ce(logits, keep), rel=1e-6)


def test_score_distillation_is_the_kl_of_base_to_tuned_score_distributions():
    from clbias.train.losses import score_distillation

    q = np.array([[1.0, 0.0], [0.6, 0.8]])
    p_base = np.array([[1.0, 0.1], [0.0, 1.0], [0.7, 0.7]])
    p_tuned = np.array([[0.9, 0.4], [0.2, 1.0], [1.0, 0.0]])
    tau = 0.5

    def dist(a: np.ndarray, b: np.ndarray, keep: np.ndarray) -> np.ndarray:
        logits = np.where(keep, unit(a) @ unit(b).T / tau, -np.inf)
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    every = np.ones((2, 3), dtype=bool)
    pb, pt = dist(q, p_base, every), dist(q, p_tuned, every)
    expected = float(np.mean((pb * np.log(pb / pt)).sum(1)))
    t = lambda m: torch.tensor(m)  # noqa: E731
    assert score_distillation(t(q), t(p_tuned), t(q), t(p_base), tau).item() == pytest.approx(expected, rel=1e-6)
    assert score_distillation(t(q), t(p_base), t(q), t(p_base), tau).item() == pytest.approx(0.0, abs=1e-7)
    keep = np.array([[True, True, False], [True, True, True]])  # row 0 leaves candidate 2 out of both
    pb, pt = dist(q, p_base, keep), dist(q, p_tuned, keep)
    ratio = np.divide(pb, pt, out=np.ones_like(pb), where=keep)
    terms = np.where(keep, pb * np.log(ratio), 0.0)
    got = score_distillation(t(q), t(p_tuned), t(q), t(p_base), tau, exclude=t(~keep)).item()
    assert got == pytest.approx(float(np.mean(terms.sum(1))), rel=1e-6)
    tuned = t(p_tuned).requires_grad_(True)
    score_distillation(t(q), tuned, t(q), t(p_base), tau, exclude=t(~keep)).backward()
    assert torch.isfinite(tuned.grad).all()


def test_length_chunks_minimise_padding_plus_overhead():
    from clbias.train.embedding import plan_chunks

    lengths = [100, 10, 12, 95, 11]
    chunks = plan_chunks(lengths, overhead=20)
    assert sorted(i for c in chunks for i in c) == [0, 1, 2, 3, 4]
    assert [sorted(c) for c in chunks] == [[0, 3], [1, 2, 4]]  # 2 x 100 + 3 x 12 + 2 x 20 = 276
    assert plan_chunks(lengths, overhead=1000) == [[0, 3, 2, 4, 1]]  # one call: 5 x 100 + 1000 beats two
    assert plan_chunks([7, 7, 7], overhead=0) in ([[0, 1, 2]], [[0], [1], [2]], [[0, 1], [2]], [[0], [1, 2]])


# --------------------------------------------------------------------------- wiring of the terms


class TableEmbedder:
    """Embeds a one-token row [k] as VECTORS[k] (the terms' wiring, not the model, is under test)."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = torch.tensor(vectors)
        self.device = torch.device("cpu")

    def embed(self, groups: dict[str, list[list[int]]]) -> dict[str, "torch.Tensor"]:
        return {name: self.vectors[[r[0] for r in rows]] for name, rows in groups.items()}


def hand_encoded(langs: list[int], with_query: list[bool]):
    """Rows i = 0..n-1 with text ids: q_en 10+i, p_en 20+i, p_tgt 30+i, q_tgt 40+i (all distinct)."""
    from clbias.train.terms import Encoded

    n = len(langs)
    q_tgt = [[40 + i] if with_query[i] else None for i in range(n)]
    group = np.arange(n)
    return Encoded([[10 + i] for i in range(n)], [[20 + i] for i in range(n)], [[30 + i] for i in range(n)], q_tgt,
                   group, group.copy(), group.copy(), np.where(with_query, group, -1), np.array(langs), 0, 0)


def test_mono_and_query_terms_pick_the_right_anchors_candidates_and_languages():
    from clbias.train.terms import BatchLoss

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 3))
    encoded = hand_encoded(langs=[0, 0, 1], with_query=[True, True, True])
    config = TrainConfig(loss="nce", mono_weight=1.0, query_weight=0.5, tau=0.5)
    parts = BatchLoss(TableEmbedder(vectors), encoded, config)(np.array([0, 1, 2]))
    assert set(parts) == {"nce", "mono", "query"}
    v = lambda ids: vectors[ids]  # noqa: E731
    mono_en = softmax_ce(unit(v([10, 11, 12])) @ unit(v([20, 21, 22])).T / 0.5, np.ones((3, 3), dtype=bool))
    same_lang = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=bool)  # row 2 (lang 1) has no other candidate
    mono_tgt = softmax_ce(unit(v([40, 41, 42])) @ unit(v([30, 31, 32])).T / 0.5, same_lang)
    assert parts["mono"].item() == pytest.approx((mono_en + mono_tgt) / 2, rel=1e-6)
    query = softmax_ce(unit(v([40, 41, 42])) @ unit(v([20, 21, 22])).T / 0.5, np.ones((3, 3), dtype=bool))
    assert parts["query"].item() == pytest.approx(query, rel=1e-6)
    # row 1 without a target query: the query term ranks rows 0 and 2's anchors against all three p_en
    encoded = hand_encoded(langs=[0, 0, 1], with_query=[True, False, True])
    parts = BatchLoss(TableEmbedder(vectors), encoded, config)(np.array([0, 1, 2]))
    logits = unit(v([40, 42])) @ unit(v([20, 22, 21])).T / 0.5  # positives first, then the other rows' p_en
    assert parts["query"].item() == pytest.approx(softmax_ce(logits, np.ones((2, 3), dtype=bool)), rel=1e-6)
    mono_tgt = softmax_ce(unit(v([40, 42])) @ unit(v([30, 32])).T / 0.5, np.eye(2, dtype=bool))  # other langs out
    assert mono_tgt == pytest.approx(0.0, abs=1e-12)
    assert parts["mono"].item() == pytest.approx((mono_en + mono_tgt) / 2, rel=1e-6)


def test_hard_term_adds_mined_english_passages_as_negatives_of_the_target_anchor():
    from clbias.train.terms import BatchLoss

    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(50, 3))
    encoded = hand_encoded(langs=[0, 0, 0, 0], with_query=[False] * 4)
    mined = np.array([[3], [2], [-1], [0]])  # row 0 -> row 3's p_en, row 1 -> row 2's; rows 2, 3 unused here
    config = TrainConfig(loss="nce", hard_weight=1.0, tau=0.5)
    parts = BatchLoss(TableEmbedder(vectors), encoded, config, hard_negatives=mined)(np.array([0, 1]))
    logits = unit(vectors[[30, 31]]) @ unit(vectors[[20, 21, 23, 22]]).T / 0.5
    assert parts["hard"].item() == pytest.approx(softmax_ce(logits, np.ones((2, 4), dtype=bool)), rel=1e-6)
    # a mined passage already in the batch is not added twice
    parts = BatchLoss(TableEmbedder(vectors), encoded, config, hard_negatives=mined)(np.array([0, 3]))
    logits = unit(vectors[[30, 33]]) @ unit(vectors[[20, 23]]).T / 0.5
    assert parts["hard"].item() == pytest.approx(softmax_ce(logits, np.ones((2, 2), dtype=bool)), rel=1e-6)


def test_mining_skips_relevant_passages_and_takes_the_closest_irrelevant_ones():
    from clbias.train.embedding import FrozenEmbeddings
    from clbias.train.terms import mine

    encoded = hand_encoded(langs=[0, 0, 0, 0], with_query=[False] * 4)
    encoded.query_group[3] = encoded.query_group[0]  # rows 0 and 3 share an English query: relevant to each other
    vectors = np.zeros((50, 2))
    vectors[[30, 31, 32, 33]] = [[1, 0], [0, 1], [1, 1], [1, -1]]  # target passages
    vectors[[20, 21, 22, 23]] = [[1, 0.01], [0, 1], [1, 0.2], [1, 0.1]]  # English passages
    frozen = FrozenEmbeddings(TableEmbedder(vectors), encoded.texts())  # type: ignore[arg-type]
    got = mine(frozen, encoded, np.array([0, 1, 2]), k=2, pool_size=100, seed=0)
    # row 0: own p_en (20) and row 3's (same query) are relevant -> 22, then 21
    assert got[0].tolist() == [2, 1]
    assert got[1].tolist() == [2, 3]  # cosines to (0, 1): 22 0.196, 23 0.0995, 20 0.01; its own 21 skipped
    assert got[3].tolist() == [-1, -1]  # not an anchor


# --------------------------------------------------------------------------- on the tiny model


def test_a_few_steps_lower_each_new_term(base, data_file: Path, tmp_path: Path):
    from clbias.train import evaluate, train

    triplets = read_triplets(data_file)
    terms = dict(mono_weight=1.0, query_weight=1.0, hard_weight=1.0)
    config = TrainConfig(**SMALL, **terms)
    before = evaluate(base.hf_dir, triplets, base, config)
    assert {"jsd", "nce", "mono", "query", "hard", "loss"} == set(before)
    result = train(data_file, tmp_path / "all", base, config)
    after = evaluate(tmp_path / "all", triplets, base, config)
    for term in ("mono", "query", "hard", "loss"):
        assert after[term] < before[term], term
    assert result.tokens_per_second and result.tokens_per_second > 0
    log = [json.loads(line) for line in (tmp_path / "all" / "training" / "log.jsonl").read_text().splitlines()]
    weights = config.weights()
    assert log[0]["loss"] == pytest.approx(sum(weights[k] * log[0][k] for k in weights), abs=1e-5)


def test_distillation_keeps_the_tuned_scores_near_the_base(base, data_file: Path, tmp_path: Path):
    from clbias.train import evaluate, train

    triplets = read_triplets(data_file)
    probe = TrainConfig(**SMALL, distill_weight=1.0)
    assert evaluate(base.hf_dir, triplets, base, probe)["distill"] == pytest.approx(0.0, abs=1e-6)
    train(data_file, tmp_path / "paper", base, TrainConfig(**SMALL, dropout=0.0))
    train(data_file, tmp_path / "kept", base, TrainConfig(**SMALL, dropout=0.0, distill_weight=20.0))
    drift_paper = evaluate(tmp_path / "paper", triplets, base, probe)["distill"]
    drift_kept = evaluate(tmp_path / "kept", triplets, base, probe)["distill"]
    assert drift_paper > 0.01 and drift_kept < drift_paper / 2


def test_bucketed_embedding_leaves_the_losses_unchanged(base, data_file: Path, tmp_path: Path):
    """The speed work must not change the maths: without dropout, bucketed (distinct texts once, length-
    sorted chunks) and plain (one padded forward per kind) training log the same losses, step by step."""
    from clbias.train import train

    logs = {}
    for bucket in (False, True):
        config = TrainConfig(**{**SMALL, "steps": 4}, dropout=0.0, bucket=bucket, mono_weight=0.5, query_weight=0.5)
        result = train(data_file, tmp_path / f"b{bucket}", base, config)
        logs[bucket] = [json.loads(line) for line in
                        (tmp_path / f"b{bucket}" / "training" / "log.jsonl").read_text().splitlines()]
        if bucket:
            assert result.padding_share is not None
    for old, new in zip(logs[False], logs[True]):
        for key in ("jsd", "nce", "mono", "query", "loss"):
            assert new[key] == pytest.approx(old[key], rel=1e-4, abs=1e-6), (old["step"], key)


def test_embedder_pads_each_chunk_to_its_own_longest_text(base, data_file: Path):
    from clbias.train.embedding import Embedder
    from clbias.train.trainer import encode_triplets, load_hf_model

    model = load_hf_model(base.hf_dir).eval()
    encoded = encode_triplets(read_triplets(data_file), base, 64)
    groups = {"q": encoded.query[:6], "p": encoded.p_en[:6] + encoded.p_tgt[:6]}
    plain, bucketed = Embedder(model, encoded.pad_id, torch.device("cpu"), "mean", bucket=False), \
        Embedder(model, encoded.pad_id, torch.device("cpu"), "mean", bucket=True)
    with torch.no_grad():
        a, b = plain.embed(groups), bucketed.embed(groups)
    for name in groups:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-5)
    assert bucketed.tokens < plain.tokens  # p_en rows 0-5 repeat (units used for de and fr): embedded once
    assert bucketed.padded - bucketed.tokens <= plain.padded - plain.tokens


def test_top_layers_only_leave_lower_layers_and_embeddings_untouched(base, data_file: Path, tmp_path: Path):
    from safetensors.numpy import load_file

    from clbias.train import train

    train(data_file, tmp_path / "top", base, TrainConfig(**{**SMALL, "steps": 2}, train_layers=1))
    before, after = load_file(str(base.hf_dir / "model.safetensors")), load_file(str(tmp_path / "top" / "model.safetensors"))
    for key in before:
        changed = not np.array_equal(before[key], after[key])
        assert changed == key.startswith("encoder.layer.1."), key
    with pytest.raises(InputError, match="2 encoder layers"):
        train(data_file, tmp_path / "too-many", base, TrainConfig(**SMALL, train_layers=3))


def test_new_options_refuse_bad_values_and_data_without_target_queries(base, tmp_path: Path):
    from clbias.train import train

    for bad in (dict(mono_weight=-1.0), dict(hard_weight=float("nan")), dict(jsd_weight=0.0),
                dict(hard_negatives=0), dict(train_layers=0), dict(dropout=1.0), dict(threads=0)):
        with pytest.raises(InputError, match=next(iter(bad))):
            TrainConfig(**bad)
    assert TrainConfig(loss="nce", jsd_weight=0.0).weights() == {"nce": 1.0}
    assert TrainConfig().weights() == {"jsd": 1.0, "nce": 1.0}  # the paper's recipe, unchanged
    rows = [{k: v for k, v in r.items() if k != "q_tgt"} for r in rows_with_queries()]
    path = tmp_path / "no-queries.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(InputError, match="q_tgt"):
        train(path, tmp_path / "out", base, TrainConfig(**SMALL, query_weight=1.0))
    bad = tmp_path / "bad-q.jsonl"
    bad.write_text(json.dumps({**rows_with_queries()[0], "q_tgt": " "}) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_triplets(bad)
    assert (info.value.line, info.value.field) == (1, "q_tgt")


def test_resume_with_mined_negatives_matches_an_uninterrupted_run(base, data_file: Path, tmp_path: Path):
    from safetensors.numpy import load_file

    from clbias.train import train

    config = TrainConfig(**{**SMALL, "save_every": 3}, hard_weight=1.0, distill_weight=1.0)

    class StopAt4:
        def start(self, total: int, done: int) -> None: ...
        def step(self, step: int, losses: dict[str, float]) -> None:
            if step == 4:
                raise KeyboardInterrupt
        def finish(self) -> None: ...

    train(data_file, tmp_path / "whole", base, config)
    with pytest.raises(KeyboardInterrupt):
        train(data_file, tmp_path / "split", base, config, progress=StopAt4())
    train(data_file, tmp_path / "split", base, config, resume=True)
    a, b = load_file(str(tmp_path / "whole" / "model.safetensors")), load_file(str(tmp_path / "split" / "model.safetensors"))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_cli_trains_with_one_thread_on_an_oversubscribed_cpu_and_says_so_once_training_starts(
        tiny_hf_dir: Path, data_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]):
    import os

    from clbias.cli import main

    monkeypatch.setattr(os, "getloadavg", lambda: (40.0, 40.0, 40.0))
    args = ["train", "--base", str(tiny_hf_dir), "--query-prefix", "query: ", "--passage-prefix", "passage: ",
            "--data", str(data_file), "--out", str(tmp_path / "run"), "--steps", "1", "--batch-size", "4"]
    assert main(args) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "training with 1 torch thread" in err and ", 1 threads (" in err
    assert main(args) == 2  # refused (checkpoint exists): the one error line only
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("clbias: error:")
    assert main(args[:-4] + ["--out", str(tmp_path / "one"), "--steps", "1", "--batch-size", "4",
                             "--threads", "1"]) == 0
    assert "training with 1 torch thread" not in " ".join(capsys.readouterr().err.split())


def test_recipe_sets_the_term_weights_and_a_weight_flag_overrides_it():
    """`clbias train --recipe`: `paper` (default, the paper's loss) or `neutral` (alignment-manpages.md)."""
    from clbias.cli import parser
    from clbias.cli.train import config_from_args
    from clbias.train.config import DEFAULT_RECIPE, RECIPES

    base = ["train", "--base", "b", "--data", "d", "--out", "o"]

    def weights(*extra: str) -> tuple[float, float, float, float]:
        c = config_from_args(parser().parse_args(base + list(extra)))
        return (c.mono_weight, c.distill_weight, c.query_weight, c.hard_weight)

    assert DEFAULT_RECIPE == "paper" and weights() == weights("--recipe", "paper") == (0.0, 0.0, 0.0, 0.0)
    assert weights("--recipe", "neutral") == (1.0, 1.0, 0.5, 0.0)
    assert TrainConfig() == TrainConfig(**RECIPES["paper"])  # the library's own defaults stay the paper's
    assert weights("--recipe", "paper", "--mono-weight", "0.5") == (0.5, 0.0, 0.0, 0.0)
    assert weights("--recipe", "neutral", "--distill-weight", "0") == (1.0, 0.0, 0.5, 0.0)


def test_checkpointing_and_eager_attention_leave_the_training_unchanged(base, data_file: Path, tmp_path: Path):
    """The memory and speed settings are the same maths: with dropout on (checkpointing must replay the same
    masks in its recomputation), checkpointing on/off gives the same losses and weights; eager vs SDPA
    attention agree without dropout (their dropout masks are drawn differently)."""
    from safetensors.numpy import load_file

    from clbias.train import train

    def run(name: str, **kw) -> tuple[list[dict], dict]:  # type: ignore[no-untyped-def]
        train(data_file, tmp_path / name, base, TrainConfig(**{**SMALL, "steps": 3}, **kw))
        log = [json.loads(line) for line in (tmp_path / name / "training" / "log.jsonl").read_text().splitlines()]
        return log, load_file(str(tmp_path / name / "model.safetensors"))

    plain_log, plain = run("plain", checkpointing=False)
    ckpt_log, ckpt = run("ckpt", checkpointing=True)
    assert plain_log[0]["loss"] > 0
    for a, b in zip(plain_log, ckpt_log):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=1e-6)
    for key in plain:
        np.testing.assert_allclose(plain[key], ckpt[key], rtol=1e-4, atol=1e-6, err_msg=key)
    eager_log, _ = run("eager", dropout=0.0, attention="eager")
    sdpa_log, _ = run("sdpa", dropout=0.0, attention="sdpa")
    for a, b in zip(eager_log, sdpa_log):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-5)
    with pytest.raises(InputError, match="must be one of"):
        TrainConfig(attention="flash")
