"""Issue 23: the zoo without TensorFlow (models, training on arrays, prediction), and
TensorFlow's features failing in one line where it is missing.

Each check runs tests/_no_tensorflow_worker.py in a fresh process on JAX, where
``import tensorflow`` fails as it does where TensorFlow is not installed. CI also runs
the model harness in an environment without TensorFlow (``.ci/without_tensorflow``).
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data_tools.epochs import set_training_epoch
from data_tools.lazy_tensorflow import INSTALL_HINT, TensorFlowMissingError, require_tensorflow

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "_no_tensorflow_worker.py"

#: The modules that need TensorFlow when imported, and why: what they are is TensorFlow's.
NEEDS_TENSORFLOW = {
    "data_tools.pipeline": "the tf.data pipelines",
    "data_tools.statistics": "channel statistics over a tf.data pipeline",
    "zoo.attnmel.roi": "AttnMel's ROI maps as a tf.data pipeline",
    "zoo.distribute": "tf.distribute's multi-worker strategy",
    "zoo.export": "the SavedModel export",
    "zoo.flops": "FLOPs from TensorFlow's graph profiler",
    "zoo.litert": "the LiteRT converter",
    "zoo.train.command": "python -m zoo.train reads datasets through the tf.data pipelines",
}
#: ``keras.ops`` preprocessing against tf.data's, relative to the values' spread.
PREPROCESSING_TOLERANCE = 1e-4


def _worker(mode: str, tmp_path: Path) -> dict:
    out = tmp_path / f"{mode}.json"
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(
        [sys.executable, str(WORKER), mode, str(out)], env=env, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(out.read_text())


def test_only_the_tensorflow_modules_need_it_at_import(tmp_path):
    report = _worker("imports", tmp_path)
    assert set(report["needs_tensorflow"]) == set(NEEDS_TENSORFLOW), (
        "the modules that need TensorFlow at import changed: make TensorFlow a first-use import "
        "(data_tools.lazy_tensorflow) or, for a TensorFlow feature, add the module here with its reason: "
        f"{report['needs_tensorflow']}"
    )
    for module, message in report["needs_tensorflow"].items():
        assert INSTALL_HINT in message and "\n" not in message, (module, message)
    assert not report["tensorflow_loaded"]


@pytest.fixture(scope="module")
def use(tmp_path_factory):
    return _worker("use", tmp_path_factory.mktemp("use"))


def test_zoo_lists_builds_trains_and_predicts_without_tensorflow(use):
    """SANet (image and superpixel map in, SLIC at prediction) trained on arrays, saved
    as a run folder, loaded, and run on a decoded image of another size."""
    assert use["backend"] == "jax"
    assert len(use["listed"]) == 26 and use["listed"][0] == "unet"
    assert use["epochs_logged"] == 1 and use["loss_finite"]
    assert use["prediction_shape"][-1] == 5  # SANet's five attribute masks at the model's size
    assert use["keras_file_same"]
    assert not use["tensorflow_loaded"]


def test_a_tensorflow_feature_says_what_to_install(use):
    assert use["pipeline_error"].startswith("TensorFlow is not installed here, and the tf.data pipelines")
    assert INSTALL_HINT in use["pipeline_error"]


def test_require_tensorflow_raises_one_line_naming_the_feature(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # what Python does for a module that failed to import
    monkeypatch.setattr("importlib.import_module", _missing)
    with pytest.raises(TensorFlowMissingError, match=r"and the SavedModel export needs it: pip install"):
        require_tensorflow("the SavedModel export")


def _missing(name):
    raise ModuleNotFoundError(f"No module named {name!r}", name=name)


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="compares with TensorFlow's tf.data")
def test_preprocessing_in_keras_ops_equals_tf_data_for_every_spec(tmp_path):
    """Every registered model's InputSpec, on RGB and grey images of odd sizes: the
    images, SANet-style label maps (exactly) and the maps restored to the original size."""
    report = _worker("equal", tmp_path)
    assert len(report) == 26 * 2 * 3
    shapes = {key: value for key, value in report.items() if isinstance(value, str)}
    assert not shapes, shapes
    for key, difference in report.items():
        limit = 0.0 if key.endswith("label_maps") else PREPROCESSING_TOLERANCE
        assert difference <= limit, (key, difference)


def test_array_dataset_order_depends_on_seed_and_epoch_only():
    from zoo.train import ArrayDataset

    samples = np.arange(10, dtype=np.float32)[:, None]
    data = ArrayDataset(samples, samples * 2, batch_size=4, seed=3)
    assert len(data) == 3 and len(data[2][0]) == 2
    set_training_epoch(1)
    first = np.concatenate([data[i][0] for i in range(len(data))])[:, 0]
    np.testing.assert_array_equal(np.sort(first), np.arange(10))
    np.testing.assert_array_equal(data[0][1], data[0][0] * 2)  # targets follow their inputs
    again = ArrayDataset(samples, samples * 2, batch_size=4, seed=3)
    set_training_epoch(1)  # a resumed run: a new dataset told the same epoch
    np.testing.assert_array_equal(np.concatenate([again[i][0] for i in range(3)])[:, 0], first)
    set_training_epoch(2)
    assert not np.array_equal(np.concatenate([data[i][0] for i in range(3)])[:, 0], first)
    with pytest.raises(ValueError, match="same number of samples"):
        ArrayDataset(samples, samples[:3], batch_size=2)
