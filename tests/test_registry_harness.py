"""The checks every registered model goes through: one harness over ``zoo.list_models()``.

A model registered in :mod:`zoo.registry` gets every check here without a test of
its own. Each entry is built once, in its small test configuration
(``entry.build(small=True)``), and the tests run entry by entry (module-scoped
parametrisation, so one entry's models are alive at a time):

* forward pass: the batch size is kept, the main output (``entry.output``) is there,
  every output is finite;
* every trainable weight gets a finite gradient;
* ``classes`` changes the head: one *variant* per entry, built with another class
  count (3, or 4 where the default is 3) and, for entries with ``attention=True``,
  ``return_attention=True``: its main output has that many channels and its dict
  holds the main output and at least one attention map (which the README's model
  table names);
* the ``.keras`` file loads in a fresh Python process (one for all the entries,
  :class:`tests.model_checks.FreshProcess`) with the same output names and values, and
  in a fresh process of the other backend (TensorFlow <-> JAX) equal to 1e-5;
* the SavedModel of :func:`zoo.export.export_saved_model` serves raw uint8 images (and
  SANet's superpixel maps) like ``model.predict`` on the same preprocessed inputs
  (TensorFlow only: SavedModel is TensorFlow's format);
* under ``mixed_float16`` every layer computes in float16 except the float32 tail
  before the outputs (:func:`tests.model_checks.float32_tail`: the heads'
  softmax/sigmoid and what follows them), the outputs are float32 and close to the
  float32 variant's with the same weights (inference mode: the moving statistics of
  fresh batch norms are the identity; statistics of a 2-image batch of noise make
  variances of 1e-10 after 1x1 poolings whose amplified rounding says nothing about
  float16);
* one training step compiled with XLA (``jit_compile=True``) with the entry's recipe
  (loss, loss weights, optimiser, random targets of its kinds).

The harness runs on the backend of ``KERAS_BACKEND`` (``tests/conftest.py`` defaults to
tensorflow): ``KERAS_BACKEND=jax python -m pytest tests/test_registry_harness.py`` runs it
on JAX (CI does, README "Backends"), ``KERAS_BACKEND=torch`` on PyTorch. The inputs are
made by the ``keras.ops`` preprocessing of serving (equal to tf.data's:
tests/test_tensorflow_optional.py). It needs no TensorFlow: CI runs it on JAX in an
environment without TensorFlow too (``.ci/without_tensorflow``), where the SavedModel
check and the TensorFlow side of the cross-backend check are skipped.

What 2 CPU cores cannot afford by default is left to ``-m slow``: on JAX and torch the
mixed-precision checks (Keras' policy is the same on every backend; TensorFlow checks
it); the SavedModel export of the entries tagged ``"large"`` (tracing 200-500 layers:
30-80 s each), except
those with extra inputs (SANet: the label-map signatures, cheap at its small size), and
the XLA steps but one per recipe (:data:`XLA_BY_DEFAULT`).
"""

from __future__ import annotations

import gc
import shutil
import warnings

import keras
import numpy as np
import pytest

import zoo
from data_tools.preprocess import preprocess_images, preprocess_label_maps
from tests.model_checks import (
    FreshProcess,
    check_gradients,
    check_mixed_precision_dtypes,
    float32_tail,
    inference_outputs,
    named_outputs,
)
from tests.test_registry import readme_rows
from zoo.__main__ import describe_outputs
from zoo.runtime import precision_policy
from zoo.serving import spec_for_model

ENTRIES = zoo.list_models()
BACKEND = keras.backend.backend()
OTHER_BACKEND = "jax" if BACKEND != "jax" else "tensorflow"
"""The backend the cross-backend ``.keras`` check loads this backend's files in."""
BATCH = 2
SEGMENTS = 4  # labels of the random superpixel maps: below any model's max_segments
MIXED_TOLERANCE = 0.05  # of the largest value: float16 keeps ~3 significant digits through ~50 layers
MIXED_MAP_OUTLIERS = 1e-4  # share of an attention map's entries allowed beyond it (near-tied softmax energies)


def _first_small_entry_of_each_recipe() -> frozenset[str]:
    chosen: dict[int, str] = {}
    for entry in ENTRIES:
        if "large" not in entry.tags:
            chosen.setdefault(id(entry.recipe), entry.name)
    return frozenset(chosen.values())


XLA_BY_DEFAULT = _first_small_entry_of_each_recipe()
"""The entries whose XLA train step runs without ``-m slow``: the first entry without the
"large" tag of each recipe, so that every such recipe's loss, loss weights and optimiser
compile with XLA in the default run (each loss and each custom layer is also compiled
under XLA on its own: tests/test_losses.py, tests/test_bench_layers.py). XLA compiles
for 10-70 s per small model on 2 CPU cores: the other entries' steps are slow tests."""
NON_REGISTERED_BUILDERS = {
    "build_attention_resnet": "A-PSPNet Table II's depth sweep helper (takes blocks_per_stage); "
    "its paper model is the registered build_attention_resnet50",
}
"""Public ``zoo.build_*`` functions that are deliberately no registry entry, and why."""


def _params(entries, slow=lambda entry: False):
    """One parameter per entry; an entry's tests form one xdist group (``--dist loadgroup``
    runs the harness on several workers, each entry's models built on one of them)."""
    return [
        pytest.param(
            entry.name,
            id=entry.name,
            marks=[pytest.mark.xdist_group(entry.name), *([pytest.mark.slow] if slow(entry) else [])],
        )
        for entry in entries
    ]


def every_entry(entries=ENTRIES, slow=lambda entry: False):
    """Parametrises a test over ``entries`` by name, module-scoped (grouped by entry)."""
    return pytest.mark.parametrize("name", _params(entries, slow), scope="module")


def _large(entry) -> bool:
    return "large" in entry.tags


# --------------------------------------------------------------------------- per-entry fixtures


@pytest.fixture(scope="module")
def entry(name):
    # The same random weights whatever ran before in this process: the float16/float32
    # comparisons then do not depend on which test files a worker happened to run first.
    keras.utils.set_random_seed(0)
    yield zoo.get_model(name)
    keras.backend.clear_session()
    gc.collect()


@pytest.fixture(scope="module")
def model(entry):
    return entry.build(small=True)


@pytest.fixture(scope="module")
def spec(entry, model):
    """The entry's input spec at the small model's size."""
    return spec_for_model(entry.input_spec, model.inputs[0].shape[1:3])


@pytest.fixture(scope="module")
def raw(entry, spec):
    """What a client sends: uint8 images of another size than the model's and, for each
    extra input, an int32 label map per image at that size."""
    rng = np.random.default_rng(0)
    height, width = spec.image_size
    raw = {"images": rng.integers(0, 256, (BATCH, height + 7, width + 5, 3), dtype=np.uint8)}
    for extra in entry.extra_inputs:
        raw[extra] = rng.integers(0, SEGMENTS, (BATCH, height + 7, width + 5), dtype=np.int32)
    return raw


@pytest.fixture(scope="module")
def inputs(entry, model, spec, raw):
    """The model's inputs: ``raw`` preprocessed as the training pipeline and serving do."""
    arrays = []
    for tensor in model.inputs:
        if keras.backend.is_float_dtype(tensor.dtype):
            arrays.append(keras.ops.convert_to_numpy(preprocess_images(raw["images"], spec, ops="keras")))
            continue
        assert tensor.name in entry.extra_inputs, f"{entry.name}: input {tensor.name!r} not in extra_inputs"
        maps = keras.ops.convert_to_numpy(preprocess_label_maps(raw[tensor.name][..., None], spec, ops="keras"))
        arrays.append(maps if len(tensor.shape) == 4 else maps[..., 0])
    return arrays[0] if len(arrays) == 1 else arrays


def _main_output(entry, model):
    """The symbolic main output (``entry.output``) of ``model``."""
    return model.output[entry.output] if isinstance(model.output, dict) else model.output


@pytest.fixture(scope="module")
def variant_kwargs(entry, model):
    default = _main_output(entry, model).shape[-1]
    return {"classes": 3 if default != 3 else 4, **({"return_attention": True} if entry.attention else {})}


@pytest.fixture(scope="module")
def variant(entry, variant_kwargs):
    return entry.build(small=True, **variant_kwargs)


@pytest.fixture(scope="module")
def variant_outputs(variant, inputs):
    return inference_outputs(variant, inputs)


@pytest.fixture(scope="module")
def fresh_process(tmp_path_factory):
    with FreshProcess(tmp_path_factory.mktemp("fresh_process")) as fresh:
        yield fresh


@pytest.fixture(scope="module")
def other_backend_process(tmp_path_factory):
    pytest.importorskip(OTHER_BACKEND, reason=f"the cross-backend check needs {OTHER_BACKEND} installed")
    with FreshProcess(tmp_path_factory.mktemp("other_backend"), backend=OTHER_BACKEND) as fresh:
        yield fresh


# --------------------------------------------------------------------------- checks


@every_entry()
def test_forward_keeps_the_batch_and_is_finite(entry, model, inputs):
    outputs = inference_outputs(model, inputs)
    assert entry.output in outputs, f"{entry.name}: main output {entry.output!r} not in {sorted(outputs)}"
    for output_name, value in outputs.items():
        assert value.shape[0] == BATCH, f"{entry.name} {output_name}: batch {value.shape[0]} != {BATCH}"
        assert np.all(np.isfinite(value)), f"{entry.name} {output_name}: NaN or Inf"


@every_entry()
def test_every_trainable_weight_gets_a_finite_gradient(model, inputs):
    statistics = [variable.numpy() for variable in model.non_trainable_variables]
    try:
        check_gradients(model, inputs)
    finally:  # the training-mode call moved the batch-norm statistics
        for variable, value in zip(model.non_trainable_variables, statistics, strict=True):
            variable.assign(value)


@every_entry()
def test_classes_changes_the_head(entry, model, variant, variant_kwargs):
    default, changed = _main_output(entry, model), _main_output(entry, variant)
    assert tuple(changed.shape) == (*default.shape[:-1], variant_kwargs["classes"]), (
        f"{entry.name}: classes={variant_kwargs['classes']} gives {changed.shape}, default {default.shape}"
    )


@every_entry([entry for entry in ENTRIES if entry.attention])
def test_return_attention_gives_the_main_output_and_maps(entry, variant_outputs):
    assert entry.output in variant_outputs, f"{entry.name}: {sorted(variant_outputs)} lacks {entry.output!r}"
    maps = {key: value for key, value in variant_outputs.items() if key != entry.output}
    assert maps, f"{entry.name}: return_attention=True gives no attention map"
    for map_name, value in maps.items():
        assert value.shape[0] == BATCH and np.all(np.isfinite(value)), f"{entry.name} {map_name}: {value.shape}"


@every_entry([entry for entry in ENTRIES if entry.attention])
def test_readme_names_the_attention_maps(entry, variant_outputs):
    assert readme_rows()[entry.name]["outputs"] == describe_outputs(entry, list(variant_outputs)), (
        "README.md's model table is out of date: python -m zoo list --format md"
    )


def _check_loaded_outputs(entry, model, inputs, process):
    """``model``'s ``.keras`` file loaded by ``process`` gives its outputs (1e-5)."""
    path = process.folder / f"{entry.name}.keras"
    model.save(path)
    expected = inference_outputs(model, inputs)
    try:
        loaded = process.outputs(path, inputs)
    finally:
        path.unlink()
    assert sorted(loaded) == sorted(expected), f"{entry.name}: outputs {sorted(loaded)} != {sorted(expected)}"
    for output_name, value in expected.items():
        np.testing.assert_allclose(
            loaded[output_name],
            value,
            rtol=1e-5,
            atol=1e-5,
            err_msg=f"{entry.name} {output_name} ({BACKEND} -> {process.backend})",
        )


@every_entry()
def test_keras_file_loads_in_a_fresh_process(entry, model, inputs, fresh_process):
    _check_loaded_outputs(entry, model, inputs, fresh_process)


@every_entry()
def test_keras_file_loads_under_the_other_backend(entry, model, inputs, other_backend_process):
    _check_loaded_outputs(entry, model, inputs, other_backend_process)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="SavedModel export is TensorFlow's (README: Backends)")
@every_entry(slow=lambda entry: _large(entry) and not entry.extra_inputs)
def test_saved_model_serves_like_predict(entry, model, spec, raw, inputs, tmp_path):
    import tensorflow as tf

    from zoo.export import export_saved_model

    path = export_saved_model(model, tmp_path / entry.name, input_spec=spec, accept_encoded=False)
    try:
        serve = tf.saved_model.load(path).signatures["serving_default"]
        served = serve(**{key: tf.constant(value) for key, value in raw.items()})
        served = {key: value.numpy() for key, value in served.items()}
    finally:
        shutil.rmtree(path)
    expected = named_outputs(model, model.predict(inputs, verbose=0))
    assert sorted(served) == sorted(expected), f"{entry.name}: served {sorted(served)} != {sorted(expected)}"
    for output_name, value in expected.items():
        assert served[output_name].dtype == np.float32
        np.testing.assert_allclose(
            served[output_name], value, rtol=1e-4, atol=1e-5, err_msg=f"{entry.name} {output_name}"
        )


@every_entry(slow=lambda entry: BACKEND != "tensorflow")
def test_mixed_float16_computes_in_float16_and_matches_float32(entry, variant, variant_kwargs, variant_outputs, inputs):
    with warnings.catch_warnings(), precision_policy(True):
        warnings.simplefilter("ignore", UserWarning)  # float16 is emulated on a CPU
        mixed = entry.build(small=True, **variant_kwargs)
    assert keras.mixed_precision.global_policy().name == "float32"
    check_mixed_precision_dtypes(mixed)
    mixed.set_weights(variant.get_weights())
    outputs = inference_outputs(mixed, inputs)
    assert sorted(outputs) == sorted(variant_outputs)
    for output_name, want in variant_outputs.items():
        got = outputs[output_name]
        assert got.dtype == np.float32 and np.all(np.isfinite(got)), f"{entry.name} {output_name}: {got.dtype}"
        scale = max(1.0, float(np.max(np.abs(want))))
        if output_name == entry.output:
            np.testing.assert_allclose(got, want, atol=MIXED_TOLERANCE * scale, err_msg=f"{entry.name} {output_name}")
            continue
        # An attention map is a softmax over energies of large magnitude: where two of
        # them nearly tie (random weights), float16 features split the mass otherwise
        # (DANet's channel attention: 0.55/0.45 for 0.50/0.50 in 2 of 524,288 entries).
        # The map must agree everywhere else.
        outside = np.abs(got - want) > MIXED_TOLERANCE * scale
        assert outside.mean() <= MIXED_MAP_OUTLIERS, (
            f"{entry.name} {output_name}: {outside.sum()} of {outside.size} entries differ by more than "
            f"{MIXED_TOLERANCE * scale:.3g} from float32"
        )


@every_entry(slow=lambda entry: entry.name not in XLA_BY_DEFAULT)
def test_xla_train_step_with_the_recipe(entry, model, variant, inputs):
    """Last for each entry: it compiles and trains the model. Recipes with per-output
    targets (AttnMel-CNN's regularised maps) train the variant, which returns the maps."""
    trained = model if isinstance(entry.recipe.targets, str) else variant
    targets = entry.recipe.random_targets(trained, BATCH, np.random.default_rng(1))
    before = [variable.numpy() for variable in trained.trainable_variables]
    entry.recipe.compile(trained, steps_per_epoch=1, jit_compile=True)
    loss = trained.train_on_batch(inputs, targets, return_dict=True)["loss"]
    assert np.isfinite(loss), f"{entry.name}: loss {loss}"
    moved = [
        not np.array_equal(old, variable.numpy())
        for old, variable in zip(before, trained.trainable_variables, strict=True)
    ]
    assert any(moved), f"{entry.name}: no trainable weight moved"


# --------------------------------------------------------------------------- the registry covers the zoo


def test_every_exported_builder_is_registered():
    registered = {entry.builder for entry in ENTRIES}
    exported = {name for name in dir(zoo) if name.startswith("build_") and callable(getattr(zoo, name))}
    unregistered = sorted(name for name in exported if getattr(zoo, name) not in registered)
    assert unregistered == sorted(NON_REGISTERED_BUILDERS), (
        f"zoo exports builders that no registry entry uses: "
        f"{sorted(set(unregistered) - set(NON_REGISTERED_BUILDERS))}; register them (zoo.register_model) or "
        f"list them in NON_REGISTERED_BUILDERS with the reason"
    )
    assert set(NON_REGISTERED_BUILDERS) <= exported, "NON_REGISTERED_BUILDERS names a builder zoo does not export"


# --------------------------------------------------------------------------- the checks can fail


@keras.saving.register_keras_serializable(package="harness_test")
class _RegisteredHereOnly(keras.layers.Layer):
    """Registered by this test module only, which the fresh process never imports."""

    def call(self, inputs):
        return inputs * 2.0


def test_the_fresh_process_does_not_know_layers_registered_outside_zoo(fresh_process):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, _RegisteredHereOnly()(keras.layers.Dense(2, name="probabilities")(inputs)))
    path = fresh_process.folder / "outside_zoo.keras"
    model.save(path)
    keras.models.load_model(path)  # loads here, where the layer is registered
    with pytest.raises(AssertionError, match=r"loading .*outside_zoo.keras in a fresh process \(\w+\) failed"):
        fresh_process.outputs(path, np.ones((1, 4), np.float32))


def test_a_float32_layer_inside_the_network_or_a_float16_output_is_caught():
    with warnings.catch_warnings(), precision_policy(True):
        warnings.simplefilter("ignore", UserWarning)
        inputs = keras.Input((4,))
        hidden = keras.layers.Dense(3, dtype="float32", name="hidden")(inputs)  # feeds a float16 layer
        probabilities = keras.layers.Activation("softmax", dtype="float32", name="probabilities")
        inner = keras.Model(inputs, probabilities(keras.layers.Dense(2, name="logits")(hidden)))
        logits = keras.layers.Dense(2, name="logits")(inputs)
        float16_map = keras.Model(inputs, {"probabilities": probabilities(logits), "map": logits})
    assert float32_tail(inner) == {"probabilities"}
    with pytest.raises(AssertionError, match=r"not in mixed_float16: \['hidden \(Dense, float32\)'\]"):
        check_mixed_precision_dtypes(inner)
    with pytest.raises(AssertionError, match="outputs not float32 under mixed_float16: .*'map': 'float16'"):
        check_mixed_precision_dtypes(float16_map)
