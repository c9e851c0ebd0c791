"""`clbias train data --from MANPAGES_DIR` on a tiny hand-written man-page-shaped probe set (issue 15, item 1)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from clbias.cli import main
from clbias.errors import InputError
from clbias.train import build_triplets, read_triplets

TRAIN_LANGS = ("de", "fr", "ja", "ru", "es", "pl")
PAGES = ["cp.1", "mv.1", "rm.1", "mkdir.1", "chmod.1", "getgrent.3", "printf.3", "crontab.5"]
EVAL_PAGES = ["ls.1", "cat.1"]


def jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def manpages_dir(root: Path, extra_train: list[dict] | None = None) -> Path:
    """As the man-page builder writes it: pages by name.section, queries q-<page>-<lang> with parallel_id
    q-<page>, qrels/test.tsv; train.jsonl units {parallel_id, texts, queries}. Page mkdir.1 has no German
    NAME line (no q_tgt), chmod.1 no Japanese page; uk and zh are evaluation-only."""
    root.mkdir(parents=True)
    docs, queries, qrels = [], [], []
    for page in EVAL_PAGES:
        for lang in ("en", "de", "uk"):
            docs.append({"_id": f"{page}-{lang}", "text": f"{page} description in {lang}", "lang": lang,
                         "parallel_id": page})
            queries.append({"_id": f"q-{page}-{lang}", "text": f"{page} summary {lang}", "lang": lang,
                            "parallel_id": f"q-{page}"})
            qrels += [f"q-{page}-{lang}\t{page}-{other}\t1" for other in ("en", "de", "uk")]
    jsonl(root / "corpus.jsonl", docs)
    jsonl(root / "queries.jsonl", queries)
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(qrels) + "\n", encoding="utf-8")
    units = []
    for page in PAGES:
        langs = [lang for lang in ("en",) + TRAIN_LANGS if not (page == "chmod.1" and lang == "ja")]
        texts = {lang: f"The {page} page, DESCRIPTION in {lang}." for lang in langs}
        names = {lang: f"{page} one-line summary ({lang})" for lang in langs if not (page == "mkdir.1" and lang == "de")}
        units.append({"parallel_id": page, "texts": texts, "queries": names})
    jsonl(root / "train.jsonl", units + (extra_train or []))
    return root


def test_triplets_come_from_training_pages_only_with_target_queries_and_a_held_out_language(tmp_path: Path):
    root = manpages_dir(tmp_path / "man")
    triplets, summary = build_triplets(root, n=30, seed=0, hold_out=["pl"])
    langs = {t["lang"] for t in triplets}
    assert langs == {"de", "fr", "ja", "ru", "es"} and summary["held_out"] == ["pl"]  # >= 5 languages, pl out
    assert {t["parallel_id"] for t in triplets} <= set(PAGES)
    assert not any("(pl)" in text or " in pl." in text for t in triplets for text in t.values())
    for t in triplets:
        assert t["p_tgt"] == f"The {t['parallel_id']} page, DESCRIPTION in {t['lang']}."
        assert t["q_en"] == f"{t['parallel_id']} one-line summary (en)"
        if (t["parallel_id"], t["lang"]) == ("mkdir.1", "de"):
            assert "q_tgt" not in t
        else:
            assert t["q_tgt"] == f"{t['parallel_id']} one-line summary ({t['lang']})"
    assert summary["with_q_tgt"] == sum("q_tgt" in t for t in triplets)
    assert len({(t["parallel_id"], t["lang"]) for t in triplets}) == len(triplets) == 30
    assert ("chmod.1", "ja") not in {(t["parallel_id"], t["lang"]) for t in triplets}


def test_cli_writes_triplets_that_train_reads_with_q_tgt(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    root = manpages_dir(tmp_path / "man")
    out = tmp_path / "triplets.jsonl"
    assert main(["train", "data", "--from", str(root), "--hold-out", "pl", "--n", "20", "--out", str(out)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "20 triplets" in err and "held out: pl" in err and "with a target query" in err
    rows = read_triplets(out)
    assert len(rows) == 20 and "pl" not in {t.lang for t in rows}
    assert any(t.q_tgt for t in rows) and all(t.q_tgt is None or t.lang in t.q_tgt for t in rows)


@pytest.mark.parametrize("args, words", [
    (["--langs", "de,uk"], ["'uk'", "no training unit"]),  # uk is evaluation-only
    (["--hold-out", "zh"], ["held-out language 'zh'", "no training unit"]),
    (["--hold-out", "de", "--langs", "de,fr"], ["both in --langs and held out"]),
    (["--hold-out", "en"], ["cannot be held out"]),
    (["--hold-out", "xx"], ["unknown language code 'xx'"]),
])
def test_absent_or_contradictory_languages_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               args: list[str], words: list[str]):
    root = manpages_dir(tmp_path / "man")
    out = tmp_path / "t.jsonl"
    assert main(["train", "data", "--from", str(root), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("clbias: error:"), err
    assert all(w in err for w in words), err
    assert not out.exists()


def test_a_training_set_overlapping_the_evaluation_pages_is_refused_naming_the_first_shared_page(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    leaked = [{"parallel_id": page, "texts": {"en": "x", "de": "y"}, "queries": {"en": "z"}}
              for page in ("cat.1", "ls.1")]  # file order: cat.1 first
    root = manpages_dir(tmp_path / "man", extra_train=leaked)
    with pytest.raises(InputError, match="'cat.1'.*leak") as info:
        build_triplets(root)
    assert (info.value.line, info.value.field) == (len(PAGES) + 1, "parallel_id")
    out = tmp_path / "t.jsonl"
    assert main(["train", "data", "--from", str(root), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cat.1" in err and "ls.1" not in err.replace("cat.1", "")
    assert not out.exists()
