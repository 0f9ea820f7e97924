"""Deployment report of a ``.tflite`` file: ops, runtime compatibility, memory, I/O contract.

Everything is read from the flatbuffer with LiteRT's generated TFLite schema, not from the
interpreter, so models with Select-TF (Flex) ops, which LiteRT alone cannot allocate, are
reported too. No TensorFlow import.

``report_tflite(path)`` returns a JSON-able dict with these keys (the GUI and
``featherweight report --json`` show it; ``report.json`` beside ``metrics.json`` holds it):

- ``format_version`` (int), ``file`` (str), ``file_bytes`` (int), ``subgraphs`` (int)
- ``ops``: list of ``{"name", "count", "kind" ("builtin"|"flex"|"custom"), "version",
  "input_dtypes", "output_dtypes"}``, sorted by count (descending) then name; dtypes are
  lower-case names as numpy spells them (``"int8"``, ``"float32"``)
- ``op_sequence``: op names of the main subgraph in execution order
- ``flex_ops`` / ``custom_ops``: sorted names (Flex ops are custom ops named ``Flex...``)
- ``full_integer``: ``{"ok": bool, "int8": bool, "float_ops": [op names], "summary": str}``:
  ``ok`` when every op computes on integers (``QUANTIZE``/``DEQUANTIZE`` at float inputs and
  outputs allowed); ``int8`` when some op computes on int8 activations; ``float_ops`` are the
  ops that compute on float tensors (e.g. the layers an int8 conversion kept in float)
- ``verdicts``: ``{"litert_builtins": V, "tflite_micro": V}`` with
  ``V = {"ok": bool, "missing": [op names], "problems": [str], "summary": str}``
  (``problems``: data-type reasons, e.g. float16 or hybrid ops on TFLite Micro)
- ``memory``: ``{"file_bytes", "weights_bytes", "activation_sum_bytes",
  "activation_peak_live_bytes", "arena_estimate_bytes", "estimate": True, "note"}``
- ``io``: ``{"inputs": [T], "outputs": [T]}`` with ``T = {"name", "index", "shape",
  "shape_signature", "dtype", "quantized", "scale", "zero_point"}``
  (``scale``/``zero_point`` are numbers for per-tensor quantization, else ``None``)
- ``snippets``: ``{"needed": bool, "python": str, "c": str, "note": str}``
- ``metadata``: the Featherweight metadata stored in the file (labels, normalization) or
  ``None``
- ``tflm_ops_source``: where the TFLite Micro op list came from (URL, commit, date)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.errors import BadInputError
from engine.tflite.flatbuffer import TFLITE_FILE_IDENTIFIER, read_model, schema
from engine.tflite.metadata import metadata_from_model

__all__ = [
    "TFLITE_FILE_IDENTIFIER",
    "format_tflite_report",
    "read_model",
    "report_tflite",
    "write_report",
]

REPORT_FORMAT_VERSION = 1
ARENA_ALIGNMENT = 16  # TFLite Micro aligns every arena allocation to 16 bytes

_DTYPE_BYTES = {
    "FLOAT32": 4,
    "FLOAT16": 2,
    "BFLOAT16": 2,
    "INT32": 4,
    "UINT32": 4,
    "INT8": 1,
    "UINT8": 1,
    "INT16": 2,
    "UINT16": 2,
    "INT64": 8,
    "UINT64": 8,
    "FLOAT64": 8,
    "BOOL": 1,
    "COMPLEX64": 8,
    "COMPLEX128": 16,
    "INT4": 0.5,
    "UINT4": 0.5,
    "INT2": 0.25,
    "FLOAT8_E4M3FN": 1,
    "FLOAT8_E5M2": 1,
}
_INT_RANGES = {"INT8": (-128, 127), "UINT8": (0, 255), "INT16": (-32768, 32767)}
_C_TYPES = {"INT8": "int8_t", "UINT8": "uint8_t", "INT16": "int16_t"}
_NP_TYPES = {"INT8": "np.int8", "UINT8": "np.uint8", "INT16": "np.int16"}


@cache
def _enum_names(enum_name: str) -> dict[int, str]:
    enum = getattr(schema(), enum_name)
    return {v: k for k, v in vars(enum).items() if not k.startswith("_") and isinstance(v, int)}


@cache
def tflm_op_list() -> dict[str, Any]:
    """The TFLite Micro op list shipped in ``resources/tflm_ops.json`` (with its source)."""
    from engine.core.demo import resources_dir

    return json.loads((resources_dir() / "tflm_ops.json").read_text(encoding="utf-8"))


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _op_name(opcode: Any) -> tuple[str, str]:
    """``(name, kind)`` of an OperatorCodeT; kind is builtin, flex or custom."""
    code = max(opcode.builtinCode, opcode.deprecatedBuiltinCode)
    names = _enum_names("BuiltinOperator")
    if code == schema().BuiltinOperator.CUSTOM:
        custom = _text(opcode.customCode)
        return custom, ("flex" if custom.startswith("Flex") else "custom")
    return names.get(code, f"BUILTIN_{code}"), "builtin"


def _dtype_name(tensor_type: int) -> str:
    return _enum_names("TensorType").get(tensor_type, f"TYPE_{tensor_type}")


def _tensor_bytes(tensor: Any) -> int:
    shape = [int(d) for d in (tensor.shape if tensor.shape is not None else [])]
    n = int(np.prod([max(d, 1) for d in shape])) if shape else 1
    width = _DTYPE_BYTES.get(_dtype_name(tensor.type), 0)
    return int(np.ceil(n * width))


def _buffer_size(model: Any, index: int) -> int:
    if index <= 0 or index >= len(model.buffers):
        return 0
    data = model.buffers[index].data
    return 0 if data is None else len(data)


def _quant(tensor: Any) -> tuple[list[float], list[int]]:
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return [], []
    scales = [float(s) for s in q.scale]
    zps = [int(z) for z in (q.zeroPoint if q.zeroPoint is not None else [0] * len(scales))]
    return scales, zps


def _collect_ops(model: Any) -> tuple[list[dict[str, Any]], list[str]]:
    opcodes = [_op_name(oc) for oc in model.operatorCodes or []]
    versions = [int(oc.version or 1) for oc in model.operatorCodes or []]
    stats: dict[str, dict[str, Any]] = {}
    sequence: list[str] = []
    for sg_index, sg in enumerate(model.subgraphs or []):
        tensors = sg.tensors or []
        for op in sg.operators or []:
            name, kind = opcodes[op.opcodeIndex]
            if sg_index == 0:
                sequence.append(name)
            entry = stats.setdefault(
                name,
                {
                    "name": name,
                    "count": 0,
                    "kind": kind,
                    "version": versions[op.opcodeIndex],
                    "input_dtypes": set(),
                    "output_dtypes": set(),
                },
            )
            entry["count"] += 1
            entry["version"] = max(entry["version"], versions[op.opcodeIndex])
            for i in op.inputs or []:
                if i >= 0:
                    entry["input_dtypes"].add(_dtype_name(tensors[i].type).lower())
            for i in op.outputs or []:
                if i >= 0:
                    entry["output_dtypes"].add(_dtype_name(tensors[i].type).lower())
    ops = []
    for entry in stats.values():
        entry["input_dtypes"] = sorted(entry["input_dtypes"])
        entry["output_dtypes"] = sorted(entry["output_dtypes"])
        ops.append(entry)
    ops.sort(key=lambda e: (-e["count"], e["name"]))
    return ops, sequence


def _align(n: int) -> int:
    return (n + ARENA_ALIGNMENT - 1) // ARENA_ALIGNMENT * ARENA_ALIGNMENT


def _activation_memory(model: Any) -> dict[str, int]:
    """Sizes of the non-constant tensors of the main subgraph and their arena plan.

    Lifetime of a tensor: from the op that writes it (graph inputs: before the first op)
    to the last op that reads it (graph outputs: to the end). The arena estimate places
    tensors largest-first at the lowest 16-byte-aligned offset that does not overlap a
    placed tensor alive at the same time (the greedy planner TFLite Micro uses).
    """
    if not model.subgraphs:
        return {"sum": 0, "peak_live": 0, "arena": 0}
    sg = model.subgraphs[0]
    tensors = sg.tensors or []
    ops = sg.operators or []
    end = len(ops)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i in sg.inputs or []:
        first[i] = -1
        last[i] = -1
    for step, op in enumerate(ops):
        for i in op.inputs or []:
            if i >= 0:
                first.setdefault(i, step)
                last[i] = max(last.get(i, step), step)
        for i in list(op.outputs or []) + list(op.intermediates or []):
            if i >= 0:
                first[i] = min(first.get(i, step), step)
                last[i] = max(last.get(i, step), step)
    for i in sg.outputs or []:
        first.setdefault(i, end)
        last[i] = end
    live: list[tuple[int, int, int]] = []  # (size, first, last)
    for i, start in first.items():
        stop = last[i]
        t = tensors[i]
        if _buffer_size(model, t.buffer) > 0:
            continue  # constant: lives in flash, not in the arena
        size = _tensor_bytes(t)
        if size:
            live.append((size, start, stop))
    total = sum(s for s, _, _ in live)
    peak = 0
    for step in range(-1, end + 1):
        peak = max(peak, sum(s for s, a, b in live if a <= step <= b))
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last)
    arena = 0
    for size, start, stop in sorted(live, key=lambda x: (-x[0], x[1])):
        size = _align(size)
        busy = sorted((off, off + sz) for off, sz, a, b in placed if not (b < start or stop < a))
        offset = 0
        for lo, hi in busy:
            if offset + size <= lo:
                break
            offset = max(offset, _align(hi))
        placed.append((offset, size, start, stop))
        arena = max(arena, offset + size)
    return {"sum": total, "peak_live": peak, "arena": arena}


def _io_entry(sg: Any, index: int) -> dict[str, Any]:
    t = sg.tensors[index]
    scales, zps = _quant(t)
    dtype = _dtype_name(t.type)
    per_tensor = len(scales) == 1
    quantized = bool(scales) and dtype in _INT_RANGES
    sig = t.shapeSignature if t.shapeSignature is not None and len(t.shapeSignature) else None
    return {
        "name": _text(t.name),
        "index": int(index),
        "shape": [int(d) for d in (t.shape if t.shape is not None else [])],
        "shape_signature": [int(d) for d in sig] if sig is not None else None,
        "dtype": dtype.lower(),
        "quantized": quantized,
        "scale": scales[0] if per_tensor else None,
        "zero_point": zps[0] if per_tensor else None,
        "per_channel_scales": len(scales) if len(scales) > 1 else 0,
    }


def _snippets(io: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    inputs = [t for t in io["inputs"] if t["quantized"] and t["scale"] is not None]
    outputs = [t for t in io["outputs"] if t["quantized"] and t["scale"] is not None]
    if not inputs and not outputs:
        return {
            "needed": False,
            "python": "",
            "c": "",
            "note": "Float inputs and outputs: feed float32 directly, no quantization needed.",
        }
    py = [
        "import numpy as np",
        "",
        "# Same arithmetic as LiteRT's QUANTIZE/DEQUANTIZE kernels (round half away from zero).",
    ]
    c = [
        "#include <math.h>",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        "/* Same arithmetic as TFLite's QUANTIZE/DEQUANTIZE kernels. */",
    ]
    for k, t in enumerate(inputs):
        lo, hi = _INT_RANGES[t["dtype"].upper()]
        suffix = "" if len(inputs) == 1 else f"_{k}"
        sc = float(np.float32(t["scale"]))
        py += [
            "",
            f"# input {t['name']!r}: {t['dtype']} {t['shape']}",
            f"INPUT{suffix.upper()}_SCALE = np.float32({sc!r})",
            f"INPUT{suffix.upper()}_ZERO_POINT = {t['zero_point']}",
            "",
            "",
            f"def quantize_input{suffix}(x):",
            '    """float32 input (preprocessed as in training) -> '
            f'{t["dtype"]} tensor for the model."""',
            f"    v = np.asarray(x, dtype=np.float32) / INPUT{suffix.upper()}_SCALE",
            "    r = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))",
            f"    q = r.astype(np.int64) + INPUT{suffix.upper()}_ZERO_POINT",
            f"    return np.clip(q, {lo}, {hi}).astype({_NP_TYPES[t['dtype'].upper()]})",
        ]
        ctype = _C_TYPES[t["dtype"].upper()]
        c += [
            "",
            f'/* input "{t["name"]}": {t["dtype"]} {t["shape"]} */',
            f"static const float kInput{suffix}Scale = {sc:.9g}f;",
            f"static const int32_t kInput{suffix}ZeroPoint = {t['zero_point']};",
            "",
            f"void quantize_input{suffix}(const float* x, {ctype}* q, size_t n) {{",
            "  for (size_t i = 0; i < n; ++i) {",
            f"    int32_t v = (int32_t)roundf(x[i] / kInput{suffix}Scale)"
            f" + kInput{suffix}ZeroPoint;",
            f"    if (v < {lo}) v = {lo};",
            f"    if (v > {hi}) v = {hi};",
            f"    q[i] = ({ctype})v;",
            "  }",
            "}",
        ]
    for k, t in enumerate(outputs):
        suffix = "" if len(outputs) == 1 else f"_{k}"
        sc = float(np.float32(t["scale"]))
        py += [
            "",
            f"# output {t['name']!r}: {t['dtype']} {t['shape']}",
            f"OUTPUT{suffix.upper()}_SCALE = {sc!r}",
            f"OUTPUT{suffix.upper()}_ZERO_POINT = {t['zero_point']}",
            "",
            "",
            f"def dequantize_output{suffix}(q):",
            f'    """{t["dtype"]} model output -> float32 values."""',
            f"    d = np.asarray(q).astype(np.float64) - OUTPUT{suffix.upper()}_ZERO_POINT",
            f"    return (d * OUTPUT{suffix.upper()}_SCALE).astype(np.float32)",
        ]
        ctype = _C_TYPES[t["dtype"].upper()]
        c += [
            "",
            f'/* output "{t["name"]}": {t["dtype"]} {t["shape"]} */',
            f"static const float kOutput{suffix}Scale = {sc:.9g}f;",
            f"static const int32_t kOutput{suffix}ZeroPoint = {t['zero_point']};",
            "",
            f"void dequantize_output{suffix}(const {ctype}* q, float* y, size_t n) {{",
            "  for (size_t i = 0; i < n; ++i) {",
            f"    y[i] = (float)((double)kOutput{suffix}Scale * "
            f"(double)((int32_t)q[i] - kOutput{suffix}ZeroPoint));",
            "  }",
            "}",
        ]
    note = "Quantize float inputs before invoke() and dequantize outputs after it."
    float_io = [t["name"] for t in io["inputs"] + io["outputs"] if not t["quantized"]]
    if float_io:
        note += f" Tensors {float_io} are not quantized: use them as they are."
    return {"needed": True, "python": "\n".join(py) + "\n", "c": "\n".join(c) + "\n", "note": note}


def _tflm_type_problems(model: Any) -> list[str]:
    """Data-type reasons TFLite Micro refuses a model whose ops it otherwise has.

    Both were seen with the tflite-micro interpreter (0.dev20261023): float16 weights
    (``DEQUANTIZE`` from float16 fails to prepare) and hybrid ops from dynamic-range
    quantization (float activations with int8 weights: "Hybrid models are not supported").
    """
    float16: set[str] = set()
    hybrid: set[str] = set()
    for name, ins, outs in _ops_io(model):
        if any(_dtype_name(t.type) == "FLOAT16" for t in ins + outs):
            float16.add(name)
        float_act = any(
            _dtype_name(t.type) == "FLOAT32" and _buffer_size(model, t.buffer) == 0 for t in ins
        )
        int_weight = any(
            _dtype_name(t.type) in ("INT8", "UINT8", "INT4") and _buffer_size(model, t.buffer) > 0
            for t in ins
        )
        if name != "DEQUANTIZE" and float_act and int_weight:
            hybrid.add(name)
    problems = []
    if float16:
        problems.append(f"float16 tensors (float16 quantization) in {sorted(float16)}")
    if hybrid:
        problems.append(
            f"hybrid ops (dynamic-range quantization: float activations, int8 weights) "
            f"in {sorted(hybrid)}; use full-integer int8"
        )
    return problems


def _ops_io(model: Any) -> Iterator[tuple[str, list[Any], list[Any]]]:
    """``(op name, input tensors, output tensors)`` of every op of every subgraph."""
    opcodes = [_op_name(oc)[0] for oc in model.operatorCodes or []]
    for sg in model.subgraphs or []:
        tensors = sg.tensors or []
        for op in sg.operators or []:
            ins = [tensors[i] for i in op.inputs or [] if i >= 0]
            outs = [tensors[i] for i in op.outputs or [] if i >= 0]
            yield opcodes[op.opcodeIndex], ins, outs


_BOUNDARY_OPS = {"QUANTIZE", "DEQUANTIZE"}
_FLOAT_TYPES = {"FLOAT32", "FLOAT16", "BFLOAT16", "FLOAT64"}
_INT_ACTIVATIONS = {"INT8", "UINT8", "INT16"}


def full_integer(model: Any) -> dict[str, Any]:
    """Whether every op of ``model`` (a ModelT) computes on integers; see the module doc.

    An op computes in float when one of its non-constant inputs or outputs is a float
    tensor; ``QUANTIZE``/``DEQUANTIZE`` only convert and are not counted.
    """
    float_ops: dict[str, int] = {}
    int8 = False
    for name, ins, outs in _ops_io(model):
        live = [t for t in ins if _buffer_size(model, t.buffer) == 0] + outs
        if name in _BOUNDARY_OPS:
            continue
        if any(_dtype_name(t.type) in _INT_ACTIVATIONS for t in outs):
            int8 = True
        if any(_dtype_name(t.type) in _FLOAT_TYPES for t in live):
            float_ops[name] = float_ops.get(name, 0) + 1
    names = sorted(float_ops)
    if not names:
        summary = "Full-integer: every op computes on integers."
    elif int8:
        summary = f"Not full-integer: int8 model with ops kept in float: {names}."
    else:
        summary = "Not full-integer: a float model."
    return {"ok": not names, "int8": int8, "float_ops": names, "summary": summary}


def _verdicts(
    ops: list[dict[str, Any]], model: Any, integer: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    non_builtin = [o["name"] for o in ops if o["kind"] != "builtin"]
    flex = [o["name"] for o in ops if o["kind"] == "flex"]
    if not non_builtin:
        lite_summary = "Runs with the LiteRT (TFLite) built-in ops."
    elif flex:
        lite_summary = (
            f"Needs the Select-TF (Flex) delegate, i.e. the full TensorFlow runtime, for {flex}."
        )
    else:
        lite_summary = f"Needs custom op kernels registered by the app: {non_builtin}."
    tflm = tflm_op_list()
    known = set(tflm["builtin_ops"]) | set(tflm["custom_ops"])
    missing = sorted(o["name"] for o in ops if o["name"] not in known)
    problems = _tflm_type_problems(model)
    integer = integer or full_integer(model)
    if integer["int8"] and integer["float_ops"]:
        problems.append(
            f"mixed int8/float models (not full-integer: float {integer['float_ops']}); "
            "the float ops run only on float reference kernels, if at all"
        )
    parts = []
    if missing:
        parts.append(f"TFLite Micro has no kernel for: {missing}.")
    if problems:
        parts.append("TFLite Micro does not support " + "; ".join(problems) + ".")
    tflm_summary = (
        " ".join(parts)
        if parts
        else "All ops are in TFLite Micro's kernel list (per-op type support not fully checked)."
    )
    return {
        "litert_builtins": {
            "ok": not non_builtin,
            "missing": sorted(non_builtin),
            "problems": [],
            "summary": lite_summary,
        },
        "tflite_micro": {
            "ok": not missing and not problems,
            "missing": missing,
            "problems": problems,
            "summary": tflm_summary,
        },
    }


def report_tflite(path: str | Path) -> dict[str, Any]:
    """Deployment report of the ``.tflite`` at ``path`` (keys: see the module docstring).

    Raises BadInputError if the file is missing or not a TFLite model.
    """
    data, model = read_model(path)
    ops, sequence = _collect_ops(model)
    flex = sorted(o["name"] for o in ops if o["kind"] == "flex")
    custom = sorted(o["name"] for o in ops if o["kind"] == "custom")
    # Flash for weights: every distinct buffer a tensor points to (shared buffers once).
    const_buffers = {int(t.buffer) for sg in model.subgraphs or [] for t in sg.tensors or []}
    weights = sum(_buffer_size(model, b) for b in const_buffers)
    act = _activation_memory(model)
    sg = model.subgraphs[0] if model.subgraphs else None
    io = {
        "inputs": [_io_entry(sg, i) for i in (sg.inputs or [])] if sg else [],
        "outputs": [_io_entry(sg, i) for i in (sg.outputs or [])] if sg else [],
    }
    tflm = tflm_op_list()
    integer = full_integer(model)
    return {
        "format_version": REPORT_FORMAT_VERSION,
        "file": str(Path(path)),
        "file_bytes": len(data),
        "subgraphs": len(model.subgraphs or []),
        "ops": ops,
        "op_sequence": sequence,
        "flex_ops": flex,
        "custom_ops": custom,
        "full_integer": integer,
        "verdicts": _verdicts(ops, model, integer),
        "memory": {
            "file_bytes": len(data),
            "weights_bytes": weights,
            "activation_sum_bytes": act["sum"],
            "activation_peak_live_bytes": act["peak_live"],
            "arena_estimate_bytes": act["arena"],
            "estimate": True,
            "note": (
                "Estimate: activations of the main subgraph planned greedily by lifetime "
                f"({ARENA_ALIGNMENT}-byte aligned). A real TFLite Micro arena adds per-op "
                "scratch buffers and interpreter bookkeeping (often a few KB); weights stay in "
                "flash unless the model is copied to RAM. Tensors computed from constants "
                "(e.g. float16 weights dequantized to float32) count as activations."
            ),
        },
        "io": io,
        "snippets": _snippets(io),
        "metadata": metadata_from_model(model),
        "tflm_ops_source": tflm["source"],
    }


def _kb(n: int) -> str:
    return f"{n:,} B ({n / 1024:.1f} KiB)"


def format_tflite_report(report: dict[str, Any]) -> str:
    """Readable text of ``report_tflite``'s dict (what ``featherweight report`` prints)."""
    lines = [f"Deployment report: {report['file']}", ""]
    mem = report["memory"]
    lines += [
        "Memory (estimate)",
        f"  file size            {_kb(mem['file_bytes'])}",
        f"  weights (flash)      {_kb(mem['weights_bytes'])}",
        f"  tensor arena (est.)  {_kb(mem['arena_estimate_bytes'])}"
        f"   peak live {_kb(mem['activation_peak_live_bytes'])},"
        f" no reuse {_kb(mem['activation_sum_bytes'])}",
        f"  {mem['note']}",
        "",
        "Ops",
    ]
    width = max([len(o["name"]) for o in report["ops"]] + [4])
    for o in report["ops"]:
        flag = {"flex": "  [FLEX: needs TensorFlow runtime]", "custom": "  [custom]"}.get(
            o["kind"], ""
        )
        lines.append(
            f"  {o['name']:<{width}}  x{o['count']:<3} in {','.join(o['input_dtypes']) or '-'}"
            f"  out {','.join(o['output_dtypes']) or '-'}{flag}"
        )
    lines += ["", "Compatibility"]
    integer = report.get("full_integer")
    if integer:
        lines.append(
            f"  {'Full-integer':<17} {'YES' if integer['ok'] else 'NO '} {integer['summary']}"
        )
    for key, label in (("litert_builtins", "LiteRT built-ins"), ("tflite_micro", "TFLite Micro")):
        v = report["verdicts"][key]
        lines.append(f"  {label:<17} {'OK ' if v['ok'] else 'NO '} {v['summary']}")
    lines += ["", "Inputs / outputs"]
    for role in ("inputs", "outputs"):
        for t in report["io"][role]:
            q = ""
            if t["scale"] is not None:
                q = f"  scale={t['scale']:.9g} zero_point={t['zero_point']}"
            elif t["per_channel_scales"]:
                q = f"  per-channel quantization ({t['per_channel_scales']} scales)"
            lines.append(f"  {role[:-1]:<6} {t['name']}  {t['dtype']} {t['shape']}{q}")
    meta = report.get("metadata")
    if meta:
        if meta.get("labels"):
            lines.append(f"  labels: {', '.join(map(str, meta['labels']))}")
        norm = meta.get("input_normalization")
        if norm:
            lines.append(f"  input normalization: (x - {norm['mean']}) / {norm['std']}")
    snip = report["snippets"]
    lines += ["", "Quantize / dequantize"]
    if not snip["needed"]:
        lines.append(f"  {snip['note']}")
    else:
        lines += ["  " + snip["note"], "", "  Python:", ""]
        lines += ["    " + s if s else "" for s in snip["python"].splitlines()]
        lines += ["", "  C:", ""]
        lines += ["    " + s if s else "" for s in snip["c"].splitlines()]
    src = report["tflm_ops_source"]
    lines += ["", f"TFLite Micro op list: {src['url']} (retrieved {src['retrieved']})"]
    return "\n".join(lines)


def write_report(
    tflite_path: str | Path, out_dir: str | Path, file_name: str | None = None
) -> Path:
    """Write ``report_tflite(tflite_path)`` as ``out_dir/report.json``; return its path.

    ``file_name`` replaces the report's ``file`` entry (e.g. the name the file will have once
    moved into place, when it is measured in a temporary folder).
    """
    report = report_tflite(tflite_path)
    if file_name is not None:
        report["file"] = file_name
    out = Path(out_dir)
    target = out / "report.json"
    try:
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / ".report.json.tmp"
        tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        raise BadInputError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target
