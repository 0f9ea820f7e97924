"""What a model takes and gives, in words, from an engine inspect report (no TensorFlow).

- ``output_text(report)``: the output kind (``engine.models.loading.output_kind``: softmax,
  logits, one-unit binary with a sigmoid or a logit) with its class count and threshold.
- ``model_input(report)`` / ``input_kind_of(report)`` / ``input_text(report)``: what one
  sample is (``engine.data.splits.input_kind``: images, feature vectors, sequences, token
  ids with the vocabulary size), read from the report's ``input_kind`` / ``first_layer`` /
  ``vocab_size`` when the engine gives them, else from the first layer row and the input
  shape (the same rule as ``engine.data.splits.model_input_of``: augmentation layers
  skipped; an ``Embedding``'s vocabulary is its parameter count over its output width).
- ``import_notes(report)``: the load warnings as ``(mark, text)`` lines, the informational
  ones (augmentation layers dropped, nested models flattened) marked "ℹ", not "⚠".
"""

from __future__ import annotations

import re
from typing import Any

from engine.core.outputs import describe_output
from engine.data.splits import INPUT_KINDS, ModelInput, input_kind
from engine.models.inputs import AUGMENTATION_PREFIX

OUTPUT_TIPS = {
    "softmax": "Class probabilities from a softmax; the predicted class is the largest.",
    "logits": "Raw class scores (the last layer has no softmax); the predicted class is the "
    "largest. Distillation and accuracy treat them as logits.",
    "binary_sigmoid": "One output unit with a sigmoid: a probability of class 1. Accuracy "
    "counts outputs ≥ 0.5 as 1; labels must be 0 / 1.",
    "binary_logit": "One output unit without activation: a logit of class 1. Accuracy counts "
    "outputs ≥ 0 as 1; labels must be 0 / 1.",
}
INPUT_TIPS = {
    "images": "Each sample is an image (height × width × channels).",
    "features": "Each sample is a vector of numeric features (tabular data).",
    "sequences": "Each sample is a sequence of steps (e.g. a time series).",
    "tokens": "Each sample is a row of integer token ids fed to an Embedding: never rescaled, "
    "kept int32 through int8 conversion (only the weights become int8).",
}
_DROPPED = re.compile(
    r"^dropped \d+ augmentation/noise layer\(s\), inactive at inference: (?P<names>.+)$"
)
_FLATTENED = re.compile(r"^flattened nested model\(s\) (?P<names>.+?) into one model(?P<rest>.*)$")
_IMPORTED = "imported from keras 3: outputs match"


def _class(row: dict[str, Any]) -> str:
    return str(row.get("class") or row.get("type") or row.get("class_name") or "")


def _first_layer(report: dict[str, Any]) -> dict[str, Any] | None:
    for row in report.get("layers") or []:
        if not isinstance(row, dict):
            continue
        cls = _class(row)
        if cls == "InputLayer" or cls.startswith(AUGMENTATION_PREFIX):
            continue
        return row
    return None


def _embedding_vocab(row: dict[str, Any]) -> int | None:
    shape = row.get("output_shape")
    params = row.get("params")
    if not isinstance(shape, list) or not shape or not isinstance(params, int):
        return None
    width = shape[-1]
    if not isinstance(width, int) or width <= 0 or params % width:
        return None
    return params // width


def model_input(report: dict[str, Any]) -> ModelInput:
    """The report's ``ModelInput``: its first layer's class and an Embedding's vocabulary."""
    row = _first_layer(report)
    given = report.get("first_layer")
    if row is None and not isinstance(given, str):
        return ModelInput()
    cls = given if isinstance(given, str) else _class(row or {})
    vocab = report.get("vocab_size")
    if cls == "Embedding" and not isinstance(vocab, int) and row is not None:
        vocab = _embedding_vocab(row)
    return ModelInput(cls, int(vocab) if isinstance(vocab, int) and vocab > 0 else None)


def input_kind_of(report: dict[str, Any]) -> str | None:
    """One of ``engine.data.splits.INPUT_KINDS``, or None when the report has no single
    input shape (multi-input or subclassed models)."""
    given = report.get("input_kind")
    if given in INPUT_KINDS:
        return str(given)
    shape = report.get("input_shape")
    if not isinstance(shape, list) or not shape or isinstance(shape[0], list):
        return None
    return input_kind(tuple(shape), model_input(report))


def _dims(shape: list[Any]) -> str:
    return "×".join("?" if d is None else str(d) for d in shape)


def input_text(report: dict[str, Any]) -> str:
    """E.g. "token ids: 40 per sample, vocabulary 500", "images 32×32×3, rescaled by the
    model (Rescaling)", "8 features, normalized by the model (Normalization)"; "—" unknown."""
    kind = input_kind_of(report)
    shape = report.get("input_shape")
    if kind is None or not isinstance(shape, list):
        return "—"
    first = model_input(report)
    if kind == "tokens":
        n = shape[0] if shape and shape[0] is not None else "any number of"
        vocab = f", vocabulary {first.vocab_size:,}" if first.vocab_size else ""
        return f"token ids: {n} per sample{vocab}"
    if kind == "sequences":
        steps = "any number of" if shape[0] is None else shape[0]
        width = shape[1]
        return f"sequences: {steps} steps × {width} value{'s' if width != 1 else ''}"
    own = ""
    if first.first_layer == "Rescaling" or (kind == "images" and report.get("has_rescaling")):
        own = ", rescaled by the model (Rescaling)"
    elif first.first_layer == "Normalization":
        own = ", normalized by the model (Normalization)"
    if kind == "features":
        return f"{shape[0]} features (tabular){own}"
    return f"images {_dims(shape)}{own}"


def input_tooltip(report: dict[str, Any]) -> str:
    kind = input_kind_of(report)
    return INPUT_TIPS.get(kind or "", "")


def output_text(report: dict[str, Any]) -> str:
    """The engine's words for the output kind (``engine.core.outputs.describe_output``, as
    ``featherweight inspect`` says it): "softmax over 10 classes", "binary, one unit: logit,
    label 1 above 0 (labels 0 / 1)"; "—" unknown."""
    kind = str(report.get("output_kind") or "")
    if not kind:
        return "—"
    return describe_output(kind, report.get("num_classes"))


def output_tooltip(report: dict[str, Any]) -> str:
    return OUTPUT_TIPS.get(str(report.get("output_kind") or ""), "")


def _layer_list(names: str) -> str:
    """ "'a' (RandomFlip), 'b' (RandomRotation)" -> "a (RandomFlip) and b (RandomRotation)"."""
    parts = [p.strip().replace("'", "") for p in re.split(r",\s*(?=')", names) if p.strip()]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def import_notes(report: dict[str, Any], skip_import_line: bool = True) -> list[tuple[str, str]]:
    """The report's load warnings as ``(mark, sentence)``: "ℹ" for what the import did on
    purpose (augmentation dropped, nested models flattened), "⚠" for the rest. The engine's
    "imported from Keras 3: outputs match" line is left out (the Model tab says it once)."""
    out: list[tuple[str, str]] = []
    for w in report.get("warnings") or []:
        text = str(w).strip()
        if skip_import_line and text.lower().startswith(_IMPORTED):
            continue
        m = _DROPPED.match(text)
        if m:
            names = _layer_list(m.group("names"))
            out.append(
                (
                    "ℹ",
                    f"Augmentation dropped: {names} only act while training, so the "
                    "converted model leaves them out.",
                )
            )
            continue
        m = _FLATTENED.match(text)
        if m:
            rest = m.group("rest").strip()
            rest = f" {rest}" if rest else ""
            out.append(("ℹ", f"Nested model(s) {m.group('names')} flattened into one model{rest}."))
            continue
        out.append(("⚠", text[:1].upper() + text[1:]))
    return out
