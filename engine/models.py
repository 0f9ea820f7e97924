"""Loading and inspecting models.  (Minimal placeholder: being completed by the models work.)

Public API (stable; other modules rely on it):

- ``load_model(spec, allow_unsafe=False) -> LoadedModel``  (spec: "demo" or a path)
- ``inspect_path(spec, allow_unsafe=False) -> dict``       (JSON-able per-layer report)
- ``format_report(report) -> str``                          (text table for the CLI)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import BadInputError


@dataclass
class LoadedModel:
    """A model ready for the engine: always a Keras 2 (tf_keras) functional/sequential model."""

    model: Any  # tf_keras.Model
    path: str
    source_format: str  # keras2-keras | keras2-h5 | keras2-savedmodel | keras3-keras | keras3-h5
    output_kind: str  # "softmax" | "logits"
    input_shape: tuple[int, ...]  # without batch dimension
    num_classes: int
    has_rescaling: bool = False
    import_max_abs_diff: float | None = None  # Keras 3 import check
    warnings: list[str] = field(default_factory=list)


def load_model(spec: str | Path, allow_unsafe: bool = False) -> LoadedModel:
    from engine.demo import demo_model_path
    from engine.tfenv import keras2

    path = demo_model_path() if str(spec) == "demo" else Path(spec)
    if not path.exists():
        raise BadInputError(f"model not found: {path}")
    model = keras2().models.load_model(path, compile=False)
    last = model.layers[-1]
    act = getattr(last, "activation", None)
    kind = "softmax" if act is not None and act.__name__ == "softmax" else "logits"
    return LoadedModel(
        model=model,
        path=str(path),
        source_format="keras2-keras",
        output_kind=kind,
        input_shape=tuple(int(d) for d in model.input_shape[1:]),
        num_classes=int(model.output_shape[-1]),
    )
