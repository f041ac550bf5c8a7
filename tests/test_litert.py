"""zoo.litert: .tflite files with the preprocessing inside, run with the ai-edge-litert
interpreter and compared with Keras on the same raw images."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from data_tools.preprocess import InputSpec, preprocess_images
from data_tools.synthetic import render_dermoscopy
from zoo.litert import TOLERANCES, LiteRTConversionError, LiteRTModel, export_litert, keras_reference, unsupported_ops
from zoo.metrics import Confusion
from zoo.sanet.layers import SuperpixelAttention
from zoo.serving import spec_for_model


def _images(count, seed=0, low=24, high=57):
    rng = np.random.default_rng(seed)
    return [
        render_dermoscopy(
            rng, (int(rng.integers(low, high)), int(rng.integers(low, high))), kind=("nevus", "melanoma")[k % 2]
        )
        for k in range(count)
    ]


def _max_diff(lite, model, spec, images, maps=None):
    diffs = {}
    for index, image in enumerate(images):
        superpixels = None if maps is None else maps[index]
        got, expected = lite.predict(image, superpixels), keras_reference(model, spec, image, superpixels)
        assert set(got) == set(expected)
        for name in expected:
            diffs[name] = max(diffs.get(name, 0.0), float(np.max(np.abs(got[name] - expected[name]))))
    return diffs


@pytest.fixture(scope="module")
def trained_unet():
    """The small U-Net (CIELAB input) fitted for a few steps on synthetic lesions, so that
    Dice measures something: int8's Dice change is then meaningful."""
    keras.utils.set_random_seed(0)
    entry = zoo.get_model("unet")
    model = entry.build(small=True)
    spec = spec_for_model(entry.input_spec, (32, 32))
    samples = _images(24, seed=1)
    x = np.concatenate([preprocess_images(s.image[None], spec).numpy() for s in samples])
    y = np.stack(
        [tf.image.resize(s.lesion[..., None].astype(np.float32), (32, 32), "nearest").numpy() for s in samples]
    )
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    model.fit(x, y, batch_size=8, epochs=15, verbose=0)
    return model, spec


def test_float32_with_preprocessing_inside_matches_keras_at_any_size(tmp_path, trained_unet):
    model, spec = trained_unet
    path = export_litert(model, tmp_path / "unet.tflite", input_spec=spec)
    lite = LiteRTModel(path)
    (details,) = lite.inputs.values()
    assert details["dtype"] == np.uint8 and list(details["shape_signature"]) == [1, -1, -1, 3]
    images = [s.image for s in _images(3)]  # three sizes, none 32x32: the resize and CIELAB are inside
    assert _max_diff(lite, model, spec, images)["mask"] <= TOLERANCES[None] == 1e-4


def test_fixed_input_size_and_pad_and_crop_geometry(tmp_path):
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    outputs = keras.layers.Dense(2, activation="softmax", name="probabilities")(
        keras.layers.GlobalAveragePooling2D()(x)
    )
    model = keras.Model(inputs, outputs)
    images = [s.image for s in _images(2, low=20, high=30)]
    for spec in (
        InputSpec((16, 16), fit="pad", scale="caffe"),
        InputSpec((16, 16), fit="crop", pre_crop_size=(20, 20), colour_constancy="gray_world"),
    ):
        path = export_litert(model, tmp_path / f"{spec.fit}.tflite", input_spec=spec)
        assert _max_diff(LiteRTModel(path), model, spec, images)["probabilities"] <= 1e-5
    fixed = export_litert(model, tmp_path / "fixed.tflite", input_spec=spec, input_size=(24, 30))
    lite = LiteRTModel(fixed)
    assert list(lite.inputs["images"]["shape_signature"]) == [1, 24, 30, 3]
    image = _images(1)[0].image[:24, :30]
    assert _max_diff(lite, model, spec, [image])["probabilities"] <= 1e-5


def test_superpixel_attention_converts_with_the_map_as_an_input(tmp_path):
    """SANet's custom layers (segment mean, unpooling, SAM) are LiteRT builtins; the map
    (SLIC is no op) comes in beside the image and gets the image's geometry inside."""
    image_in = keras.Input((16, 16, 3), name="image")
    labels_in = keras.Input((16, 16, 1), dtype="int32", name="superpixels")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(image_in)
    x = SuperpixelAttention(8, filters=4)([x, labels_in])
    model = keras.Model([image_in, labels_in], keras.layers.Conv2D(5, 1, activation="sigmoid", name="mask")(x))
    spec = InputSpec((16, 16))
    path = export_litert(model, tmp_path / "sam.tflite", input_spec=spec)
    lite = LiteRTModel(path, max_segments=8)
    rng = np.random.default_rng(0)
    images = [s.image for s in _images(2, low=20, high=30)]
    maps = [np.repeat(np.repeat(rng.integers(0, 8, (5, 6)), 6, 0), 6, 1)[: i.shape[0], : i.shape[1]] for i in images]
    maps = [
        np.pad(m, ((0, i.shape[0] - m.shape[0]), (0, i.shape[1] - m.shape[1])), mode="edge")
        for m, i in zip(maps, images, strict=True)
    ]
    assert _max_diff(lite, model, spec, images, maps)["mask"] <= 1e-4
    with pytest.raises(ValueError, match=r"superpixel labels must lie in \[0, 8\)"):
        lite.predict(images[0], maps[0] + 8)
    with pytest.raises(ValueError, match="takes a superpixel map"):
        lite.predict(images[0])


def _sam_model(size=32, segments=16):
    image_in = keras.Input((size, size, 3), name="image")
    labels_in = keras.Input((size, size, 1), dtype="int32", name="superpixels")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(image_in)
    x = SuperpixelAttention(segments, filters=4)([x, labels_in])
    return keras.Model([image_in, labels_in], keras.layers.Conv2D(5, 1, activation="sigmoid", name="mask")(x))


def test_int8_superpixel_mean_runs_when_a_superpixel_is_one_pixel(tmp_path):
    """int8 once quantised the pixel counts of the superpixel mean: a calibration map with
    one superpixel of 1024 pixels gave them a step of 4, so a one-pixel superpixel divided
    by zero ("DIV failed to invoke"). The mean multiplies by counts ** -1, a float op."""
    model = _sam_model()
    spec = InputSpec((32, 32))
    rng = np.random.default_rng(0)
    images = [s.image for s in _images(6, low=32, high=33)]
    calibration = [np.zeros((32, 32), np.int32)] + [
        np.repeat(np.repeat(rng.integers(0, 16, (4, 4)), 8, 0), 8, 1) for _ in images[1:]
    ]
    path = export_litert(
        model,
        tmp_path / "sam_int8.tflite",
        input_spec=spec,
        quantization="int8",
        representative_images=images,
        representative_superpixels=calibration,
    )
    maps = [m.copy() for m in calibration[1:]]
    for m in maps:
        m[0, 0] = 15  # a superpixel of one pixel
    diff = _max_diff(LiteRTModel(path, max_segments=16), model, spec, images[1:], maps)["mask"]
    print(f"SAM int8 max |LiteRT - Keras| {diff:.3g}")
    assert diff <= TOLERANCES["int8"]


@pytest.mark.parametrize("mode", ["float16", "dynamic", "int8"])
def test_quantised_unet_within_its_tolerance_and_dice_change(tmp_path, trained_unet, mode):
    model, spec = trained_unet
    calibration = [s.image for s in _images(16, seed=5)]
    path = export_litert(
        model, tmp_path / f"unet_{mode}.tflite", input_spec=spec, quantization=mode, representative_images=calibration
    )
    samples = _images(8, seed=9)
    lite = LiteRTModel(path)
    assert _max_diff(lite, model, spec, [s.image for s in samples])["mask"] <= TOLERANCES[mode]

    def dice(outputs):
        return np.mean(
            [
                Confusion.of(s.lesion, tf.image.resize(o["mask"], s.lesion.shape).numpy()[..., 0] > 0.5).dice()
                for s, o in zip(samples, outputs, strict=True)
            ]
        )

    keras_dice = dice([keras_reference(model, spec, s.image) for s in samples])
    lite_dice = dice([lite.predict(s.image) for s in samples])
    assert keras_dice > 0.5  # fitted: the Dice is not noise
    print(f"{mode}: Dice Keras {keras_dice:.4f}, LiteRT {lite_dice:.4f}")
    assert abs(lite_dice - keras_dice) <= {"float16": 0.005, "dynamic": 0.02, "int8": 0.05}[mode]


def test_quantised_files_shrink(tmp_path, trained_unet):
    model, spec = trained_unet
    sizes = {
        mode: export_litert(
            model,
            tmp_path / f"{mode}.tflite",
            input_spec=spec,
            quantization=mode,
            representative_images=[s.image for s in _images(4)],
        )
        .stat()
        .st_size
        for mode in (None, "float16", "dynamic")
    }
    assert sizes["float16"] < 0.6 * sizes[None] and sizes["dynamic"] < 0.4 * sizes[None]


def test_bad_arguments_and_unconvertible_ops_are_named(tmp_path):
    model = zoo.get_model("unet").build(small=True)
    spec = spec_for_model(zoo.get_model("unet").input_spec, (32, 32))
    with pytest.raises(ValueError, match="needs representative_images"):
        export_litert(model, tmp_path / "a.tflite", input_spec=spec, quantization="int8")
    with pytest.raises(ValueError, match="quantization must be one of"):
        export_litert(model, tmp_path / "a.tflite", input_spec=spec, quantization="int4")
    with pytest.raises(ValueError, match="has no LiteRT builtin"):
        export_litert(model, tmp_path / "a.tflite", input_spec=InputSpec((32, 32), resize="bicubic"))

    inputs = keras.Input((8, 8, 3), name="image")
    odd = keras.layers.Lambda(lambda t: tf.image.resize(t, (16, 16), method="bicubic"), name="bicubic_up")(inputs)
    with pytest.raises(LiteRTConversionError, match=r"ResizeBicubic in .*bicubic_up"):
        export_litert(keras.Model(inputs, odd), tmp_path / "b.tflite", input_spec=InputSpec((8, 8)))


def test_unsupported_ops_reads_the_converters_message():
    message = (
        'loc(callsite(fused["ResizeNearestNeighbor:", "resize_1/ResizeNearestNeighbor@__inference_serve_1"] '
        "at ...)): error\nTF Select ops: ResizeNearestNeighbor"
    )
    assert unsupported_ops(message) == ["ResizeNearestNeighbor in resize_1"]
    wrapped = (
        'fused["ResizeBicubic:", "functional_1/up_1/resize/ResizeBicubic@__inference_serve_2"] at '
        'fused["PartitionedCall:", "PartitionedCall@__inference_signature_wrapper"]'
    )
    assert unsupported_ops(wrapped) == ["ResizeBicubic in functional_1/up_1/resize"]
    assert unsupported_ops("TF Select ops: Foo, Bar") == ["Foo (no LiteRT builtin)", "Bar (no LiteRT builtin)"]


def test_export_cli_writes_a_tflite_file(tmp_path, capsys):
    from zoo.export import main

    weights = tmp_path / "unet.weights.h5"
    zoo.get_model("unet").build(small=True).save_weights(weights)
    out = tmp_path / "unet.tflite"
    assert (
        main(
            [
                "--model",
                "unet",
                "--small",
                "--weights",
                str(weights),
                "--out",
                str(out),
                "--litert",
                "--quantization",
                "float16",
            ]
        )
        == 0
    )
    image = _images(1)[0].image
    assert LiteRTModel(out).predict(image)["mask"].shape == (32, 32, 1)
    assert main(["--model", "attention_unet", "--small", "--weights", str(weights), "--out", str(out), "--litert"]) == 1
    assert f"{weights}: this checkpoint does not match model 'attention_unet'" in capsys.readouterr().err


def test_the_measurement_table_is_a_reproduce_script_not_the_library(tmp_path, capsys):
    import zoo.litert as litert
    from reproduce.litert_table import main

    assert not hasattr(litert, "measure_model") and not hasattr(litert, "markdown_table")
    assert litert.main([]) == 2 and "reproduce/litert_table.py" in capsys.readouterr().err
    out = tmp_path / "table.md"
    assert main(["--models", "unet", "--modes", "float32", "--images", "2", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("| model | mode | converts |") and lines[2].startswith("| unet | float32 | yes |")
    assert main(["--models", "no_such_model", "--out", str(out)]) == 1
