"""SANet Table 3 models: ResUNet, SANet, DeepLab, DANet, attribute U-Net (zoo.sanet.models)."""

import keras
import numpy as np
import pytest

from tests import model_checks
from zoo.common.encoders import encoder_spec
from zoo.sanet.layers import SuperpixelAttention
from zoo.sanet.models import build_attribute_danet, build_attribute_unet, build_deeplab, build_resunet, build_sanet

SIZE = 32
SEGMENTS = 16
# VGG16 is the keras.applications encoder with the fewest layers: the quickest to build and run.
TINY = dict(backbone="vgg16", decoder_filters=(8, 8, 8, 8, 8), sam_filters=8, max_segments=SEGMENTS)


def _inputs(batch=2, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.random((batch, SIZE, SIZE, 3), dtype=np.float32)
    blocks = rng.integers(0, SEGMENTS, (batch, 4, 4))  # 8x8-pixel superpixels
    superpixels = np.repeat(np.repeat(blocks, SIZE // 4, 1), SIZE // 4, 2)[..., None].astype(np.int32)
    return [image, superpixels]


@pytest.fixture(scope="module")
def sanet():
    return build_sanet((SIZE, SIZE, 3), **TINY)


def test_sanet_checkpoint_round_trip_through_weights(sanet, tmp_path):
    """A whole-model checkpoint loads through ``weights=``, into the build with SAM's map too."""
    for variable in sanet.trainable_variables:
        variable.assign(variable + 0.01)
    path = tmp_path / "sanet.weights.h5"
    sanet.save_weights(path)
    restored = build_sanet((SIZE, SIZE, 3), weights=path, return_attention=True, **TINY)
    inputs = _inputs(seed=4)
    np.testing.assert_array_equal(
        restored(inputs, training=False)["mask"].numpy(), sanet(inputs, training=False).numpy()
    )
    with pytest.raises(ValueError, match=r"sanet.weights.h5' is not a checkpoint of model 'resunet'"):
        build_resunet((SIZE, SIZE, 3), weights=path, backbone="vgg16", decoder_filters=TINY["decoder_filters"])


def test_sanet_output_is_constant_inside_each_superpixel_and_their_mean(sanet):
    image, superpixels = _inputs(seed=3)
    pixelwise = keras.Model(sanet.inputs, sanet.get_layer("head_sigmoid").output)
    mask, before = sanet([image, superpixels]).numpy(), pixelwise([image, superpixels]).numpy()
    assert mask.shape == (2, SIZE, SIZE, 5)
    for b in range(2):
        for label in np.unique(superpixels[b]):
            inside = superpixels[b, ..., 0] == label
            np.testing.assert_allclose(
                mask[b][inside], np.broadcast_to(before[b][inside].mean(0), mask[b][inside].shape), rtol=1e-5, atol=1e-6
            )
    assert not np.allclose(mask.sum(-1), 1.0)  # five independent sigmoids, not a softmax


def test_sanet_takes_a_coarser_superpixel_map_and_dict_inputs():
    model = build_sanet(
        (SIZE, SIZE, 3),
        superpixel_shape=(SIZE // 2, SIZE // 2, 1),
        superpixel_output=False,
        return_attention=True,
        **TINY,
    )
    image, superpixels = _inputs()
    outputs = model({"image": image, "superpixels": superpixels[:, ::2, ::2]})
    assert outputs["mask"].shape == (2, SIZE, SIZE, 5)
    assert outputs["superpixel_attention"].shape == (2, SIZE, SIZE, TINY["sam_filters"])


def test_sam_merge_concat_doubles_w_inputs(sanet):
    add = sanet.get_layer("superpixel_attention")
    concat = build_sanet((SIZE, SIZE, 3), sam_merge="concat", **TINY).get_layer("superpixel_attention")
    assert isinstance(add, SuperpixelAttention) and add.merge == "add" and concat.merge == "concat"
    filters = TINY["sam_filters"]
    assert add.count_params() == filters * filters + filters
    assert concat.count_params() == 2 * filters * filters + filters


def test_resunet_has_keras_resnet101_encoder_and_five_sigmoid_maps():
    model = build_resunet((SIZE, SIZE, 3))
    encoder = sum(
        int(np.prod(w.shape))
        for layer in model.layers
        if layer.name.startswith(("conv", "pool"))
        for w in layer.weights
    )
    assert encoder == 42_658_176  # keras.applications ResNet101, no top
    for tap in ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block23_out", "conv5_block3_out"):
        model.get_layer(tap)
    assert model.output_shape == (None, SIZE, SIZE, 5)
    assert model.get_layer("mask").activation is keras.activations.sigmoid


def _check_sigmoid_maps(model):
    output = np.asarray(model(model_checks.random_inputs(model), training=False))
    assert output.shape == (2, SIZE, SIZE, 5) and 0 < output.min() and output.max() < 1
    assert model.get_layer("mask").activation is keras.activations.sigmoid


def test_deeplab_is_aspp_at_stride16_and_decoder_at_stride4():
    model = build_deeplab((SIZE, SIZE, 3), backbone="resnet14")
    _check_sigmoid_maps(model)
    assert model.get_layer("decoder_skip_conv").input.shape[1:3] == (SIZE // 4, SIZE // 4)
    assert model.get_layer("aspp_project_conv").output.shape[1:3] == (SIZE // 16, SIZE // 16)


def test_danet_is_dual_attention_at_stride8_on_rescaled_unit_input():
    model = build_attribute_danet((SIZE, SIZE, 3), backbone="resnet14")
    _check_sigmoid_maps(model)
    assert model.get_layer("danet_pam").output[0].shape[1:3] == (SIZE // 8, SIZE // 8)
    assert model.get_layer("danet_cam").output[0].shape[1:3] == (SIZE // 8, SIZE // 8)
    # [0, 1] input reaches the ResNet scaled as the ResNet encoders of zoo.common.encoders scale it.
    image = np.random.default_rng(2).random((1, SIZE, SIZE, 3), dtype=np.float32)
    scaled = keras.Model(model.input, model.get_layer("conv1_pad").input)(image).numpy()
    spec = encoder_spec("resnet50")
    expected = image[..., ::-1] * np.array(spec.scale) + np.array(spec.offset)  # BGR, as the ImageNet ResNets
    np.testing.assert_allclose(scaled, expected, rtol=1e-6, atol=1e-4)


def test_danet_returns_its_position_and_channel_attention():
    """Fu et al. eq. 1 and 3 on the stride-8 features: (N, N) over the positions, (C, C)
    over the head's C = 2048 / 4 channels; each row a softmax."""
    model = build_attribute_danet((SIZE, SIZE, 3), backbone="resnet14", return_attention=True)
    outputs = model(model_checks.random_inputs(model), training=False)
    positions = (SIZE // 8) ** 2
    assert {name: tuple(value.shape) for name, value in outputs.items()} == {
        "mask": (2, SIZE, SIZE, 5),
        "position_attention": (2, positions, positions),
        "channel_attention": (2, 512, 512),
    }
    np.testing.assert_allclose(outputs["position_attention"].numpy().sum(-1), 1.0, rtol=1e-5)


def test_attribute_unet_is_the_shared_unet_with_sigmoids():
    model = build_attribute_unet((SIZE, SIZE, 3), base_filters=4)
    assert model.output_shape == (None, SIZE, SIZE, 5)
    assert model.get_layer("mask").activation is keras.activations.sigmoid
    model.get_layer("encoder1_1_conv")  # U-Net's own layers


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: build_sanet((48, 48, 3), **TINY), "divisible by 32"),
        (lambda: build_sanet((SIZE, SIZE, 3), **{**TINY, "sam_filters": 0}), "sam_filters"),
        (lambda: build_sanet((SIZE, SIZE, 3), sam_merge="mul", backbone="mobilenetv2"), "sam_merge"),
        (lambda: build_sanet((SIZE, SIZE, 3), superpixel_shape=(SIZE, SIZE, 2)), "superpixel_shape"),
        (lambda: build_resunet((SIZE, SIZE, 3), decoder_filters=(8, 8)), "decoder_filters"),
        (lambda: build_deeplab((SIZE, SIZE, 3), backbone="vgg16"), "backbone"),
        (
            lambda: build_attribute_danet((SIZE, SIZE, 3), encoder_weights="imagenet", backbone="resnet14"),
            "danet has no pretrained encoder",
        ),
        (
            lambda: build_resunet((SIZE, SIZE, 3), encoder_weights="no/such/resnet101_notop.h5"),
            "encoder_weights='no/such/resnet101_notop.h5': no such file",
        ),
        (
            lambda: build_deeplab((SIZE, SIZE, 3), backbone="resnet14", return_attention=True),
            "deeplab has no attention maps",
        ),
        (lambda: build_attribute_unet((SIZE, SIZE, 3), return_attention=True), "unet has no attention maps"),
    ],
)
def test_bad_arguments_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()
