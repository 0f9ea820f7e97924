import json

import pytest

from engine.core.errors import RecipeError
from engine.pipeline.recipe import (
    STEP_SPECS,
    fill_step,
    load_recipe,
    parse_recipe_text,
    validate_recipe,
)


def test_defaults_are_filled_and_valid():
    r = validate_recipe({"schema_version": 1, "steps": [{"type": "prune"}, {"type": "quantize"}]})
    assert r.steps[0]["target_sparsity"] == 0.8
    assert r.steps[1]["mode"] == "int8"
    assert r.final_quantize["mode"] == "int8"


def test_every_default_is_within_its_range():
    for spec in STEP_SPECS.values():
        step = fill_step({"type": spec.type}, 1)
        assert set(step) == {"type"} | {k.name for k in spec.knobs}


@pytest.mark.parametrize(
    "steps, message",
    [
        ([{"type": "shrink"}], "unknown step type 'shrink'"),
        ([{"type": "prune", "target_sparsity": 1.5}], "above the maximum"),
        ([{"type": "cluster", "clusters": 0}], "below the minimum"),
        ([{"type": "prune", "sparsity": 0.5}], "unknown parameter(s) sparsity"),
        ([{"type": "quantize"}, {"type": "prune"}], "'quantize' must be the last step"),
        ([{"type": "qat"}], "'qat' must be followed by a final 'quantize'"),
        ([{"type": "qat"}, {"type": "quantize", "mode": "float16"}], "mode int8"),
        ([{"type": "prune"}, {"type": "distill"}], "must come before 'prune'"),
        ([{"type": "prune"}, {"type": "prune"}], "appears 2 times"),
        ([{"type": "prune", "epochs": 2.5}], "whole number"),
        ([{"type": "quantize", "mode": "int4"}], "not one of"),
        ([{"type": "quantize", "keep_float": 3}], "must be a list of layer names"),
        ([{"type": "quantize", "keep_float": ["a", 1]}], "must be a list of layer names"),
    ],
)
def test_invalid_recipes_say_what_is_wrong(steps, message):
    with pytest.raises(RecipeError) as err:
        validate_recipe({"schema_version": 1, "steps": steps})
    assert message in str(err.value)


def test_not_json_and_newer_schema():
    with pytest.raises(RecipeError, match="not valid JSON"):
        parse_recipe_text("{steps: [")
    with pytest.raises(RecipeError, match="newer than this Featherweight"):
        validate_recipe({"schema_version": 99, "steps": [{"type": "prune"}]})


@pytest.mark.parametrize(
    "given, kept",
    [(None, None), ([], []), (["conv1", " dense "], ["conv1", "dense"]), ("a, b,", ["a", "b"])],
)
def test_keep_float_is_automatic_pure_int8_or_a_list_of_names(given, kept):
    r = validate_recipe({"schema_version": 2, "steps": [{"type": "quantize", "keep_float": given}]})
    assert r.final_quantize["keep_float"] == kept
    assert validate_recipe(r.to_dict()).to_dict() == r.to_dict()  # round trip


def test_cluster_after_prune_without_preserve_warns():
    r = validate_recipe(
        {
            "schema_version": 1,
            "steps": [{"type": "prune"}, {"type": "cluster", "preserve_sparsity": False}],
        }
    )
    assert any("loses the pruned zeros" in w for w in r.warnings)


def test_round_trip(tmp_path):
    r = validate_recipe({"schema_version": 1, "name": "x", "steps": [{"type": "finetune"}]})
    p = tmp_path / "r.json"
    p.write_text(json.dumps(r.to_dict()))
    assert load_recipe(p).to_dict() == r.to_dict()


def test_example_recipes_are_valid():
    from engine.core.demo import resources_dir

    files = sorted((resources_dir() / "recipes").glob("*.json"))
    for f in files:
        load_recipe(f)


def test_v1_recipe_loads_as_current_with_the_same_steps():
    """Migrations 1 -> 2 -> 3: ``seed`` now seeds training only (2) and per-layer knobs were
    added with defaults that keep the old behaviour (3), so a v1 document loads unchanged and
    is written back as the current version."""
    from engine.pipeline.recipe import SCHEMA_VERSION

    v1 = {"schema_version": 1, "name": "p", "seed": 3, "steps": [{"type": "prune"}]}
    r = validate_recipe(v1)
    assert SCHEMA_VERSION == 3
    out = r.to_dict()
    assert out["schema_version"] == 3 and out["seed"] == 3
    assert validate_recipe(out).to_dict() == out
    assert [s["type"] for s in out["steps"]] == ["prune"]
