"""AttnMel-CNN and its baselines (AttnMel Sec. 2.1 and 3.2, Tables 1-2)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from zoo.attnmel.models import (
    ATTENTION_OUTPUTS,
    PAPER_PARAMETER_SAVING,
    build_attnmel_cnn,
    build_mel_cnn,
    build_vgg16_classifier,
    build_vgg16_gap,
)

SIZE = 64  # the smallest convenient size: VGG-16's five 2x2 poolings need multiples of 32
TINY = (SIZE, SIZE, 3)
VGG16_CONV_PARAMS = 14_714_688  # keras.applications VGG16 without top


def attnmel_head_params(classes: int = 2, filters: int = 256) -> int:
    """Parameters AttnMel-CNN adds to the VGG-16 convolutions, counted by hand."""
    attention3 = 256 * filters + 512 * filters + filters + 1  # W_f, W_g, W (+ bias)
    attention4 = 512 * filters + 512 * filters + filters + 1
    classifier = (512 + 256 + 512) * classes + classes  # 1280 -> classes
    return attention3 + attention4 + classifier


def vgg16_dense_params(side: int, classes: int = 2) -> int:
    flat = (side // 32) ** 2 * 512
    return flat * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * classes + classes


@pytest.fixture(scope="module")
def inputs():
    return np.random.default_rng(0).random((2, *TINY), dtype=np.float32)


@pytest.fixture(scope="module")
def attnmel():
    return build_attnmel_cnn(TINY)


def test_parameter_saving_against_vgg16_matches_paper():
    """Sec. 3.2: "our network is much more lightweight (around 100M fewer parameters)"."""
    attnmel = build_attnmel_cnn().count_params()
    vgg16 = build_vgg16_classifier().count_params()
    saving = vgg16 - attnmel
    print(
        f"\nVGG-16 {vgg16:,} - AttnMel-CNN {attnmel:,} = {saving:,} parameters saved "
        f"(paper: around {PAPER_PARAMETER_SAVING / 1e6:.0f}M)"
    )
    assert attnmel == VGG16_CONV_PARAMS + attnmel_head_params()
    assert vgg16 == VGG16_CONV_PARAMS + vgg16_dense_params(224)
    assert 0.9 * PAPER_PARAMETER_SAVING <= saving <= 1.25 * PAPER_PARAMETER_SAVING
    # "dense layers take nearly 90% of the parameters in VGG-16"
    assert vgg16_dense_params(224) / vgg16 == pytest.approx(0.89, abs=0.01)


def test_baseline_parameter_counts():
    assert build_vgg16_gap(TINY).count_params() == VGG16_CONV_PARAMS + 512 * 2 + 2
    assert build_mel_cnn(TINY).count_params() == VGG16_CONV_PARAMS + 1280 * 2 + 2
    # VGG-16-BN: every conv loses its bias to a batch norm's 4 per-channel values.
    conv_channels = 2 * 64 + 2 * 128 + 3 * 256 + 6 * 512
    bn = build_attnmel_cnn(TINY, batch_norm=True).count_params()
    assert bn == VGG16_CONV_PARAMS - conv_channels + 4 * conv_channels + attnmel_head_params()


def test_attnmel_outputs(attnmel, inputs):
    outputs = attnmel(inputs, training=False)
    assert set(outputs) == {"probabilities", *ATTENTION_OUTPUTS}
    assert outputs["probabilities"].shape == (2, 2)
    np.testing.assert_allclose(np.sum(outputs["probabilities"], axis=-1), 1.0, rtol=1e-5)
    assert outputs["attention_pool3"].shape == (2, SIZE // 8, SIZE // 8, 1)
    assert outputs["attention_pool4"].shape == (2, SIZE // 16, SIZE // 16, 1)
    for name in ATTENTION_OUTPUTS:
        assert np.all((np.asarray(outputs[name]) > 0) & (np.asarray(outputs[name]) < 1))
    assert attnmel.get_layer("features").output.shape[-1] == 512 + 256 + 512


def test_attnmel_classifier_sees_pool5_gap_and_attended_vectors(attnmel, inputs):
    """Fig. 1: the classifier input is [GAP(pool-5), GAP(A3 * pool-3), GAP(A4 * pool-4)]."""
    taps = keras.Model(
        attnmel.input,
        [attnmel.get_layer(name).output for name in ("block3_pool", "block4_pool", "block5_pool", "features")]
        + [attnmel.output["attention_pool3"], attnmel.output["attention_pool4"]],
    )
    pool3, pool4, pool5, features, a3, a4 = (np.asarray(t) for t in taps(inputs))
    expected = np.concatenate(
        [pool5.mean(axis=(1, 2)), (a3 * pool3).mean(axis=(1, 2)), (a4 * pool4).mean(axis=(1, 2))], axis=-1
    )
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)


def test_softmax_normalisation_option(inputs):
    outputs = build_attnmel_cnn(TINY, normalization="softmax")(inputs)
    np.testing.assert_allclose(np.sum(outputs["attention_pool3"], axis=(1, 2, 3)), 1.0, rtol=1e-5)


def test_return_attention_false_gives_the_probabilities_of_a_checkpoint(attnmel, inputs, tmp_path):
    """AttnMel-CNN returns its maps by default (its loss regularises them, eq. 5); its
    ``.keras`` checkpoint loads through ``weights=`` into the probabilities-only build."""
    path = tmp_path / "attnmel_cnn.keras"
    attnmel.save(path)
    probabilities = build_attnmel_cnn(TINY, weights=path, return_attention=False)
    assert probabilities.output_names == ["probabilities"]
    np.testing.assert_array_equal(
        np.asarray(probabilities(inputs, training=False)), np.asarray(attnmel(inputs, training=False)["probabilities"])
    )
    with pytest.raises(ValueError, match=r"attnmel_cnn.keras' is not a checkpoint of model 'mel_cnn'"):
        build_mel_cnn(TINY, weights=path)


def test_weights_file_loads_into_the_backbone(tmp_path, inputs):
    source = keras.applications.VGG16(include_top=False, weights=None, input_shape=TINY)
    path = tmp_path / "vgg16_notop.weights.h5"
    source.save_weights(path)
    model = build_vgg16_gap(TINY, encoder_weights=path)
    for name in ("block1_conv1", "block5_conv3"):
        np.testing.assert_array_equal(model.get_layer(name).get_weights()[0], source.get_layer(name).get_weights()[0])


def test_vgg16_gap_has_the_layers_cam_reads(inputs):
    from zoo.cam import class_activation_map

    model = build_vgg16_gap(TINY)
    cams = class_activation_map(model, inputs, class_index=1)
    features = keras.Model(model.input, model.get_layer("block5_pool").output)(inputs)
    kernel = model.get_layer("predictions").kernel
    np.testing.assert_allclose(cams, np.einsum("bhwc,c->bhw", features, kernel[:, 1]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: build_attnmel_cnn((60, 64, 3)), "divisible by 32"),
        (lambda: build_attnmel_cnn(TINY, classes=0), "classes must be a positive int"),
        (lambda: build_attnmel_cnn(TINY, normalization="tanh"), "normalization must be one of"),
        (lambda: build_attnmel_cnn(TINY, encoder_weights="imagenet", batch_norm=True), "no VGG-16-BN"),
        (lambda: build_attnmel_cnn(TINY, batch_norm="yes"), "batch_norm must be True or False"),
        (lambda: build_attnmel_cnn(TINY, return_attention=None), "return_attention must be True or False"),
        (lambda: build_mel_cnn(TINY, encoder_weights="/no/such/file.h5"), "encoder_weights='/no/such/file.h5'"),
        (lambda: build_mel_cnn(TINY, return_attention=True), "mel_cnn has no attention maps"),
        (lambda: build_vgg16_gap(TINY, weights="vgg16_notop.h5"), "must be a Keras .weights.h5 or .keras file"),
        (lambda: build_vgg16_classifier(TINY, encoder_weights="imagenet"), r"input_shape=\(224, 224, 3\)"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
