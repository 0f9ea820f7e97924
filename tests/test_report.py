"""Deployment report (engine.tflite.report), C array export and .tflite metadata."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.core.errors import BadInputError

ROOT = Path(__file__).resolve().parent.parent
GCC = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="gcc not installed")


def _convert_demo_int8(float_io: bool) -> bytes:
    from engine.core.demo import demo_model_path, digits_arrays
    from engine.core.tfenv import keras2, tf

    model = keras2().models.load_model(demo_model_path())
    x = digits_arrays()["x_train"][:32].astype(np.float32) / 255.0

    def representative():
        for i in range(len(x)):
            yield [x[i : i + 1]]

    conv = tf().lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf().lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf().lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not float_io:
        conv.inference_input_type = tf().int8
        conv.inference_output_type = tf().int8
    return conv.convert()


@pytest.fixture(scope="session")
def demo_int8(tmp_path_factory) -> Path:
    """The demo model as full-integer int8 .tflite with int8 input and output."""
    path = tmp_path_factory.mktemp("int8") / "model.tflite"
    path.write_bytes(_convert_demo_int8(float_io=False))
    return path


@pytest.fixture(scope="session")
def demo_int8_float_io(tmp_path_factory) -> Path:
    """The same int8 model with float32 I/O: LiteRT quantizes/dequantizes inside the graph."""
    path = tmp_path_factory.mktemp("int8f") / "model.tflite"
    path.write_bytes(_convert_demo_int8(float_io=True))
    return path


@pytest.fixture(scope="session")
def flex_model(tmp_path_factory) -> Path:
    """A model using tf.linalg.det, which has no TFLite built-in (becomes a Flex op)."""
    from engine.core.tfenv import tf

    t = tf()

    @t.function(input_signature=[t.TensorSpec([2, 3, 3], t.float32)])
    def det_plus_one(a):
        return t.linalg.det(a) + 1.0

    conv = t.lite.TFLiteConverter.from_concrete_functions(
        [det_plus_one.get_concrete_function()], det_plus_one
    )
    builtins_only = t.lite.TFLiteConverter.from_concrete_functions(
        [det_plus_one.get_concrete_function()], det_plus_one
    )
    with pytest.raises(Exception, match="MatrixDeterminant"):
        builtins_only.convert()  # proves det has no TFLite built-in
    conv.target_spec.supported_ops = [t.lite.OpsSet.TFLITE_BUILTINS, t.lite.OpsSet.SELECT_TF_OPS]
    path = tmp_path_factory.mktemp("flex") / "det.tflite"
    path.write_bytes(conv.convert())
    return path


@pytest.fixture(scope="session")
def digits_test() -> np.ndarray:
    from engine.core.demo import digits_arrays

    return digits_arrays()["x_test"][:40].astype(np.float32) / 255.0


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    rows = []
    for row in x:
        interp.set_tensor(inp["index"], row[np.newaxis])
        interp.invoke()
        rows.append(interp.get_tensor(out["index"])[0].copy())
    return np.stack(rows)


def test_op_list_matches_interpreter(demo_int8):
    from ai_edge_litert.interpreter import Interpreter

    from engine.tflite.report import report_tflite

    report = report_tflite(demo_int8)
    interp = Interpreter(model_path=str(demo_int8))
    expected = [op["op_name"] for op in interp._get_ops_details()]
    assert report["op_sequence"] == expected
    counts = {o["name"]: o["count"] for o in report["ops"]}
    assert counts == {n: expected.count(n) for n in set(expected)}
    conv = next(o for o in report["ops"] if o["name"] == "CONV_2D")
    assert conv["output_dtypes"] == ["int8"] and "int8" in conv["input_dtypes"]
    assert report["flex_ops"] == [] and report["custom_ops"] == []
    assert report["verdicts"]["litert_builtins"]["ok"]
    assert report["verdicts"]["tflite_micro"]["ok"], report["verdicts"]["tflite_micro"]


def test_io_contract_matches_interpreter(demo_int8):
    from ai_edge_litert.interpreter import Interpreter

    from engine.tflite.report import report_tflite

    report = report_tflite(demo_int8)
    interp = Interpreter(model_path=str(demo_int8))
    for mine, theirs in (
        (report["io"]["inputs"], interp.get_input_details()),
        (report["io"]["outputs"], interp.get_output_details()),
    ):
        assert len(mine) == len(theirs) == 1
        scale, zero_point = theirs[0]["quantization"]
        assert mine[0]["dtype"] == "int8" and theirs[0]["dtype"] == np.int8
        assert mine[0]["shape"] == list(theirs[0]["shape"])
        assert mine[0]["scale"] == pytest.approx(scale, rel=1e-7)
        assert mine[0]["zero_point"] == zero_point
    mem = report["memory"]
    assert mem["estimate"] is True
    assert mem["file_bytes"] == demo_int8.stat().st_size
    # int8 weights of ~151k parameters, below the file size
    assert 140_000 < mem["weights_bytes"] < mem["file_bytes"]


def test_python_snippet_matches_interpreter(demo_int8, demo_int8_float_io, digits_test):
    from engine.tflite.report import report_tflite

    snippet = report_tflite(demo_int8)["snippets"]
    assert snippet["needed"]
    ns: dict = {}
    exec(snippet["python"], ns)  # noqa: S102 - the snippet is what users copy
    q = ns["quantize_input"](digits_test)
    assert q.dtype == np.int8
    via_snippet = ns["dequantize_output"](_run(demo_int8, q))
    # LiteRT's own QUANTIZE/DEQUANTIZE ops inside the float-I/O model give the same numbers.
    assert np.array_equal(via_snippet, _run(demo_int8_float_io, digits_test))


@needs_gcc
def test_c_snippet_matches_python_snippet(demo_int8, digits_test, tmp_path):
    from engine.tflite.report import report_tflite

    snippet = report_tflite(demo_int8)["snippets"]
    ns: dict = {}
    exec(snippet["python"], ns)  # noqa: S102
    values = np.concatenate([digits_test.ravel()[:500], [-1.0, 2.0, 0.5 / 255, 1.5 / 255]])
    values = values.astype(np.float32)
    q_codes = np.arange(-128, 128, dtype=np.int8)
    main = (
        snippet["c"]
        + """
#include <stdio.h>
int main(void) {
  float x; int c;
  while (scanf("%f", &x) == 1) { int8_t q; quantize_input(&x, &q, 1); printf("%d\\n", q); }
  for (c = -128; c < 128; ++c) { int8_t q = (int8_t)c; float y; dequantize_output(&q, &y, 1);
    printf("%.9g\\n", y); }
  return 0;
}
"""
    )
    (tmp_path / "snippet.c").write_text(main)
    exe = tmp_path / "snippet"
    subprocess.run([GCC, "-O2", "-o", str(exe), str(tmp_path / "snippet.c"), "-lm"], check=True)
    stdin = "\n".join(f"{v:.9g}" for v in values)
    out = subprocess.run([str(exe)], input=stdin, capture_output=True, text=True, check=True)
    lines = out.stdout.split()
    c_q = np.array([int(s) for s in lines[: len(values)]], dtype=np.int8)
    c_y = np.array([float(s) for s in lines[len(values) :]], dtype=np.float32)
    assert np.array_equal(c_q, ns["quantize_input"](values))
    assert np.array_equal(c_y, ns["dequantize_output"](q_codes))


def test_float_model_needs_no_snippet_and_memory_is_hand_computed(tmp_path):
    """Dense(4->8, relu) -> Dense(8->3), float32, batch 1.

    Weights: (4*8 + 8 + 8*3 + 3) floats = 67 * 4 = 268 bytes.
    Activations: input 16 B, hidden 32 B, output 12 B. Op 1 needs input+hidden (48 B),
    op 2 needs hidden+output (44 B): peak 48 B; the output can reuse the input's slot
    (16-byte aligned), so the arena is 32 + 16 = 48 B; without reuse 60 B.
    """
    from engine.core.tfenv import keras2, tf
    from engine.tflite.report import report_tflite

    k = keras2()
    model = k.Sequential(
        [
            k.layers.InputLayer(input_shape=(4,), batch_size=1),
            # non-zero biases: the converter drops all-zero bias tensors
            k.layers.Dense(8, activation="relu", bias_initializer="ones"),
            k.layers.Dense(3, bias_initializer="ones"),
        ]
    )
    path = tmp_path / "dense.tflite"
    path.write_bytes(tf().lite.TFLiteConverter.from_keras_model(model).convert())
    report = report_tflite(path)
    assert report["op_sequence"] == ["FULLY_CONNECTED", "FULLY_CONNECTED"]
    mem = report["memory"]
    assert mem["weights_bytes"] == 268
    assert mem["activation_sum_bytes"] == 60
    assert mem["activation_peak_live_bytes"] == 48
    assert mem["arena_estimate_bytes"] == 48
    assert not report["snippets"]["needed"]
    assert report["io"]["inputs"][0]["dtype"] == "float32"
    assert not report["io"]["inputs"][0]["quantized"]


def test_flex_op_is_flagged(flex_model):
    from ai_edge_litert.interpreter import Interpreter

    from engine.tflite.report import format_tflite_report, report_tflite

    # LiteRT alone cannot run it: the report reads the flatbuffer, not the interpreter.
    with pytest.raises(RuntimeError, match="Select TensorFlow op"):
        Interpreter(model_path=str(flex_model)).allocate_tensors()
    report = report_tflite(flex_model)
    assert report["flex_ops"] == ["FlexMatrixDeterminant"]
    flex = next(o for o in report["ops"] if o["name"] == "FlexMatrixDeterminant")
    assert flex["kind"] == "flex" and flex["input_dtypes"] == ["float32"]
    for key in ("litert_builtins", "tflite_micro"):
        assert not report["verdicts"][key]["ok"]
        assert "FlexMatrixDeterminant" in report["verdicts"][key]["missing"]
    assert "FLEX" in format_tflite_report(report)


@needs_gcc
def test_c_array_compiles_and_holds_the_model_bytes(demo_int8, tmp_path):
    from engine.tflite.export_c import write_c_array

    c_path, h_path = write_c_array(demo_int8, tmp_path / "c", name="g_model")
    assert (c_path.name, h_path.name) == ("g_model.c", "g_model.h")
    obj = tmp_path / "g_model.o"
    subprocess.run([GCC, "-c", "-Wall", "-Werror", str(c_path), "-o", str(obj)], check=True)
    dump = tmp_path / "dump.c"
    dump.write_text(
        '#include <stdio.h>\n#include <stdint.h>\n#include "g_model.h"\n'
        "int main(void) {\n"
        "  if ((uintptr_t)g_model % 16 != 0) return 3;\n"
        "  fwrite(g_model, 1, g_model_len, stdout);\n  return 0;\n}\n"
    )
    exe = tmp_path / "dump"
    subprocess.run([GCC, f"-I{c_path.parent}", str(dump), str(obj), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, check=True)
    assert out.stdout == demo_int8.read_bytes()


def test_c_array_rejects_bad_name(demo_int8, tmp_path):
    from engine.tflite.export_c import write_c_array

    with pytest.raises(BadInputError, match="C identifier"):
        write_c_array(demo_int8, tmp_path, name="my-model")


def test_metadata_round_trip_keeps_the_model_running(demo_int8, digits_test, tmp_path):
    from engine.tflite.metadata import read_metadata, write_metadata
    from engine.tflite.report import report_tflite

    labels = [f"digit {i}" for i in range(10)]
    out = write_metadata(
        demo_int8, tmp_path / "with_meta.tflite", labels=labels, mean=0.0, std=255.0
    )
    meta = read_metadata(out)
    assert meta["labels"] == labels
    assert meta["input_normalization"] == {"mean": [0.0], "std": [255.0]}
    assert read_metadata(demo_int8) is None
    # writing again replaces the entry instead of adding a second one
    write_metadata(out, labels=labels[::-1])
    assert read_metadata(out)["labels"] == labels[::-1]
    assert read_metadata(out)["input_normalization"] is None

    q = np.clip(np.round(digits_test / (1 / 255.0)) - 128, -128, 127).astype(np.int8)
    assert np.array_equal(_run(out, q), _run(demo_int8, q))
    before, after = report_tflite(demo_int8), report_tflite(out)
    assert after["op_sequence"] == before["op_sequence"]
    assert after["memory"]["weights_bytes"] == before["memory"]["weights_bytes"]
    assert after["metadata"]["labels"] == labels[::-1]


def test_metadata_needs_mean_and_std_together(demo_int8, tmp_path):
    from engine.tflite.metadata import write_metadata

    with pytest.raises(BadInputError, match="both mean and std"):
        write_metadata(demo_int8, tmp_path / "x.tflite", mean=0.5)


def test_not_a_tflite_file_is_bad_input(tmp_path):
    from engine.tflite.report import report_tflite

    bogus = tmp_path / "model.tflite"
    bogus.write_bytes(b"this is not a flatbuffer at all")
    with pytest.raises(BadInputError, match="not a .tflite"):
        report_tflite(bogus)
    with pytest.raises(BadInputError, match="cannot read"):
        report_tflite(tmp_path / "missing.tflite")


def test_write_report_and_cli(demo_int8, tmp_path):
    from engine.tflite.report import report_tflite, write_report

    path = write_report(demo_int8, tmp_path / "run")
    assert path == tmp_path / "run" / "report.json"
    assert json.loads(path.read_text()) == json.loads(json.dumps(report_tflite(demo_int8)))

    cli = [sys.executable, "-m", "engine", "report", str(demo_int8)]
    as_json = subprocess.run(cli + ["--json"], capture_output=True, text=True, cwd=ROOT)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["op_sequence"] == report_tflite(demo_int8)["op_sequence"]
    text = subprocess.run(cli, capture_output=True, text=True, cwd=ROOT)
    assert text.returncode == 0 and "tensor arena (est.)" in text.stdout
    bad = subprocess.run(
        cli[:-1] + [str(tmp_path / "nope.tflite")], capture_output=True, text=True, cwd=ROOT
    )
    assert bad.returncode == 2 and "cannot read" in bad.stderr


def test_builtin_missing_from_tflite_micro_is_flagged(tmp_path):
    """TOPK_V2 is a LiteRT built-in that TFLite Micro has no kernel for."""
    from engine.core.tfenv import tf
    from engine.tflite.report import report_tflite

    t = tf()

    @t.function(input_signature=[t.TensorSpec([1, 10], t.float32)])
    def top3(a):
        return t.math.top_k(a, k=3).values

    conv = t.lite.TFLiteConverter.from_concrete_functions([top3.get_concrete_function()], top3)
    path = tmp_path / "topk.tflite"
    path.write_bytes(conv.convert())
    report = report_tflite(path)
    assert "TOPK_V2" in report["op_sequence"]
    assert report["verdicts"]["litert_builtins"]["ok"]
    assert not report["verdicts"]["tflite_micro"]["ok"]
    assert report["verdicts"]["tflite_micro"]["missing"] == ["TOPK_V2"]


def test_tflm_op_list_is_valid_data():
    from ai_edge_litert.schema_py_generated import BuiltinOperator

    from engine.tflite.report import tflm_op_list

    data = tflm_op_list()
    builtin_names = {k for k in vars(BuiltinOperator) if not k.startswith("_")}
    assert set(data["builtin_ops"]) <= builtin_names
    assert {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX", "BATCH_MATMUL"} <= set(data["builtin_ops"])
    assert data["source"]["url"].startswith("https://github.com/tensorflow/tflite-micro/")
    assert data["source"]["commit"] and data["source"]["retrieved"]


@pytest.mark.parametrize("mode", ["float16", "dynamic_range"])
def test_float16_and_hybrid_models_are_not_tflite_micro_ready(mode, tmp_path):
    """Both fail to prepare in the tflite-micro interpreter; the verdict must say so."""
    from engine.core.tfenv import keras2, tf
    from engine.tflite.report import report_tflite

    k = keras2()
    model = k.Sequential([k.layers.InputLayer(input_shape=(32,)), k.layers.Dense(64)])
    conv = tf().lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf().lite.Optimize.DEFAULT]  # 2,048 weights: above the 1,024 floor
    if mode == "float16":
        conv.target_spec.supported_types = [tf().float16]
    path = tmp_path / f"{mode}.tflite"
    path.write_bytes(conv.convert())
    report = report_tflite(path)
    verdict = report["verdicts"]["tflite_micro"]
    assert report["verdicts"]["litert_builtins"]["ok"]
    assert not verdict["ok"] and verdict["missing"] == []
    expected = "float16" if mode == "float16" else "hybrid"
    assert len(verdict["problems"]) == 1 and expected in verdict["problems"][0]


def test_full_integer_int8_and_float_models(demo_int8, demo_int8_float_io, tmp_path):
    from engine.core.tfenv import keras2, tf
    from engine.tflite.report import format_tflite_report, report_tflite

    for path in (demo_int8, demo_int8_float_io):  # QUANTIZE/DEQUANTIZE at float I/O allowed
        integer = report_tflite(path)["full_integer"]
        assert integer == {
            "ok": True,
            "int8": True,
            "float_ops": [],
            "summary": "Full-integer: every op computes on integers.",
        }
    k = keras2()
    model = k.Sequential([k.layers.InputLayer(input_shape=(4,)), k.layers.Dense(3)])
    path = tmp_path / "float.tflite"
    path.write_bytes(tf().lite.TFLiteConverter.from_keras_model(model).convert())
    report = report_tflite(path)
    assert report["full_integer"]["ok"] is False and report["full_integer"]["int8"] is False
    assert report["full_integer"]["float_ops"] == ["FULLY_CONNECTED"]
    assert report["verdicts"]["tflite_micro"]["ok"]  # a float model is not "mixed"
    assert "Full-integer      NO" in format_tflite_report(report)


class _Splits:
    def __init__(self, x):
        self.x = x

    def calibration(self, n=300):
        for i in range(min(n, len(self.x))):
            yield self.x[i : i + 1]


def test_int8_with_a_layer_kept_float_is_not_full_integer(tmp_path):
    from engine.core.tfenv import keras2
    from engine.techniques.quantize import convert
    from engine.tflite.report import format_tflite_report, report_tflite

    k = keras2()
    model = k.Sequential(
        [
            k.layers.InputLayer(input_shape=(16,)),
            k.layers.Dense(32, activation="relu", name="first"),
            k.layers.Dense(8, activation="relu", name="middle"),
            k.layers.Dense(4, name="last"),
        ]
    )
    splits = _Splits(np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32))
    step = {"mode": "int8", "io": "float", "calibration_samples": 64}
    paths = {}
    for keep in ([], ["middle"]):
        paths[tuple(keep)] = tmp_path / f"keep{len(keep)}.tflite"
        paths[tuple(keep)].write_bytes(convert(model, splits, {**step, "keep_float": keep}))
    pure = report_tflite(paths[()])
    assert pure["full_integer"]["ok"] and pure["verdicts"]["tflite_micro"]["ok"]
    mixed = report_tflite(paths[("middle",)])
    integer = mixed["full_integer"]
    assert not integer["ok"] and integer["int8"] and integer["float_ops"] == ["FULLY_CONNECTED"]
    fc = next(o for o in mixed["ops"] if o["name"] == "FULLY_CONNECTED")
    assert fc["count"] == 3 and {"float32", "int8"} <= set(fc["output_dtypes"])
    tflm = mixed["verdicts"]["tflite_micro"]
    assert not tflm["ok"] and tflm["missing"] == []
    assert any("not full-integer" in p for p in tflm["problems"])
    assert "Not full-integer: int8 model with ops kept in float" in format_tflite_report(mixed)
