"""Report.to_json and the JSON text: the same data as dataclasses.asdict gives (rankings left out), with
long lists of plain values written on one line."""
from __future__ import annotations

import dataclasses
import json

from clbias.report.model import Report
from clbias.report.render_files import to_json_text

from report_factory import report, scenario


def sample(notes: list[str] | None = None) -> Report:
    s = scenario("multi", ["en", "de"], "de", {"m": {"max_r_norm": (50.0, [40.0, 60.0])}}, n=12)
    s.query_ids = [f"q{i}" for i in range(12)]
    s.by_model["m"].per_query = {"max_r_norm": [float(i) if i % 5 else None for i in range(12)]}
    s.by_model["m"].run = [("q0", ["d1", "d2"], [0.9, 0.8])]
    return report([s], ["en", "de"], notes=notes or ["one note"])


def reference(r: Report, per_query: bool = True) -> dict:
    data = json.loads(json.dumps(dataclasses.asdict(r)))
    for sc in data["scenarios"]:
        for scores in sc["by_model"].values():
            scores.pop("run")
            if not per_query:
                scores.pop("per_query")
    return {"schema": data.pop("schema"), "model": data["models"][0], **data}


def test_to_json_is_asdict_without_rankings():
    r = sample()
    assert json.loads(json.dumps(r.to_json())) == reference(r)
    assert json.loads(json.dumps(r.to_json(per_query=False))) == reference(r, per_query=False)


def test_json_text_parses_to_to_json_and_keeps_long_plain_lists_on_one_line():
    r = sample()
    text = to_json_text(r)
    assert json.loads(text) == json.loads(json.dumps(r.to_json()))
    lines = text.splitlines()
    assert any(line.strip().startswith('"max_r_norm": [null, 1.0, 2.0') for line in lines)
    assert any(line.strip().startswith('"query_ids": ["q0", "q1"') for line in lines)
    assert '"pool_langs": [\n' in text  # short lists stay indented as before


def test_a_user_string_that_looks_like_a_slot_is_written_verbatim():
    trap = "\x00clbias-list\x000\x00clbias-list\x00"
    r = sample(notes=[trap])
    data = json.loads(to_json_text(r))
    assert data["notes"] == [trap]
    assert data["scenarios"][0]["query_ids"][:2] == ["q0", "q1"]


def test_ranked_run_rows_are_the_heads_it_was_given():
    import numpy as np

    from clbias.report.model import RankedRun

    doc_ids = np.array(["a", "b", "c", "d"], dtype=object)
    top = np.array([[2, 0, 1], [3, 1, 0]])
    scores = np.array([[0.9, 0.5, 0.25], [0.75, 0.5, 0.0]], dtype=np.float32)
    run = RankedRun(["q1", "q2"], doc_ids, top, scores, np.array([3, 1]))
    rows = [("q1", ["c", "a", "b"], [0.8999999761581421, 0.5, 0.25]), ("q2", ["d"], [0.75])]
    assert len(run) == 2 and list(run) == rows and run == rows and run[1] == rows[1] and run[:1] == rows[:1]
    assert all(type(d) is str for d in run[0][1]) and all(type(x) is float for x in run[0][2])
