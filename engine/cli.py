"""The ``featherweight`` command line (headless; the desktop app is ``gui.launcher``).

    featherweight inspect MODEL [--json]
    featherweight compress MODEL --data DATA --recipe RECIPE.json --out DIR [--json]
    featherweight analyze MODEL --data DATA [--json] [--out DIR] [--grid ...] [--clusters ...]
    featherweight search MODEL --data DATA --budget 1.0 --objective gzip --time 20m --out DIR
                        [--trials N] [--seed S] [--storage URL] [--study NAME] [--json]
    featherweight run PROJECT_FILE      run a project's pending recipes headless
    featherweight report MODEL.tflite [--json]
    featherweight report PATH --html OUT.html [--pdf OUT.pdf] [--run ID|search] [--allow-unsafe]
                        the shareable report of a project, run folder, search folder or .tflite
    featherweight demo --out DIR        write the demo model and dataset
    featherweight --verbose COMMAND ... also show TensorFlow's own log lines and warnings

TensorFlow, the converter and LiteRT write log lines to file descriptor 2; unless
``--verbose`` (or ``FEATHERWEIGHT_VERBOSE=1``) they are captured (``engine.core.quiet``) and
shown only if the command fails with an unexpected error. Importing this module is cheap: no
TensorFlow, no Qt.

Exit codes: 0 success, 2 bad input (one line on stderr, no traceback), 1 other errors,
130 cancelled (Ctrl-C). ``search``: 0 when a point within the budget was found, 3 when none
was (the closest one is reported).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.core.errors import BadInputError, Cancelled, FeatherweightError
from engine.core.fmt import fmt_bytes

SUBCOMMANDS = ("inspect", "compress", "analyze", "search", "run", "report", "demo")
EXIT_NOT_WITHIN_BUDGET = 3
GLOBAL_FLAGS = ("-h", "--help", "--version", "--verbose")
# Options of the ``featherweight`` launcher (desktop app, worker, self-test), not of this CLI.
APP_OPTIONS = ("--demo", "--quit-after-paint", "--self-test", "--worker")
VERBOSE_HELP = (
    "also show TensorFlow's own log lines and Python warnings (or FEATHERWEIGHT_VERBOSE=1)"
)


def _parser() -> argparse.ArgumentParser:
    import engine

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help=VERBOSE_HELP)  # fmt: skip
    p = argparse.ArgumentParser(
        prog="featherweight",
        description="Make Keras/TensorFlow models small enough for phones and boards. "
        "Without a command, featherweight opens the desktop app.",
    )
    p.add_argument("--version", action="version", version=f"featherweight {engine.__version__}")
    p.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("inspect", parents=[common], help="per-layer report of a model")
    s.add_argument("model", help="'demo', a .keras/.h5 file or a SavedModel folder")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.add_argument(
        "--allow-unsafe",
        action="store_true",
        help="load models with Lambda layers / custom code (runs their code!)",
    )

    s = sub.add_parser("compress", parents=[common], help="run a recipe and export a .tflite")
    s.add_argument("model")
    s.add_argument("--data", required=True, help="'demo', an .npz file or an image folder")
    s.add_argument("--recipe", required=True, help="recipe JSON file")
    s.add_argument("--out", required=True, help="output folder (model.tflite, metrics.json)")
    s.add_argument("--json", action="store_true", help="print metrics.json to stdout")
    _add_input_options(s)

    s = sub.add_parser(
        "search",
        parents=[common],
        help="find the smallest model that loses at most --budget accuracy points",
    )
    s.add_argument("model")
    s.add_argument("--data", required=True, help="'demo', an .npz file or an image folder")
    s.add_argument(
        "--budget",
        default="1.0",
        help="accuracy points the model may lose, judged on the validation split (default 1)",
    )
    s.add_argument(
        "--objective",
        default="gzip",
        help="what to make small: gzip (download size), flash (.tflite bytes), latency "
        "(on this computer), ram (tensor arena estimate); default gzip",
    )
    s.add_argument("--time", default=None, help="time budget of this run: 20m, 90s, 1h30m, ...")
    s.add_argument("--trials", default=None, help="stop when the study has this many trials")
    s.add_argument("--seed", default="0", help="seed of the sampler (default 0)")
    s.add_argument(
        "--storage",
        default=None,
        help="database URL shared by several machines (postgresql://user@host/db; the "
        "password from PGPASSWORD or ~/.pgpass); default: DIR/study.journal",
    )
    s.add_argument("--study", default=None, help="study name (default: derived from the inputs)")
    s.add_argument("--sampler", default="tpe", help="tpe (default) or random")
    s.add_argument("--out", required=True, help="folder: search.json, trials/, best/")
    s.add_argument("--json", action="store_true", help="print search.json to stdout")
    _add_input_options(s)

    s = sub.add_parser(
        "analyze",
        parents=[common],
        help="per-layer sensitivity: accuracy vs pruning, clustering, filters, int8",
    )
    s.add_argument("model")
    s.add_argument("--data", required=True, help="'demo', an .npz file or an image folder")
    s.add_argument("--out", default=None, help="folder to write sensitivity.json into")
    s.add_argument("--json", action="store_true", help="print sensitivity.json to stdout")
    s.add_argument(
        "--grid",
        default=None,
        help="pruning sparsities, comma-separated (default 0.3,0.5,0.7,0.8,0.9,0.95; "
        "'none' skips pruning)",
    )
    s.add_argument(
        "--clusters",
        default=None,
        help="cluster counts, comma-separated (default 64,32,16,8,4; 'none' skips)",
    )
    s.add_argument(
        "--filters",
        default=None,
        help="filter-removal ratios, comma-separated (default 0.25,0.5,0.75; 'none' skips)",
    )
    s.add_argument("--no-quantization", action="store_true", help="skip the per-layer int8 error")
    s.add_argument(
        "--max-loss",
        type=float,
        default=1.0,
        help="accuracy points the table's tolerated sparsity may lose (default 1)",
    )
    s.add_argument("--scale", default="auto", help="pixel scaling: auto, 1/255, -1..1, none")
    s.add_argument("--allow-unsafe", action="store_true")
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")
    s.add_argument(
        "--split-seed",
        type=int,
        default=None,
        help="seed of the dataset's train/validation/test split (default 0)",
    )
    s.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help="fraction of the training data held out for validation (default 0.1)",
    )

    s = sub.add_parser("run", parents=[common], help="run a project's pending recipes headless")
    s.add_argument("project")
    s.add_argument(
        "--allow-unsafe",
        action="store_true",
        help="the project's model may run its code (a project file never grants this)",
    )
    s.add_argument("--quiet", action="store_true")

    s = sub.add_parser(
        "report",
        parents=[common],
        help="the shareable HTML/PDF report of a project, run or search (--html/--pdf), "
        "or a .tflite's deployment report",
        description="With --html/--pdf: one self-contained HTML file (and/or a PDF of it) "
        "about a project (.fwproj), a run folder (metrics.json), a search folder "
        "(search.json) or a .tflite. Without them: the deployment report of a .tflite.",
    )
    s.add_argument(
        "path",
        metavar="PATH",
        help="a project file (.fwproj), a run folder, a search folder or a .tflite",
    )
    s.add_argument("--json", action="store_true", help="print JSON instead of text")
    s.add_argument("--html", metavar="OUT.html", default=None, help="write the HTML report")
    s.add_argument("--pdf", metavar="OUT.pdf", default=None, help="write the report as PDF")
    s.add_argument(
        "--run",
        metavar="ID",
        default=None,
        help="the model of the deployment verdict: a run id, or 'search' for the search's "
        "best model (default: the smallest within the project's accuracy budget)",
    )
    s.add_argument(
        "--allow-unsafe",
        action="store_true",
        help="inspect a model with Lambda layers / custom code for the report (runs its code!)",
    )
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")

    s = sub.add_parser("demo", parents=[common], help="write the demo model and dataset")
    s.add_argument("--out", required=True)
    return p


def _add_input_options(s: argparse.ArgumentParser) -> None:
    """The model/data options ``compress`` and ``search`` share: scaling, trust, progress and
    the dataset's split."""
    s.add_argument("--scale", default="auto", help="pixel scaling: auto, 1/255, -1..1, none")
    s.add_argument("--allow-unsafe", action="store_true")
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")
    s.add_argument(
        "--split-seed",
        type=int,
        default=None,
        help="seed of the dataset's train/validation/test split (default 0; the recipe's "
        "seed only seeds training)",
    )
    s.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help="fraction of the training data held out for validation (default 0.1)",
    )


def _fmt_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


_SHOWN_METRICS = (
    ("loss", "loss", "{:.4f}"),
    ("accuracy", "acc", "{:.3f}"),
    ("val_loss", "val_loss", "{:.4f}"),
    ("val_accuracy", "val_acc", "{:.3f}"),
    ("sparsity", "sparsity", "{:.2f}"),
)


def _fmt_values(values: dict[str, float]) -> str:
    parts = [f"{short} {fmt.format(values[k])}" for k, short, fmt in _SHOWN_METRICS if k in values]
    if "est_gzip_bytes" in values:
        parts.append(f"~gzip {values['est_gzip_bytes'] / 1000:.0f} kB")
    return "  ".join(parts)


class ProgressPrinter:
    """Shows engine events (``engine.core.events``) on ``out`` (stderr).

    On a terminal: one line per stage, redrawn in place -- a bar over the stage's batches
    with the epoch, the latest metrics and an ETA -- finished with the stage's time. Piped
    (not a terminal): plain lines, one per stage start, one per epoch, one per stage end.
    Warnings and errors logged by the engine are printed either way. ``epochs`` lists the
    recipe's training steps as ``(step type, epochs)`` in order, so a stage of that name can
    show "epoch k/E" (without it: "epoch k").
    """

    def __init__(
        self,
        out: Any = None,
        *,
        tty: bool | None = None,
        epochs: Sequence[tuple[str, int]] = (),
        width: int | None = None,
    ) -> None:
        self.out = out
        self.tty = tty
        self.width = width
        self._epochs = list(epochs)
        self._stage: dict[str, Any] | None = None
        self._line = ""

    # -- plumbing ------------------------------------------------------------------------
    def _stream(self) -> Any:
        return self.out if self.out is not None else sys.stderr

    def _is_tty(self) -> bool:
        if self.tty is not None:
            return self.tty
        try:
            return bool(self._stream().isatty())
        except (AttributeError, ValueError, OSError):
            return False

    def _write(self, text: str) -> None:
        stream = self._stream()
        stream.write(text)
        stream.flush()

    def _columns(self) -> int:
        if self.width:
            return self.width
        import shutil

        return shutil.get_terminal_size((100, 24)).columns

    def _draw(self, line: str) -> None:
        line = line[: max(10, self._columns() - 1)]
        self._line = line
        self._write("\r\x1b[K" + line)

    def _clear(self) -> None:
        if self._line:
            self._write("\r\x1b[K")
            self._line = ""

    def _bar(self, fraction: float, cells: int = 24) -> str:
        fraction = min(1.0, max(0.0, fraction))
        full = int(fraction * cells)
        encoding = (getattr(self._stream(), "encoding", None) or "").lower()
        done, todo = ("\u2588", "\u2591") if "utf" in encoding else ("#", "-")
        return done * full + todo * (cells - full)

    # -- events --------------------------------------------------------------------------
    def __call__(self, ev: dict[str, Any]) -> None:
        t = ev.get("type")
        if t == "stage" and ev.get("state") == "start":
            self._start(ev)
        elif t == "stage" and ev.get("state") == "end":
            self._end(ev)
        elif t == "progress":
            self._progress(ev)
        elif t == "metric":
            self._metric(ev)
        elif t == "log" and ev.get("level") in ("warning", "error"):
            self._log(ev)

    def _start(self, ev: dict[str, Any]) -> None:
        epochs = None
        if self._epochs and self._epochs[0][0] == ev.get("stage"):
            epochs = self._epochs.pop(0)[1]
        head = f"[{ev.get('index', 0) + 1}/{ev.get('count', 1)}] {ev.get('label', '')}"
        self._stage = {
            "name": ev.get("stage"),
            "head": head,
            "t0": time.monotonic(),
            "epochs": epochs,
            "epoch_done": 0,
            "step": 0,
            "total": 0,
            "values": {},
        }
        if self._is_tty():
            self._draw(head + " ...")
        else:
            self._write(head + "\n")

    def _epoch_text(self, st: dict[str, Any], finished: bool = False) -> str:
        k = (
            st["epoch_done"]
            if finished
            else min(st["epoch_done"] + 1, st["epochs"] or st["epoch_done"] + 1)
        )
        return f"epoch {k}/{st['epochs']}" if st["epochs"] else f"epoch {k}"

    def _eta(self, st: dict[str, Any]) -> str:
        """Time left at the rate measured since the stage's first batch (so the set-up
        before training does not inflate it); '' until two batches were seen."""
        first = st.get("first")
        if first is None or st["total"] <= 0 or st["step"] <= first[1]:
            return ""
        rate = (time.monotonic() - first[0]) / (st["step"] - first[1])
        return f"ETA {_fmt_duration(rate * max(0, st['total'] - st['step']))}"

    def _progress(self, ev: dict[str, Any]) -> None:
        st = self._stage
        if st is None:
            return
        st["step"], st["total"] = int(ev.get("step", 0)), int(ev.get("total", 0))
        if st.get("first") is None:
            st["first"] = (time.monotonic(), st["step"])
        if self._is_tty() and st["total"] > 0:
            self._redraw(st)

    def _redraw(self, st: dict[str, Any]) -> None:
        frac = st["step"] / st["total"] if st["total"] else 0.0
        parts = [
            st["head"],
            self._epoch_text(st),
            f"{self._bar(frac)} {frac * 100:3.0f}%",
            f"batch {st['step']}/{st['total']}",
            self._eta(st),
            _fmt_values(st["values"]),
        ]
        self._draw("  ".join(p for p in parts if p))

    def _metric(self, ev: dict[str, Any]) -> None:
        st = self._stage
        values = dict(ev.get("values") or {})
        if st is None:
            if not self._is_tty():
                self._write(f"    epoch {ev.get('epoch', 0):g}: {_fmt_values(values)}\n")
            return
        st["epoch_done"] += 1
        st["values"] = values
        if self._is_tty():
            if st["total"]:
                self._redraw(st)
            return
        eta = self._eta(st)
        line = f"    {self._epoch_text(st, finished=True)}: {_fmt_values(values)}"
        self._write(line + (f"  ({eta})" if eta and st["step"] < st["total"] else "") + "\n")

    def _end(self, ev: dict[str, Any]) -> None:
        st = self._stage
        if st is None or st["name"] != ev.get("stage"):
            return
        self._stage = None
        took = f"({_fmt_duration(time.monotonic() - st['t0'])})"
        if not self._is_tty():
            return
        parts = [st["head"]]
        if st["epoch_done"]:
            n = st["epoch_done"]
            parts.append(f"{n} epoch{'s' if n != 1 else ''}")
            parts.append(_fmt_values(st["values"]))
        parts.append(took)
        self._draw("  ".join(p for p in parts if p))
        self._write("\n")
        self._line = ""

    def _log(self, ev: dict[str, Any]) -> None:
        redraw = self._line
        self._clear()
        self._write(f"    {ev['level']}: {ev.get('message', '')}\n")
        if redraw and self._stage is not None:
            self._draw(redraw)


class StepPrinter(ProgressPrinter):
    """``ProgressPrinter`` for work measured in steps, not epochs and batches (the report):
    a stage's bar says "step k/N"."""

    def _redraw(self, st: dict[str, Any]) -> None:
        frac = st["step"] / st["total"] if st["total"] else 0.0
        parts = [st["head"], f"{self._bar(frac)} {frac * 100:3.0f}%"]
        self._draw("  ".join([*parts, f"step {st['step']}/{st['total']}"]))


def _progress_printer(
    quiet: bool, epochs: Sequence[tuple[str, int]] = ()
) -> Callable[[dict[str, Any]], None]:
    if quiet:
        return lambda ev: None
    return ProgressPrinter(epochs=epochs)


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
    epochs = [(st["type"], int(st["epochs"])) for st in recipe.steps if "epochs" in st]
    metrics = compress(
        args.model,
        args.data,
        recipe,
        args.out,
        scale=args.scale,
        allow_unsafe=args.allow_unsafe,
        reporter=Reporter(_progress_printer(args.quiet, epochs)),
        split_seed=args.split_seed,
        val_fraction=args.val_fraction,
    )
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        from engine.pipeline.run import format_metrics

        print(format_metrics(metrics))
    return 0


def _number(value: str | None, what: str, kind: type = float) -> Any:
    """``value`` as ``kind`` (None stays None); a BadInputError line otherwise."""
    if value is None:
        return None
    try:
        number = kind(str(value).strip())
    except ValueError:
        raise BadInputError(f"{what} {value!r} is not a number") from None
    if kind is float and number != number:
        raise BadInputError(f"{what} {value!r} is not a number")
    return number


def _search_printer(quiet: bool) -> Callable[[dict[str, Any]], None]:
    """Progress of a search on stderr: the trials' stages as ``compress`` shows them plus
    one line per finished trial."""
    if quiet:
        return lambda ev: None
    inner = ProgressPrinter()

    def show(ev: dict[str, Any]) -> None:
        if ev.get("type") == "trial" and ev.get("state") == "running":
            from engine.pipeline.search import describe_params

            inner._clear()
            inner._write(f"trial {ev['number']}: {describe_params(ev.get('params') or {})}\n")
        elif ev.get("type") == "trial":
            values = ev.get("values") or {}
            parts = [f"trial {ev['number']} {ev.get('state')}"]
            if values.get("val_drop") is not None:
                parts.append(
                    f"val drop {values['val_drop']:+.2f} pt, "
                    f"gzip {fmt_bytes(values['tflite_gzip_bytes'])}, "
                    f"{fmt_bytes(values['tflite_bytes'])}"
                    + (" (within budget)" if ev.get("feasible") else " (over budget)")
                )
            if ev.get("error"):
                parts.append(str(ev["error"]))
            if ev.get("duration_s") is not None:
                parts.append(f"{ev['duration_s']:.0f} s")
            inner._clear()
            inner._write("  ".join(parts) + "\n")
        else:
            inner(ev)

    return show


def _cmd_search(args: argparse.Namespace) -> int:
    from engine.core.events import Reporter
    from engine.pipeline.search import OBJECTIVES, SAMPLERS, format_search, parse_duration

    # Everything is checked before the model loads: a bad value is one line, at once.
    if args.objective not in OBJECTIVES:
        raise BadInputError(f"--objective {args.objective!r} is not one of {', '.join(OBJECTIVES)}")
    if args.sampler not in SAMPLERS:
        raise BadInputError(f"--sampler {args.sampler!r} is not one of {', '.join(SAMPLERS)}")
    budget = _number(args.budget, "--budget")
    if not 0 <= budget <= 100:
        raise BadInputError(f"--budget {args.budget} must be 0-100 accuracy points")
    time_s = parse_duration(args.time) if args.time is not None else None
    trials = _number(args.trials, "--trials", int)
    if trials is not None and trials < 1:
        raise BadInputError(f"--trials {args.trials} must be 1 or more")
    if time_s is None and trials is None:
        raise BadInputError("give a time budget (--time 20m) or a number of trials (--trials N)")
    seed = _number(args.seed, "--seed", int)
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise BadInputError(f"output folder {args.out} is a file, not a folder")
    if args.storage:
        from engine.pipeline.search_storage import open_storage

        # A bad URL, a missing driver or a server that refuses: one line before any work.
        open_storage(Path(args.out), args.storage)
    from engine.pipeline.prepare import prepare
    from engine.pipeline.search import search

    reporter = Reporter(_search_printer(args.quiet))
    prepared = prepare(
        args.model,
        args.data,
        (args.split_seed, args.val_fraction),
        scale=args.scale,
        allow_unsafe=args.allow_unsafe,
        reporter=reporter,
    )
    doc = search(
        prepared,
        budget,
        args.objective,
        args.out,
        time_s=time_s,
        trials=trials,
        seed=seed,
        storage=args.storage,
        study_name=args.study,
        sampler=args.sampler,
        reporter=reporter,
    )
    print(json.dumps(doc, indent=2) if args.json else format_search(doc))
    best = doc.get("best")
    return 0 if best is not None and best["within_budget"] else EXIT_NOT_WITHIN_BUDGET


def _grid_arg(value: str | None, default: Sequence[Any]) -> Sequence[Any]:
    if value is None:
        return default
    if value.strip().lower() in ("none", "off", ""):
        return ()
    return [v.strip() for v in value.split(",") if v.strip()]


def _cmd_analyze(args: argparse.Namespace) -> int:
    from engine.core.events import Reporter
    from engine.pipeline import sensitivity as S

    # Grids are checked before anything loads: a bad value is one line, at once.
    grids = {
        "prune_grid": S.check_grid(_grid_arg(args.grid, S.PRUNE_GRID), "prune"),
        "cluster_grid": S.check_grid(_grid_arg(args.clusters, S.CLUSTER_GRID), "cluster"),
        "filter_grid": S.check_grid(_grid_arg(args.filters, S.FILTER_GRID), "filters"),
    }
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        raise BadInputError(f"output folder {args.out} is a file, not a folder")
    doc = S.analyze(
        args.model,
        args.data,
        scale=args.scale,
        allow_unsafe=args.allow_unsafe,
        split_seed=args.split_seed,
        val_fraction=args.val_fraction,
        quantization=not args.no_quantization,
        reporter=Reporter(_progress_printer(args.quiet)),
        **grids,
    )
    if args.out is not None:
        S.write_sensitivity(doc, args.out)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(S.format_sensitivity(doc, args.max_loss))
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
    if args.html is None and args.pdf is None:
        path = Path(args.path)
        if path.suffix.lower() == ".fwproj" or path.is_dir():
            what = "a project" if path.suffix.lower() == ".fwproj" else "a folder"
            raise BadInputError(
                f"{path.name or path} is {what}, not a .tflite: give --html OUT.html and/or "
                "--pdf OUT.pdf to write its report"
            )
        if args.run is not None:
            raise BadInputError("--run chooses the model of an --html/--pdf report")
        from engine.tflite.report import format_tflite_report, report_tflite

        report = report_tflite(args.path)
        print(json.dumps(report, indent=2) if args.json else format_tflite_report(report))
        return 0

    from engine.core.events import Reporter
    from engine.core.fmt import fmt_bytes
    from engine.report.export import export_report

    # Progress only on a terminal: piped, the command prints its written files and nothing else.
    tty = _stderr_is_tty()
    result = export_report(
        args.path,
        html=args.html,
        pdf=args.pdf,
        run=args.run,
        allow_unsafe=args.allow_unsafe,
        reporter=Reporter(StepPrinter() if tty and not args.quiet else None),
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for kind in ("html", "pdf"):
        if result.get(kind):
            size = fmt_bytes(result.get("bytes", {}).get(kind))
            print(f"wrote {result[kind]} ({size})")
    return 0


def _stderr_is_tty() -> bool:
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _cmd_demo(args: argparse.Namespace) -> int:
    from engine.core.demo import write_demo

    paths = write_demo(args.out)
    print(json.dumps(paths, indent=2))
    return 0


COMMANDS = {
    "inspect": _cmd_inspect,
    "compress": _cmd_compress,
    "analyze": _cmd_analyze,
    "search": _cmd_search,
    "run": _cmd_run,
    "report": _cmd_report,
    "demo": _cmd_demo,
}


def suggest_command(word: str) -> str:
    """One line for an unknown command: ``unknown command 'compres'; did you mean 'compress'?``
    (or the list of commands when nothing is close)."""
    import difflib

    close = difflib.get_close_matches(word, SUBCOMMANDS, n=1, cutoff=0.6)
    if close:
        return f"unknown command '{word}'; did you mean '{close[0]}'?"
    return f"unknown command '{word}' (commands: {', '.join(SUBCOMMANDS)})"


def _first_command(argv: Sequence[str]) -> str | None:
    """The first argument that is not a global flag (None if there is none)."""
    for arg in argv:
        if arg not in GLOBAL_FLAGS:
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 error, 2 bad input, 130 cancelled)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    first = _first_command(argv)
    if first is not None and first not in SUBCOMMANDS:
        if not any(a in ("-h", "--help", "--version") for a in argv[: argv.index(first)]):
            if not first.startswith("-"):
                message = suggest_command(first)
            elif first in APP_OPTIONS:
                message = f"{first} is an option of the app launcher: run featherweight {first}"
            else:
                message = f"unknown option '{first}' (featherweight --help)"
            print(f"featherweight: error: {message}", file=sys.stderr)
            return 2
    args = _parser().parse_args(argv)
    from engine.core.quiet import quiet_stderr, verbose_from_env

    if getattr(args, "verbose", False) or verbose_from_env():
        return _run(args, None)
    with quiet_stderr() as captured:
        try:
            return _run(args, captured.text)
        except BaseException as exc:
            if not isinstance(exc, (KeyboardInterrupt, SystemExit)):
                _replay(captured.text())
            raise


def _run(args: argparse.Namespace, captured: Callable[[], str] | None) -> int:
    try:
        code = COMMANDS[args.command](args)
    except BadInputError as exc:
        print(f"featherweight: error: {_one_line(exc)}{_trust_hint(args, exc)}", file=sys.stderr)
        return exc.exit_code
    except (Cancelled, KeyboardInterrupt):
        print("featherweight: cancelled", file=sys.stderr)
        return 130
    except FeatherweightError as exc:
        if captured is not None:
            _replay(captured())
        print(f"featherweight: error: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    if code == 1 and captured is not None:
        _replay(captured())
    return code


def _replay(text: str) -> None:
    """Show the libraries' captured log (the command failed: it may say why)."""
    text = text.strip("\n")
    if not text:
        return
    print(
        "featherweight: the libraries' log of this run (hidden unless a command fails or "
        "--verbose is given):",
        file=sys.stderr,
    )
    print(text, file=sys.stderr, flush=True)


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
