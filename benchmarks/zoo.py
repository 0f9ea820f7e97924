"""The model zoo benchmark (issue 13): every zoo family through the engine, one table.

    python benchmarks/zoo.py [--families a,b,...] [--out benchmarks/ZOO.md] [--no-prune]

Per family (``tests/zoo/builders.py``; built once, cached on disk), in a fresh process so that
its peak memory is its own:

- import diff: ``inspect_path``'s Keras 3 import check (max |Keras 3 - Keras 2| output), or
  "-" for files saved by tf_keras;
- int8 PTQ (``compress`` with a quantize int8 step, 100 calibration samples): float32 and
  int8 LiteRT accuracy on the test split, the drop, and whether the int8 ``.tflite`` is
  full-integer (no op other than QUANTIZE/DEQUANTIZE produces float32; the float ones are
  named);
- prune 50 % (2 epochs) + int8: kernel sparsity measured on the exported file and the drop
  (skipped for refusal families, and reported as an error when the engine fails);
- wall time of the whole family (build excluded when cached) and the process's peak RSS.

Writes ``--out`` (markdown table + notes) and the same rows as JSON beside it
(``.json``). An error is recorded as its one-line message: the table shows what fails today.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PRUNE_TARGET = 0.5
PRUNE_EPOCHS = 2
CALIBRATION = 100
NUMERIC_DTYPES = {"int8", "int16", "int32", "int64", "uint8", "bool"}
BOUNDARY_OPS = {"QUANTIZE", "DEQUANTIZE"}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def _recipe(prune: bool) -> Any:
    from engine.pipeline.recipe import validate_recipe

    steps: list[dict[str, Any]] = []
    if prune:
        steps.append({"type": "prune", "target_sparsity": PRUNE_TARGET, "epochs": PRUNE_EPOCHS})
    steps.append({"type": "quantize", "mode": "int8", "calibration_samples": CALIBRATION})
    return validate_recipe({"schema_version": 2, "batch_size": 32, "steps": steps})


def float_ops(report: dict[str, Any]) -> list[str]:
    """Ops of a deployment report (engine.tflite.report) that produce float32 tensors,
    besides the QUANTIZE/DEQUANTIZE at the float input/output boundary."""
    return sorted(
        o["name"]
        for o in report["ops"]
        if o["name"] not in BOUNDARY_OPS and "float32" in (o.get("output_dtypes") or [])
    )


def run_family(name: str, prune: bool = True) -> dict[str, Any]:
    """Measure one family in this process; every failure is caught into the row."""
    t0 = time.monotonic()
    row: dict[str, Any] = {"family": name}
    from tests.zoo.builders import build_family

    try:
        entry = build_family(name)
    except Exception as exc:  # noqa: BLE001 - recorded in the table
        row["build_error"] = _one_line(exc)
        return _finish(row, t0)
    fam = entry.family
    row.update(
        saved_by=f"{fam.saver} .{fam.fmt}" if fam.fmt != "savedmodel" else "keras2 SavedModel",
        params=entry.info["params"],
        keras_accuracy=entry.info["keras_test_accuracy"],
        big=fam.big,
        refusal=fam.refusal,
    )
    t_build = time.monotonic()
    row["build_s"] = round(t_build - t0, 1)
    from engine.models.loading import inspect_path

    try:
        report = inspect_path(entry.model_path)
        check = report.get("import_check")
        row["import_diff"] = None if check is None else check["max_abs_diff"]
        row["output_kind"] = report.get("output_kind")
    except Exception as exc:  # noqa: BLE001
        row["inspect_error"] = _one_line(exc)
    from engine.pipeline.run import compress

    for key, with_prune in (("int8", False), ("prune_int8", True)):
        if with_prune and (not prune or fam.refusal):
            continue
        t = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"zoo-{name}-") as out:
            try:
                m = compress(str(entry.model_path), str(entry.data_path), _recipe(with_prune), out)
                rep = json.loads((Path(out) / "report.json").read_text())
                row[key] = {
                    "float_accuracy": m["baseline"]["accuracy"],
                    "accuracy": m["compressed"]["accuracy"],
                    "drop": m["accuracy_drop"],
                    "sparsity": m["compressed"]["sparsity"],
                    "float_ops": float_ops(rep),
                    "ops": [o["name"] for o in rep["ops"]],
                    "flex_ops": rep["flex_ops"],
                    "tflite_bytes": m["compressed"]["tflite_bytes"],
                    "warnings": m.get("warnings", []),
                    "seconds": round(time.monotonic() - t, 1),
                }
            except Exception as exc:  # noqa: BLE001
                row[key] = {"error": _one_line(exc), "seconds": round(time.monotonic() - t, 1)}
    return _finish(row, t_build, build=row.get("build_s", 0.0))


def _finish(row: dict[str, Any], t0: float, build: float = 0.0) -> dict[str, Any]:
    row["seconds"] = round(time.monotonic() - t0, 1)
    row["build_s"] = build
    row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return row


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}"


def _cell_drop(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    if "error" in r:
        return "FAIL"
    return f"{r['drop'] * 100:+.1f}"


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The zoo table (family × import diff, int8 drop, prune+int8 sparsity and drop,
    full-integer, time, peak memory) and the error of every failing cell."""
    lines = [
        "# Model zoo benchmark",
        "",
        f"{meta['date']}; TensorFlow {meta.get('tensorflow', '?')}, {os.cpu_count()} CPUs. "
        f"int8 = full-integer PTQ, {CALIBRATION} calibration samples; prune = "
        f"{PRUNE_TARGET:.0%} target, {PRUNE_EPOCHS} epochs, then int8. Accuracies are LiteRT "
        "top-1 on the test split; drops in points (float32 .tflite − compressed). Time = "
        "inspect + int8 + prune+int8 (model build excluded); memory = peak RSS of the "
        "family's process.",
        "",
        "| family | saved by | params | import diff | float acc | int8 drop | full-integer "
        "| prune+int8 sparsity | prune+int8 drop | time s | peak MB |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    notes: list[str] = []
    for r in rows:
        name = r["family"]
        if "build_error" in r:
            lines.append(f"| {name} | build failed | | | | | | | | | |")
            notes.append(f"- **{name}** build: {r['build_error']}")
            continue
        diff = r.get("import_diff")
        diff_cell = "FAIL" if "inspect_error" in r else ("-" if diff is None else f"{diff:.1e}")
        if "inspect_error" in r:
            notes.append(f"- **{name}** inspect: {r['inspect_error']}")
        i8, pr = r.get("int8"), r.get("prune_int8")
        for key, res in (("int8", i8), ("prune+int8", pr)):
            if res and "error" in res:
                notes.append(f"- **{name}** {key}: {res['error']}")
        full = "-"
        if i8 and "error" not in i8:
            full = "yes" if not i8["float_ops"] else "no (" + ", ".join(i8["float_ops"]) + ")"
        float_acc = _pct(i8["float_accuracy"]) if i8 and "error" not in i8 else "-"
        sparsity = "-" if not pr or "error" in pr else f"{pr['sparsity'] * 100:.0f} %"
        lines.append(
            f"| {name} | {r['saved_by']} | {r['params']:,} | {diff_cell} | {float_acc} | "
            f"{_cell_drop(i8)} | {full} | {sparsity} | {_cell_drop(pr)} | {r['seconds']} | "
            f"{r['peak_rss_mb']:.0f} |"
        )
    if notes:
        lines += ["", "## Failures (one line each, as the engine reported them)", "", *notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from tests.zoo.builders import FAMILIES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="", help="comma-separated (default: all)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "ZOO.md"))
    parser.add_argument("--no-prune", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child mode: one family, JSON out
    args = parser.parse_args(argv)
    if args.one:
        print("ZOO-ROW " + json.dumps(run_family(args.one, prune=not args.no_prune)), flush=True)
        return 0
    names = [n for n in args.families.split(",") if n] or list(FAMILIES)
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        print(f"zoo: unknown families {unknown}; known: {list(FAMILIES)}", file=sys.stderr)
        return 2
    rows = []
    for name in names:
        cmd = [sys.executable, __file__, "--one", name] + (["--no-prune"] if args.no_prune else [])
        t = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        row = next(
            (json.loads(ln[8:]) for ln in proc.stdout.splitlines() if ln.startswith("ZOO-ROW ")),
            None,
        )
        if row is None:
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            row = {"family": name, "build_error": f"process exit {proc.returncode}: {tail}"}
        rows.append(row)
        print(f"{name}: {time.monotonic() - t:.0f} s", file=sys.stderr, flush=True)
    import importlib.metadata as md

    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    try:
        meta["tensorflow"] = md.version("tensorflow")
    except md.PackageNotFoundError:
        pass
    out = Path(args.out)
    out.write_text(markdown(rows, meta), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
