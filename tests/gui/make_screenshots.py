"""Drive the real app (real engine worker) and save screenshots to docs/screenshots.

    Xvfb :99 -screen 0 1400x900x24 &  DISPLAY=:99 QT_QPA_PLATFORM=xcb \
        python tests/gui/make_screenshots.py

The walk: the empty start, the demo with two runs (wizard pages, live charts, results), a
harsh run that ends over the accuracy budget (prune 95 % for one epoch), a second model (a
small Dense network saved by Keras 3) opened as a new comparison with an image folder
picked in the folder dialog, and a Keras 2 SavedModel folder opened from *File → Open
SavedModel folder…*. The inputs (image folder, Dense model, SavedModel) are written first
by a child process (TensorFlow never runs in this process, as in the app).

Shots are grabbed from the X screen with ``QScreen.grabWindow`` over the window's frame (so
dialogs on top of it are in the picture) and saved as PNG. Not a test: a tool to
regenerate the README and docs pictures; look at every picture after running it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "screenshots"
sys.path.insert(0, str(ROOT))

IMAGE_FOLDER = "digits-images"
DENSE_MODEL = "digits_mlp.keras"
SAVED_MODEL = "digits_cnn_savedmodel"


# -- inputs (child process, TensorFlow) ---------------------------------------------------
def write_inputs(out: Path) -> None:
    """Write the walk's inputs into ``out``: an image folder of the digits (one sub-folder
    per class, 8×8 grey PNGs), a small Dense model saved by Keras 3, and a Keras 2
    (tf_keras) SavedModel folder of a small CNN. Both models are trained on the digits."""
    from engine.core.demo import digits_arrays
    from engine.core.tfenv import keras2, keras3, set_seed, tf

    set_seed(0)
    arrays = digits_arrays()
    x = arrays["x_train"].astype("float32") / 255.0
    y = arrays["y_train"]
    folder = out / IMAGE_FOLDER
    for split in ("train", "test"):
        for i, (img, label) in enumerate(zip(arrays[f"x_{split}"], arrays[f"y_{split}"])):
            d = folder / str(int(label))
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{split}-{i:04d}.png").write_bytes(tf().io.encode_png(img).numpy())

    k3 = keras3()
    mlp = k3.Sequential(
        [
            k3.Input((8, 8, 1)),
            k3.layers.Flatten(),
            k3.layers.Dense(64, activation="relu"),
            k3.layers.Dense(32, activation="relu"),
            k3.layers.Dense(10, activation="softmax"),
        ],
        name="digits_mlp",
    )
    mlp.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    mlp.fit(x, y, epochs=40, batch_size=32, verbose=0)
    mlp.save(out / DENSE_MODEL)

    k2 = keras2()
    cnn = k2.Sequential(
        [
            k2.Input((8, 8, 1)),
            k2.layers.Conv2D(16, 3, padding="same", activation="relu"),
            k2.layers.BatchNormalization(),
            k2.layers.DepthwiseConv2D(3, padding="same", activation="relu"),
            k2.layers.Conv2D(32, 1, activation="relu"),
            k2.layers.GlobalAveragePooling2D(),
            k2.layers.Dense(10, activation="softmax"),
        ],
        name="digits_cnn_sm",
    )
    cnn.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    cnn.fit(x, y, epochs=15, batch_size=32, verbose=0)
    cnn.save(str(out / SAVED_MODEL))  # a folder path: tf_keras writes a SavedModel


# -- driving the window -------------------------------------------------------------------
def wait_until(app: Any, cond: Callable[[], bool], timeout: float = 300) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    deadline = time.monotonic() + timeout
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(lambda: (cond() or time.monotonic() > deadline) and loop.quit())
    timer.start()
    loop.exec()
    timer.stop()
    if not cond():
        raise SystemExit("timed out waiting")


def settle(app: Any, seconds: float = 0.6) -> None:
    end = time.monotonic() + seconds
    wait_until(app, lambda: time.monotonic() > end, seconds + 5)


def shot(window: Any, name: str) -> None:
    """Grab the screen over ``window``'s frame (dialogs on top included) to NAME.png."""
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()
    geo = window.frameGeometry()
    screen = window.screen()
    pix = screen.grabWindow(0, geo.x(), geo.y(), geo.width(), geo.height())
    dest = OUT / f"{name}.png"
    if not pix.save(str(dest), "PNG"):
        raise SystemExit(f"could not write {dest}")
    print(f"{dest.name}: {pix.width()}×{pix.height()}, {dest.stat().st_size // 1024} KB")


def with_modal(app: Any, kind: type, handle: Callable[[Any], None], action: Callable[[], Any]):
    """Run ``action`` (which opens a modal ``kind`` dialog and waits in it); ``handle`` gets
    the dialog once it is shown and must close it."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    timer = QTimer()
    timer.setInterval(100)
    state = {"done": False}

    def poll() -> None:
        dlg = QApplication.activeModalWidget()
        if not state["done"] and isinstance(dlg, kind) and dlg.isVisible():
            state["done"] = True
            timer.stop()
            handle(dlg)

    timer.timeout.connect(poll)
    timer.start()
    try:
        return action()
    finally:
        timer.stop()
        if not state["done"]:
            raise SystemExit(f"no {kind.__name__} was shown")


def choose_in_file_dialog(app: Any, window: Any, dlg: Any, path: Path, name: str | None) -> None:
    """Show ``path`` selected in a (non-native) folder dialog, shoot it as ``name``, accept."""
    from PySide6.QtWidgets import QTreeView

    dlg.resize(max(dlg.width(), 760), dlg.height())  # room for the Date Modified column
    dlg.setDirectory(str(path.parent))
    settle(app, 1.0)  # the file system model lists the folder asynchronously
    tree = dlg.findChild(QTreeView, "treeView")
    if tree is not None:
        tree.setFocus()  # selectFile leaves the name field empty while it has the focus
    dlg.selectFile(str(path))
    settle(app, 0.6)
    if name:
        shot(window, name)
    if dlg.selectedFiles() != [str(path)]:
        raise SystemExit(f"the dialog would return {dlg.selectedFiles()}, not {path}")
    dlg.accept()


def click_button(box: Any, text: str) -> None:
    for button in box.buttons():
        if button.text() == text:
            button.click()
            return
    raise SystemExit(f"no button {text!r} in {box.windowTitle()!r}")


def show_cell_tooltip(table: Any, row_type: str, column: str) -> None:
    """Show the tooltip of the ``column`` cell of the first row whose Type is ``row_type``."""
    from PySide6.QtWidgets import QToolTip

    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    col, type_col = headers.index(column), headers.index("Type")
    for r in range(table.rowCount()):
        if table.item(r, type_col).text() == row_type:
            item = table.item(r, col)
            rect = table.visualItemRect(item)
            pos = table.viewport().mapToGlobal(rect.center())
            QToolTip.showText(pos, item.toolTip(), table.viewport(), rect, 60_000)
            return
    raise SystemExit(f"no {row_type} row in the layer table")


def main(inputs: Path) -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

    from gui.app import create_window

    OUT.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp())
    settings = QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat)
    w = create_window([], settings=settings, runs_dir=tmp / "runs")
    w.show()
    settle(app, 1.0)
    shot(w, "1-model-empty")

    w.open_demo()
    wait_until(app, lambda: w.session.baseline is not None)
    settle(app)
    shot(w, "2-model-demo")

    tab = w.compress_tab
    w.tabs.setCurrentIndex(1)
    # first run: int8 post-training quantization
    for t, box in tab.technique_boxes.items():
        box.setChecked(t == "quantize")
    tab.recipe_name.setText("int8-ptq")
    tab.go_to(0)
    settle(app)
    shot(w, "3-compress-techniques")
    tab.start_run()
    wait_until(app, lambda: not tab.running)
    # second run: prune + int8, shown live
    for t, box in tab.technique_boxes.items():
        box.setChecked(t in ("prune", "quantize"))
    tab.editors["prune"]["target_sparsity"].set_value(0.8)
    tab.editors["prune"]["epochs"].set_value(12)
    tab.editors["prune"]["learning_rate"].set_value(5e-4)
    tab.recipe_name.setText("prune80-int8")
    tab.go_to(1)
    settle(app)
    shot(w, "4-compress-settings")
    tab.go_to(3)
    settle(app)
    shot(w, "5-compress-review")
    run = second = tab.start_run()
    wait_until(app, lambda: len(run.series.get("val_accuracy", [])) >= 6)
    settle(app, 0.4)
    shot(w, "6-compress-running")
    wait_until(app, lambda: not tab.running)
    settle(app)
    shot(w, "7-compress-finished")
    w.tabs.setCurrentIndex(2)
    settle(app)
    shot(w, "8-results")

    # third run: a harsh recipe (prune 95 % in one epoch, no recovery) -> over the budget
    w.tabs.setCurrentIndex(1)
    for t, box in tab.technique_boxes.items():
        box.setChecked(t in ("prune", "quantize"))
    tab.editors["prune"]["target_sparsity"].set_value(0.95)
    tab.editors["prune"]["schedule"].set_value("constant")
    tab.editors["prune"]["epochs"].set_value(1)
    tab.editors["prune"]["learning_rate"].set_value(1e-4)
    tab.recipe_name.setText("prune95-1epoch")
    tab.go_to(3)
    run = tab.start_run()
    wait_until(app, lambda: not tab.running)
    settle(app)
    print(f"harsh run: verdict {tab.verdict(run)!r}; {tab.stage_label.text()!r}")
    shot(w, "over-budget")
    w.tabs.setCurrentIndex(2)
    results = w.results_tab
    results.lower_tabs.setCurrentIndex(1)  # Deployment: the badge of a collapsed run
    settle(app)
    shot(w, "deploy-over-budget")
    results.lower_tabs.setCurrentIndex(0)
    results.select_run(second)  # the collapsed run's row keeps its red (not selection blue)
    settle(app)
    shot(w, "results-over-budget")

    # a second model while the project has runs: asked, then a new comparison
    def answer_comparison(box: Any) -> None:
        settle(app, 0.6)
        shot(w, "comparison-question")
        click_button(box, "New comparison in this project")

    with_modal(app, QMessageBox, answer_comparison, lambda: w.open_model(str(inputs / DENSE_MODEL)))
    wait_until(
        app, lambda: w.session.model is not None and w.session.model.spec.endswith(DENSE_MODEL)
    )
    settle(app)
    shot(w, "second-model-no-data")
    picker = w.model_tab.data_picker
    with_modal(
        app,
        QFileDialog,
        lambda d: choose_in_file_dialog(app, w, d, inputs / IMAGE_FOLDER, "image-folder-picker"),
        picker.folder.click,
    )
    wait_until(app, lambda: w.session.baseline is not None, 600)
    settle(app)
    shot(w, "second-model-image-folder")
    w.tabs.setCurrentIndex(1)
    for t, box in tab.technique_boxes.items():
        box.setChecked(t == "quantize")
    tab.recipe_name.setText("int8-ptq")
    tab.go_to(3)
    mlp_run = tab.start_run()
    wait_until(app, lambda: not tab.running, 600)
    w.tabs.setCurrentIndex(2)
    settle(app)
    print("comparisons:", [label for _k, label, _n in results.subjects()])
    shot(w, "comparison")
    results.subject_combo.showPopup()
    settle(app)
    shot(w, "comparison-list")
    results.subject_combo.hidePopup()
    # export: named after the model and recipe, next to the model; the status bar confirms
    results.select_run(mlp_run)
    results.export_artifact("model.tflite", results.default_export_path(mlp_run, ".tflite"))
    settle(app)
    shot(w, "export-confirmation")
    dlg = w.show_shortcuts()
    settle(app)
    shot(w, "help-shortcuts")
    dlg.close()

    # a Keras 2 SavedModel folder from File -> Open SavedModel folder… (a new comparison)
    def open_savedmodel() -> None:
        with_modal(
            app,
            QMessageBox,
            lambda box: click_button(box, "New comparison in this project"),
            w.open_savedmodel_dialog,
        )

    with_modal(
        app,
        QFileDialog,
        lambda d: choose_in_file_dialog(app, w, d, inputs / SAVED_MODEL, "savedmodel-dialog"),
        open_savedmodel,
    )
    wait_until(app, lambda: w.session.model is not None and "savedmodel" in w.session.model.spec)
    wait_until(app, lambda: w.session.baseline is not None, 600)
    settle(app, 1.0)
    shot(w, "savedmodel")
    show_cell_tooltip(w.model_tab.table, "DepthwiseConv2D", "Prune")
    settle(app, 0.6)
    shot(w, "savedmodel-left-dense")

    w.project.ask_unsaved = lambda: "discard"
    w.shutdown()
    w.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write-inputs":
        write_inputs(Path(sys.argv[2]))
        sys.exit(0)
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    inputs = Path(tempfile.mkdtemp(prefix="fw-shots-"))
    print(f"writing inputs to {inputs} …")
    subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--write-inputs", str(inputs)],
        check=True,
        cwd=ROOT,
    )
    try:
        code = main(inputs)
    finally:
        shutil.rmtree(inputs, ignore_errors=True)
    sys.exit(code)
