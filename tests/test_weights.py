"""The builders' shared argument checks (zoo.common.validation), checkpoint loading
(zoo.common.weights) and resizing (zoo.common.resizing), on tiny models."""

import warnings

import h5py
import keras
import numpy as np
import pytest

from zoo.common import validation
from zoo.common.resizing import resize_like, resize_to
from zoo.common.weights import assemble_model, layer_keys, load_checkpoint


def _tiny(name="tiny", width=3, extra=False, return_attention=False, weights=None):
    """Two parallel 1x1 convolutions ("a", "b": the same class and shapes, as DANet's two
    branches), added, (a third convolution,) GAP, Dense; with ``return_attention`` b's
    output is a map too, which puts b before a in ``model.layers``."""
    inputs = keras.Input((6, 6, 2), name="image")
    a = keras.layers.Conv2D(4, 1, name="a")(inputs)
    b = keras.layers.Conv2D(4, 1, name="b")(inputs)
    x = keras.layers.Add(name="sum")([a, b])
    x = keras.layers.Conv2D(4, 1, name="extra")(x) if extra else x
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    probabilities = keras.layers.Dense(width, activation="softmax", name="probabilities")(x)
    return assemble_model(
        inputs,
        "probabilities",
        probabilities,
        {"b_map": b},
        return_attention=return_attention,
        weights=weights,
        name=name,
    )


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).random((2, 6, 6, 2), dtype=np.float32)


@pytest.fixture(scope="module")
def tiny():
    model = _tiny()
    for variable in model.trainable_variables:
        variable.assign(np.random.default_rng(1).normal(size=variable.shape))
    return model


# --------------------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"input_shape": (32, 32)},
            r"m: input_shape must be \(height, width, channels\) as positive ints, got \(32, 32\)",
        ),
        ({"input_shape": 32}, "input_shape must be"),
        ({"input_shape": (32, 32.0, 3)}, "input_shape must be"),
        ({"input_shape": (40, 64, 3), "multiple": 32}, "divisible by 32, got 40x64; resize to e.g. 32x64"),
        ({"input_shape": (40, 64, 3), "minimum_side": 41}, r"\(40, 64, 3\) is too small; .* at least 41"),
        ({"input_shape": (64, 64, 1), "pretrained": True}, "need 3 input channels .* got 1 channels"),
    ],
)
def test_check_input_shape_names_the_value_and_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        validation.check_input_shape(model="m", **kwargs)


def test_check_input_shape_returns_a_tuple():
    assert validation.check_input_shape([64, 32, 3], "m", multiple=32, minimum_side=32, pretrained=True) == (64, 32, 3)


def test_check_encoder_weights(tmp_path):
    path = tmp_path / "resnet50_notop.h5"
    path.write_bytes(b"")
    assert validation.check_encoder_weights(None, "m") is None
    assert validation.check_encoder_weights("imagenet", "m") == "imagenet"
    assert validation.check_encoder_weights(path, "m") == str(path)
    with pytest.raises(
        ValueError,
        match=r"encoder_weights='/no/such/file.h5': no such file\. encoder_weights "
        r"must be None, 'imagenet' or the path",
    ):
        validation.check_encoder_weights("/no/such/file.h5", "m")
    with pytest.raises(
        ValueError,
        match=r"encoder_weights must be None, 'imagenet' or the path to a weights "
        r"file, got 3",
    ):
        validation.check_encoder_weights(3, "m")
    with pytest.raises(
        ValueError,
        match=r"unet has no pretrained encoder .*: encoder_weights must be None, "
        r"got 'imagenet'",
    ):
        validation.check_encoder_weights("imagenet", "unet", pretrained=False)
    with pytest.raises(ValueError, match="--weights-flag='/no/such/file.h5'"):
        validation.check_encoder_weights("/no/such/file.h5", "m", argument="--weights-flag")


def test_check_return_attention_choice_bool_and_feature_map():
    assert validation.check_return_attention(True, "m", available=True) is True
    with pytest.raises(ValueError, match="return_attention must be True or False, got 1"):
        validation.check_return_attention(1, "m", available=True)
    with pytest.raises(ValueError, match="pspnet has no attention maps: return_attention must be False"):
        validation.check_return_attention(True, "pspnet", available=False)
    with pytest.raises(ValueError, match=r"order must be one of \('a', 'b'\), got 'c'"):
        validation.check_choice("order", "c", ("a", "b"))
    with pytest.raises(ValueError, match="depth must be a positive int, got True"):
        validation.check_positive_int("depth", True)
    assert validation.check_feature_map("l", (None, 4, 4, 3)) == (None, 4, 4, 3)
    assert validation.check_feature_map("l", (None, 4, 4, None), known_channels=False)
    with pytest.raises(
        ValueError,
        match=r"l expects \(batch, height, width, channels\) inputs with known "
        r"channels, got \(None, 4, 4, None\)",
    ):
        validation.check_feature_map("l", (None, 4, 4, None))
    with pytest.raises(ValueError, match=r"l expects \(batch, height, width, channels\) inputs, got \(None, 4\)"):
        validation.check_feature_map("l", (None, 4), known_channels=False)


# --------------------------------------------------------------------------- checkpoints


def test_layer_keys_are_the_groups_of_a_keras_weights_file(tiny, tmp_path):
    path = tmp_path / "tiny.weights.h5"
    tiny.save_weights(path)
    with h5py.File(path) as file:
        stored = {key for key, group in file["layers"].items() if len(group.get("vars", {}))}
    assert stored == {key for key, layer in layer_keys(tiny) if layer.weights} == {"conv2d", "conv2d_1", "dense"}


@pytest.mark.parametrize("suffix", [".weights.h5", ".keras"])
def test_checkpoint_round_trip_into_both_builds(tiny, image, tmp_path, suffix):
    """A checkpoint of the default build loads into the build with maps, whose layers
    Keras orders differently (loaded by Keras into that order, a and b swap); a
    ``.keras`` file saved from the build with maps loads into the default one."""
    path = tmp_path / f"tiny{suffix}"
    tiny.save_weights(path) if suffix == ".weights.h5" else tiny.save(path)
    with_maps = _tiny(return_attention=True, weights=path)
    assert [layer.name for layer in with_maps.layers][1:3] == ["b", "a"]
    np.testing.assert_array_equal(np.asarray(with_maps(image)["probabilities"]), np.asarray(tiny(image)))
    np.testing.assert_array_equal(np.asarray(with_maps.get_layer("a").kernel), np.asarray(tiny.get_layer("a").kernel))
    naive = _tiny(return_attention=True)
    naive.load_weights(path)  # Keras' own order: b gets a's kernel
    np.testing.assert_array_equal(np.asarray(naive.get_layer("b").kernel), np.asarray(tiny.get_layer("a").kernel))
    if suffix == ".keras":
        saved_with_maps = tmp_path / "with_maps.keras"
        with_maps.save(saved_with_maps)
        np.testing.assert_array_equal(np.asarray(_tiny(weights=saved_with_maps)(image)), np.asarray(tiny(image)))


def test_checkpoint_of_another_model_names_the_file_the_model_and_the_layer(tiny, tmp_path):
    path = tmp_path / "tiny.weights.h5"
    tiny.save_weights(path)
    with pytest.raises(
        ValueError,
        match=r"weights='.*tiny.weights.h5' is not a checkpoint of model 'wide' "
        r"\(.* parameters\): layer 'probabilities' \(Dense\) has weights of "
        r"shapes \[\(4, 5\), \(5,\)\], the file's are \[\(3,\), \(4, 3\)\]",
    ):
        _tiny("wide", width=5, weights=path)
    with pytest.raises(
        ValueError,
        match=r"not a checkpoint of model 'deeper' .*: layer 'extra' \(Conv2D\) has "
        r"no weights in the file",
    ):
        _tiny("deeper", extra=True, weights=path)
    deeper = tmp_path / "deeper.weights.h5"
    _tiny("deeper", extra=True).save_weights(deeper)
    with pytest.raises(
        ValueError,
        match=r"not a checkpoint of model 'tiny' .*: the file has weights of 1 "
        r"layers the model lacks, e.g. 'conv2d_2'",
    ):
        load_checkpoint(tiny, deeper)


@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "notes.weights.h5",
            b"not HDF5 at all",
            r"weights='.*notes.weights.h5' is not a Keras checkpoint of model "
            r"'tiny' \(saved by model.save_weights or model.save\)",
        ),
        ("notes.keras", b"not a zip archive", r"weights='.*notes.keras' is not a Keras model file of model 'tiny'"),
        (
            "legacy.h5",
            b"",
            r"weights='.*legacy.h5': a checkpoint of model 'tiny' must be a Keras .weights.h5 or "
            r".keras file \(the encoder's keras.applications weights go to encoder_weights=\)",
        ),
    ],
)
def test_files_that_are_no_checkpoint_are_named(tiny, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        load_checkpoint(tiny, path)


def test_missing_or_mistyped_checkpoints_are_named(tiny):
    with pytest.raises(
        ValueError,
        match=r"weights='/no/such.weights.h5': no such file \(a .weights.h5 or .keras "
        r"checkpoint of model 'tiny'\)",
    ):
        load_checkpoint(tiny, "/no/such.weights.h5")
    with pytest.raises(
        ValueError,
        match=r"weights must be None or the path to a .weights.h5 or .keras "
        r"checkpoint of model 'tiny', got 7",
    ):
        load_checkpoint(tiny, 7)
    load_checkpoint(tiny, None)  # nothing to load


def test_maps_are_float32_outputs_under_mixed_precision(image):
    from zoo.runtime import precision_policy

    with warnings.catch_warnings(), precision_policy(True):
        warnings.simplefilter("ignore", UserWarning)  # float16 is emulated on a CPU
        model = _tiny(return_attention=True)
    assert keras.backend.standardize_dtype(model(image)["b_map"].dtype) == "float32"
    assert model.get_layer("b").compute_dtype == "float16" and model.get_layer("b_map_float32")
    assert "b_map_float32" not in [layer.name for layer in _tiny(return_attention=True).layers]  # float32: as is


# --------------------------------------------------------------------------- resizing


def test_resize_helpers_are_tf_bilinear_and_need_static_sizes():
    x = np.random.default_rng(2).random((1, 3, 4, 2), dtype=np.float32)
    inputs = keras.Input((3, 4, 2))
    resized = keras.Model(inputs, resize_to(inputs, (6, 5), "up"))(x)
    expected = keras.ops.image.resize(x, (6, 5), interpolation="bilinear")
    np.testing.assert_array_equal(np.asarray(resized), np.asarray(expected))
    np.testing.assert_array_equal(np.asarray(resize_like(x, np.zeros((1, 6, 5, 1)))), np.asarray(expected))
    assert resize_like(x, np.zeros((1, 3, 4, 7))) is x  # same size: no op
    with pytest.raises(ValueError, match=r"up: resizing needs a static \(height, width\), got \(None, 4\)"):
        resize_to(keras.Input((None, 4, 2)), (None, 4), "up")
