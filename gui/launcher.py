"""``featherweight``: the one entry point of the pip script and of the frozen app.

    featherweight                        open the desktop app
    featherweight PROJECT.fwproj         open a project (also a model path, ``--demo``)
    featherweight inspect|compress|analyze|search|run|report|demo ...  (``engine.cli``)
    featherweight -h | --help | --version | --verbose COMMAND ...
    featherweight --worker               the engine worker the app starts (frozen app)
    featherweight --self-test            check this build end to end (``gui.selftest``)

The first argument decides. A command or a global flag goes to ``engine.cli.main``; an
argument is a file for the app only if it exists or ends with ``.fwproj``, ``.keras`` or
``.h5``; anything else is an error with a suggestion ("unknown command 'compres'; did you
mean 'compress'?", exit 2), never a file name the app would create. Without a display
(Linux: no ``DISPLAY`` or ``WAYLAND_DISPLAY``, and ``QT_QPA_PLATFORM`` not naming a platform
that needs none) the app is not started -- Qt would abort -- and one line says which
commands work headless (exit 2).

Importing this module imports neither Qt nor TensorFlow.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

# Options the desktop app understands (gui.app.parse_args).
APP_FLAGS = ("--demo", "--quit-after-paint")
APP_FILE_SUFFIXES = (".fwproj", ".keras", ".h5")
# Qt platforms that draw on a display server; any other QT_QPA_PLATFORM needs none.
DISPLAY_PLATFORMS = ("", "xcb", "wayland", "wayland-egl", "wayland-brcm")


def has_display(env: dict[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether Qt can open a window here (always assumed on Windows and macOS)."""
    env = dict(os.environ if env is None else env)
    platform = sys.platform if platform is None else platform
    if platform.startswith(("win", "darwin", "cygwin")):
        return True
    qpa = env.get("QT_QPA_PLATFORM", "").split(":", 1)[0].strip().lower()
    if qpa not in DISPLAY_PLATFORMS:  # offscreen, minimal, vnc, eglfs, linuxfb ...
        return True
    if qpa == "xcb":
        return bool(env.get("DISPLAY"))
    if qpa.startswith("wayland"):
        return bool(env.get("WAYLAND_DISPLAY"))
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def no_display_message(self_test: bool = False) -> str:
    """The one line printed instead of starting Qt without a display."""
    from engine.cli import SUBCOMMANDS

    if self_test:
        return (
            "featherweight: the self-test opens the app's window and needs a display "
            "(no DISPLAY or WAYLAND_DISPLAY is set); QT_QPA_PLATFORM=offscreen runs it without one"
        )
    return (
        "featherweight: the desktop app needs a display (no DISPLAY or WAYLAND_DISPLAY is set); "
        f"these commands work without one: {', '.join(SUBCOMMANDS)} (featherweight --help)"
    )


def _is_app_file(arg: str) -> bool:
    return arg.lower().endswith(APP_FILE_SUFFIXES) or Path(arg).exists()


def classify(argv: Sequence[str]) -> tuple[str, str]:
    """``(kind, detail)``: kind is ``worker``, ``self-test``, ``cli``, ``app`` or ``error``
    (then ``detail`` is the one-line message)."""
    from engine.cli import GLOBAL_FLAGS, SUBCOMMANDS, suggest_command

    if not argv:
        return "app", ""
    first = argv[0]
    if first == "--worker":
        return "worker", ""
    if first == "--self-test":
        return "self-test", ""
    if first in SUBCOMMANDS or first in GLOBAL_FLAGS:
        return "cli", ""
    files = 0
    for arg in argv:
        if arg in APP_FLAGS:
            continue
        if arg.startswith("-"):
            import difflib

            known = [*APP_FLAGS, *GLOBAL_FLAGS, "--worker", "--self-test"]
            close = difflib.get_close_matches(arg, known, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else " (featherweight --help)"
            return "error", f"featherweight: error: unknown option '{arg}'{hint}"
        if files == 0 and _is_app_file(arg):
            files += 1
            continue
        if arg in SUBCOMMANDS:  # e.g. ``featherweight --demo compress``: say where it goes
            return "error", f"featherweight: error: put the command '{arg}' first"
        if files:
            return "error", f"featherweight: error: the app opens one file, not also '{arg}'"
        return "error", f"featherweight: error: {suggest_command(arg)}"
    return "app", ""


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    kind, detail = classify(argv)
    if kind == "worker":
        from engine.service.worker import main as worker_main

        return int(worker_main() or 0)
    if kind == "cli":
        from engine.cli import main as cli_main

        return cli_main(argv)
    if kind == "error":
        print(detail, file=sys.stderr)
        return 2
    if not has_display():
        print(no_display_message(self_test=kind == "self-test"), file=sys.stderr)
        return 2
    if kind == "self-test":
        from gui.selftest import main as selftest_main

        return int(selftest_main(argv[1:]))
    from gui.app import main as app_main

    return int(app_main(argv))


if __name__ == "__main__":
    sys.exit(main())
