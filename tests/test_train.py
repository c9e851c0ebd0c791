"""Alignment training on the tiny model: loss maths, data, determinism, resume, export + audit, errors."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from clbias.cli import main
from clbias.errors import InputError, ModelError
from clbias.train import TrainConfig, build_triplets, read_triplets, resolve_base
from clbias.train.data import evaluation_units, read_units
from corpus_factory import parallel_corpus, write_corpus

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

# (English passage, English query, German passage, French passage)
UNITS = [
    ("The cat sleeps on the warm windowsill.", "where does the cat sleep",
     "Die Katze schläft auf der warmen Fensterbank.", "Le chat dort sur le rebord chaud."),
    ("Trains to the airport leave every hour.", "how often do airport trains leave",
     "Züge zum Flughafen fahren jede Stunde.", "Les trains pour l'aéroport partent chaque heure."),
    ("Fresh bread is baked in the village every morning.", "when is bread baked",
     "Im Dorf wird jeden Morgen frisches Brot gebacken.", "Le pain frais est cuit au village chaque matin."),
    ("The river floods the meadows every spring.", "what floods in spring",
     "Der Fluss überschwemmt jeden Frühling die Wiesen.", "La rivière inonde les prés chaque printemps."),
    ("Paris is the capital of France.", "what is the capital of France",
     "Paris ist die Hauptstadt von Frankreich.", "Paris est la capitale de la France."),
    ("Mount Everest is the highest mountain.", "which mountain is the highest",
     "Der Mount Everest ist der höchste Berg.", "L'Everest est la plus haute montagne."),
    ("A woman should eat protein every day.", "how much protein should a woman eat",
     "Eine Frau sollte jeden Tag Eiweiß essen.", "Une femme doit manger des protéines chaque jour."),
    ("The museum shows old paintings.", "what does the museum show",
     "Das Museum zeigt alte Gemälde.", "Le musée expose de vieux tableaux."),
    ("The child ate an apple and drank juice.", "what did the child eat",
     "Das Kind aß einen Apfel und trank Saft.", "L'enfant a mangé une pomme et bu du jus."),
    ("Light turns into chemical energy in leaves.", "what happens to light in leaves",
     "Licht wird in Blättern zu chemischer Energie.", "La lumière devient énergie chimique dans les feuilles."),
    ("The bridge leads to the station.", "where does the bridge lead",
     "Die Brücke führt zum Bahnhof.", "Le pont mène à la gare."),
    ("Helsinki is the capital of Finland.", "what is the capital of Finland",
     "Helsinki ist die Hauptstadt Finnlands.", "Helsinki est la capitale de la Finlande."),
]
PREFIXES = ("query: ", "passage: ")
# The tiny model's random word embeddings are its only lexical signal: they train here (default: frozen).
SMALL = dict(batch_size=4, steps=6, lr=5e-3, warmup=0.0, save_every=3, max_length=64, freeze_embeddings=False)


def triplet_rows() -> list[dict[str, str]]:
    return [{"q_en": q, "p_en": en, "p_tgt": tgt, "lang": lang, "parallel_id": f"u{i}"}
            for i, (en, q, de, fr) in enumerate(UNITS) for lang, tgt in (("de", de), ("fr", fr))]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def load_weights(model_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(model_dir / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = load_weights(a), load_weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)


@pytest.fixture(scope="module")
def triplets_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "triplets.jsonl", triplet_rows())


@pytest.fixture(scope="module")
def base(tiny_hf_dir: Path):
    return resolve_base(tiny_hf_dir, *PREFIXES)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, base, triplets_file: Path) -> Path:
    from clbias.train import train

    out = tmp_path_factory.mktemp("runs") / "aligned"
    result = train(triplets_file, out, base, TrainConfig(**SMALL))
    assert (result.step, result.total_steps, result.resumed_from) == (6, 6, 0)
    return out


# --------------------------------------------------------------------------- loss maths


def test_sqrt_jsd_of_identical_inputs_is_sqrt_eps():
    from clbias.train.losses import sqrt_jsd

    x = torch.randn(5, 16)
    assert sqrt_jsd(x, x.clone(), eps=1e-8).item() == pytest.approx(1e-4, abs=1e-6)


def test_sqrt_jsd_is_symmetric_and_bounded():
    from clbias.train.losses import sqrt_jsd

    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(8, 32, generator=gen) * 3, torch.randn(8, 32, generator=gen) * 3
    assert sqrt_jsd(a, b).item() == pytest.approx(sqrt_jsd(b, a).item(), rel=1e-6)
    disjoint_a = torch.tensor([[60.0, 0.0, 0.0, 0.0]])
    disjoint_b = torch.tensor([[0.0, 60.0, 0.0, 0.0]])
    top = sqrt_jsd(disjoint_a, disjoint_b).item()
    assert top == pytest.approx(math.sqrt(math.log(2) + 1e-8), rel=1e-5)
    assert 0 < sqrt_jsd(a, b).item() <= math.sqrt(math.log(2) + 1e-8)


def test_sqrt_jsd_gradient_is_finite_at_equality():
    from clbias.train.losses import sqrt_jsd

    x = torch.randn(3, 8, requires_grad=True)
    sqrt_jsd(x, x.detach().clone()).backward()
    assert torch.isfinite(x.grad).all()


def test_info_nce_matches_a_hand_computed_3x3_case():
    from clbias.train.losses import info_nce

    anchors = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    candidates = np.array([[1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    tau = 0.5
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    logits = unit(anchors) @ unit(candidates).T / tau
    # row i: -log(exp(l_ii) / sum_j exp(l_ij)), averaged
    expected = np.mean([-(logits[i, i] - np.log(np.exp(logits[i]).sum())) for i in range(3)])
    got = info_nce(torch.tensor(anchors), torch.tensor(candidates), tau).item()
    assert got == pytest.approx(expected, rel=1e-6)
    # row 0's negatives shrink to row 1 when candidate 2 is marked as a copy of its positive
    same = torch.tensor([[True, False, True], [False, True, False], [True, False, True]])
    masked = info_nce(torch.tensor(anchors), torch.tensor(candidates), tau, same).item()
    rows = [-(logits[0, 0] - np.log(np.exp(logits[0, [0, 1]]).sum())),
            -(logits[1, 1] - np.log(np.exp(logits[1]).sum())),
            -(logits[2, 2] - np.log(np.exp(logits[2, [1, 2]]).sum()))]
    assert masked == pytest.approx(np.mean(rows), rel=1e-6)


def test_config_refuses_bad_values():
    with pytest.raises(InputError, match="loss"):
        TrainConfig(loss="mse")
    with pytest.raises(InputError, match="tau"):
        TrainConfig(tau=0)
    assert TrainConfig().loss == "jsd+nce" and TrainConfig().jsd_input == "raw"


# --------------------------------------------------------------------------- training


def test_a_few_steps_lower_the_loss(trained: Path, base, triplets_file: Path):
    from clbias.train import evaluate

    triplets = read_triplets(triplets_file)
    config = TrainConfig(**SMALL)
    before = evaluate(base.hf_dir, triplets, base, config)
    after = evaluate(trained, triplets, base, config)
    assert set(before) == {"jsd", "nce", "loss"}
    assert after["loss"] < before["loss"]
    assert after["nce"] < before["nce"]


def test_same_seed_gives_identical_weights(trained: Path, base, triplets_file: Path, tmp_path: Path):
    from clbias.train import train

    train(triplets_file, tmp_path / "again", base, TrainConfig(**SMALL))
    assert_same_weights(trained, tmp_path / "again")
    other = train(triplets_file, tmp_path / "seed1", base, TrainConfig(**{**SMALL, "seed": 1}))
    assert other.step == 6
    assert any(not np.array_equal(a, b) for a, b in zip(load_weights(trained).values(),
                                                         load_weights(tmp_path / "seed1").values()))


def test_checkpoint_is_an_exportable_model_dir(trained: Path):
    note = json.loads((trained / "clbias.json").read_text())
    assert note["prefixes"] == {"query": "query: ", "passage": "passage: "}
    assert note["step"] == note["total_steps"] == 6 and note["complete"]
    assert note["config"]["loss"] == "jsd+nce"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "training/state.pt", "training/log.jsonl"):
        assert (trained / name).is_file(), name
    log = [json.loads(line) for line in (trained / "training/log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [1, 2, 3, 4, 5, 6]
    assert {"jsd", "nce", "loss", "lr"} <= set(log[0])
    assert not list(trained.parent.glob(".aligned.partial-*"))


def test_trained_model_exports_and_audits(trained: Path, tmp_path: Path):
    pytest.importorskip("optimum.exporters.onnx")
    from clbias.api import audit_corpus
    from clbias.cli.export import guess_prefixes
    from clbias.export import export_model
    from clbias.runtime.manifest import load_manifest

    exported = export_model(trained, "tiny-aligned", tmp_path / "exported", prefixes=guess_prefixes(str(trained)))
    manifest = load_manifest(exported)
    assert (manifest.prefixes.query, manifest.prefixes.passage) == PREFIXES
    report = audit_corpus(parallel_corpus(tmp_path / "corpus"), [exported], scenarios=["multi"], bootstrap=20)
    data = report.to_json()
    assert data["model"]["sha256"] == manifest.sha256
    assert {s["query_lang"] for s in data["scenarios"]} == {"en", "de"}
    assert all(s["metrics"]["max_r_norm"] is not None for s in data["scenarios"])


def test_resume_continues_from_the_saved_step(trained: Path, base, triplets_file: Path, tmp_path: Path):
    from clbias.train import train

    class Crash:
        def start(self, total: int, done: int) -> None:
            self.done = done

        def step(self, step: int, losses: dict[str, float]) -> None:
            if step == 4:
                raise KeyboardInterrupt

        def finish(self) -> None:
            pass

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(triplets_file, out, base, TrainConfig(**SMALL), progress=Crash())
    assert json.loads((out / "clbias.json").read_text())["step"] == 3
    with pytest.raises(InputError, match="--resume"):
        train(triplets_file, out, base, TrainConfig(**SMALL))
    with pytest.raises(InputError, match="lr"):
        train(triplets_file, out, base, TrainConfig(**{**SMALL, "lr": 5e-4}), resume=True)
    progress = Crash.__new__(Crash)
    progress.step = lambda step, losses: None  # type: ignore[method-assign]
    result = train(triplets_file, out, base, TrainConfig(**SMALL), resume=True, progress=progress)
    assert (progress.done, result.resumed_from, result.step) == (3, 3, 6)
    assert_same_weights(trained, out)  # interrupted + resumed == uninterrupted
    again = train(triplets_file, out, base, TrainConfig(**SMALL), resume=True)
    assert again.step == again.resumed_from == 6


def test_resume_without_a_checkpoint_and_foreign_out_dirs_are_refused(base, triplets_file: Path, tmp_path: Path):
    from clbias.train import train

    with pytest.raises(InputError, match="nothing to resume"):
        train(triplets_file, tmp_path / "none", base, TrainConfig(**SMALL), resume=True)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not an empty directory"):
        train(triplets_file, tmp_path / "busy", base, TrainConfig(**SMALL))
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"


def test_cli_trains_refuses_overwrite_and_warns_for_jsd_only(tiny_hf_dir: Path, triplets_file: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "cli-run"
    args = ["train", "--base", str(tiny_hf_dir), "--query-prefix", "query: ", "--passage-prefix", "passage: ",
            "--data", str(triplets_file), "--out", str(out), "--steps", "2", "--batch-size", "4", "--lr", "1e-3"]
    assert main(args + ["--loss", "nce-psg"]) == 0
    assert "next: clbias export" in " ".join(capsys.readouterr().err.split())
    assert json.loads((out / "clbias.json").read_text())["config"]["loss"] == "nce-psg"
    key = "embeddings.word_embeddings.weight"
    np.testing.assert_array_equal(load_weights(out)[key], load_weights(tiny_hf_dir)[key])  # frozen by default
    assert not np.array_equal(load_weights(out)["encoder.layer.0.output.dense.weight"],
                              load_weights(tiny_hf_dir)["encoder.layer.0.output.dense.weight"])
    assert main(args + ["--loss", "nce-psg"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("clbias: error:") and "--resume" in err and len(err.splitlines()) == 1
    assert main(args + ["--loss", "nce-psg", "--resume"]) == 0
    assert "already complete" in " ".join(capsys.readouterr().err.split())  # Rich wraps lines
    assert main(args[:-6] + ["--steps", "1", "--batch-size", "4", "--loss", "jsd", "--out", str(tmp_path / "j")]) == 0
    assert "collapses retrieval" in " ".join(capsys.readouterr().err.split())


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("lines, line, field", [
    (['{"q_en": "a b", "p_en": "c d", "p_tgt": "e f", "lang": "de"}', '{"q_en": "a", '], 2, None),
    (['{"q_en": "a b", "p_en": "c d", "lang": "de"}'], 1, "p_tgt"),
    (['{"q_en": "a b", "p_en": "c d", "p_tgt": "e f", "lang": "de"}',
      '{"q_en": "  ", "p_en": "c d", "p_tgt": "e f", "lang": "de"}'], 2, "q_en"),
    (['{"q_en": "a b", "p_en": "c d", "p_tgt": 3, "lang": "de"}'], 1, "p_tgt"),
    (['{"q_en": "a b", "p_en": "c d", "p_tgt": "e f", "lang": "xx"}'], 1, "lang"),
    (['{"q_en": "a b", "p_en": "c d", "p_tgt": "e f", "lang": "en"}'], 1, "lang"),
])
def test_bad_triplet_files_are_located(tmp_path: Path, lines: list[str], line: int, field: str | None):
    path = write_jsonl(tmp_path / "bad.jsonl", lines)
    with pytest.raises(InputError) as info:
        read_triplets(path)
    assert (info.value.path, info.value.line, info.value.field) == (str(path), line, field)
    assert "\n" not in str(info.value)


def test_a_language_the_tokenizer_cannot_read_is_refused(base, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]):
    from clbias.train import train

    rows = triplet_rows()[:6] + [{"q_en": "what is the capital", "p_en": "Tbilisi is the capital.",
                                  "p_tgt": "თბილისი საქართველოს დედაქალაქია.", "lang": "ka"}] * 4
    path = write_jsonl(tmp_path / "ka.jsonl", rows)
    with pytest.raises(InputError, match=r"language 'ka'.*<unk>") as info:
        train(path, tmp_path / "out", base, TrainConfig(**SMALL))
    assert info.value.line == 7 and "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_a_base_without_manifest_is_one_line_error(tiny_hf_dir: Path, triplets_file: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("CLBIAS_EXPORTED", str(tmp_path / "exported"))
    with pytest.raises(ModelError, match="no clbias.json manifest"):
        resolve_base(tiny_hf_dir)
    code = main(["train", "--base", str(tiny_hf_dir), "--data", str(triplets_file), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--query-prefix" in err
    monkeypatch.setenv("CLBIAS_MODELS", str(tmp_path))
    with pytest.raises(ModelError, match="not found"):
        resolve_base("multilingual-e5-small")


def test_base_contract_comes_from_a_manifest(trained: Path, tiny_hf_dir: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch):
    again = resolve_base(trained)  # an aligned model's own note: train it further
    assert (again.prefixes.query, again.prefixes.passage) == PREFIXES
    models, exported = tmp_path / "models", tmp_path / "exported"
    shutil.copytree(tiny_hf_dir, models / "tiny")
    (exported / "tiny").mkdir(parents=True)
    (exported / "tiny" / "clbias.json").write_text(json.dumps({
        "schema": "clbias.model/1", "name": "tiny", "files": {}, "onnx": "model.onnx", "pooling": "mean",
        "prefixes": {"query": "q> ", "passage": "p> "}, "max_length": 96,
        "source": {"hf_dir": str(models / "tiny")}}))
    monkeypatch.setenv("CLBIAS_MODELS", str(models))
    monkeypatch.setenv("CLBIAS_EXPORTED", str(exported))
    by_name = resolve_base("tiny")
    assert (by_name.prefixes.query, by_name.prefixes.passage, by_name.max_length) == ("q> ", "p> ", 96)
    assert resolve_base("tiny", query_prefix="").prefixes == type(by_name.prefixes)("", "p> ")
    assert resolve_base(models / "tiny").prefixes == by_name.prefixes  # the export names this dir as its source
    shutil.copytree(tiny_hf_dir, tmp_path / "elsewhere" / "tiny")
    with pytest.raises(ModelError, match="no clbias.json"):
        resolve_base(tmp_path / "elsewhere" / "tiny")  # same name, but exported/tiny came from another dir


# --------------------------------------------------------------------------- training data builder


def probe_dir(root: Path, extra_train: list[dict] | None = None) -> Path:
    """An evaluation corpus of units e0..e2 and a train.jsonl of units t0..t19 (en, de, fr; ar on half)."""
    docs = [{"_id": f"e{i}-{lang}", "text": f"eval text {i} {lang}", "lang": lang, "parallel_id": f"e{i}"}
            for i in range(3) for lang in ("en", "de")]
    queries = [{"_id": f"q-e{i}-en", "text": f"eval question {i}", "lang": "en", "parallel_id": f"q-e{i}"}
               for i in range(3)]
    write_corpus(root, docs, queries, [(f"q-e{i}-en", f"e{i}-en", 1) for i in range(3)])
    units = []
    for i in range(20):
        texts = {"en": f"passage {i}", "de": f"Abschnitt {i}", "fr": f"passage fr {i}"}
        if i % 2 == 0:
            texts["ar"] = f"مقطع {i}"
        units.append({"parallel_id": f"t{i}", "texts": texts, "queries": {"en": f"question {i}", "de": f"Frage {i}"}})
    units.append({"parallel_id": "t-noquery", "texts": {"en": "x", "de": "y"}, "queries": {}})
    write_jsonl(root / "train.jsonl", units + (extra_train or []))
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq-t0-en\tt0-en\t1\n")  # as the Quran builder
    return root


def test_builder_balances_languages_and_never_uses_evaluation_units(tmp_path: Path):
    root = probe_dir(tmp_path / "probe")
    triplets, summary = build_triplets(root, "train", n=30, seed=3)
    assert len(triplets) == 30 and summary["per_lang"] == {"ar": 10, "de": 10, "fr": 10}
    eval_units = evaluation_units(root)
    assert {"e0", "e1", "e2", "q-e0"} <= eval_units
    assert not {t["parallel_id"] for t in triplets} & eval_units
    assert len({(t["parallel_id"], t["lang"]) for t in triplets}) == 30
    assert all(t["q_en"] == f"question {t['parallel_id'][1:]}" and t["p_en"] == f"passage {t['parallel_id'][1:]}"
               for t in triplets)
    assert "t-noquery" not in {t["parallel_id"] for t in triplets}
    assert build_triplets(root, "train", n=30, seed=3)[0] == triplets
    assert build_triplets(root, "train", n=30, seed=4)[0] != triplets
    small, _ = build_triplets(root, "train", langs=["de", "fr"], n=20, seed=0)
    assert len({t["parallel_id"] for t in small}) == 20  # enough units: none used twice
    many, summary = build_triplets(root, "train", langs=["ar"], n=50)
    assert len(many) == 10 and summary["short"] == {"ar": 40}


def test_builder_refuses_a_leaked_evaluation_unit(tmp_path: Path):
    root = probe_dir(tmp_path / "probe", [{"parallel_id": "e1", "texts": {"en": "a", "de": "b"},
                                           "queries": {"en": "c"}}])
    with pytest.raises(InputError, match="leak") as info:
        build_triplets(root)
    assert (info.value.line, info.value.field) == (22, "parallel_id")


def test_builder_reports_bad_units_with_location(tmp_path: Path):
    path = write_jsonl(tmp_path / "train.jsonl", [{"parallel_id": "a", "texts": {"en": "x", "zz": "y"}}])
    with pytest.raises(InputError, match="zz") as info:
        read_units(path)
    assert (info.value.line, info.value.field) == (1, "texts")
    with pytest.raises(InputError, match="train.jsonl"):
        build_triplets(tmp_path / "nowhere")


def test_cli_builds_triplets_that_train_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    root = probe_dir(tmp_path / "probe")
    out = tmp_path / "triplets.jsonl"
    assert main(["train", "data", "--from", str(root), "--out", str(out), "--n", "12", "--langs", "de,fr"]) == 0
    assert "12 triplets" in " ".join(capsys.readouterr().err.split())
    rows = read_triplets(out)
    assert len(rows) == 12 and {t.lang for t in rows} == {"de", "fr"}
