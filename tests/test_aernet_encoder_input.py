"""AER-Net's encoder is the same network whatever the source of its ImageNet weights (issue 25.2).

keras.applications' EfficientNet adds a ``Rescaling(1/sqrt(var))`` stem layer for
``weights="imagenet"`` only; a local file of the same weights (the offline route)
must build the same layers and give the same outputs.
"""

import keras
import numpy as np
import pytest
from keras.src.utils import file_utils

from zoo.common import encoders

SIZE = 32


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A weights=None EfficientNetB0 (no top) with non-trivial stem statistics, saved."""
    backbone = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    rng = np.random.default_rng(0)
    backbone.set_weights(
        [w * rng.uniform(0.5, 1.5, size=np.shape(w)).astype(np.float32) for w in backbone.get_weights()]
    )
    path = tmp_path_factory.mktemp("weights") / "efficientnetb0_notop.weights.h5"
    backbone.save_weights(path)
    return path


def _encoder(encoder_weights) -> keras.Model:
    inputs = keras.Input((SIZE, SIZE, 3))
    return keras.Model(inputs, encoders.build_encoder("efficientnetb0", inputs, encoder_weights))


def _layers(model: keras.Model) -> list:
    return [(type(layer).__name__, [tuple(w.shape) for w in layer.weights]) for layer in model.layers]


def test_local_file_builds_the_network_the_imagenet_download_builds(weights_file, monkeypatch):
    from_file = _encoder(str(weights_file))
    monkeypatch.setattr(file_utils, "get_file", lambda *args, **kwargs: str(weights_file))
    from_download = _encoder("imagenet")
    assert _layers(from_file) == _layers(from_download)
    assert "Rescaling" in [type(layer).__name__ for layer in from_file.layers[3:6]]  # the stem's 1/sqrt(var)
    image = np.random.default_rng(1).random((2, SIZE, SIZE, 3), dtype=np.float32)
    for want, got in zip(from_download(image, training=False), from_file(image, training=False), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
