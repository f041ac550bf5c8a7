"""The checks every builder in the zoo goes through.

One harness holds the whole zoo to the same standard (DESIGN.md): a forward pass
with the right batch size and finite values, a gradient for every trainable
weight, a ``.keras`` round-trip that reproduces the outputs, and a training step
compiled with XLA (``jit_compile=True``). Model test modules build each model once
(module-scoped fixture) at a tiny input size and call :func:`run_all_checks`, or
the single checks where a model needs something special.

The checks run on the Keras backend the process was started with (``KERAS_BACKEND``:
tensorflow, jax or torch; :func:`gradients` takes each backend's own derivative), except
:func:`check_saved_model`: SavedModel export is TensorFlow's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras
import numpy as np


def random_inputs(model: keras.Model, batch_size: int = 2, seed: int = 0) -> Any:
    """Uniform [0, 1) inputs shaped like ``model.inputs`` (non-float inputs: zeros).

    Integer inputs (e.g. SANet's superpixel label map) get zeros: a valid label
    map with a single region. Pass explicit inputs where that is not enough.
    """
    rng = np.random.default_rng(seed)
    arrays = []
    for tensor in model.inputs:
        shape = (batch_size, *tensor.shape[1:])
        if any(dim is None for dim in shape):
            raise ValueError(f"input {tensor.name!r} has an unknown dimension {shape}: pass inputs explicitly")
        if "float" in str(tensor.dtype):
            arrays.append(rng.random(shape, dtype=np.float32))
        else:
            arrays.append(np.zeros(shape, dtype=str(tensor.dtype)))
    return arrays[0] if len(arrays) == 1 else arrays


def _as_list(outputs: Any) -> list[np.ndarray]:
    if isinstance(outputs, dict):
        return [np.asarray(outputs[key]) for key in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(value) for value in outputs]
    return [np.asarray(outputs)]


def check_forward(model: keras.Model, inputs: Any) -> list[np.ndarray]:
    """Outputs keep the batch size and are finite; returns them as a list."""
    batch_size = len(inputs[0] if isinstance(inputs, list) else inputs)
    outputs = _as_list(model(inputs, training=False))
    for index, output in enumerate(outputs):
        assert output.shape[0] == batch_size, f"output {index}: batch {output.shape[0]} != {batch_size}"
        assert np.all(np.isfinite(output)), f"output {index} has NaN or Inf"
    return outputs


def _objective(outputs: Any) -> Any:
    """The scalar the gradient checks differentiate: the mean square of every output."""
    return sum(
        keras.ops.mean(keras.ops.square(keras.ops.cast(output, "float32"))) for output in keras.tree.flatten(outputs)
    )


def gradients(model: keras.Model, inputs: Any) -> list[Any]:
    """The gradient of :func:`_objective` (training mode) for each trainable weight, by
    the backend's own differentiation; ``None`` where none reaches (TensorFlow, torch;
    JAX gives zeros instead). The batch-norm statistics move as in a training step."""
    backend = keras.backend.backend()
    weights = model.trainable_variables
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = _objective(model(inputs, training=True))
        return tape.gradient(value, weights)
    if backend == "jax":
        import jax

        def objective(trainable):
            outputs, _ = model.stateless_call(
                trainable, [v.value for v in model.non_trainable_variables], inputs, training=True
            )
            return _objective(outputs)

        return jax.jit(jax.grad(objective))([v.value for v in weights])  # one compile, not one per op
    if backend == "torch":
        for variable in weights:
            variable.value.grad = None
        _objective(model(inputs, training=True)).backward()
        return [variable.value.grad for variable in weights]
    raise NotImplementedError(f"gradients: backend {backend!r}")


def check_gradients(model: keras.Model, inputs: Any) -> None:
    """Every trainable weight gets a finite gradient from the sum of all outputs."""
    weights = model.trainable_weights
    grads = gradients(model, inputs)
    missing = [w.path for w, g in zip(weights, grads, strict=True) if g is None]
    assert not missing, f"no gradient reaches: {missing[:10]}"
    bad = [
        w.path for w, g in zip(weights, grads, strict=True) if not np.all(np.isfinite(keras.ops.convert_to_numpy(g)))
    ]
    assert not bad, f"non-finite gradients for: {bad[:10]}"


def check_keras_roundtrip(model: keras.Model, inputs: Any, tmp_path: Path) -> None:
    """Saving to ``.keras`` and loading (plain ``load_model``) gives the same outputs."""
    import zoo  # noqa: F401  (registers every custom object)

    path = Path(tmp_path) / f"{model.name}.keras"
    model.save(path)
    restored = keras.models.load_model(path, compile=False)
    for before, after in zip(
        _as_list(model(inputs, training=False)), _as_list(restored(inputs, training=False)), strict=True
    ):
        np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-5)


def check_xla_train_step(model: keras.Model, inputs: Any, targets: Any = None, loss: Any = "mse") -> None:
    """One optimiser step compiled with ``jit_compile=True``: finite loss, weights move.

    Targets default to random values shaped like the outputs (the point is that the
    whole step compiles with XLA, not what it learns). The model is recompiled, so
    run this check last.
    """
    outputs = model(inputs, training=False)
    if targets is None:
        rng = np.random.default_rng(1)
        targets = keras.tree.map_structure(lambda o: rng.random(tuple(o.shape), dtype=np.float32), outputs)
    before = [np.array(w) for w in model.trainable_weights]
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss, jit_compile=True)
    value = model.train_on_batch(inputs, targets, return_dict=True)["loss"]
    assert np.isfinite(value), f"loss is {value}"
    moved = any(not np.array_equal(b, np.array(w)) for b, w in zip(before, model.trainable_weights, strict=True))
    assert moved, "no trainable weight changed after an XLA train step"


def check_saved_model(model: keras.Model, tmp_path: Path, input_spec: Any) -> None:
    """The TF Serving export answers raw uint8 images of another size like the model.

    ``zoo.export.export_saved_model`` puts the preprocessing inside the signature,
    so its outputs must equal ``model(preprocess_images(images))``.
    """
    import tensorflow as tf

    from data_tools.preprocess import preprocess_images
    from zoo.export import export_saved_model

    height, width = input_spec.image_size
    images = np.random.default_rng(2).integers(0, 256, (2, height + 7, width + 5, 3), dtype=np.uint8)
    path = export_saved_model(model, Path(tmp_path) / f"{model.name}_serving", input_spec=input_spec)
    served = tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(images))
    expected = _as_list(model(preprocess_images(images, input_spec), training=False))
    assert len(served) == len(expected), f"{sorted(served)} vs {len(expected)} model outputs"
    if len(expected) == 1:
        np.testing.assert_allclose(next(iter(served.values())).numpy(), expected[0], rtol=1e-4, atol=1e-5)


def run_all_checks(model: keras.Model, tmp_path: Path, inputs: Any = None, **train_kwargs) -> None:
    """Forward, gradients, ``.keras`` round-trip, then an XLA train step."""
    inputs = random_inputs(model) if inputs is None else inputs
    check_forward(model, inputs)
    check_gradients(model, inputs)
    check_keras_roundtrip(model, inputs, tmp_path)
    check_xla_train_step(model, inputs, **train_kwargs)


# --------------------------------------------------------------------------- registry harness helpers


def inference_outputs(model: keras.Model, inputs: Any) -> dict[str, np.ndarray]:
    """``model(inputs, training=False)`` by name. On JAX one jit-compiled call
    (``predict_on_batch``): eager JAX compiles every op on its own, 10x slower here."""
    if keras.backend.backend() != "jax":
        return named_outputs(model, model(inputs, training=False))
    outputs = named_outputs(model, model.predict_on_batch(inputs))  # keys sorted by the jit's flattening
    order = list(model.output) if isinstance(model.output, dict) else model.output_names
    return {name: outputs[name] for name in order}


def named_outputs(model: keras.Model, outputs: Any) -> dict[str, np.ndarray]:
    """``outputs`` of ``model`` by name: a dict output's keys, else ``model.output_names``."""
    if isinstance(outputs, dict):
        return {name: keras.ops.convert_to_numpy(value) for name, value in outputs.items()}
    flat = keras.tree.flatten(outputs)
    if len(flat) != len(model.output_names):
        raise ValueError(f"{model.name}: {len(flat)} outputs but output_names {model.output_names}")
    return {name: keras.ops.convert_to_numpy(value) for name, value in zip(model.output_names, flat, strict=True)}


def float32_tail(model: keras.Model) -> set[str]:
    """Names of the layers a mixed-precision model deliberately keeps in float32: those
    whose compute dtype is float32 and whose outputs reach the model's outputs through
    float32 layers only (the heads' final softmax/sigmoid, which Keras' mixed-precision
    guide keeps in float32, and what follows them). A float32 layer that feeds a float16
    one is in the middle of the network and not in the tail."""
    tail: set[str] = set()
    stack = [tensor._keras_history.operation for tensor in keras.tree.flatten(model.outputs)]
    while stack:
        layer = stack.pop()
        if layer.name in tail or layer.dtype_policy.compute_dtype != "float32":
            continue
        tail.add(layer.name)
        for node in layer._inbound_nodes:
            stack += [tensor._keras_history.operation for tensor in node.input_tensors]
    return tail


def check_mixed_precision_dtypes(model: keras.Model, policy: str = "mixed_float16") -> None:
    """Every layer (nested models' too) computes in ``policy``'s dtype, except the
    :func:`float32_tail`; every output is float32."""
    compute_dtype = keras.DTypePolicy(policy).compute_dtype
    tail = float32_tail(model)
    assert tail, f"{model.name}: no layer before the outputs is kept in float32"

    def stray(layers: list, top: bool) -> list[str]:
        found = []
        for layer in layers:
            if isinstance(layer, keras.layers.InputLayer) or (top and layer.name in tail):
                continue
            if layer.dtype_policy.compute_dtype != compute_dtype:
                found.append(f"{layer.name} ({type(layer).__name__}, {layer.dtype_policy.name})")
            if isinstance(layer, keras.Model):
                found += stray(layer.layers, top=False)
        return found

    wrong = stray(model.layers, top=True)
    assert not wrong, f"{model.name}: layers outside the float32 output tail {sorted(tail)} not in {policy}: {wrong}"
    outputs = (
        model.output if isinstance(model.output, dict) else dict(zip(model.output_names, model.outputs, strict=True))
    )
    dtypes = {name: keras.backend.standardize_dtype(tensor.dtype) for name, tensor in outputs.items()}
    assert set(dtypes.values()) == {"float32"}, (
        f"{model.name}: outputs not float32 under {policy}: {dtypes} (end each output with a float32 layer)"
    )


class FreshProcess:
    """One Python process, started once, that loads ``.keras`` files after nothing but
    ``import zoo`` and returns the loaded models' outputs (``python -m
    tests.model_checks`` runs its side). It proves a file loads where the builders
    never ran; one process for many models saves TensorFlow's start-up per model.

    ``backend``: the process's Keras backend (default: this process's), so a file saved
    under one backend can be loaded under another.

    Use as a context manager: ``with FreshProcess(folder) as fresh: fresh.outputs(path, inputs)``.
    """

    def __init__(self, folder: Path, timeout_s: float = 300.0, backend: str | None = None) -> None:
        import subprocess
        import sys

        self.folder, self.timeout_s, self.requests = Path(folder), timeout_s, 0
        self.backend = backend or keras.backend.backend()
        self.log = open(self.folder / f"fresh_process_{self.backend}.log", "w+", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.model_checks"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
            env={**os.environ, "KERAS_BACKEND": self.backend},
        )

    def __enter__(self) -> "FreshProcess":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def outputs(self, path: Path, inputs: Any) -> dict[str, np.ndarray]:
        """The outputs, by name, of the model in ``path`` loaded in the fresh process."""
        import json
        import select

        self.requests += 1
        arrays = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        request = {
            "model": str(path),
            "inputs": str(self.folder / f"inputs_{self.requests}.npz"),
            "outputs": str(self.folder / f"outputs_{self.requests}.npz"),
        }
        np.savez(request["inputs"], *[np.asarray(array) for array in arrays])
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], self.timeout_s)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.log.seek(0)
            raise RuntimeError(
                f"the fresh process gave no answer for {path} within {self.timeout_s} s "
                f"(exit code {self.process.poll()}):\n{self.log.read()[-3000:]}"
            )
        answer = json.loads(line)
        if "error" in answer:
            raise AssertionError(f"loading {path} in a fresh process ({self.backend}) failed: {answer['error']}")
        with np.load(request["outputs"]) as saved:
            return {name: saved[name] for name in answer["names"]}

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=60)
        self.log.close()


def _serve_fresh_loads() -> None:
    """The fresh process: ``import zoo``, then one JSON request per stdin line (``model``,
    ``inputs``, ``outputs`` paths); answers ``{"names": [...]}`` or ``{"error": ...}``."""
    import json
    import os
    import sys

    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else printed goes to the log, not into the answers
    import zoo  # noqa: F401  (the only registration a user's process has)

    for line in sys.stdin:
        request = json.loads(line)
        try:
            model = keras.models.load_model(request["model"], compile=False)
            with np.load(request["inputs"]) as saved:
                arrays = [saved[f"arr_{index}"] for index in range(len(saved.files))]
            outputs = inference_outputs(model, arrays[0] if len(arrays) == 1 else arrays)
            np.savez(request["outputs"], **outputs)
            answer = {"names": list(outputs)}
        except Exception as error:  # noqa: BLE001 (reported to the test, which fails)
            answer = {"error": f"{type(error).__name__}: {error}"[:3000]}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
        keras.backend.clear_session()


if __name__ == "__main__":
    _serve_fresh_loads()
