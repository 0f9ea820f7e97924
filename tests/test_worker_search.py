"""The worker's ``search`` and ``open_trial`` jobs (issue 15), driven through the worker's own
protocol (``engine.service.worker.Worker`` in this process: its JSON lines are read back) on
the demo with a real search of one trial (the space restricted to a cheap corner through
``FEATHERWEIGHT_SEARCH_SPACE``)."""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path
from typing import Any

import pytest

from engine.pipeline.search import SEARCH_FILE, SPACE_ENV, read_search
from engine.service.worker import Worker

# Conversion only: one trial = a dynamic-range conversion + measuring (no training).
CONVERT_ONLY = {
    "width": [None], "filters": [0.0], "sparsity": [0.0], "clusters": [0], "qat": [False],
    "teacher_guided": [False], "format": ["dynamic"],
}  # fmt: skip
# Every trial trains (pruning, 4 epochs: over 10 s here): a Stop lands inside a trial.
TRAINING = {
    **CONVERT_ONLY, "sparsity": [0.5], "epochs": [4], "allocation": ["uniform"], "format": ["int8"],
}  # fmt: skip
DATA = {"model": "demo", "data": "demo", "scale": "auto", "split_seed": 0, "val_fraction": 0.1}


class _Lines:
    """The worker's stdout: every line must be one protocol JSON object."""

    def __init__(self) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self.events.put(json.loads(line))
        return len(text)

    def flush(self) -> None:
        pass


class _Client:
    def __init__(self) -> None:
        self.out = _Lines()
        self.worker = Worker(self.out)  # type: ignore[arg-type]
        self.worker.warm_up()
        assert self.out.events.get_nowait()["type"] == "ready"

    def run(self, job_id: str, job: str, params: dict[str, Any], on_event: Any = None,
            timeout: float = 120.0) -> tuple[dict[str, Any], list[dict[str, Any]]]:  # fmt: skip
        self.worker.submit(job_id, job, params)
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                ev = self.out.events.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"timed out; last events: {seen[-5:]}") from None
            assert ev["v"] == 1
            seen.append(ev)
            if on_event is not None:
                on_event(ev)
            if ev.get("id") == job_id and ev["type"] in ("result", "error", "cancelled"):
                return ev, seen


@pytest.fixture(scope="module")
def client() -> _Client:
    return _Client()


@pytest.fixture(scope="module")
def one_trial(client: _Client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("search") / "study"
    mp = pytest.MonkeyPatch()
    mp.setenv(SPACE_ENV, json.dumps(CONVERT_ONLY))
    try:
        params = {**DATA, "budget": 5.0, "objective": "gzip", "time_s": 120, "trials": 1,
                  "seed": 0, "out": str(out)}  # fmt: skip
        final, seen = client.run("s1", "search", params)
    finally:
        mp.undo()
    return {"out": out, "final": final, "seen": seen}


def test_search_job_streams_trials_and_returns_the_document(one_trial: dict[str, Any]) -> None:
    final, seen, out = one_trial["final"], one_trial["seen"], one_trial["out"]
    assert final["type"] == "result", final
    doc = final["result"]
    assert doc["kind"] == "featherweight-search"
    assert doc["stopped"] in ("trials", "exhausted")  # one trial; the space has one point
    assert doc == read_search(out / SEARCH_FILE)  # the document the folder holds
    assert [t["state"] for t in doc["trials"]] == ["complete"]
    trial = doc["trials"][0]
    assert trial["feasible"] and trial["tflite_gzip_bytes"] < doc["baseline"]["tflite_gzip_bytes"]
    assert (out / "study.journal").is_file() and (out / trial["folder"] / "model.tflite").is_file()
    assert doc["best"]["trial"] == 0 and (out / "best" / "model.tflite").is_file()

    trial_events = [e for e in seen if e["type"] == "trial"]
    assert [(e["number"], e["state"]) for e in trial_events] == [(0, "running"), (0, "complete")]
    end = trial_events[-1]
    assert end["values"]["tflite_gzip_bytes"] == trial["tflite_gzip_bytes"]
    assert end["feasible"] is True and end["recipe"] == trial["recipe"]
    searches = [e for e in seen if e["type"] == "search"]
    assert len(searches) >= 2 and searches[-1]["trials_done"] == 1
    assert searches[-1]["best"] == 0 and searches[-1]["objective"] == "gzip"
    assert all(e["id"] == "s1" for e in seen if e["type"] not in ("ready",))


def test_open_trial_job_makes_a_run_measured_on_test(
    client: _Client, one_trial: dict[str, Any], tmp_path: Path
) -> None:
    run_dir = tmp_path / "runs" / "run-001"
    params = {**DATA, "search_dir": str(one_trial["out"]), "trial": 0, "out": str(run_dir)}
    final, seen = client.run("o1", "open_trial", params)
    assert final["type"] == "result", final
    metrics = final["result"]
    assert metrics == json.loads((run_dir / "metrics.json").read_text())
    assert metrics["search"]["trial"] == 0
    assert 0.5 < metrics["compressed"]["accuracy"] <= 1.0  # the test split, like compress
    assert metrics["baseline"]["accuracy"] == one_trial["final"]["result"]["baseline"]["accuracy"]
    assert (run_dir / "model.tflite").is_file() and (run_dir / "recipe.json").is_file()
    assert any(e["type"] == "stage" for e in seen)


def test_stop_returns_the_document(
    client: _Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SPACE_ENV, json.dumps(TRAINING))
    out = tmp_path / "study"
    params = {**DATA, "budget": 1.0, "objective": "flash", "time_s": 300, "trials": 5,
              "out": str(out)}  # fmt: skip
    stopped: list[dict[str, Any]] = []

    def stop_inside_the_first_trial(ev: dict[str, Any]) -> None:
        if ev["type"] == "trial" and ev["state"] == "running" and not stopped:
            stopped.append(ev)
            client.worker.cancel("s2")  # what the GUI's Stop sends

    t0 = time.monotonic()
    final, seen = client.run("s2", "search", params, on_event=stop_inside_the_first_trial)
    assert stopped, "no trial started"
    assert final["type"] == "result", final  # Stop is not an error
    doc = final["result"]
    assert doc["stopped"] == "user" and doc == read_search(out / SEARCH_FILE)
    assert not [t for t in doc["trials"] if t["state"] == "complete"]
    assert doc["best"] is None
    assert time.monotonic() - t0 < 60


NOWHERE = "/nonexistent/featherweight"


@pytest.mark.parametrize(
    ("job", "params", "message"),
    [
        ("search", {"budget": 1.0, "objective": "size", "out": NOWHERE}, "objective"),
        ("search", {"objective": "gzip", "out": NOWHERE}, "missing parameter 'budget'"),
        ("search", {"budget": "lots", "objective": "gzip", "out": NOWHERE}, "budget"),
        ("open_trial", {"search_dir": NOWHERE, "trial": 0, "out": NOWHERE}, "not found"),
        ("open_trial", {"search_dir": "/", "trial": 1.5, "out": NOWHERE}, "whole number"),
    ],
)
def test_bad_input_is_one_line(
    client: _Client, job: str, params: dict[str, Any], message: str
) -> None:
    final, _ = client.run("bad", job, {**DATA, **params})
    assert final["type"] == "error" and final["kind"] == "bad_input", final
    assert message in final["message"] and "\n" not in final["message"]


def test_open_trial_of_an_unknown_trial(client: _Client, one_trial: dict[str, Any]) -> None:
    params = {**DATA, "search_dir": str(one_trial["out"]), "trial": 7, "out": "unused"}
    final, _ = client.run("o2", "open_trial", params)
    assert final["type"] == "error" and final["kind"] == "bad_input", final
    assert "trial 7" in final["message"]
