"""The CLI's refusal says whether --allow-unsafe would help, decided without running code."""

from __future__ import annotations

import subprocess
import sys


def test_refusal_hint_points_to_allow_unsafe_only_when_it_can_work(tmp_path):
    from engine.core.tfenv import keras2

    k = keras2()
    inp = k.Input((4,))
    x = k.layers.Lambda(lambda t: t * 2.0, name="doubler")(inp)
    model = k.Model(inp, k.layers.Dense(3, activation="softmax")(x))
    lam = tmp_path / "lam.h5"
    model.save(lam)
    out = subprocess.run(
        [sys.executable, "-m", "engine", "inspect", str(lam)], capture_output=True, text=True
    )
    assert out.returncode == 2
    # TensorFlow's own start-up lines are silenced by the CLI's log capture (issue 11);
    # here: exactly one line of Featherweight's.
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("featherweight:")]
    assert len(lines) == 1, out.stderr
    assert "doubler" in lines[0] and "rerun with --allow-unsafe if you trust the file" in lines[0]
    assert "allow_unsafe=True" not in lines[0]
    from engine.models.safety import find_unsafe, read_stored_model

    # The Lambda is one item (the GUI lists items), not again as its own bytecode option.
    assert [i.layer for i in find_unsafe(read_stored_model(lam))] == ["doubler"]

    # A custom class: no code to define it, so trusting cannot help and the hint says so.
    config = model.to_json().replace('"Dense"', '"MyCustomDense"')
    import h5py

    with h5py.File(lam, "a") as f:
        f.attrs["model_config"] = config
    out = subprocess.run(
        [sys.executable, "-m", "engine", "inspect", str(lam)], capture_output=True, text=True
    )
    assert out.returncode == 2
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("featherweight:")]
    assert len(lines) == 1, out.stderr
    assert "cannot be opened even if trusted" in lines[0]
    assert "--allow-unsafe" not in lines[0]
