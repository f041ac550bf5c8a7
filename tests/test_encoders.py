"""The encoders' in-model input scaling equals keras.applications' own preprocessing."""

import keras
import numpy as np
import pytest

from zoo.common import encoders
from zoo.common.input_scaling import InputScaling

APPLICATION_PREPROCESSING = {
    "resnet50": keras.applications.resnet.preprocess_input,  # caffe: RGB->BGR, minus BGR mean
    "resnet101": keras.applications.resnet.preprocess_input,
    "vgg16": keras.applications.vgg16.preprocess_input,
    "densenet121": keras.applications.densenet.preprocess_input,  # torch: ImageNet standardisation
    "mobilenetv2": keras.applications.mobilenet_v2.preprocess_input,  # tf: [-1, 1]
    "efficientnetb1": keras.applications.efficientnet.preprocess_input,  # pass-through: 0-255
}


@pytest.mark.parametrize("backbone", sorted(APPLICATION_PREPROCESSING))
def test_input_scaling_matches_keras_applications(backbone):
    image = np.random.default_rng(0).random((2, 5, 7, 3), dtype=np.float32)
    image[..., 0] = 0.0  # a red-free image: a missing RGB->BGR flip cannot hide
    inputs = keras.Input((5, 7, 3))
    scaled = keras.Model(inputs, encoders.encoder_spec(backbone).input_scaling(inputs))(image)
    expected = APPLICATION_PREPROCESSING[backbone](image * 255.0)
    np.testing.assert_allclose(np.asarray(scaled), expected, rtol=1e-5, atol=1e-3)


def test_grey_input_gets_the_channel_mean_scaling():
    inputs = keras.Input((3, 3, 1))
    layer_output = encoders.encoder_spec("resnet50").input_scaling(inputs)
    grey = np.full((1, 3, 3, 1), 0.5, np.float32)
    value = np.asarray(keras.Model(inputs, layer_output)(grey))
    np.testing.assert_allclose(value, 127.5 - np.mean([103.939, 116.779, 123.68]), rtol=1e-6)


def test_input_scaling_round_trips_and_rejects_wrong_channel_counts(tmp_path):
    inputs = keras.Input((2, 2, 3))
    model = keras.Model(inputs, InputScaling([1.0, 2.0, 3.0], -1.0, reverse_channels=True)(inputs))
    model.save(tmp_path / "scaling.keras")
    loaded = keras.saving.load_model(tmp_path / "scaling.keras")
    x = np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3)
    np.testing.assert_array_equal(np.asarray(loaded(x)), x[..., ::-1] * [1.0, 2.0, 3.0] - 1.0)
    with pytest.raises(ValueError, match="2 scale values for 3 input channels"):
        InputScaling([1.0, 2.0])(keras.Input((2, 2, 3)))


def test_imagenet_download_translates_only_download_failures():
    with pytest.raises(encoders.WeightsUnavailableError, match=r"of VGG16 \(refused\)\. Put the file there\."):
        with encoders.imagenet_download("imagenet", "VGG16", "Put the file there."):
            raise OSError("refused")
    with pytest.raises(OSError, match="refused"):  # no download asked for: not a download failure
        with encoders.imagenet_download(None, "VGG16", "Put the file there."):
            raise OSError("refused")
    with pytest.raises(ValueError, match="bad shape"):
        with encoders.imagenet_download("imagenet", "VGG16", "Put the file there."):
            raise ValueError("bad shape")
