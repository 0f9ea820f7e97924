"""Featherweight metadata inside a ``.tflite``: class labels and input normalization.

The TFLite Support metadata writer (``tflite-support``, last release 0.4.4 in 2023) is not
installed here and pins old dependencies, so the metadata is written directly into the
flatbuffer with LiteRT's generated TFLite schema (``ai_edge_litert.schema_py_generated``):

- ``Model.metadata`` gets one entry named ``"featherweight"`` whose ``buffer`` holds UTF-8
  JSON::

    {"format": "featherweight.metadata", "version": 1,
     "labels": ["0", "1", ...] | null,
     "input_normalization": {"mean": [..], "std": [..]} | null}

  ``input_normalization`` means the model expects ``(x - mean) / std`` of the raw input
  (per channel, or one value for all). Other tools ignore unknown metadata entries; LiteRT
  loads and runs the file unchanged (the graph and weights are not touched).
- Existing metadata entries (``min_runtime_version``, ``CONVERSION_METADATA``...) are kept; an
  earlier ``"featherweight"`` entry is replaced.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.core.errors import BadInputError
from engine.tflite.flatbuffer import read_model
from engine.tflite.flatbuffer import schema as flatbuffer_schema

METADATA_NAME = "featherweight"
METADATA_FORMAT = "featherweight.metadata"
METADATA_VERSION = 1


def _numbers(values: Any, what: str) -> list[float]:
    try:
        out = [float(v) for v in ([values] if isinstance(values, (int, float)) else values)]
    except (TypeError, ValueError):
        raise BadInputError(f"{what} must be a number or a list of numbers") from None
    if not out:
        raise BadInputError(f"{what} must not be empty")
    return out


def write_metadata(
    tflite_path: str | Path,
    out_path: str | Path | None = None,
    *,
    labels: list[str] | None = None,
    mean: float | list[float] | None = None,
    std: float | list[float] | None = None,
) -> Path:
    """Store labels and/or input normalization in the ``.tflite`` (in place or to out_path).

    ``mean`` and ``std`` go together (both or neither); ``std`` must be non-zero.
    Returns the written path. Raises BadInputError on bad arguments or unreadable files.
    """
    from ai_edge_litert.tools import flatbuffer_utils

    schema = flatbuffer_schema()

    if (mean is None) != (std is None):
        raise BadInputError("input normalization needs both mean and std")
    payload: dict[str, Any] = {
        "format": METADATA_FORMAT,
        "version": METADATA_VERSION,
        "labels": [str(x) for x in labels] if labels is not None else None,
        "input_normalization": None,
    }
    if mean is not None:
        m, s = _numbers(mean, "mean"), _numbers(std, "std")
        if any(v == 0 for v in s):
            raise BadInputError("std must not be zero")
        payload["input_normalization"] = {"mean": m, "std": s}

    _, model = read_model(tflite_path)
    data = json.dumps(payload).encode("utf-8")
    entry = next((m for m in model.metadata or [] if _name(m) == METADATA_NAME), None)
    if entry is not None:  # replace in place: no orphaned buffer left behind
        model.buffers[entry.buffer].data = data
    else:
        buf = schema.BufferT()
        buf.data = data
        model.buffers.append(buf)
        entry = schema.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(model.buffers) - 1
        model.metadata = list(model.metadata or []) + [entry]

    target = Path(out_path) if out_path is not None else Path(tflite_path)
    packed = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    try:
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(packed)
        tmp.replace(target)
    except OSError as exc:
        raise BadInputError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


def _name(entry: Any) -> str:
    n = entry.name
    return n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n or "")


def metadata_from_model(model: Any) -> dict[str, Any] | None:
    """The Featherweight metadata of a ``ModelT`` (see module docstring), or None."""
    for entry in model.metadata or []:
        if _name(entry) != METADATA_NAME:
            continue
        data = model.buffers[entry.buffer].data
        if data is None:
            return None
        try:
            payload = json.loads(bytes(data).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None
        if isinstance(payload, dict) and payload.get("format") == METADATA_FORMAT:
            return payload
    return None


def read_metadata(tflite_path: str | Path) -> dict[str, Any] | None:
    """The Featherweight metadata stored in a ``.tflite`` file, or None if it has none."""
    _, model = read_model(tflite_path)
    return metadata_from_model(model)
