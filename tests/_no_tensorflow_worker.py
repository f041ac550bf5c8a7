"""Run as ``python tests/_no_tensorflow_worker.py imports|use OUT_JSON`` (tests/test_tensorflow_optional.py).

Makes ``import tensorflow`` fail as it fails where TensorFlow is not installed (a
meta-path finder raising ``ModuleNotFoundError``), then:

* ``imports``: imports every module of ``zoo`` and ``data_tools`` and records those
  that need TensorFlow, with the error's first line;
* ``use``: what a JAX or PyTorch user does without TensorFlow: ``import zoo``, the
  listing, a small model trained on arrays, its run folder saved, loaded and run on
  decoded images, a ``.keras`` file loaded; records what it saw;
* ``equal`` (TensorFlow allowed): every registered input spec's preprocessing in
  ``keras.ops`` on this backend against the tf.data one, the largest differences.
"""

from __future__ import annotations

import importlib
import importlib.abc
import json
import pkgutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class _NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def _modules() -> list[str]:
    names = []
    for package in ("data_tools", "zoo"):
        module = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            if not info.name.endswith("__main__"):
                names.append(info.name)
    return sorted(names)


def imports() -> dict:
    needs = {}
    for name in _modules():
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != "tensorflow":
                raise
            needs[name] = str(error).splitlines()[0]
    return {"needs_tensorflow": needs, "tensorflow_loaded": "tensorflow" in sys.modules}


def use(tmp: Path) -> dict:
    import contextlib
    import io

    import keras
    import numpy as np

    import zoo
    from zoo.__main__ import main as zoo_main
    from zoo.predict import load_predictor
    from zoo.serving import spec_for_model

    listing = io.StringIO()
    with contextlib.redirect_stdout(listing):
        zoo_main(["list"])
    entry = zoo.get_model("sanet")  # an image and a superpixel map in, SLIC computed at prediction
    rng = np.random.default_rng(0)
    model_small = entry.build(small=True)
    shapes = [tuple(tensor.shape[1:]) for tensor in model_small.inputs]
    images = rng.random((4, *shapes[0]), dtype=np.float32)
    maps = rng.integers(0, 4, (4, *shapes[1]), dtype=np.int32)
    masks = entry.recipe.random_targets(model_small, 4, rng)
    recipe = entry.recipe.with_overrides(epochs=1, batch_size=2)
    data = zoo.train.ArrayDataset([images, maps], masks, batch_size=2, seed=0)
    result = zoo.fit(
        lambda: entry.build(small=True),
        data,
        None,
        zoo.TrainConfig(tmp / "train", epochs=1, monitor="loss", verbose=0),
        optimizer=lambda: recipe.make_optimizer(len(data)),
        loss=recipe.loss,
    )
    run_dir = zoo.save_run(
        tmp / "run",
        result.model,
        entry=entry,
        builder_args=dict(entry.test_kwargs),
        input_spec=spec_for_model(entry.input_spec, shapes[0][:2]),
        recipe=recipe,
    )
    predictor = load_predictor(run=run_dir)
    raw = rng.integers(0, 256, (37, 41, 3), dtype=np.uint8)  # a decoded image of another size
    outputs = predictor.predict([raw])
    keras_file = tmp / "model.keras"
    result.model.save(keras_file)
    reloaded = keras.models.load_model(keras_file, compile=False)
    same = np.allclose(
        keras.ops.convert_to_numpy(reloaded([images[:1], maps[:1]])),
        keras.ops.convert_to_numpy(result.model([images[:1], maps[:1]])),
        atol=1e-6,
    )
    try:
        importlib.import_module("data_tools.pipeline")
        pipeline_error = None
    except ModuleNotFoundError as error:
        pipeline_error = str(error)
    return {
        "backend": keras.backend.backend(),
        "listed": [line.split()[0] for line in listing.getvalue().splitlines()[1:] if line.strip()],
        "epochs_logged": len(result.history["epoch"]),
        "loss_finite": bool(np.isfinite(result.history["loss"]).all()),
        "prediction_shape": list(outputs[0][predictor.main].shape),
        "keras_file_same": bool(same),
        "pipeline_error": pipeline_error,
        "tensorflow_loaded": "tensorflow" in sys.modules,
    }


def equal() -> dict:
    import keras
    import numpy as np

    import zoo
    from data_tools.preprocess import preprocess_images, preprocess_label_maps, restore_geometry

    rng = np.random.default_rng(0)
    report = {}
    for entry in zoo.list_models():
        spec = entry.input_spec
        for shape in ((301, 402, 3), (211, 157, 1)):  # RGB and grey, odd sizes, both aspect ratios
            image = rng.integers(0, 256, shape, dtype=np.uint8)
            labels = rng.integers(0, 50, (*shape[:2], 1), dtype=np.int32)
            pairs = {
                "images": [preprocess_images(image, spec, ops=ops) for ops in ("tensorflow", "keras")],
                "label_maps": [preprocess_label_maps(labels, spec, ops=ops) for ops in ("tensorflow", "keras")],
            }
            tf_input = np.asarray(pairs["images"][0])
            pairs["restored"] = [
                restore_geometry(tf_input[..., :1], shape[:2], spec, fill=0.0, ops=ops)
                for ops in ("tensorflow", "keras")
            ]
            for name, (by_tf, by_keras) in pairs.items():
                by_tf, by_keras = np.asarray(by_tf), np.asarray(keras.ops.convert_to_numpy(by_keras))
                key = f"{entry.name} {shape} {name}"
                if by_tf.shape != by_keras.shape:
                    report[key] = f"shapes {by_tf.shape} != {by_keras.shape}"
                    continue
                spread = float(np.ptp(by_tf)) or 1.0
                report[key] = float(np.abs(by_tf.astype(np.float64) - by_keras).max() / spread)
    return report


if __name__ == "__main__":
    mode, out = sys.argv[1], Path(sys.argv[2])
    if mode != "equal":
        sys.meta_path.insert(0, _NoTensorFlow())
    report = {"imports": imports, "use": lambda: use(out.parent), "equal": equal}[mode]()
    out.write_text(json.dumps(report, indent=1))
