"""Screenshots of issue 13 (real app, real engine worker) into docs/screenshots:

- ``model-tab-binary.png``: the keras.io "image classification from scratch" model (Keras 3,
  augmentation layers dropped at import, one logit) with its 32×32 images;
- ``model-tab-text.png``: the Embedding text CNN on integer token ids with its token .npz;
- ``model-tab-lstm.png``: the LSTM classifier on sequences;
- ``compress-keep-float.png``: the quantize step's Max int8 drop and Keep float knobs;
- ``deploy-kept-float.png``: an int8 run of the tabular MLP (Normalization first layer on
  raw features) whose Normalization stayed float: the Conversion box and the TFLite Micro
  verdict;
- ``deploy-lstm-keras3.png``: an int8 run of the LSTM (full-integer, converted at batch 1)
  with its Keras 3 model and *Export Keras 3 model…*.

    Xvfb :97 -screen 0 1400x900x24 &  DISPLAY=:97 QT_QPA_PLATFORM=xcb \\
        python tests/gui/make_zoo_screenshots.py

The models come from tests/zoo/builders.py (``build_family``, cached on disk), built in a
child process (TensorFlow never runs in this process, as in the app). Look at every picture
after running it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.gui.make_screenshots import OUT, settle, shot, wait_until  # noqa: E402

FAMILIES = ("image_scratch", "text_cnn", "lstm", "tabular_mlp")
SHOTS = {
    "image_scratch": "model-tab-binary",
    "text_cnn": "model-tab-text",
    "lstm": "model-tab-lstm",
}


def build() -> dict[str, dict[str, str]]:
    """Build (or reuse) the zoo families in a child process: name -> model and data paths."""
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.zoo.builders import build_family\n"
        "out = {}\n"
        f"for name in {FAMILIES!r}:\n"
        "    e = build_family(name)\n"
        "    out[name] = {'model': str(e.model_path), 'data': str(e.data_path)}\n"
        "print('ZOO ' + json.dumps(out))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    line = [x for x in proc.stdout.splitlines() if x.startswith("ZOO ")][-1]
    return json.loads(line[4:])


def open_with_data(app, w, model: str, data: str) -> None:
    w.open_model(model)
    wait_until(app, lambda: w.session.model is not None and w.session.model.spec == model, 300)
    w.choose_data(data, "auto")
    wait_until(app, lambda: w.session.baseline is not None or w.session.data.error, 600)
    if w.session.data.error:
        raise SystemExit(f"{Path(model).name}: {w.session.data.error}")
    settle(app, 1.0)


def main(zoo: dict[str, dict[str, str]]) -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from gui.app import create_window

    OUT.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp())
    settings = QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat)
    w = create_window([], settings=settings, runs_dir=tmp / "runs")
    w.project.ask_unsaved = lambda: "discard"
    w.show()
    settle(app, 1.0)
    for family, name in SHOTS.items():
        open_with_data(app, w, zoo[family]["model"], zoo[family]["data"])
        w.tabs.setCurrentIndex(0)
        settle(app)
        shot(w, name)

    # tabular MLP, int8 with the automatic check: its Normalization stays float
    open_with_data(app, w, zoo["tabular_mlp"]["model"], zoo["tabular_mlp"]["data"])
    tab = w.compress_tab
    w.tabs.setCurrentIndex(1)
    for t, box in tab.technique_boxes.items():
        box.setChecked(t == "quantize")
    tab.recipe_name.setText("int8-checked")
    tab.go_to(1)
    tab.editors["quantize"]["keep_float"].widget.line.setText("normalization")
    tab.editors["quantize"]["keep_float"].widget.line.setFocus()
    settle(app)
    shot(w, "compress-keep-float")
    tab.editors["quantize"]["keep_float"].set_value(None)  # automatic
    tab.go_to(3)
    run = tab.start_run()
    if run is None:
        raise SystemExit(f"the run did not start: {tab.message.text()}")
    wait_until(app, lambda: not tab.running, 600)
    print(f"tabular int8 run: {run.status}; {tab.stage_label.text()!r}")
    if run.status != "finished":
        raise SystemExit(f"the tabular run {run.status}: {run.error}")  # keep the old shots
    w.tabs.setCurrentIndex(2)
    results = w.results_tab
    results.select_run(run)
    results.lower_tabs.setCurrentWidget(results.deploy)
    settle(app, 1.0)
    shot(w, "deploy-kept-float")

    # the LSTM, int8: full-integer, converted at batch 1, with its Keras 3 model
    w.project.ask_new_comparison = lambda _what, _name: "new_comparison"
    open_with_data(app, w, zoo["lstm"]["model"], zoo["lstm"]["data"])
    w.tabs.setCurrentIndex(1)
    tab.recipe_name.setText("int8-lstm")
    tab.go_to(3)
    run = tab.start_run()
    if run is None:
        raise SystemExit(f"the run did not start: {tab.message.text()}")
    wait_until(app, lambda: not tab.running, 600)
    print(f"lstm int8 run: {run.status}; {tab.stage_label.text()!r}")
    if run.status != "finished":
        raise SystemExit(f"the LSTM run {run.status}: {run.error}")
    w.tabs.setCurrentIndex(2)
    results.select_run(run)
    results.lower_tabs.setCurrentWidget(results.deploy)
    settle(app, 1.0)
    shot(w, "deploy-lstm-keras3")

    w.shutdown()
    w.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    sys.exit(main(build()))
