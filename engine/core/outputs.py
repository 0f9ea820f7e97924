"""Output kinds of a classifier and the labels its outputs predict (NumPy only).

``softmax`` and ``logits`` take the argmax over the classes; the binary kinds are one output
unit with labels 0 / 1: ``binary_sigmoid`` is label 1 above 0.5, ``binary_logit`` above 0.0
(as Keras' ``BinaryAccuracy``). The one place both the Keras and the LiteRT accuracy read
(engine.techniques.training, engine.tflite.metrics).
"""

from __future__ import annotations

from typing import Any

import numpy as np

BINARY_KINDS = ("binary_sigmoid", "binary_logit")
OUTPUT_KINDS = ("softmax", "logits", *BINARY_KINDS)
BINARY_THRESHOLDS = {"binary_sigmoid": 0.5, "binary_logit": 0.0}


def is_binary(output_kind: str | None) -> bool:
    """Whether ``output_kind`` is a single-unit binary output."""
    return output_kind in BINARY_KINDS


def binary_threshold(output_kind: str) -> float:
    """The decision threshold of a binary output: 0.5 on a sigmoid, 0.0 on a logit."""
    if not is_binary(output_kind):
        raise ValueError(f"{output_kind!r} is not a binary output kind")
    return BINARY_THRESHOLDS[output_kind]


def check_kind(output_kind: str) -> None:
    """Raise ValueError for a string that is not one of ``OUTPUT_KINDS``."""
    if output_kind not in OUTPUT_KINDS:
        raise ValueError(f"unknown output kind {output_kind!r}; use one of {OUTPUT_KINDS}")


def predicted_labels(pred: Any, output_kind: str | None = None) -> np.ndarray:
    """Predicted class per sample of outputs ``pred`` (N, classes) or (N, 1).

    A binary kind thresholds its single unit; ``softmax`` / ``logits`` take the argmax; None
    takes a single-unit output as a sigmoid (threshold 0.5) and anything wider by argmax.
    Raises ValueError for an unknown kind.
    """
    p = np.asarray(pred)
    if output_kind is not None:
        check_kind(output_kind)
    single = p.ndim >= 1 and p.shape[-1] == 1
    if is_binary(output_kind) or (single and output_kind is None):
        threshold = BINARY_THRESHOLDS.get(output_kind or "binary_sigmoid", 0.5)
        flat = p.reshape(len(p), -1)[:, 0] if p.ndim >= 1 else p
        return (flat > threshold).astype(np.int64)
    return np.argmax(p, axis=-1)


def describe_output(output_kind: str | None, num_classes: int | None = None) -> str:
    """The output kind in words, for the CLI and the app ("binary, one unit: logit,
    threshold 0")."""
    n = f" over {num_classes} classes" if num_classes and not is_binary(output_kind) else ""
    return {
        "softmax": f"softmax{n}",
        "logits": f"logits{n} (no softmax)",
        "binary_sigmoid": "binary, one unit: sigmoid, label 1 above 0.5 (labels 0 / 1)",
        "binary_logit": "binary, one unit: logit, label 1 above 0 (labels 0 / 1)",
    }.get(output_kind or "", output_kind or "?")


def describe_input(input_kind: str, vocab_size: int | None = None) -> str:
    """An input kind (engine.data.splits.INPUT_KINDS) in words."""
    if input_kind == "tokens":
        return "integer token ids" + (f" (vocabulary {vocab_size:,})" if vocab_size else "")
    return {
        "images": "images",
        "sequences": "sequences (time steps × features)",
        "features": "feature vectors (tabular)",
    }.get(input_kind, input_kind)
