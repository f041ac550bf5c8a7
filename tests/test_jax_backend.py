"""The keras.ops layers (SANet's superpixel pooling and SAM, RGBToLab) on the JAX
backend: a subprocess with KERAS_BACKEND=jax (the suite runs on TensorFlow) builds
SANet (small) with the weights of this process's model, gives its outputs to 1e-5 and
runs one jit-compiled training step."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zoo
from data_tools.colour import rgb_to_lab, rgb_to_lab_unit

ROOT = Path(__file__).resolve().parents[1]


def test_sanet_and_rgb_to_lab_run_and_train_under_jax(tmp_path):
    pytest.importorskip("jax")
    rng = np.random.default_rng(0)
    model = zoo.get_model("sanet").build(small=True)
    image_shape, map_shape = (tuple(i.shape[1:]) for i in model.inputs)
    image = rng.random((2, *image_shape)).astype(np.float32)
    blocks = rng.integers(0, 16, (2, map_shape[0] // 4, map_shape[1] // 4, 1))
    superpixels = np.repeat(np.repeat(blocks, 4, 1), 4, 2).astype(np.int32)
    rgb = rng.random((2, 5, 7, 3)).astype(np.float32)
    rgb[0, 0, :4] = [[0, 0, 0], [1, 1, 1], [0.04045, 0, 1], [0.01, 0.5, 0.2]]  # black, white, both branches
    model.save_weights(tmp_path / "sanet.weights.h5")
    np.savez(
        tmp_path / "inputs.npz",
        image=image,
        superpixels=superpixels,
        sanet_tf=model.predict([image, superpixels], verbose=0),
        target=(rng.random((2, *model.outputs[0].shape[1:])) > 0.5).astype(np.float32),
        rgb=rgb,
        lab_unit_True=rgb_to_lab_unit(rgb).numpy(),
        lab_unit_False=rgb_to_lab(rgb).numpy(),
    )
    environment = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}  # conftest: JAX's cache
    done = subprocess.run(
        [sys.executable, "-m", "tests._jax_backend_worker", str(tmp_path)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results["sanet_max_diff"] <= 1e-5, results
    assert np.isfinite(results["sanet_jit_loss"]) and results["sanet_weights_changed"], results
    assert results["lab_unit_True_max_diff"] <= 1e-5 and results["lab_unit_False_max_diff"] <= 1e-3, results
