"""Screenshots of the Sensitivity view (issue 14; real app, real engine worker) into
docs/screenshots:

- ``sensitivity-running.png``: *Analyze* running on the demo (progress bar and Cancel);
- ``sensitivity-curves.png``: validation accuracy vs sparsity, one curve per layer, the
  layer selected in the table drawn thick;
- ``sensitivity-heatmap.png``: the layer × sparsity heat map (accuracy lost in points);
- ``sensitivity-table.png``: the layer table's % of size, tolerated sparsity (max loss per
  layer 1 point) and int8 error;
- ``per-layer-recipe-dialog.png`` and ``compress-per-layer.png``: *Make per-layer recipe…*
  and the wizard's per-layer table it fills;
- with ``--zoo``: ``sensitivity-heatmap-mobilenet.png`` and ``sensitivity-curves-mobilenet.png``,
  the zoo's trained MobileNetV2 (α 0.35, the "bench" profile: ~82 % on the digits at 32×32;
  36 analysed layers: names must stay readable). ``--zoo-only`` skips the demo shots.

    xvfb-run -a -s "-screen 0 1400x900x24" env QT_QPA_PLATFORM=xcb \\
        python tests/gui/make_sensitivity_screenshots.py [--zoo | --zoo-only]

Look at every picture after running it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.gui.make_screenshots import settle, shot, wait_until, with_modal  # noqa: E402


def analyze(app, w, timeout: float = 900) -> None:
    tab = w.model_tab
    tab.views.setCurrentWidget(tab.sensitivity)
    job = tab.analyze()
    if job is None:
        raise SystemExit(f"Analyze did not start: {tab.sensitivity.analyze_button.toolTip()}")
    wait_until(app, lambda: job.done, timeout)
    if w.session.analysis is None:
        raise SystemExit(f"the analysis {job.state}: {job.error}")
    settle(app, 1.0)


def main(zoo: bool, demo: bool = True) -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from gui.app import create_window
    from tests.gui.make_screenshots import OUT

    OUT.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp())
    settings = QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat)
    w = create_window([], settings=settings, runs_dir=tmp / "runs")
    w.project.ask_unsaved = lambda: "discard"
    w.resize(1400, 860)
    w.show()
    settle(app, 1.0)
    if demo:
        demo_shots(app, w)
    if zoo:
        mobilenet(app, w)
    w.shutdown()
    w.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def demo_shots(app, w) -> None:
    from PySide6.QtWidgets import QScrollArea

    from gui.sensitivity_view import PerLayerRecipeDialog

    w.open_demo()
    wait_until(app, lambda: w.session.baseline is not None, 300)
    tab = w.model_tab
    view = tab.sensitivity
    w.tabs.setCurrentIndex(0)
    tab.views.setCurrentWidget(view)
    settle(app)
    job = tab.analyze()
    assert job is not None
    wait_until(app, lambda: view.progress.value() > 250 or job.done, 300)
    shot(w, "sensitivity-running")
    wait_until(app, lambda: job.done, 600)
    if w.session.analysis is None:
        raise SystemExit(f"the analysis {job.state}: {job.error}")
    settle(app, 1.0)
    rows = [tab.table.item(r, 0).text() for r in range(tab.table.rowCount())]
    tab.table.selectRow(rows.index("conv2"))
    tab.views.setCurrentWidget(view)
    view.tabs.setCurrentIndex(0)
    settle(app)
    shot(w, "sensitivity-curves")
    view.tabs.setCurrentIndex(1)
    settle(app)
    shot(w, "sensitivity-heatmap")
    tab.views.setCurrentIndex(0)
    tab.max_loss.setValue(1.0)
    settle(app)
    shot(w, "sensitivity-table")

    def fill(dlg: PerLayerRecipeDialog) -> None:
        dlg.target.setValue(80)
        settle(app, 0.5)
        shot(w, "per-layer-recipe-dialog")
        dlg.accept()

    tab.views.setCurrentWidget(view)
    with_modal(app, PerLayerRecipeDialog, fill, tab.make_per_layer_recipe)
    settle(app, 1.0)
    ctab = w.compress_tab
    editor = ctab.editors["prune"]["per_layer"].widget
    for area in ctab.findChildren(QScrollArea):
        if area.isAncestorOf(editor):
            area.ensureWidgetVisible(editor, 0, 120)
    settle(app)
    shot(w, "compress-per-layer")


def mobilenet(app, w) -> None:
    """The zoo's MobileNetV2 (built or reused in a child process) analysed in the app."""
    from tests.gui.make_zoo_screenshots import open_with_data

    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.zoo.builders import build_family\n"
        "e = build_family('mobilenet_v2', profile='bench')\n"
        "print('ZOO ' + json.dumps({'model': str(e.model_path), 'data': str(e.data_path)}))\n"
    )
    import json
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    entry = json.loads([x for x in proc.stdout.splitlines() if x.startswith("ZOO ")][-1][4:])
    w.project.ask_new_comparison = lambda _what, _name: "new_comparison"
    open_with_data(app, w, entry["model"], entry["data"])
    w.tabs.setCurrentIndex(0)
    analyze(app, w, timeout=1200)
    view = w.model_tab.sensitivity
    tab = w.model_tab
    rows = [tab.table.item(r, 0).text() for r in range(tab.table.rowCount())]
    if "block_3_project" in rows:
        tab.table.selectRow(rows.index("block_3_project"))
    tab.views.setCurrentWidget(view)
    view.tabs.setCurrentIndex(1)
    settle(app)
    shot(w, "sensitivity-heatmap-mobilenet")
    view.tabs.setCurrentIndex(0)
    settle(app)
    shot(w, "sensitivity-curves-mobilenet")


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    args = sys.argv[1:]
    sys.exit(main("--zoo" in args or "--zoo-only" in args, demo="--zoo-only" not in args))
