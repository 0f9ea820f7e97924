"""The accuracy-budget search (engine.pipeline.search): a real 2-trial search on the demo,
resuming a killed search, prefix checkpoints, failed trials, the document and its text."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import prune_only_space

ROOT = Path(__file__).resolve().parent.parent
SPACE_ENV = "FEATHERWEIGHT_SEARCH_SPACE"
# A tiny space: both trials share the prune step (a checkpoint hit), 4 epochs each.
TWO_FORMATS = prune_only_space("int8", "float16")
# No training at all: each trial is one conversion (fast).
THREE_FORMATS = {**TWO_FORMATS, "sparsity": [0.0], "format": ["int8", "float16", "dynamic"]}


class _Space:
    """Set the search-space restriction for a block (session fixtures cannot monkeypatch)."""

    def __init__(self, space: dict) -> None:
        self.space = space

    def __enter__(self) -> None:
        self.old = os.environ.get(SPACE_ENV)
        os.environ[SPACE_ENV] = json.dumps(self.space)

    def __exit__(self, *exc: object) -> None:
        if self.old is None:
            os.environ.pop(SPACE_ENV, None)
        else:
            os.environ[SPACE_ENV] = self.old


@pytest.fixture(scope="session")
def prepared():
    from engine.pipeline.prepare import prepare

    return prepare("demo", "demo")


@pytest.fixture(scope="session")
def searched(prepared, tmp_path_factory):
    """A real 2-trial search on the demo: (out folder, document, events)."""
    from engine.core.events import Reporter
    from engine.pipeline.search import search

    out = tmp_path_factory.mktemp("search") / "s"
    events: list[dict] = []
    with _Space(TWO_FORMATS):
        doc = search(prepared, 1.0, "gzip", out, trials=2, seed=0, reporter=Reporter(events.append))
    return out, doc, events


def test_search_document_trials_and_frontier(searched, prepared):
    from engine.pipeline.search import SEARCH_SCHEMA_VERSION, read_search

    out, doc, _ = searched
    on_disk = read_search(out / "search.json")
    assert on_disk["trials"] == json.loads(json.dumps(doc["trials"]))
    assert doc["schema_version"] == SEARCH_SCHEMA_VERSION and doc["kind"] == "featherweight-search"
    assert doc["storage"] == "journal" and (out / "study.journal").exists()
    assert doc["objective"] == "gzip" and doc["budget_pts"] == 1.0 and doc["split"] == "validation"
    assert doc["stopped"] in ("trials", "exhausted")
    assert [t["state"] for t in doc["trials"]] == ["complete", "complete"]
    formats = sorted(t["params"]["format"] for t in doc["trials"])
    assert formats == ["float16", "int8"]
    base = doc["baseline"]
    assert base["accuracy"] == prepared.baseline["accuracy"]
    assert 0.5 < base["val_accuracy"] <= 1.0 and base["arena_bytes"] > 0
    n_val = prepared.splits.n_val
    assert doc["noise"]["val_samples"] == n_val
    for t in doc["trials"]:
        folder = out / t["folder"]
        assert sorted(p.name for p in folder.iterdir()) == [
            "model.tflite",
            "recipe.json",
            "trial.json",
        ]
        data = (folder / "model.tflite").read_bytes()
        assert t["tflite_bytes"] == len(data)
        trial_doc = json.loads((folder / "trial.json").read_text())
        assert trial_doc["measured_on"] == "validation" and "accuracy" not in trial_doc
        # The paired drop is a whole number of validation images.
        assert abs(t["val_drop"] * n_val / 100 - round(t["val_drop"] * n_val / 100)) < 1e-6
        assert t["val_drop"] == pytest.approx((base["val_accuracy"] - t["val_accuracy"]) * 100)
        assert t["val_drop_se"] >= 0 and t["objective_value"] == t["tflite_gzip_bytes"]
        assert t["feasible"] == (t["val_drop"] <= 1.0)
    # int8 is smaller than float16 at about the same accuracy: the frontier starts there.
    int8 = next(t for t in doc["trials"] if t["params"]["format"] == "int8")
    assert doc["frontier"][0] == int8["number"]
    assert [e["trial"] for e in doc["frontier_test"]] == doc["frontier"]
    # The second trial restored the pruned model instead of training it again.
    assert doc["cache"]["hits"] >= 1 and doc["trials"][1]["cache_hits"] == 1
    assert len(list((out / "checkpoints").iterdir())) == 1


def test_best_folder_is_a_compress_output_measured_on_test(searched, prepared):
    out, doc, _ = searched
    best = doc["best"]
    assert best is not None and best["within_budget"] and best["folder"] == "best"
    names = {p.name for p in (out / "best").iterdir()}
    assert {
        "model.tflite",
        "baseline.tflite",
        "metrics.json",
        "recipe.json",
        "report.json",
    } <= names
    metrics = json.loads((out / "best" / "metrics.json").read_text())
    for key in ("baseline", "compressed", "ratio_gzip", "ratio_raw", "accuracy_drop"):
        assert key in metrics
    from engine.tflite.metrics import tflite_accuracy

    data = (out / "best" / "model.tflite").read_bytes()
    test_acc = tflite_accuracy(data, prepared.splits, "test")
    assert metrics["compressed"]["accuracy"] == pytest.approx(test_acc)
    assert best["accuracy"] == pytest.approx(test_acc) and best["measured_on_test"]
    assert best["drop_pts"] == pytest.approx(metrics["accuracy_drop"] * 100)  # points
    assert best["drop"] == pytest.approx(metrics["accuracy_drop"])  # a fraction
    assert metrics["search"]["trial"] == best["trial"]
    assert metrics["search"]["val_drop"] == best["val_drop"]
    # Restored from the checkpoint and converted the same way: the very file that was judged.
    assert metrics["search"]["checkpoint_hits"] >= 1
    assert metrics["search"]["same_file_as_trial"] is True
    assert data == (out / best["trial_folder"] / "model.tflite").read_bytes()
    assert not any("file the search judged" in w for w in metrics["warnings"])


def test_materialize_ships_the_judged_file_when_the_remade_one_differs(
    searched, prepared, tmp_path
):
    """A trial whose re-made file differs from the judged one (QAT is not checkpointed nor
    bit-reproducible): the run folder ships the judged file, measured on test, and says so."""
    import shutil

    from engine.pipeline.search import materialize
    from engine.tflite.metrics import tflite_accuracy

    out, doc, _ = searched
    copy = tmp_path / "s"
    shutil.copytree(out, copy)
    trial = doc["best"]["trial"]
    judged = prepared.baseline_tflite  # a valid .tflite the recipe cannot re-make
    (copy / doc["best"]["trial_folder"] / "model.tflite").write_bytes(judged)
    metrics = materialize(prepared, copy, trial, tmp_path / "run")
    assert (tmp_path / "run" / "model.tflite").read_bytes() == judged
    assert metrics["compressed"]["accuracy"] == pytest.approx(
        tflite_accuracy(judged, prepared.splits, "test")
    )
    assert metrics["compressed"]["tflite_bytes"] == len(judged)
    assert any("file the search judged" in w for w in metrics["warnings"])


def test_trial_and_search_events(searched):
    _, doc, events = searched
    trial_events = [e for e in events if e["type"] == "trial"]
    assert [(e["number"], e["state"]) for e in trial_events] == [
        (0, "running"),
        (0, "complete"),
        (1, "running"),
        (1, "complete"),
    ]
    end = trial_events[-1]
    for key in ("params", "recipe", "values", "objective_value", "feasible", "duration_s",
                "cache_hits", "error"):  # fmt: skip
        assert key in end
    assert set(end["values"]) == {
        "val_accuracy",
        "val_drop",
        "val_drop_se",
        "tflite_bytes",
        "tflite_gzip_bytes",
        "latency_ms",
        "arena_bytes",
    }
    searches = [e for e in events if e["type"] == "search"]
    assert len(searches) >= 4  # at the start, after each trial, at the end
    last = searches[-1]
    for key in ("trials_done", "best", "best_values", "frontier", "elapsed_s", "time_budget_s",
                "trial_budget", "eta_s", "baseline", "objective", "budget_pts"):  # fmt: skip
        assert key in last
    assert last["trials_done"] == 2 and last["best"] == doc["best"]["trial"]
    # Within a trial the usual training events flow.
    assert any(e["type"] == "metric" and e["stage"] == "prune" for e in events)


def test_format_search(searched):
    from engine.pipeline.search import format_search

    _, doc, _ = searched
    text = format_search(doc)
    assert f"best within budget: trial {doc['best']['trial']}" in text
    assert "measured on test" in text and "frontier" in text
    assert f"{doc['noise']['val_samples']} validation images" in text
    closest = {**doc, "best": {**doc["best"], "within_budget": False, "folder": None}}
    assert "NO trial within budget; closest: trial" in format_search(closest)


def test_prefix_cache_on_disk_is_shared_and_damage_is_a_miss(tmp_path, prepared):
    from engine.pipeline.checkpoints import PrefixCache, identity_of

    steps = [{"type": "prune", "target_sparsity": 0.5}]
    model = prepared.loaded.model
    first = PrefixCache(tmp_path, identity_of(prepared))
    assert first.longest(0, 32, steps + [{"type": "qat"}]) is None
    assert first.counts() == {"hits": 0, "misses": 1}
    assert first.put(0, 32, steps, model, ["prune"], [{"type": "prune", "x": 1}])
    # Another process: nothing in memory, the entry on disk.
    other = PrefixCache(tmp_path, identity_of(prepared))
    k, restored, entry = other.longest(0, 32, steps + [{"type": "cluster", "clusters": 8}])
    assert k == 1 and entry["done"] == ["prune"] and other.hits == 1
    assert restored is not model
    for a, b in zip(restored.get_weights(), model.get_weights()):
        assert (a == b).all()
    assert other.longest(1, 32, steps) is None  # another seed: another prefix
    (tmp_path / first.key(0, 32, steps) / "model.keras").write_bytes(b"broken")
    assert PrefixCache(tmp_path, identity_of(prepared)).longest(0, 32, steps) is None


def test_failed_trial_is_recorded_not_raised(tmp_path, prepared, monkeypatch):
    from engine.core.errors import FeatherweightError
    from engine.pipeline.search import format_search, search
    from engine.techniques.registry import TECHNIQUES

    def broken(context, model, step):
        raise FeatherweightError("pruning did not reach the target sparsity 50% (test)")

    monkeypatch.setattr(TECHNIQUES["prune"], "apply", broken)
    monkeypatch.setenv(SPACE_ENV, json.dumps({**TWO_FORMATS, "format": ["int8"]}))
    doc = search(prepared, 1.0, "gzip", tmp_path / "s", trials=1)
    (trial,) = doc["trials"]
    assert trial["state"] == "fail" and "did not reach the target" in trial["error"]
    assert doc["best"] is None and doc["frontier"] == [] and not (tmp_path / "s" / "best").exists()
    assert "no trial finished" in format_search(doc)


def test_killed_search_resumes(tmp_path, prepared):
    """SIGKILL while trial 1 runs; the same command again resumes the study."""
    from engine.pipeline.search import search

    out = tmp_path / "s"
    env = {**os.environ, SPACE_ENV: json.dumps(THREE_FORMATS)}
    args = ["search", "demo", "--data", "demo", "--trials", "3", "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    seen = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("trial 1:"):  # trial 0 is complete, trial 1 has started
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    before = json.loads((out / "search.json").read_text())
    assert [t["state"] for t in before["trials"]] == ["complete"]
    first = before["trials"][0]

    with _Space(THREE_FORMATS):
        doc = search(prepared, 1.0, "gzip", out, trials=3)
    assert doc["study_name"] == before["study_name"]
    states = {t["number"]: t["state"] for t in doc["trials"]}
    assert states[0] == "complete" and states[1] == "fail"  # the killed one
    assert doc["trials"][0]["tflite_gzip_bytes"] == first["tflite_gzip_bytes"]
    assert doc["trials"][0]["duration_s"] == first["duration_s"]  # kept, not rerun
    retried = [t for t in doc["trials"] if t["number"] > 1]
    assert retried and retried[0]["state"] == "complete"
    assert retried[0]["params"] == doc["trials"][1]["params"]  # the killed trial, again
    assert "process stopped" in doc["trials"][1]["error"]


def test_parse_duration_and_read_search(tmp_path):
    from engine.core.errors import BadInputError
    from engine.pipeline.search import parse_duration, read_search

    assert parse_duration("20m") == 1200 and parse_duration("90s") == 90
    assert parse_duration("1h30m") == 5400 and parse_duration("300") == 300
    for bad in ("soon", "", "-5", "0", "1x"):
        with pytest.raises(BadInputError):
            parse_duration(bad)
    path = tmp_path / "search.json"
    path.write_text(json.dumps({"kind": "featherweight-search", "schema_version": 99}))
    with pytest.raises(BadInputError, match="newer"):
        read_search(path)
    path.write_text(json.dumps({"kind": "other", "schema_version": 1}))
    with pytest.raises(BadInputError, match="not a Featherweight search"):
        read_search(path)


def test_trial_recipe_and_space(prepared):
    from engine.pipeline.search import FULL_SPACE, space_for, trial_recipe

    space = space_for(prepared)
    assert space == FULL_SPACE  # the demo CNN supports every choice
    recipe = trial_recipe(
        {
            "width": 0.5,
            "sparsity": 0.8,
            "allocation": "erk",
            "clusters": 16,
            "format": "int8",
            "qat": True,
            "teacher_guided": True,
            "sparse": True,
        }  # fmt: skip
    )
    assert recipe.step_types() == ["distill", "prune", "cluster", "qat", "quantize"]
    prune = recipe.steps[1]
    assert prune["target_sparsity"] == 0.8 and prune["allocation"] == "erk"
    assert prune["teacher_guided"] and recipe.steps[-1]["sparse"]
    # Irrelevant choices do not change the recipe (no allocation without pruning).
    a = trial_recipe({"sparsity": 0.0, "allocation": "erk", "format": "float16", "qat": True})
    b = trial_recipe({"sparsity": 0.0, "allocation": "uniform", "format": "float16"})
    assert a.to_dict() == b.to_dict() and a.step_types() == ["quantize"]


def test_cli_same_command_again_resumes_and_exits_0(searched, capsys):
    """The fixture's search again through the command line: its 2 trials are there, none is
    added, the best is within budget (exit 0) and --json prints the document."""
    from engine.cli import main

    out, doc, _ = searched
    with _Space(TWO_FORMATS):
        code = main(
            [
                "search",
                "demo",
                "--data",
                "demo",
                "--trials",
                "2",
                "--out",
                str(out),
                "--json",
                "--quiet",
            ]  # fmt: skip
        )
    printed = json.loads(capsys.readouterr().out)
    assert code == 0
    assert printed["study_name"] == doc["study_name"] and printed["stopped"] == "trials"
    assert [t["number"] for t in printed["trials"]] == [0, 1]
    assert printed["best"]["trial"] == doc["best"]["trial"] and printed["best"]["within_budget"]


def test_user_stop_keeps_everything_and_queues_the_interrupted_trial(tmp_path, prepared):
    """Stop pressed while trial 1 converts: the search returns normally ("user"), trial 0
    is kept, trial 1 is recorded as stopped and queued again (waiting) for the next run."""
    from engine.core.events import Reporter
    from engine.pipeline.search import search

    running: list[int] = []
    reporter = Reporter()

    def on_event(event: dict) -> None:
        if event["type"] == "trial" and event["state"] == "running":
            running.append(event["number"])
        if event == {**event, "type": "stage", "stage": "convert", "state": "start"}:
            if running and running[-1] == 1:
                reporter.cancel.cancel()

    reporter.on_event = on_event
    with _Space(THREE_FORMATS):
        doc = search(prepared, 1.0, "gzip", tmp_path / "s", trials=5, reporter=reporter)
    assert doc["stopped"] == "user"
    states = [(t["number"], t["state"]) for t in doc["trials"]]
    assert states[:2] == [(0, "complete"), (1, "fail")] and states[2][1] == "waiting"
    assert "stopped by the user" in doc["trials"][1]["error"]
    assert doc["trials"][2]["params"] == doc["trials"][1]["params"]
    assert doc["best"]["trial"] == 0 and (tmp_path / "s" / "best" / "model.tflite").exists()


def test_the_best_is_within_budget_by_one_standard_error_when_any_point_is():
    """Out of many trials the smallest one just under the line is the luckiest on validation;
    a point within budget by one standard error is preferred, else the plain rule holds."""
    from engine.pipeline.search import pick_best

    def t(number: int, size: int, drop: float, se: float) -> dict:
        return {"number": number, "state": "complete", "objective_value": size,
                "val_accuracy": 0.9, "val_drop": drop, "val_drop_se": se}  # fmt: skip

    lucky, sure, bigger = t(0, 100, 0.7, 0.7), t(1, 120, 0.0, 0.7), t(2, 200, 0.0, 0.0)
    assert pick_best([lucky, sure, bigger], 1.0)["number"] == 1
    assert pick_best([lucky], 1.0)["number"] == 0  # none confident: the plain rule
    assert pick_best([t(3, 50, 1.4, 0.7), lucky], 1.0)["number"] == 0  # over budget: never
    assert pick_best([t(3, 50, 1.4, 0.7), t(4, 60, 2.1, 0.7)], 1.0)["number"] == 3  # closest
