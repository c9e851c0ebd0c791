"""`clbias audit --shift`: the shifted variant sits beside the model; English-only scenarios do not move."""
import json
import shutil
from pathlib import Path

from clbias.cli import main
from corpus_factory import parallel_corpus
from test_shift import pairs_file


def test_audit_with_shift_adds_a_variant_that_changes_only_mixed_language_pools(tiny_model_dir, tmp_path: Path):
    model = tmp_path / "tiny"
    shutil.copytree(tiny_model_dir, model)
    assert main(["shift", "fit", "--model", str(model), "--pairs", str(pairs_file(tmp_path / "pairs.jsonl")),
                 "--min-pairs", "3", "--no-cache"]) == 0
    out = tmp_path / "r.json"
    assert main(["audit", str(parallel_corpus(tmp_path / "c")), "--model", str(model), "--shift", "--no-cache",
                 "--quiet", "--bootstrap", "50", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    names = [m["name"] for m in report["models"]]
    assert names == ["tiny", "tiny+shift"] and report["models"][1]["shift"]["langs"] == ["de"]
    by_name = {s["name"]: s for s in report["scenarios"]}
    en_only = by_name["mono-same [en] q=en"]["by_model"]
    assert en_only["tiny"]["metrics"] == en_only["tiny+shift"]["metrics"]  # English documents are not shifted
    multi = by_name["multi [en+de] q=de"]
    assert multi["comparisons"][0]["other"] == "tiny+shift"


def test_audit_with_shift_but_none_fitted_says_so(tiny_model_dir, tmp_path: Path, capsys):
    assert main(["audit", str(parallel_corpus(tmp_path / "c")), "--model", str(tiny_model_dir), "--shift",
                 "--no-cache", "--bootstrap", "20", "--scenario", "multi"]) == 0
    assert "no shift fitted" in capsys.readouterr().out
