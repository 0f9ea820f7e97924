"""Screenshots of "Find the smallest model for me" (issue 15) into docs/screenshots:

- ``search-wizard.png``: the wizard's first page with the search chosen (budget, objective in
  plain words, time budget, max trials);
- ``search-running.png``: the search running (scatter, budget line, frontier, table, best so
  far, elapsed / ETA, Stop), a trial selected;
- ``search-finished.png``: the search finished: frontier, best, the test accuracy of the
  frontier points ("measured once"), the best trial selected with Open as run / Export /
  Save recipe.

By default the app runs the real engine worker on the demo (a short search: ``--minutes``,
``--trials``); ``--recorded`` plays the fake worker's synthetic demo search instead
(tests/gui/fake_worker.py), for when the engine is busy or to check the layout quickly::

    xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb \\
        python tests/gui/make_search_screenshots.py [--recorded] [--minutes 4] [--trials 8]

Look at every picture after running it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.gui.make_screenshots import OUT, settle, shot, wait_until  # noqa: E402

SIZE = (1560, 960)


def main(recorded: bool, minutes: int, trials: int) -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from gui.compress_tab import REVIEW, TECHNIQUES
    from gui.main_window import MainWindow

    OUT.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp())
    settings = QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat)
    worker = None
    if recorded:
        worker = [sys.executable, str(ROOT / "tests/gui/fake_worker.py"), "--delay", "0.12"]
    w = MainWindow(worker_command=worker, settings=settings, runs_dir=tmp / "runs")
    w.project.ask_unsaved = lambda: "discard"
    w.resize(*SIZE)
    w.show()
    settle(app, 1.0)
    w.open_demo()
    wait_until(app, lambda: w.session.baseline is not None, 300)
    tab = w.compress_tab
    w.tabs.setCurrentWidget(tab)
    tab.go_to(TECHNIQUES)
    tab.mode_search.click()
    tab.search_budget.setValue(1.0)
    tab.search_objective.setCurrentIndex(tab.search_objective.findData("gzip"))
    tab.search_time.setValue(minutes)
    tab.search_trials.setValue(trials)
    settle(app, 0.5)
    shot(w, "search-wizard")
    tab.go_to(REVIEW)
    job = tab.start_search()
    if job is None:
        raise SystemExit(f"the search did not start: {tab.message.text()}")
    view = tab.search_view
    # running: once a few trials are in (about half of them)
    want = max(2, trials // 2)
    wait_until(app, lambda: view.state.info.get("trials_done", 0) >= want or job.done, 3600)
    if job.done:
        raise SystemExit(f"the search ended before the running shot: {job.state} {job.error}")
    pick = view.state.best if view.state.best is not None else min(view.state.trials)
    view.select_trial(pick)
    settle(app, 1.5)
    shot(w, "search-running")
    wait_until(app, lambda: job.done, 3600)
    if view.state.doc is None:
        raise SystemExit(f"the search {job.state}: {job.error}")
    settle(app, 1.0)
    if view.state.best is not None:
        view.select_trial(view.state.best)
    settle(app, 0.8)
    shot(w, "search-finished")
    if view.state.best is not None:  # the best opened as a run: measured on test, in Results
        run = tab.open_trial_as_run(view.state.best)
        if run is None:
            raise SystemExit(f"Open as run refused: {tab.message.text()}")
        wait_until(app, lambda: run.status != "running", 900)
        c = run.compressed
        print(
            f"opened trial {view.state.best} as {run.name}: {run.status}, test accuracy "
            f"{c.get('accuracy')}, gzip {c.get('tflite_gzip_bytes')} B, in Results: "
            f"{run in w.session.finished_runs()} {run.error}"
        )
    w.shutdown()
    w.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recorded", action="store_true", help="the fake worker's synthetic search")
    ap.add_argument("--minutes", type=int, default=4, help="time budget of the real search")
    ap.add_argument("--trials", type=int, default=8, help="trial budget")
    args = ap.parse_args()
    sys.exit(main(args.recorded, args.minutes, args.trials))
