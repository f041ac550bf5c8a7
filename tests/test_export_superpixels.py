"""zoo.export for models with a label-map input (SANet: image + superpixels), and
data_tools.preprocess.preprocess_label_maps, which resizes the maps in serving."""

import dataclasses
import io
import os
import subprocess

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from data_tools.preprocess import InputSpec, preprocess_images, preprocess_label_maps
from data_tools.records import Record
from tests.test_export import CLI_TIMEOUT, SAVED_MODEL_CLI
from zoo.export import export_saved_model
from zoo.sanet.layers import SuperpixelAveragePooling, SuperpixelUnpooling
from zoo.sanet.models import SANET_INPUT, build_sanet
from zoo.sanet.superpixels import superpixel_segmentation_dataset, write_superpixel_map

SIZE = 32
SEGMENTS = 16
TINY = dict(backbone="vgg16", decoder_filters=(8, 8, 8, 8, 8), sam_filters=8, max_segments=SEGMENTS)
SPEC = dataclasses.replace(SANET_INPUT, image_size=(SIZE, SIZE))
IMAGE_SIZE = (40, 52)  # not the model's: the serving graph resizes image and map


def _batch(batch=2, size=IMAGE_SIZE, segments=SEGMENTS, seed=0):
    """uint8 images and int32 label maps; labels drawn per pixel, so any resampling
    error in the maps changes which labels the model sees."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (batch, *size, 3), dtype=np.uint8)
    maps = rng.integers(0, segments, (batch, *size), dtype=np.int32)
    return images, maps


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def sanet():
    return build_sanet((SIZE, SIZE, 3), **TINY)


@pytest.fixture(scope="module")
def exported(sanet, tmp_path_factory):
    return export_saved_model(sanet, tmp_path_factory.mktemp("sanet") / "1", input_spec=SPEC)


@pytest.fixture(scope="module")
def signatures(exported):
    return tf.saved_model.load(exported).signatures


@pytest.fixture(scope="module")
def pipeline_prediction(sanet, tmp_path_factory):
    """The images and maps as files, the training pipeline's evaluation batch of them, and the model's
    prediction on it: what serving must reproduce."""
    images, maps = _batch()
    root = tmp_path_factory.mktemp("data")
    records = []
    for index, (image, labels) in enumerate(zip(images, maps, strict=True)):
        image_path, mask_path = root / f"img{index}.png", root / f"img{index}_mask.png"
        Image.fromarray(image).save(image_path)
        Image.fromarray(np.zeros(IMAGE_SIZE, np.uint8)).save(mask_path)
        map_path = write_superpixel_map(root / f"img{index}_superpixels.png", labels)
        records.append(Record(f"img{index}", image_path, {"lesion": mask_path}, extra={"superpixels": map_path}))
    dataset = superpixel_segmentation_dataset(
        records, SPEC, mask_names=("lesion",), batch_size=2, training=False, cache=False
    )
    inputs, _ = next(iter(dataset))
    return images, maps, sanet.predict(inputs, verbose=0)


# --------------------------------------------------------------------------- served == trained


@pytest.mark.parametrize("channel_axis", [False, True], ids=["BHW", "BHW1"])
def test_serving_default_equals_the_training_pipeline(signatures, pipeline_prediction, channel_axis):
    images, maps, expected = pipeline_prediction
    maps = maps[..., None] if channel_axis else maps
    served = signatures["serving_default"](images=tf.constant(images), superpixels=tf.constant(maps))
    assert set(served) == {"mask"} and served["mask"].dtype == tf.float32
    np.testing.assert_allclose(served["mask"].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_serving_bytes_takes_encoded_images_and_maps_of_their_decoded_size(signatures, pipeline_prediction):
    images, maps, expected = pipeline_prediction
    served = signatures["serving_bytes"](
        encoded=tf.constant([_png(image) for image in images]), superpixels=tf.constant(maps)
    )
    np.testing.assert_allclose(served["mask"].numpy(), expected, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- bad requests

_MAPS_SHAPE = r"\[batch, height, width\] or \[batch, height, width, 1\]"
_IN_RANGE = r"superpixels: labels must lie in \[0, max_segments=16\)"


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda maps: maps[:, :, :-2], "superpixels: expected the batch, height and width of images"),
        (lambda maps: maps[:1], "superpixels: expected the batch, height and width of images"),
        (lambda maps: maps[0], f"superpixels: expected int32 {_MAPS_SHAPE}; got another rank"),
        (lambda maps: np.stack([maps, maps], -1), f"superpixels: expected int32 {_MAPS_SHAPE}; got more than one"),
        (lambda maps: np.where(maps == 3, SEGMENTS, maps), _IN_RANGE),
        (lambda maps: np.where(maps == 3, -1, maps), _IN_RANGE),
    ],
    ids=["size", "batch", "rank", "channels", "label_too_large", "negative_label"],
)
def test_bad_maps_get_a_clear_error(signatures, corrupt, message):
    images, maps = _batch(seed=1)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        signatures["serving_default"](images=tf.constant(images), superpixels=tf.constant(corrupt(maps)))


def test_serving_bytes_checks_each_map_against_its_decoded_image(signatures):
    images, maps = _batch(seed=2)
    encoded = tf.constant([_png(image) for image in images])
    with pytest.raises(tf.errors.InvalidArgumentError, match="superpixels: expected one map per encoded image"):
        signatures["serving_bytes"](encoded=encoded, superpixels=tf.constant(maps[:1]))
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="superpixels: each map must have the height and width of its decoded encoded image",
    ):
        signatures["serving_bytes"](encoded=encoded, superpixels=tf.constant(maps[:, :-1]))


def test_saved_model_cli_lists_both_inputs_of_both_signatures(exported):
    show = subprocess.run(
        [SAVED_MODEL_CLI, "show", "--dir", exported, "--all"],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert show.returncode == 0, show.stderr[-3000:]
    signatures = show.stdout.split("signature_def[")
    default = next(text for text in signatures if text.startswith("'serving_default'"))
    encoded = next(text for text in signatures if text.startswith("'serving_bytes'"))
    superpixels = "inputs['superpixels'] tensor_info:\n        dtype: DT_INT32"
    mask = "outputs['mask'] tensor_info:\n        dtype: DT_FLOAT"
    for expected in ("inputs['images'] tensor_info:\n        dtype: DT_UINT8", superpixels, mask):
        assert expected in default
    for expected in ("inputs['encoded'] tensor_info:\n        dtype: DT_STRING", superpixels, mask):
        assert expected in encoded


# --------------------------------------------------------------------------- other layouts, export-time checks

SMALL = 16
POOL_SEGMENTS = 8


def _pooling_model() -> keras.Model:
    """Each pixel gets the mean image colour of its superpixel; the map comes first and
    without a channel axis, the other input layout the export supports."""
    regions = keras.Input((SMALL, SMALL), dtype="int32", name="regions")
    image = keras.Input((SMALL, SMALL, 3), name="image")
    pooled = SuperpixelAveragePooling(POOL_SEGMENTS, name="pool")([image, regions])
    outputs = SuperpixelUnpooling((SMALL, SMALL), name="unpool")([pooled, regions])
    return keras.Model([regions, image], outputs, name="pooling")


def _nearest(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest neighbour with half-pixel centres, as a loop: output pixel i reads
    input pixel floor((i + 0.5) * in / out)."""
    rows = [min(int((i + 0.5) * labels.shape[0] / size[0]), labels.shape[0] - 1) for i in range(size[0])]
    cols = [min(int((j + 0.5) * labels.shape[1] / size[1]), labels.shape[1] - 1) for j in range(size[1])]
    return labels[np.ix_(rows, cols)]


def _pad_to_square(labels: np.ndarray) -> np.ndarray:
    height, width = labels.shape
    side = max(height, width)
    padded = np.zeros((side, side), labels.dtype)
    top, left = (side - height) // 2, (side - width) // 2
    padded[top : top + height, left : left + width] = labels
    return padded


@pytest.mark.parametrize("fit", ["stretch", "pad"])
def test_preprocess_label_maps_is_nearest_neighbour_with_the_images_geometry(fit):
    spec = InputSpec((8, 12), fit=fit)
    _, maps = _batch(size=(13, 7), segments=300, seed=3)
    resized = preprocess_label_maps(tf.constant(maps[..., None]), spec).numpy()
    assert resized.shape == (2, 8, 12, 1) and resized.dtype == np.int32
    for labels, result in zip(maps, resized, strict=True):
        expected = _nearest(_pad_to_square(labels) if fit == "pad" else labels, (8, 12))
        np.testing.assert_array_equal(result[..., 0], expected)


def test_map_first_rank3_model_with_a_stricter_bound(tmp_path):
    spec = InputSpec((SMALL, SMALL))
    path = export_saved_model(_pooling_model(), tmp_path / "1", input_spec=spec, max_segments=4, accept_encoded=False)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    images, maps = _batch(size=(20, 24), segments=4, seed=4)
    served = serve(images=tf.constant(images), regions=tf.constant(maps))["unpool"].numpy()
    pixels = preprocess_images(images, spec).numpy()
    for image, labels, result in zip(pixels, maps, served, strict=True):
        labels = _nearest(labels, (SMALL, SMALL))
        for label in np.unique(labels):
            inside = labels == label
            np.testing.assert_allclose(
                result[inside], np.broadcast_to(image[inside].mean(0), result[inside].shape), rtol=1e-5, atol=1e-6
            )
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"regions: labels must lie in \[0, max_segments=4\)"):
        serve(images=tf.constant(images), regions=tf.constant(maps + 1))


def test_label_map_models_that_cannot_be_served_are_refused(tmp_path):
    spec = InputSpec((SMALL, SMALL))
    with pytest.raises(ValueError, match="max_segments=9 exceeds the model's bound 8"):
        export_saved_model(_pooling_model(), tmp_path / "a", input_spec=spec, max_segments=9)

    image = keras.Input((SMALL, SMALL, 3), name="image")
    unbounded = keras.Model(
        [image, keras.Input((SMALL, SMALL, 1), dtype="int32", name="labels")], keras.layers.Conv2D(1, 1)(image)
    )
    with pytest.raises(
        ValueError,
        match="no layer with a max_segments bound; pass max_segments, the bound on the labels of input 'labels'",
    ):
        export_saved_model(unbounded, tmp_path / "b", input_spec=spec)

    coarse = build_sanet((SIZE, SIZE, 3), superpixel_shape=(SIZE // 2, SIZE // 2, 1), **TINY)
    with pytest.raises(ValueError, match=r"input 'superpixels' is \(16, 16\) but input_spec.image_size is \(32, 32\)"):
        export_saved_model(coarse, tmp_path / "c", input_spec=SPEC)

    two_maps = keras.Model(
        [
            image,
            keras.Input((SMALL, SMALL, 1), dtype="int32", name="a"),
            keras.Input((SMALL, SMALL, 1), dtype="int32", name="b"),
        ],
        keras.layers.Conv2D(1, 1)(image),
    )
    with pytest.raises(NotImplementedError, match="at most one integer label map"):
        export_saved_model(two_maps, tmp_path / "d", input_spec=spec, max_segments=4)


# --------------------------------------------------------------------------- zoo.serving: the map and its bound


def test_the_saved_model_names_its_map_input_and_bound_beside_it(exported):
    """zoo.predict reads them back instead of assuming SANet's default bound."""
    from zoo.serving import load_serving_info

    assert load_serving_info(exported) == {"label_map": "superpixels", "max_segments": SEGMENTS}


def test_superpixel_maps_are_computed_by_zoo_serving_below_the_bound():
    from zoo.serving import compute_extra_input, compute_superpixels

    image = np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8)
    labels = compute_superpixels(image, SEGMENTS)
    assert labels.shape == (40, 52) and labels.dtype == np.int32 and 0 <= labels.min() and labels.max() < SEGMENTS
    np.testing.assert_array_equal(compute_extra_input("superpixels", image, SEGMENTS), labels)
    with pytest.raises(ValueError, match="label-map input 'regions' is not one the zoo computes"):
        compute_extra_input("regions", image, 4)
