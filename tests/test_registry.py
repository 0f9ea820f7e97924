"""Adding a technique takes one module: a tiny "identity" technique, registered here, goes
through recipe validation, the pipeline (demo model, int8 after it) and the GUI form."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.core.errors import RecipeError
from engine.pipeline.recipe import STEP_ORDER, STEP_SPECS, validate_recipe
from engine.techniques.registry import (
    TECHNIQUES,
    Knob,
    StepResult,
    StepSpec,
    Technique,
    TrainContext,
    register,
    unregister,
)


class Identity(Technique):
    """Leaves the model as it is; reports its knob and the layer count."""

    spec = StepSpec(
        "identity",
        "Identity (test)",
        "Does nothing; proves a technique needs one module.",
        (Knob("strength", "float", 0.5, "How hard to do nothing.", minimum=0.0, maximum=1.0),),
        stage_label="Doing nothing",
        order=15,  # between distill and prune
        must_precede=("prune",),
        precede_reason="wants the unpruned model",
    )

    def apply(self, context: TrainContext, model: Any, step: dict[str, Any]) -> StepResult:
        context.reporter.log("identity: nothing to do")
        info = {"strength": step["strength"], "layers": len(model.layers)}
        return StepResult(model, info=info, warnings=["identity changed nothing"])


@pytest.fixture
def identity():
    technique = register(Identity())
    try:
        yield technique
    finally:
        unregister("identity")
    assert "identity" not in STEP_SPECS and "identity" not in STEP_ORDER


def test_registered_technique_is_validated_with_its_knobs_and_order_rule(identity):
    assert STEP_SPECS["identity"] is identity.spec  # the recipe module's live view
    assert STEP_ORDER.index("distill") < STEP_ORDER.index("identity") < STEP_ORDER.index("prune")
    r = validate_recipe(
        {
            "schema_version": 1,
            "steps": [{"type": "identity"}, {"type": "prune"}, {"type": "quantize"}],
        }
    )
    assert r.steps[0] == {"type": "identity", "strength": 0.5}
    assert [s["type"] for s in r.train_steps] == ["identity", "prune"]
    with pytest.raises(RecipeError, match="'identity' wants the unpruned model, so it must come"):
        validate_recipe({"schema_version": 1, "steps": [{"type": "prune"}, {"type": "identity"}]})
    with pytest.raises(RecipeError, match="above the maximum"):
        validate_recipe({"schema_version": 1, "steps": [{"type": "identity", "strength": 2}]})
    with pytest.raises(RecipeError, match="appears 2 times"):
        validate_recipe({"schema_version": 1, "steps": [{"type": "identity"}] * 2})
    with pytest.raises(ValueError, match="already registered"):
        register(type("Other", (Identity,), {})())


def test_unregistered_type_is_unknown():
    assert "identity" not in TECHNIQUES
    with pytest.raises(RecipeError, match="unknown step type 'identity'"):
        validate_recipe({"schema_version": 1, "steps": [{"type": "identity"}]})


def test_pipeline_runs_the_registered_technique(identity, tmp_path, monkeypatch):
    from engine.core.events import Reporter
    from engine.pipeline.run import compress

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    recipe = validate_recipe(
        {
            "schema_version": 1,
            "steps": [
                {"type": "identity", "strength": 0.25},
                {"type": "quantize", "mode": "int8", "calibration_samples": 50},
            ],
        }
    )
    events: list[dict] = []
    metrics = compress("demo", "demo", recipe, tmp_path / "out", reporter=Reporter(events.append))
    on_disk = json.loads((tmp_path / "out" / "metrics.json").read_text())
    step = on_disk["steps"][0]
    assert on_disk["steps"] == metrics["steps"] and len(on_disk["steps"]) == 1
    assert step["type"] == "identity" and step["strength"] == 0.25 and step["layers"] == 6
    # the model went through unchanged: the same Keras accuracy as the baseline's
    assert step["test_keras_accuracy"] == pytest.approx(on_disk["baseline"]["keras_accuracy"])
    assert on_disk["compressed"]["format"] == "int8"
    assert on_disk["compressed"]["accuracy"] >= 0.9
    assert "identity changed nothing" in on_disk["warnings"]
    stages = [e for e in events if e["type"] == "stage" and e["state"] == "start"]
    assert [(e["stage"], e["label"]) for e in stages][1] == ("identity", "Doing nothing")
    assert any(e.get("message") == "identity: nothing to do" for e in events)


def test_gui_form_shows_the_registered_knob(identity, qtbot, tmp_path):
    from PySide6.QtWidgets import QDoubleSpinBox

    from gui.compress_tab import SETTINGS, CompressTab
    from gui.errors import ErrorReporter
    from gui.state import Session

    errors = ErrorReporter()
    errors.show_dialogs = False
    tab = CompressTab(None, Session(), errors, tmp_path / "runs")  # no run: no client needed
    qtbot.addWidget(tab)
    tab.show()
    tab.go_to(SETTINGS)
    box = tab.technique_boxes["identity"]
    assert box.text() == "Identity (test)"
    editor = tab.editors["identity"]["strength"]
    assert isinstance(editor.widget, QDoubleSpinBox)
    assert "How hard to do nothing." in editor.widget.toolTip()
    assert not tab.step_boxes["identity"].isVisible()
    box.setChecked(True)
    assert tab.step_boxes["identity"].isVisible() and editor.widget.isVisible()
    editor.widget.setValue(0.75)
    steps = tab.recipe_dict()["steps"]
    assert {"type": "identity", "strength": 0.75} in steps
    assert [s["type"] for s in steps] == ["identity", "prune", "quantize"]
    assert tab.validation.text().startswith("⚠")  # valid (prune's sparse-encoding advice)
    assert tab.validated_recipe().steps[0] == {"type": "identity", "strength": 0.75}


def test_techniques_wrap_exactly_the_layers_inspect_shows(demo_splits):
    """One source of truth: the Model tab's per-layer verdicts (inspect) are the layers the
    techniques wrap. A BatchNorm after a ReLU conv is shown as not quantizable, and QAT
    leaves it alone (it used to annotate it and crash in tfmot's quantize_apply)."""
    from engine.core.events import Reporter
    from engine.core.tfenv import keras2
    from engine.models.loading import inspect_model
    from engine.models.support import compressed_layers
    from engine.pipeline.recipe import fill_step
    from engine.techniques.prune import prunable_layer_names
    from engine.techniques.quantize import qat_model

    k = keras2()
    inp = k.Input((8, 8, 1))
    x = k.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    x = k.layers.BatchNormalization(name="bn")(x)
    x = k.layers.LeakyReLU(name="leaky")(x)
    x = k.layers.DepthwiseConv2D(3, name="dw")(x)
    out = k.layers.Dense(10, activation="softmax", name="head")(k.layers.Flatten(name="flat")(x))
    model = k.Model(inp, out)
    rows = {r["name"]: r for r in inspect_model(model)["layers"]}

    def shown(technique: str, word: str) -> list[str]:
        return [n for n, r in rows.items() if r[technique]["reason"].startswith(word)]

    assert prunable_layer_names(model, False, False, False) == shown("prune", "prunes")
    assert compressed_layers(model, "prune") == ["conv", "head"]
    assert compressed_layers(model, "cluster") == shown("cluster", "clusters") == ["conv", "head"]
    assert rows["dw"]["prune"] == {
        "supported": True,
        "reason": "kept dense (tfmot prunes none of its weights)",
    }
    qat_shown = [n for n, r in rows.items() if r["qat"]["supported"] and r["class"] != "InputLayer"]
    assert compressed_layers(model, "qat") == qat_shown == ["conv", "leaky", "dw", "flat", "head"]
    assert rows["bn"]["qat"]["supported"] is False
    ctx = TrainContext(demo_splits, Reporter(), "softmax", batch_size=128)
    qmodel = qat_model(model, fill_step({"type": "qat", "epochs": 1}, 1), ctx)
    wrapped = {
        layer.layer.name for layer in qmodel.layers if type(layer).__name__ == "QuantizeWrapperV2"
    }
    assert wrapped == set(qat_shown)
