"""The ``featherweight`` command line.

    featherweight                       open the desktop app (also: --demo, PROJECT_FILE)
    featherweight inspect MODEL [--json]
    featherweight compress MODEL --data DATA --recipe RECIPE.json --out DIR [--json]
    featherweight run PROJECT_FILE      run a project's pending recipes headless
    featherweight report MODEL.tflite [--json]
    featherweight demo --out DIR        write the demo model and dataset

Exit codes: 0 success, 2 bad input (one line on stderr, no traceback), 1 other errors,
130 cancelled (Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.core.errors import BadInputError, Cancelled, FeatherweightError

SUBCOMMANDS = ("inspect", "compress", "run", "report", "demo")


def _parser() -> argparse.ArgumentParser:
    import engine

    p = argparse.ArgumentParser(
        prog="featherweight",
        description="Make Keras/TensorFlow models small enough for phones and boards.",
    )
    p.add_argument("--version", action="version", version=f"featherweight {engine.__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("inspect", help="per-layer report of a model")
    s.add_argument("model", help="'demo', a .keras/.h5 file or a SavedModel folder")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.add_argument(
        "--allow-unsafe",
        action="store_true",
        help="load models with Lambda layers / custom code (runs their code!)",
    )

    s = sub.add_parser("compress", help="run a recipe and export a .tflite")
    s.add_argument("model")
    s.add_argument("--data", required=True, help="'demo', an .npz file or an image folder")
    s.add_argument("--recipe", required=True, help="recipe JSON file")
    s.add_argument("--out", required=True, help="output folder (model.tflite, metrics.json)")
    s.add_argument("--scale", default="auto", help="pixel scaling: auto, 1/255, -1..1, none")
    s.add_argument("--json", action="store_true", help="print metrics.json to stdout")
    s.add_argument("--allow-unsafe", action="store_true")
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")

    s = sub.add_parser("run", help="run a project's pending recipes headless")
    s.add_argument("project")
    s.add_argument(
        "--allow-unsafe",
        action="store_true",
        help="the project's model may run its code (a project file never grants this)",
    )
    s.add_argument("--quiet", action="store_true")

    s = sub.add_parser("report", help="deployment report of a .tflite file")
    s.add_argument("tflite")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("demo", help="write the demo model and dataset")
    s.add_argument("--out", required=True)
    return p


def _progress_printer(quiet: bool):  # type: ignore[no-untyped-def]
    def on_event(ev: dict[str, Any]) -> None:
        if quiet:
            return
        t = ev.get("type")
        if t == "stage" and ev.get("state") == "start":
            print(f"[{ev.get('index', 0) + 1}/{ev.get('count', 1)}] {ev['label']}", file=sys.stderr)
        elif t == "metric":
            vals = " ".join(f"{k}={v:.4g}" for k, v in ev["values"].items())
            print(f"    epoch {ev['epoch']:g}: {vals}", file=sys.stderr)
        elif t == "log" and ev.get("level") in ("warning", "error"):
            print(f"    {ev['level']}: {ev['message']}", file=sys.stderr)

    return on_event


def _cmd_inspect(args: argparse.Namespace) -> int:
    from engine.models.loading import format_report, inspect_path

    report = inspect_path(args.model, allow_unsafe=args.allow_unsafe)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _cmd_compress(args: argparse.Namespace) -> int:
    from engine.core.events import Reporter
    from engine.pipeline.recipe import load_recipe
    from engine.pipeline.run import compress

    recipe = load_recipe(args.recipe)
    metrics = compress(
        args.model,
        args.data,
        recipe,
        args.out,
        scale=args.scale,
        allow_unsafe=args.allow_unsafe,
        reporter=Reporter(_progress_printer(args.quiet)),
    )
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        from engine.pipeline.run import format_metrics

        print(format_metrics(metrics))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from engine.core.events import Reporter
    from engine.project.document import run_project

    summary = run_project(
        Path(args.project),
        reporter=Reporter(_progress_printer(args.quiet)),
        allow_unsafe=args.allow_unsafe,
    )
    print(json.dumps(summary, indent=2))
    return 1 if summary["failed"] else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from engine.tflite.report import format_tflite_report, report_tflite

    report = report_tflite(args.tflite)
    print(json.dumps(report, indent=2) if args.json else format_tflite_report(report))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from engine.core.demo import write_demo

    paths = write_demo(args.out)
    print(json.dumps(paths, indent=2))
    return 0


COMMANDS = {
    "inspect": _cmd_inspect,
    "compress": _cmd_compress,
    "run": _cmd_run,
    "report": _cmd_report,
    "demo": _cmd_demo,
}


def _is_gui_invocation(argv: Sequence[str]) -> bool:
    if not argv:
        return True
    first = argv[0]
    if first in SUBCOMMANDS or first in ("-h", "--help", "--version"):
        return False
    return first.startswith("--") or not first.startswith("-")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        from engine.service.worker import main as worker_main

        return worker_main()
    if argv[:1] == ["--self-test"]:
        import importlib

        return int(importlib.import_module("gui.selftest").main(argv[1:]))
    if _is_gui_invocation(argv):
        # The desktop app lives in the gui package; imported only here, on demand.
        import importlib

        return int(importlib.import_module("gui.app").main(argv))
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BadInputError as exc:
        print(f"featherweight: error: {_one_line(exc)}{_trust_hint(args, exc)}", file=sys.stderr)
        return exc.exit_code
    except (Cancelled, KeyboardInterrupt):
        print("featherweight: cancelled", file=sys.stderr)
        return 130
    except FeatherweightError as exc:
        print(f"featherweight: error: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code


def _trust_hint(args: argparse.Namespace, exc: BadInputError) -> str:
    """For a refused model: whether ``--allow-unsafe`` would help (decided without running
    the file's code), so the user is not sent to a flag that cannot work."""
    from engine.core.errors import UnsafeModelError

    if not isinstance(exc, UnsafeModelError):
        return ""
    model = getattr(args, "model", None)
    if model is None:
        return "; rerun with --allow-unsafe if you trust the file"
    from engine.models.loading import resolve_path
    from engine.models.trust import trust_verdict

    try:
        verdict = trust_verdict(resolve_path(model), exc.items or None)
    except Exception:  # noqa: BLE001 - the refusal stands; only the hint is unknown
        return "; rerun with --allow-unsafe if you trust the file"
    if verdict.loadable:
        return "; rerun with --allow-unsafe if you trust the file"
    return f"; it cannot be opened even if trusted: {_one_line(Exception(verdict.reason))}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
