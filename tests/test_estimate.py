"""Run-time estimates (issue 12): the timing ``prepare`` records with the baseline, old cache
entries without it, and ``estimate_seconds`` (how close it comes to real runs is measured by
benchmarks/estimate.py, not here)."""

from __future__ import annotations

import json

import pytest

from engine.pipeline.estimate import estimate_seconds, fmt_estimate
from engine.pipeline.recipe import validate_recipe

TIMING = {"forward_ms_per_sample": 0.05, "convert_s": 1.4, "evaluate_s": 0.1, "load_s": 0.3}
INT8 = {"schema_version": 2, "steps": [{"type": "quantize", "mode": "int8"}]}


def prune(epochs: int) -> dict:
    return validate_recipe(
        {
            "schema_version": 2,
            "name": f"prune{epochs}",
            "steps": [{"type": "prune", "epochs": epochs}, {"type": "quantize", "mode": "int8"}],
        }
    ).to_dict()


def test_no_timing_no_estimate():
    assert estimate_seconds(INT8, None, 1000) is None
    assert estimate_seconds(INT8, {"accuracy": 0.9}, 1000) is None  # a baseline before timing
    assert estimate_seconds(INT8, {"timing": TIMING}, None) is None
    assert estimate_seconds(INT8, {"timing": {**TIMING, "forward_ms_per_sample": None}}, 10) is None
    assert fmt_estimate(None) == ""


def test_estimate_grows_with_training_and_data():
    base = {"timing": TIMING}
    int8 = estimate_seconds(INT8, base, 1000)
    p2, p6 = estimate_seconds(prune(2), base, 1000), estimate_seconds(prune(6), base, 1000)
    assert int8 is not None and p2 is not None and p6 is not None
    assert 0 < int8 < p2 < p6
    assert estimate_seconds(prune(2), base, 10_000) > p2  # more data, longer epochs
    # an old cached baseline knows only the forward time: still an estimate
    old = {"timing": {"forward_ms_per_sample": 0.05, "convert_s": None, "evaluate_s": None}}
    assert estimate_seconds(prune(2), old, 1000) > 0


def test_estimate_knows_filter_pruning_and_the_teacher():
    """Filter pruning trains a narrower network (cheaper per epoch); a teacher-guided step
    runs the original model forward too (dearer); prune_filters is guided by default."""
    base = {"timing": TIMING}

    def one(step: dict) -> float:
        got = estimate_seconds({"schema_version": 3, "steps": [step]}, base, 1000)
        assert got is not None
        return got

    prune10 = one({"type": "prune", "epochs": 10})
    guided = one({"type": "prune", "epochs": 10, "teacher_guided": True})
    filters = one({"type": "prune_filters", "epochs": 10})
    filters_labels = one({"type": "prune_filters", "epochs": 10, "teacher_guided": False})
    assert prune10 < guided and filters_labels < filters < prune10


@pytest.mark.parametrize(
    "seconds, text",
    [(3.2, "≈ 3 s"), (42, "≈ 40 s"), (58, "≈ 60 s"), (170, "≈ 3 min"), (5400, "≈ 1.5 h")],
)
def test_fmt_estimate(seconds, text):
    assert fmt_estimate(seconds) == text


@pytest.fixture(scope="module")
def prepared_demo():
    from engine.pipeline.prepare import prepare

    return prepare("demo", "demo")


def test_prepare_records_timing_and_reads_cache_entries_without_it(prepared_demo):
    from engine.pipeline import prepare as prep

    timing = prepared_demo.baseline["timing"]
    assert set(timing) == set(prep.TIMING_KEYS)
    assert timing["forward_ms_per_sample"] > 0 and timing["convert_s"] > 0
    assert timing["evaluate_s"] > 0
    # An entry written before timing existed: still a cache hit, with a fresh forward time.
    entry_path = prep.baseline_cache_dir() / f"{prepared_demo.cache_key}.json"
    entry = json.loads(entry_path.read_text())
    assert entry["baseline"]["timing"] == timing  # stored with the entry
    entry["baseline"].pop("timing")
    entry_path.write_text(json.dumps(entry))
    again = prep.prepare("demo", "demo")
    assert again.baseline_source == "cache"
    assert again.baseline["timing"]["forward_ms_per_sample"] > 0
    assert again.baseline["timing"]["convert_s"] is None
    assert estimate_seconds(INT8, again.baseline, 1295) is not None
    entry["baseline"]["timing"] = timing  # leave the cache as it was for other tests
    entry_path.write_text(json.dumps(entry))
