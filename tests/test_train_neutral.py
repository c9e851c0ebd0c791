"""Neutrality as a training target (issue 23, item 3): twin preference in the validation curve (against a hand
computation), `--select neutral` keeping the step its rule names, WiSE-FT interpolation and its ratio rule,
the monolingual-only control loss and the `query` recipe, on the tiny model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clbias.errors import InputError
from clbias.train import TrainConfig, resolve_base
from clbias.train.data import split_validation
from clbias.train.validation import MONO, MULTI, TWIN, TWIN_DEV, twin_preference

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from test_train_terms import SMALL, rows_with_queries  # noqa: E402


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def base(tiny_hf_dir: Path):
    return resolve_base(tiny_hf_dir, "query: ", "passage: ")


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("neutral")
    train_rows, val_rows = split_validation(rows_with_queries(), 3, seed=0)
    return write(tmp / "t.jsonl", train_rows), write(tmp / "v.jsonl", val_rows)


def test_twin_preference_matches_a_hand_computation():
    # 3 units; columns: en0 en1 en2 | x0 x1 x2. Query 0 (unit 0): irrelevant pairs 1 (en 0.5 > x 0.4: English
    # wins) and 2 (en 0.1 < x 0.3). Query 1 (unit 1): pair 0 (0.2 = 0.2: half), pair 2 (0.9 > 0.1).
    scores = np.array([[0.9, 0.5, 0.1, 0.8, 0.4, 0.3],
                       [0.2, 0.7, 0.9, 0.2, 0.6, 0.1]])
    assert twin_preference(scores, np.array([0, 1]), 3) == pytest.approx(100 * (1 + 0 + 0.5 + 1) / 4)
    # head 1: only pairs with a member ranked first count; query 0's top is en0 (its own unit: left out),
    # query 1's top is en2 (pair 2, English wins)
    assert twin_preference(scores, np.array([0, 1]), 3, head=1) == pytest.approx(100.0)


def test_validation_tracks_twin_preference_and_select_neutral_keeps_the_rule_s_step(base, split, tmp_path: Path):
    from clbias.train import train
    from clbias.train.checkpoint import read_note

    data, val = split
    config = TrainConfig(**{**SMALL, "batch_size": 2, "steps": 6, "save_every": 3}, select="neutral",
                         select_margin=100.0)
    result = train(data, tmp_path / "run", base, config, val_data=val, val_every=2)
    rows = result.validation
    assert [r["step"] for r in rows] == [0, 2, 4, 6]
    for r in rows:
        assert 0 <= r[TWIN] <= 100 and r[TWIN_DEV] == pytest.approx(abs(r[TWIN] - 50), abs=50)
    note = read_note(tmp_path / "run")
    chosen = note["selected"]
    trained = [r for r in rows if r["step"] > 0]
    best = min(trained, key=lambda r: r[TWIN_DEV])  # margin 100: every step is non-inferior
    assert chosen["step"] == best["step"] and "twin preference" in chosen["rule"]
    selected = tmp_path / "run" / "selected"
    assert (selected / "model.safetensors").is_file() and (selected / "tokenizer.json").is_file()
    assert read_note(selected)["step"] == best["step"]
    # a strict margin that no trained step meets selects nothing
    strict = TrainConfig(**{**SMALL, "batch_size": 2, "steps": 2, "save_every": 2}, select="neutral",
                         select_margin=0.0)
    out = train(data, tmp_path / "strict", base, strict, val_data=val, val_every=1)
    ok = [r for r in out.validation[1:] if r[MONO] >= out.validation[0][MONO]]
    assert ("selected" in read_note(tmp_path / "strict")) == bool(ok)
    with pytest.raises(InputError, match="needs --val-data"):
        train(data, tmp_path / "none", base, strict)


def test_interpolation_mixes_weights_and_auto_ratio_follows_the_rule(base, split, tmp_path: Path):
    from safetensors.numpy import load_file

    from clbias.train import train
    from clbias.train.interpolate import choose_ratio, interpolate, pick
    from clbias.train.data import read_triplets

    data, val = split
    train(data, tmp_path / "run", base, TrainConfig(**{**SMALL, "batch_size": 2, "steps": 3, "save_every": 3}))
    half = interpolate(base, tmp_path / "run", 0.5, tmp_path / "half")
    a = load_file(str(base.hf_dir / "model.safetensors"))
    b = load_file(str(tmp_path / "run" / "model.safetensors"))
    m = load_file(str(half / "model.safetensors"))
    key = next(k for k in b if "encoder" in k and not np.allclose(a[k], b[k]))
    np.testing.assert_allclose(m[key], (a[key] + b[key]) / 2, rtol=1e-5, atol=1e-6)
    assert json.loads((half / "clbias.json").read_text())["interpolation"]["ratio"] == 0.5
    with pytest.raises(InputError, match="refusing to replace"):
        interpolate(base, tmp_path / "run", 0.5, half)
    picked, rows = choose_ratio(base, tmp_path / "run", read_triplets(val), margin=100.0)
    assert [r["ratio"] for r in rows] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert picked == min(rows[1:], key=lambda r: (round(r[TWIN_DEV], 6), -r[MULTI]))["ratio"]
    # the rule on hand-made rows: the non-inferior ratio closest to neutral wins; none eligible -> None
    rows = [{"ratio": 0.0, MONO: 50.0, MULTI: 60.0, TWIN_DEV: 45.0},
            {"ratio": 0.5, MONO: 49.5, MULTI: 70.0, TWIN_DEV: 20.0},
            {"ratio": 1.0, MONO: 47.0, MULTI: 80.0, TWIN_DEV: 5.0}]
    assert pick(rows, 1.0) == 0.5 and pick(rows, 5.0) == 1.0
    assert pick([rows[0], {**rows[2], MONO: 10.0}], 1.0) is None


def test_interpolate_cli_checks_before_work(base, split, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from clbias.cli import main

    for argv, message in ((["--ratio", "1.5"], "between 0 and 1"), (["--ratio", "x"], "expected auto or a number"),
                          (["--ratio", "auto"], "needs --val-data")):
        code = main(["train", "interpolate", "--base", str(base.hf_dir), "--trained", str(tmp_path / "missing"),
                     *argv, "--out", str(tmp_path / "o"), "--query-prefix", "query: ", "--passage-prefix", "passage: "])
        err = capsys.readouterr().err.strip()
        assert code == 2 and message in err and "\n" not in err, err
    assert not (tmp_path / "o").exists()


def test_mono_control_trains_only_the_same_language_term(base, split, tmp_path: Path):
    from clbias.train import train

    config = TrainConfig(**{**SMALL, "batch_size": 2, "steps": 2, "save_every": 2}, loss="mono")
    assert config.weights() == {"mono": 1.0}
    train(split[0], tmp_path / "mono", base, config)
    log = [json.loads(line) for line in (tmp_path / "mono" / "training" / "log.jsonl").read_text().splitlines()]
    assert set(log[0]) == {"step", "mono", "loss", "lr"} and log[0]["loss"] == pytest.approx(log[0]["mono"])


def test_query_recipe_sets_a_query_weight_between_0_1_and_0_5():
    from clbias.cli import parser
    from clbias.cli.train import config_from_args

    args = parser().parse_args(["train", "--base", "b", "--data", "d", "--out", "o", "--recipe", "query"])
    config = config_from_args(args)
    assert 0.1 <= config.query_weight <= 0.5 and config.mono_weight == 0 and config.loss == "jsd+nce"
