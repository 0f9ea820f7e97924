"""The model zoo benchmark (issue 13): every zoo family through the engine, one table.

    python benchmarks/zoo.py [--families a,b,...] [--out benchmarks/ZOO.md] [--no-prune]
    python benchmarks/zoo.py --render    # rewrite ZOO.md from ZOO.json

Families are built by ``tests/zoo/builders.py`` with the ``"bench"`` profile (trained by
gradient descent, the big ones from scratch on the whole digits training split; cached on
disk). Per family, the build runs in one process and the measurements in a fresh one, so that
the peak memory is the engine's own:

- import diff: ``inspect_path``'s Keras 3 import check (max |Keras 3 - Keras 2| output), or
  "-" for files saved by tf_keras;
- int8 PTQ (``compress`` with a quantize int8 step, 100 calibration samples; the engine's
  checked int8: compared with float on the validation split, layers kept float when the drop
  is over 2 points): float32 and int8 LiteRT accuracy on the test split, the drop, whether
  the file is full-integer (``compressed.full_integer``) and what was kept float;
- prune 50 % + int8 (the engine's recipe: a prune step with target 0.5, then the same int8
  step; layers tfmot cannot prune are skipped and warned about by the engine): kernel
  sparsity measured on the exported file and the drop (skipped for refusal families);
- wall time of inspect + int8 + prune+int8 (build excluded) and the peak RSS of that process.

Writes ``--out`` (markdown table + notes) and the same rows as JSON beside it (``.json``),
after every family (a run cut short keeps what it measured). An error is recorded as its
one-line message: the table shows what fails.
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
# The heaviest networks fine-tune one epoch while pruning (about 2 minutes per epoch on 2 CPUs).
PRUNE_EPOCHS_OF = {"resnet50": 1, "densenet121": 1, "nasnet_mobile": 1}
CALIBRATION = 100
INT8_BAR, PRUNE_BAR = 0.02, 0.03  # the bars (accuracy fractions)
NUMERIC_DTYPES = {"int8", "int16", "int32", "int64", "uint8", "bool"}
BOUNDARY_OPS = {"QUANTIZE", "DEQUANTIZE"}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def _recipe(prune: bool, epochs: int = PRUNE_EPOCHS) -> Any:
    from engine.pipeline.recipe import validate_recipe

    steps: list[dict[str, Any]] = []
    if prune:
        step: dict[str, Any] = {"type": "prune", "target_sparsity": PRUNE_TARGET, "epochs": epochs}
        if os.environ.get("ZOO_PRUNE_LR"):  # --prune-lr (else the prune step's default)
            step["learning_rate"] = float(os.environ["ZOO_PRUNE_LR"])
        steps.append(step)
    steps.append({"type": "quantize", "mode": "int8", "calibration_samples": CALIBRATION})
    return validate_recipe({"schema_version": 2, "batch_size": 32, "steps": steps})


def float_ops(report: dict[str, Any]) -> list[str]:
    """Ops of a deployment report (engine.tflite.report) that produce float32 tensors,
    besides the QUANTIZE/DEQUANTIZE at the float input/output boundary."""
    return sorted(
        o["name"]
        for o in report.get("ops", [])
        if o["name"] not in BOUNDARY_OPS and "float32" in (o.get("output_dtypes") or [])
    )


def build(name: str) -> dict[str, Any]:
    """Build (or reuse) the family's bench model in this process; its info + build time."""
    from tests.zoo.builders import build_family

    t0 = time.monotonic()
    entry = build_family(name, profile="bench")
    return {**entry.info, "build_wall_s": round(time.monotonic() - t0, 1)}


def _result(m: dict[str, Any], out: Path, seconds: float) -> dict[str, Any]:
    rep = json.loads((out / "report.json").read_text())
    comp = m["compressed"]
    check = comp.get("int8_check") or {}
    return {
        "float_accuracy": m["baseline"]["accuracy"],
        "accuracy": comp["accuracy"],
        "drop": m["accuracy_drop"],
        "sparsity": comp["sparsity"],
        "full_integer": comp.get("full_integer"),
        "keep_float": check.get("keep_float", []),
        "keep_float_reasons": check.get("reasons", {}),
        "pure_int8_val_drop_points": (
            None
            if check.get("pure_int8_accuracy") is None or check.get("float_accuracy") is None
            else round((check["float_accuracy"] - check["pure_int8_accuracy"]) * 100, 2)
        ),
        "debugger_seconds": check.get("debugger_seconds"),
        "conversion_notes": comp.get("conversion_notes", []),
        "float_ops": float_ops(rep),
        "flex_ops": rep.get("flex_ops"),
        "tflite_bytes": comp["tflite_bytes"],
        "baseline_tflite_bytes": m["baseline"]["tflite_bytes"],
        "warnings": m.get("warnings", []),
        "timings": m.get("timings", {}),
        "seconds": round(seconds, 1),
    }


def run_family(name: str, prune: bool = True) -> dict[str, Any]:
    """Measure one (already built) family in this process; every failure is caught into the
    row."""
    from tests.zoo.builders import build_family

    row: dict[str, Any] = {"family": name}
    try:
        entry = build_family(name, profile="bench")  # cached by the build process
    except Exception as exc:  # noqa: BLE001 - recorded in the table
        row["build_error"] = _one_line(exc)
        return row
    fam = entry.family
    row.update(
        saved_by=f"{fam.saver} .{fam.fmt}" if fam.fmt != "savedmodel" else "keras2 SavedModel",
        params=entry.info["params"],
        keras_accuracy=entry.info["keras_test_accuracy"],
        build_s=entry.info["build_seconds"],
        big=fam.big,
        refusal=fam.refusal,
        test_tier=fam.test_tier,
    )
    t0 = time.monotonic()
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
        epochs = int(os.environ.get("ZOO_PRUNE_EPOCHS") or PRUNE_EPOCHS_OF.get(name, PRUNE_EPOCHS))
        with tempfile.TemporaryDirectory(prefix=f"zoo-{name}-") as out:
            try:
                m = compress(
                    str(entry.model_path), str(entry.data_path), _recipe(with_prune, epochs), out
                )
                row[key] = _result(m, Path(out), time.monotonic() - t)
                if with_prune:
                    row[key]["prune_epochs"] = epochs
            except Exception as exc:  # noqa: BLE001
                row[key] = {"error": _one_line(exc), "seconds": round(time.monotonic() - t, 1)}
    row["seconds"] = round(time.monotonic() - t0, 1)
    row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return row


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}"


def _cell_drop(r: dict[str, Any] | None, refusal: bool = False) -> str:
    if r is None:
        return "-"
    if "error" in r:
        return "refused" if refusal else "FAIL"
    return f"{r['drop'] * 100:+.1f}"


def _full(r: dict[str, Any] | None) -> str:
    if not r or "error" in r or r.get("full_integer") is None:
        return "-"
    if r["full_integer"]:
        return "yes"
    kept = ", ".join(r.get("keep_float") or []) or ", ".join(r.get("float_ops") or [])
    return f"no (float: {kept})" if kept else "no"


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The zoo table (family × import diff, int8 drop, prune+int8 sparsity and drop,
    full-integer, time, peak memory) and the error of every failing cell."""
    lines = [
        "# Model zoo benchmark",
        "",
        *(
            [f"**{meta['prune_override']}** (overrides the epochs below).", ""]
            if meta.get("prune_override")
            else []
        ),
        f"{meta['date']}; TensorFlow {meta.get('tensorflow', '?')}, {os.cpu_count()} CPUs "
        "(shared with other work while it ran: times are indicative). Models from "
        "`tests/zoo/builders.py`, profile `bench` (trained; 32×32 digits for the image "
        "families). int8 = the engine's checked full-integer PTQ "
        f"({CALIBRATION} calibration samples; over a 2-point drop on the validation split it "
        "keeps the responsible layers float); prune = the engine's prune step, "
        f"{PRUNE_TARGET:.0%} target, {PRUNE_EPOCHS} epochs ("
        + ", ".join(f"{n} {e}" for n, e in PRUNE_EPOCHS_OF.items())
        + "), then the same int8. Accuracies are LiteRT top-1 on the test split; drops in "
        "points (float32 .tflite − compressed; negative = better). Time = inspect + int8 + "
        "prune+int8 in one process (model build excluded, column build s); memory = that "
        "process's peak RSS.",
        "",
        "| family | saved by | params | Keras acc | import diff | float acc | int8 drop "
        "| full-integer (int8) | prune+int8 sparsity | prune+int8 drop | full-integer "
        "(prune+int8) | time s | peak MB | build s |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---:|",
    ]
    notes: list[str] = []
    for r in rows:
        name = r["family"]
        if "build_error" in r:
            lines.append(f"| {name} | build failed |" + " |" * 12)
            notes.append(f"- **{name}** build: {r['build_error']}")
            continue
        diff = r.get("import_diff")
        refusal = bool(r.get("refusal"))
        failed = "refused" if refusal else "FAIL"
        diff_cell = failed if "inspect_error" in r else ("-" if diff is None else f"{diff:.1e}")
        if "inspect_error" in r:
            notes.append(f"- **{name}** inspect: {r['inspect_error']}")
        i8, pr = r.get("int8"), r.get("prune_int8")
        for key, res in (("int8", i8), ("prune+int8", pr)):
            if res and "error" in res:
                notes.append(f"- **{name}** {key}: {res['error']}")
            elif res:
                if res.get("debugger_seconds"):
                    notes.append(
                        f"- **{name}** {key}: pure int8 lost {res['pure_int8_val_drop_points']}"
                        f" points on the validation split; the debugger ({res['debugger_seconds']}"
                        f" s) kept {res['keep_float']} float"
                    )
                for w in res.get("warnings", []):
                    if any(k in w for k in ("left dense", "not prun", "skipp", "kept in float")):
                        notes.append(f"- **{name}** {key}: {w}")
        if i8 and i8.get("conversion_notes"):
            notes.append(f"- **{name}** conversion: {'; '.join(i8['conversion_notes'])}")
        float_acc = _pct(i8["float_accuracy"]) if i8 and "error" not in i8 else "-"
        sparsity = "-" if not pr or "error" in pr else f"{pr['sparsity'] * 100:.0f} %"
        keras_acc = r.get("keras_accuracy")
        keras_cell = "-" if keras_acc is None or keras_acc != keras_acc else _pct(keras_acc)
        lines.append(
            f"| {name} | {r['saved_by']} | {r['params']:,} | {keras_cell} | {diff_cell} | "
            f"{float_acc} | {_cell_drop(i8, refusal)} | {_full(i8)} | {sparsity} | "
            f"{_cell_drop(pr, refusal)} | "
            f"{_full(pr)} | {r.get('seconds', '-')} | {r.get('peak_rss_mb', 0):.0f} | "
            f"{r.get('build_s', '-')} |"
        )
    lines += ["", "## Against the issue's bars", "", *_bars(rows)]
    if notes:
        lines += [
            "",
            "## Notes (one line each, as the engine reported them; refusals are the expected "
            "answer for multi-output and custom-layer models)",
            "",
            *notes,
        ]
    if meta.get("missing"):
        lines += ["", f"Not measured in this run: {', '.join(meta['missing'])}."]
    return "\n".join(lines) + "\n"


def _bars(rows: list[dict[str, Any]]) -> list[str]:
    """Which families miss "int8 within 2 points" and "prune >= 50 % + int8 within 3 points"
    (refusals excluded; sparsity is not held against layers the engine left dense and said
    so, which the issue allows)."""
    int8_bad, prune_bad, measured, skipped = [], [], [], []
    for r in rows:
        if r.get("refusal") or "build_error" in r:
            continue
        measured.append(r["family"])
        i8, pr = r.get("int8") or {}, r.get("prune_int8") or {}
        if "error" in i8 or i8.get("drop", 1.0) > INT8_BAR + 1e-9:
            int8_bad.append(f"{r['family']} ({_cell_drop(i8)})")
        if not pr:
            continue
        left_dense = any("left dense" in w for w in pr.get("warnings", []))
        if "error" in pr:
            prune_bad.append(f"{r['family']} (FAIL)")
        elif pr["drop"] > PRUNE_BAR + 1e-9 or (pr["sparsity"] < 0.495 and not left_dense):
            prune_bad.append(f"{r['family']} ({pr['sparsity']:.0%}, {_cell_drop(pr)})")
        if left_dense:
            skipped.append(r["family"])
    return [
        f"- int8 within {INT8_BAR * 100:.0f} points of float: "
        + (f"missed by {', '.join(int8_bad)}" if int8_bad else f"all {len(measured)} measured"),
        f"- prune ≥ 50 % + int8 within {PRUNE_BAR * 100:.0f} points: "
        + (f"missed by {', '.join(prune_bad)}" if prune_bad else f"all {len(measured)} measured"),
        "- layers tfmot cannot prune, left dense with a warning (allowed by the issue): "
        + (", ".join(skipped) if skipped else "none"),
    ]


def _child(args: list[str], name: str) -> tuple[dict[str, Any] | None, str]:
    cmd = [sys.executable, __file__, *args, name]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    row = next(
        (json.loads(ln[8:]) for ln in proc.stdout.splitlines() if ln.startswith("ZOO-ROW ")),
        None,
    )
    tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    return row, f"process exit {proc.returncode}: {tail}"


def _write(out: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    out.write_text(markdown(rows, meta), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    from tests.zoo.builders import FAMILIES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="", help="comma-separated (default: all)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "ZOO.md"))
    parser.add_argument("--no-prune", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child mode: measure one family
    parser.add_argument("--build", help=argparse.SUPPRESS)  # child mode: build one family
    parser.add_argument(
        "--render", action="store_true", help="rewrite --out from its .json (no measuring)"
    )
    parser.add_argument("--prune-epochs", type=int, help="prune fine-tune epochs, every family")
    parser.add_argument("--prune-lr", type=float, help="prune fine-tune learning rate")
    args = parser.parse_args(argv)
    if args.prune_epochs:  # the measuring child processes read these
        os.environ["ZOO_PRUNE_EPOCHS"] = str(args.prune_epochs)
    if args.prune_lr:
        os.environ["ZOO_PRUNE_LR"] = repr(args.prune_lr)
    if args.render:
        saved = json.loads(Path(args.out).with_suffix(".json").read_text())
        _write(Path(args.out), saved["rows"], saved["meta"])
        return 0
    if args.build:
        print("ZOO-ROW " + json.dumps(build(args.build)), flush=True)
        return 0
    if args.one:
        print("ZOO-ROW " + json.dumps(run_family(args.one, prune=not args.no_prune)), flush=True)
        return 0
    # Default: every family, the quick ones first (a run cut short still has most rows).
    quick_first = sorted(FAMILIES, key=lambda n: FAMILIES[n].big)
    names = [n for n in args.families.split(",") if n] or quick_first
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        print(f"zoo: unknown families {unknown}; known: {list(FAMILIES)}", file=sys.stderr)
        return 2
    import importlib.metadata as md

    meta: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if args.prune_epochs or args.prune_lr:
        meta["prune_override"] = (
            f"prune fine-tune for this run: {args.prune_epochs or 'default'} epochs, learning "
            f"rate {args.prune_lr or 'the step default 1e-4'}"
        )
    try:
        meta["tensorflow"] = md.version("tensorflow")
    except md.PackageNotFoundError:
        pass
    out = Path(args.out)
    rows: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        t = time.monotonic()
        built, why = _child(["--build"], name)
        row = None
        if built is not None:
            row, why = _child(["--one"] + (["--no-prune"] if args.no_prune else []), name)
        rows.append(row or {"family": name, "build_error": why})
        meta["missing"] = names[i + 1 :]
        meta["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        _write(out, rows, meta)
        print(f"{name}: {time.monotonic() - t:.0f} s", file=sys.stderr, flush=True)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
