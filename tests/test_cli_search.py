"""``featherweight search``: exit codes 3 (no point within budget) and 2 (bad input, one
line), ``--json``. Exit 0 with the same command again: tests/test_search.py."""

from __future__ import annotations

import json
import subprocess
from functools import partial

import pytest

from tests import helpers

SPACE_ENV = "FEATHERWEIGHT_SEARCH_SPACE"
# Only lossy choices: 90 % sparsity in 4 epochs (about 5 points lost on validation: more
# than the 0 budget, less than the pruner's budget + 15 points), int8.
LOSSY = {
    "width": [None],
    "filters": [0.0],
    "sparsity": [0.9],
    "allocation": ["uniform"],
    "clusters": [0],
    "qat": [False],
    "teacher_guided": [False],
    "epochs": [4],
    "format": ["int8"],
    "sparse": [False],
}


fw = partial(helpers.fw, timeout=300)


def assert_one_line(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("featherweight: error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_no_point_within_a_zero_budget_exits_3(tmp_path, monkeypatch, capsys):
    from engine.cli import main

    monkeypatch.setenv(SPACE_ENV, json.dumps(LOSSY))
    out = tmp_path / "s"
    code = main(
        [
            "search",
            "demo",
            "--data",
            "demo",
            "--budget",
            "0",
            "--trials",
            "1",
            "--out",
            str(out),
            "--json",
            "--quiet",
        ]  # fmt: skip
    )
    printed = capsys.readouterr().out
    doc = json.loads(printed)
    assert code == 3, printed[-2000:]
    assert doc == json.loads((out / "search.json").read_text())
    (trial,) = doc["trials"]
    assert trial["state"] == "complete" and trial["val_drop"] > 0 and trial["feasible"] is False
    best = doc["best"]
    assert best["trial"] == 0 and best["within_budget"] is False and best["folder"] is None
    assert best["measured_on_test"] and best["drop_pts"] == pytest.approx(best["drop"] * 100)
    assert not (out / "best").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--objective", "size", "--time", "1m"], "--objective 'size' is not one of"),
        (["--time", "soon"], "time 'soon' is not a duration"),
        (["--time", "1m", "--budget", "lots"], "--budget 'lots' is not a number"),
        (["--time", "1m", "--budget", "-1"], "--budget -1 must be 0-100"),
        (["--trials", "0"], "--trials 0 must be 1 or more"),
        (["--trials", "2", "--sampler", "grid"], "--sampler 'grid' is not one of"),
        ([], "give a time budget"),
    ],
)
def test_bad_options_are_one_line(tmp_path, capsys, args, fragment):
    """Checked before the model loads (in-process: no TensorFlow work)."""
    from engine.cli import main

    code = main(["search", "demo", "--data", "demo", "--out", str(tmp_path / "s"), *args])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("featherweight: error:") and fragment in lines[0], lines[0]
    assert not (tmp_path / "s").exists()


def test_bad_model_is_one_line(tmp_path):
    result = fw(
        "search", str(tmp_path / "missing.keras"), "--data", "demo", "--time", "1m",
        "--out", str(tmp_path / "s"),
    )  # fmt: skip
    assert_one_line(result, "missing.keras")
    assert "Traceback" not in result.stderr
