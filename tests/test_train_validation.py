"""Validation during training (issue 15, item 4: the curve of Multi Max@R_norm over checkpoints): the
metric against a hand computation, disjointness from training, the CLI split, and that measuring it leaves
the training itself unchanged."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from clbias.errors import InputError
from clbias.train import TrainConfig, read_triplets, resolve_base
from clbias.train.data import split_validation
from clbias.train.validation import MONO, MULTI, _max_r_norm, _ndcg10, _rank

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from test_train_terms import SMALL, UNITS, rows_with_queries  # noqa: E402


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def base(tiny_hf_dir: Path):
    return resolve_base(tiny_hf_dir, "query: ", "passage: ")


def test_rank_metrics_match_hand_computation():
    scores = np.array([[0.9, 0.5, 0.7, 0.1], [0.2, 0.3, 0.9, 0.8]])
    assert _rank(scores, np.array([0.5, 0.9])).tolist() == [3, 1]
    # pool of 8, two relevant, deepest at rank 4: 100 * (3 - 2) / (3 - 1) = 50
    assert _max_r_norm(np.array([4, 2, 8]), 8, 2) == pytest.approx([50.0, 100.0, 0.0])
    assert _ndcg10(np.array([1, 3, 11])) == pytest.approx([100.0, 100.0 / math.log2(4), 0.0])


def test_split_validation_moves_whole_units_and_refuses_impossible_sizes():
    rows = rows_with_queries()
    train, val = split_validation(rows, 3, seed=0)
    val_ids = {t["parallel_id"] for t in val}
    assert len(val_ids) == 3 and not val_ids & {t["parallel_id"] for t in train}
    assert len(train) + len(val) == len(rows)
    assert split_validation(rows, 3, seed=0) == (train, val)
    with pytest.raises(InputError, match="val_units"):
        split_validation(rows, len(UNITS), seed=0)


def test_validation_is_recorded_and_leaves_training_unchanged(base, tmp_path: Path):
    from clbias.train import train

    rows = rows_with_queries()
    train_rows, val_rows = split_validation(rows, 3, seed=0)
    data, val = write(tmp_path / "t.jsonl", train_rows), write(tmp_path / "v.jsonl", val_rows)
    config = TrainConfig(**{**SMALL, "batch_size": 2, "steps": 4, "save_every": 4})
    plain = train(data, tmp_path / "plain", base, config)
    seen = []

    class Recorder:
        def start(self, total: int, done: int) -> None: ...
        def step(self, step: int, losses: dict[str, float]) -> None: ...
        def finish(self) -> None: ...
        def validated(self, step: int, values: dict[str, float]) -> None:
            seen.append(step)

    checked = train(data, tmp_path / "val", base, config, progress=Recorder(), val_data=val, val_every=2)
    log = lambda d: (tmp_path / d / "training" / "log.jsonl").read_text()  # noqa: E731
    assert log("plain") == log("val")  # same losses, step by step: validation reads no random numbers
    assert plain.validation == []
    assert [row["step"] for row in checked.validation] == [0, 2, 4] == seen
    for row in checked.validation:
        assert 0.0 <= row[MULTI] <= 100.0 and 0.0 <= row[MONO] <= 100.0
    assert checked.validation[-1][MULTI] != checked.validation[0][MULTI]  # the model moved
    note = json.loads((tmp_path / "val" / "clbias.json").read_text())
    assert note["validation"] == checked.validation


def test_validation_that_shares_a_unit_with_training_is_refused(base, tmp_path: Path):
    from clbias.train import train

    rows = rows_with_queries()
    data = write(tmp_path / "t.jsonl", rows)
    fresh = {**rows[2], "parallel_id": "new", "p_en": "Another passage never trained on."}
    val = write(tmp_path / "v.jsonl", [{**rows[0], "p_en": "A passage never trained on."}, fresh])
    with pytest.raises(InputError, match=r"v\.jsonl:1: field 'parallel_id'.*u0"):
        train(data, tmp_path / "out", base, TrainConfig(**SMALL), val_data=val, val_every=2)
    other = write(tmp_path / "w.jsonl", [fresh, {**rows[0], "parallel_id": "elsewhere"}])
    with pytest.raises(InputError, match=r"w\.jsonl:2: field 'p_en'"):
        train(data, tmp_path / "out", base, TrainConfig(**SMALL), val_data=other, val_every=2)
    with pytest.raises(InputError, match="needs --val-data"):
        train(data, tmp_path / "out", base, TrainConfig(**SMALL), val_every=2)
    assert not (tmp_path / "out").exists()


def test_train_data_cli_writes_the_validation_split(tmp_path: Path):
    from clbias.cli import main

    corpus = tmp_path / "probe"
    corpus.mkdir()
    units = [{"parallel_id": f"u{i}", "texts": {"en": en, "de": de, "fr": fr}, "queries": {"en": q, "de": q_de}}
             for i, (en, q, de, q_de, fr) in enumerate(UNITS)]
    write(corpus / "train.jsonl", units)
    (corpus / "corpus.jsonl").write_text("", encoding="utf-8")
    out, val_out = tmp_path / "t.jsonl", tmp_path / "v.jsonl"
    assert main(["train", "data", "--from", str(corpus), "--n", "16", "--val-units", "2", "--val-out", str(val_out),
                 "--out", str(out)]) == 0
    train_rows, val_rows = read_triplets(out), read_triplets(val_out)
    assert len({t.parallel_id for t in val_rows}) == 2 and len(train_rows) + len(val_rows) == 16
    assert not {t.parallel_id for t in val_rows} & {t.parallel_id for t in train_rows}
    assert main(["train", "data", "--from", str(corpus), "--val-units", "2", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert not (tmp_path / "x.jsonl").exists()


def test_split_summary_counts_the_training_side(tmp_path: Path):
    from clbias.train.data import build_triplet_split

    corpus = tmp_path / "probe"
    corpus.mkdir()
    write(corpus / "train.jsonl", [{"parallel_id": f"u{i}", "texts": {"en": en, "de": de, "fr": fr},
                                    "queries": {"en": q, "de": q_de}} for i, (en, q, de, q_de, fr) in enumerate(UNITS)])
    (corpus / "corpus.jsonl").write_text("", encoding="utf-8")
    train, val, summary = build_triplet_split(corpus, 2, n=16, seed=0)
    assert summary["written"] == len(train) and summary["validation"] == {"units": 2, "written": len(val)}
    assert sum(summary["per_lang"].values()) == len(train) and summary["distinct_units"] == len(UNITS) - 2
    assert summary["with_q_tgt"] == sum(1 for t in train if "q_tgt" in t)
