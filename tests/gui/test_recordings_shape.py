"""The fast GUI tests replay recorded engine events (tests/gui/recordings, played by
fake_worker.py). This test runs small jobs through the REAL worker and fails when the
engine's output no longer has the recordings' shape: the set of event types, the keys of
each event type (recursively, with value types) and the result's key structure. When it
fails, the recordings are stale: run ``python tests/gui/record_events.py``.

Shapes, not values: numbers are "number" (int or float), an empty list matches any list,
and a list's shape is the set of its elements' shapes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.gui.record_events import RECORDINGS, SPLIT, recorded_jobs, run_jobs

# One quick epoch of pruning (so training events — progress, metric — are checked too) and
# an int8 conversion calibrated on a few samples: the same step types and mode as the
# recorded prune + int8 job, so the result has the same keys (an int8 result carries the
# int8 check, ``compressed.int8_check``, which other modes leave null).
TINY_RECIPE = {
    "schema_version": 1,
    "name": "shape-check",
    "seed": 0,
    "batch_size": 32,
    "steps": [
        {"type": "prune", "target_sparsity": 0.5, "epochs": 1},
        {"type": "quantize", "mode": "int8", "calibration_samples": 32},
    ],
}


def shape(value: Any) -> Any:
    """The structure of a JSON value: dict keys (sorted) with their shapes, value types."""
    if isinstance(value, dict):
        return {str(k): shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return ["list", sorted({json.dumps(shape(v), sort_keys=True) for v in value})]
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def differences(got: Any, want: Any, path: str = "") -> list[str]:
    """Where shape ``got`` differs from shape ``want`` (one line each)."""
    if isinstance(got, dict) and isinstance(want, dict):
        out = [f"{path}.{k}: new key" for k in sorted(set(got) - set(want))]
        out += [f"{path}.{k}: key gone" for k in sorted(set(want) - set(got))]
        for k in sorted(set(got) & set(want)):
            out += differences(got[k], want[k], f"{path}.{k}")
        return out
    is_list = isinstance(got, list) and isinstance(want, list) and got[:1] == want[:1] == ["list"]
    if is_list:
        if not got[1] or not want[1] or got[1] == want[1]:
            return []
        if len(got[1]) == len(want[1]) == 1:
            return differences(json.loads(got[1][0]), json.loads(want[1][0]), f"{path}[]")
        return [f"{path}[]: elements {got[1]} != {want[1]}"]
    return [] if got == want else [f"{path or '(value)'}: {got} != {want}"]


def by_type(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Event type -> the merged shape of its events (keys of all of them)."""
    merged: dict[str, dict[str, Any]] = {}
    for ev in events:
        merged.setdefault(ev["type"], {}).update(shape(ev))
    return merged


def recorded(job: str) -> list[dict[str, Any]]:
    lines = (RECORDINGS / f"{job}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_differences_sees_a_renamed_key_and_a_changed_type():
    """The comparison itself can fail (a guard against a test that cannot)."""
    want = shape({"a": 1, "b": {"c": "x", "d": [1.5]}, "e": []})
    assert differences(shape({"a": 2.5, "b": {"c": "y", "d": [3]}, "e": ["z"]}), want) == []
    assert differences(shape({"a": 1, "b": {"c": 1, "d": [1]}, "e": []}), want) == [
        ".b.c: number != str"
    ]
    assert differences(shape({"a": 1, "b": {"c": "x", "dd": [1]}, "e": []}), want) == [
        ".b.dd: new key",
        ".b.d: key gone",
    ]
    assert differences(shape({"a": 1, "b": {"c": "x", "d": [{"k": 1}]}, "e": []}), want)


@pytest.fixture(scope="module")
def real_events(tmp_path_factory) -> dict[str, list[dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("shape")
    inspect, _cd, _bl, compress = recorded_jobs(tmp / "unused")
    compress = ("compress", {**compress[1], "recipe": TINY_RECIPE, "out": str(tmp / "run")})
    assert compress[1]["split_seed"] == SPLIT["split_seed"]  # the GUI's parameters
    answers = run_jobs([inspect, compress], tmp / "cache")
    for (job, _p), events in zip([inspect, compress], answers):
        assert events[-1]["type"] == "result", f"{job} failed in the real worker: {events[-1]}"
    return {"inspect": answers[0], "compress": answers[1]}


@pytest.mark.parametrize("job", ["inspect", "compress"])
def test_real_engine_events_have_the_recordings_shape(real_events, job):
    got, want = by_type(real_events[job]), by_type(recorded(job))
    hint = "the recordings are stale: run `python tests/gui/record_events.py`"
    assert sorted(got) == sorted(want), f"{job}: event types differ; {hint}"
    problems = []
    for etype in sorted(want):
        problems += differences(got[etype], want[etype], f"{job} {etype} event")
    assert not problems, f"{hint}:\n" + "\n".join(problems)


def test_the_recorded_compress_job_sends_the_dataset_split():
    """The recordings were made with the parameters the GUI sends (the dataset's split)."""
    params = dict(recorded_jobs(Path("out"))[3][1])
    assert {k: params[k] for k in SPLIT} == SPLIT
    result = next(e["result"] for e in recorded("compress") if e["type"] == "result")
    assert result["data"]["seed"] == SPLIT["split_seed"]
    assert result["data"]["val_fraction"] == SPLIT["val_fraction"]
