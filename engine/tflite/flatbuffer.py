"""Reading a ``.tflite`` flatbuffer with LiteRT's generated TFLite schema (no TensorFlow).

The lowest module of ``engine.tflite``: ``metadata`` and ``report`` both read files through
``read_model`` here, so neither needs the other for it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from engine.core.errors import BadInputError

TFLITE_FILE_IDENTIFIER = b"TFL3"


@cache
def schema() -> Any:
    """LiteRT's generated TFLite schema module (``ai_edge_litert.schema_py_generated``)."""
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def read_model(path: str | Path) -> tuple[bytes, Any]:
    """Read a ``.tflite`` file as ``(bytes, ModelT)``.

    Raises BadInputError if the file is missing or is not a TFLite flatbuffer.
    """
    from ai_edge_litert.tools import flatbuffer_utils

    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise BadInputError(f"cannot read {p}: {exc.strerror or exc}") from None
    if len(data) < 8 or data[4:8] != TFLITE_FILE_IDENTIFIER:
        raise BadInputError(f"{p} is not a .tflite model (no TFL3 flatbuffer identifier)")
    try:
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    except Exception as exc:  # a corrupt flatbuffer raises anything from struct/index errors
        raise BadInputError(f"{p} is not a readable .tflite model: {exc}") from None
    return data, model


def constant_tensors(data: bytes) -> set[int]:
    """Indices of the first subgraph's tensors that hold data in the file (weights and other
    constants; not inputs, activations or variable state such as an LSTM's), read without
    unpacking the buffers."""
    m = schema().Model.GetRootAs(bytearray(data), 0)
    if m.SubgraphsLength() == 0:
        return set()
    sub = m.Subgraphs(0)
    out = set()
    for i in range(sub.TensorsLength()):
        t = sub.Tensors(i)
        if t.IsVariable():
            continue
        buf = m.Buffers(t.Buffer())
        if buf is not None and (buf.DataLength() > 0 or buf.Size() > 0):
            out.add(i)
    return out
