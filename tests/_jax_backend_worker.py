"""Run under ``KERAS_BACKEND=jax`` by tests/test_jax_backend.py: SANet (small) and the
keras.ops layers on the JAX backend, compared with the TensorFlow outputs the test
wrote, and one jit-compiled training step.

    python -m tests._jax_backend_worker FOLDER   # reads FOLDER/inputs.npz, sanet.weights.h5
"""

import json
import os
import sys

import numpy as np


def main(folder: str) -> int:
    import jax
    import keras

    assert keras.backend.backend() == "jax", keras.backend.backend()
    import zoo
    from data_tools.colour import RGBToLab

    data = dict(np.load(os.path.join(folder, "inputs.npz")))
    results = {}
    model = zoo.get_model("sanet").build(small=True)
    model.load_weights(os.path.join(folder, "sanet.weights.h5"))
    inputs = [data["image"], data["superpixels"]]
    results["sanet_max_diff"] = float(np.max(np.abs(np.asarray(model.predict(inputs, verbose=0)) - data["sanet_tf"])))
    before = [np.array(w) for w in model.trainable_weights]
    model.compile(keras.optimizers.SGD(0.1), "binary_crossentropy", jit_compile=True)
    loss = model.train_on_batch(inputs, data["target"])
    results["sanet_jit_loss"] = float(np.ravel(loss)[0])
    results["sanet_weights_changed"] = bool(
        any(np.any(a != np.asarray(b)) for a, b in zip(before, model.trainable_weights, strict=True))
    )
    for unit in (True, False):
        lab = np.asarray(jax.jit(RGBToLab(unit=unit))(data["rgb"]))
        results[f"lab_unit_{unit}_max_diff"] = float(np.max(np.abs(lab - data[f"lab_unit_{unit}"])))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
