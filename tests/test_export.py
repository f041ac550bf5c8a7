"""zoo.export: SavedModels that take raw images and run the model's preprocessing."""

import io
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from data_tools.preprocess import InputSpec, preprocess_images
from zoo.export import export_saved_model, load_input_spec

SAVED_MODEL_CLI = str(Path(sys.executable).with_name("saved_model_cli"))
CLI_TIMEOUT = 180


def _one_output_model() -> keras.Model:
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv")(inputs)
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="one_output")


def _two_output_model() -> keras.Model:
    """A classifier that also returns its attention map, like the attention models."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    attention = keras.layers.Conv2D(1, 1, activation="sigmoid", name="attention")(x)
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Multiply()([x, attention]))
    probabilities = keras.layers.Dense(1, activation="sigmoid", name="melanoma")(pooled)
    return keras.Model(inputs, [probabilities, attention], name="two_outputs")


CASES = {
    "one_output": (_one_output_model, InputSpec((16, 16), colour="rgb", scale="imagenet"), None),
    "two_outputs": (
        _two_output_model,
        InputSpec((16, 16), colour="lab", scale="unit"),
        ["probability", "attention_map"],
    ),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each case exported once: {case: (model, spec, path, signature output names)}."""
    root = tmp_path_factory.mktemp("export")
    result = {}
    for case, (build, spec, output_names) in CASES.items():
        model = build()
        path = export_saved_model(model, root / case / "1", input_spec=spec, output_names=output_names)
        result[case] = (model, spec, path, output_names or model.output_names)
    return result


@pytest.fixture(scope="module")
def loaded(exported):
    return {case: tf.saved_model.load(path) for case, (_, _, path, _) in exported.items()}


def _images(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _expected(model, spec, names, images) -> dict[str, np.ndarray]:
    outputs = model.predict(preprocess_images(images, spec), verbose=0)
    return dict(zip(names, outputs if isinstance(outputs, list) else [outputs], strict=True))


@pytest.mark.parametrize("case", CASES)
def test_serving_default_preprocesses_any_size(exported, loaded, case):
    model, spec, _, names = exported[case]
    images = _images((2, 23, 37, 3))  # not the model's 16x16
    served = loaded[case].signatures["serving_default"](images=tf.constant(images))
    expected = _expected(model, spec, names, images)
    assert set(served) == set(expected)
    for name, value in expected.items():
        assert served[name].dtype == tf.float32
        np.testing.assert_allclose(served[name].numpy(), value, rtol=1e-5, atol=1e-6)


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_bytes_signature_equals_the_uint8_path(exported, loaded):
    _, _, _, names = exported["two_outputs"]
    signatures = loaded["two_outputs"].signatures
    images = [_images((20, 28, 3), seed=1), _images((9, 13, 3), seed=2)]  # one request, two sizes
    served = signatures["serving_bytes"](encoded=tf.constant([_png(image) for image in images]))
    for index, image in enumerate(images):
        one = signatures["serving_default"](images=tf.constant(image[None]))
        for name in names:
            np.testing.assert_allclose(served[name].numpy()[index], one[name].numpy()[0], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "shape, message",
    [
        ((23, 37, 3), r"images: expected uint8 \[batch, height, width, 3\]; got another rank"),
        ((1, 23, 37, 4), r"images: expected uint8 \[batch, height, width, 3\] \(RGB\); got another channel count"),
        ((1, 0, 37, 3), "images: height and width must be positive"),
    ],
)
def test_bad_images_get_a_clear_error(loaded, shape, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded["one_output"].signatures["serving_default"](images=tf.constant(_images(shape)))


def test_bytes_signature_rejects_a_matrix(loaded):
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"encoded: expected a \[batch\] vector"):
        loaded["one_output"].signatures["serving_bytes"](encoded=tf.constant([[b"x"]]))


def test_input_spec_is_written_beside_the_model(exported):
    for _, spec, path, _ in exported.values():
        assert load_input_spec(path) == spec


def test_saved_model_cli_show_and_run(exported, tmp_path):
    model, spec, path, names = exported["one_output"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    show = subprocess.run(
        [SAVED_MODEL_CLI, "show", "--dir", path, "--all"], capture_output=True, text=True, timeout=CLI_TIMEOUT, env=env
    )
    assert show.returncode == 0, show.stderr[-3000:]
    for expected in (
        "signature_def['serving_default']",
        "signature_def['serving_bytes']",
        "inputs['images'] tensor_info:\n        dtype: DT_UINT8",
        "inputs['encoded'] tensor_info:\n        dtype: DT_STRING",
        "outputs['probabilities'] tensor_info:\n        dtype: DT_FLOAT",
    ):
        assert expected in show.stdout

    images = _images((3, 20, 24, 3), seed=3)
    np.save(tmp_path / "images.npy", images)
    run = subprocess.run(
        [
            SAVED_MODEL_CLI,
            "run",
            "--dir",
            path,
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"images={tmp_path / 'images.npy'}",
            "--outdir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    cli_output = np.load(tmp_path / "out" / "probabilities.npy")
    np.testing.assert_allclose(cli_output, _expected(model, spec, names, images)["probabilities"], rtol=1e-5, atol=1e-6)


def test_inputs_other_than_an_image_and_a_label_map_are_refused_naming_them(tmp_path):
    """Two-input models with a label map are served (tests/test_export_superpixels.py); a float second input is not."""
    image = keras.Input((16, 16, 3), name="image")
    metadata = keras.Input((4,), name="metadata")
    outputs = keras.layers.Conv2D(1, 1)(image)
    model = keras.Model([image, metadata], outputs)
    with pytest.raises(NotImplementedError, match="'metadata'"):
        export_saved_model(model, tmp_path / "m", input_spec=InputSpec((16, 16)))


def test_input_spec_must_match_the_model(tmp_path):
    with pytest.raises(ValueError, match=r"input is \(16, 16\) but input_spec.image_size is \(32, 32\)"):
        export_saved_model(_one_output_model(), tmp_path / "m", input_spec=InputSpec((32, 32)))
    with pytest.raises(ValueError, match="output_names must be 1 distinct names"):
        export_saved_model(_one_output_model(), tmp_path / "m", input_spec=InputSpec((16, 16)), output_names=["a", "b"])
    with pytest.raises(FileNotFoundError, match="no input spec"):
        load_input_spec(tmp_path)


def test_cli_attention_export_loads_a_default_checkpoint_layer_by_layer(tmp_path, capsys):
    """``--attention`` builds DANet with its maps as outputs, whose layers Keras orders
    otherwise (the position and channel branches swap): the default model's checkpoint
    must still go into the same layers, so the served mask is the default model's."""
    from tests.test_predict import _distinct_checkpoint
    from zoo.export import main
    from zoo.predict import load_predictor

    weights = tmp_path / "danet.weights.h5"
    default = _distinct_checkpoint("danet", weights)
    assert (
        main(
            ["--model", "danet", "--small", "--weights", str(weights), "--out", str(tmp_path / "served"), "--attention"]
        )
        == 0
    )
    served = load_predictor("danet", saved_model=tmp_path / "served")
    assert set(served.attention) == {"position_attention", "channel_attention"}
    images = [_images((50, 70, 3), seed=4)]
    expected = load_predictor("danet", keras_model=default).predict(images)[0]["mask"]
    assert np.std(expected) > 1e-3
    np.testing.assert_allclose(served.predict(images)[0]["mask"], expected, rtol=0, atol=1e-5)

    assert main(["--model", "unet", "--small", "--weights", str(weights), "--out", str(tmp_path / "x")]) == 1
    error = capsys.readouterr().err
    assert (
        f"zoo.export: error: {weights}: this checkpoint does not match model 'unet' built with {{'small': True}}"
        in error
    )


def test_cli_takes_a_run_or_a_checkpoint_with_its_model(tmp_path, capsys):
    """--run (everything from run.json) and --weights (with --model) are one or the other
    (tests/test_serving.py exports through --run)."""
    from zoo.export import main

    with pytest.raises(SystemExit):
        main(["--run", "a", "--weights", "b.weights.h5", "--out", str(tmp_path / "x")])
    assert "not allowed with argument" in capsys.readouterr().err
    weights = tmp_path / "unet.weights.h5"
    _one_output_model().save_weights(weights)
    assert main(["--weights", str(weights), "--out", str(tmp_path / "x")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "needs its registered model's name (--model)" in error
