"""A-PSPNet, PSPNet, DeepLabv3 and DANet builders, and the MAC counter of Table II.

Builders are checked at 64x64 on the ResNet14 backbone (one block per stage: the
same code path as ResNet50, a fraction of the compile time); the checks every model
gets (forward, gradients, .keras, SavedModel, mixed precision, XLA) are in
tests/test_registry_harness.py.
"""

import keras
import numpy as np
import pytest

from tests.model_checks import random_inputs
from zoo.apspnet.models import (
    APSPNET_CLASSES,
    build_apspnet,
    build_attention_resnet,
    build_attention_resnet50,
    build_danet,
    build_deeplabv3,
    build_pspnet,
)
from zoo.common import segmentation_heads as heads
from zoo.flops import count_flops

SIZE = 64
SHAPE = (SIZE, SIZE, 3)
BUILDERS = {
    "apspnet": lambda: build_apspnet(SHAPE, backbone="resnet14", return_attention=True),
    "pspnet": lambda: build_pspnet(SHAPE, backbone="resnet14"),
    # Output stride 16 (4x4 features): the other builders cover stride 8.
    "deeplabv3": lambda: build_deeplabv3(SHAPE, backbone="resnet14", output_stride=16),
    "danet": lambda: build_danet(SHAPE, backbone="resnet14"),
}
# CBAM of eq. 3-4 with r = 16 on conv1 (64 channels) and conv5 (2048 channels).
CBAM_PARAMETERS = (2 * 64 * 4 + 7 * 7 * 2) + (2 * 2048 * 128 + 7 * 7 * 2)


def trainable(model: keras.Model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.fixture(scope="module")
def models():
    """Each builder's model, built once for the module on first use."""
    built = {}

    def get(name: str) -> keras.Model:
        if name not in built:
            built[name] = BUILDERS[name]()
        return built[name]

    return get


def _mask(outputs):
    return outputs["mask"] if isinstance(outputs, dict) else outputs


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_builder_gives_a_softmax_over_the_papers_classes(models, name):
    model = models(name)
    assert tuple(_mask(model.output).shape) == (None, SIZE, SIZE, len(APSPNET_CLASSES))
    probabilities = np.asarray(_mask(model(random_inputs(model), training=False)))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)


def test_apspnet_is_pspnet_plus_two_cbams_on_an_untouched_resnet(models):
    psp, apsp = models("pspnet"), models("apspnet")
    assert trainable(apsp) - trainable(psp) == CBAM_PARAMETERS
    for layer in psp.layers:
        twin = apsp.get_layer(layer.name)
        assert [w.shape for w in twin.weights] == [w.shape for w in layer.weights], layer.name
    start = apsp.get_layer("cbam_start_channel")
    assert start.input.shape[-1] == 64 and apsp.get_layer("conv1_relu").output is start.input
    # eq. 5: the start CBAM sits between the stem and the pooling (the after_stem hook).
    assert apsp.get_layer("pool1_pad").input is apsp.get_layer("cbam_start_spatial_mul").output
    maps = {k: tuple(v.shape) for k, v in apsp.output.items() if k != "mask"}
    assert maps == {
        "cbam_start_channel": (None, 1, 1, 64),
        "cbam_start_spatial": (None, SIZE // 2, SIZE // 2, 1),
        "cbam_end_channel": (None, 1, 1, 2048),
        "cbam_end_spatial": (None, SIZE // 8, SIZE // 8, 1),
    }


@pytest.mark.parametrize(
    "order, units", [("spatial", ["spatial"]), ("channel", ["channel"]), ("spatial_channel", ["spatial", "channel"])]
)
def test_cbam_order_selects_the_table_1_units(order, units):
    model = build_attention_resnet(SHAPE, 2, backbone="resnet14", cbam_order=order)
    names = [
        layer.name for layer in model.layers if layer.name.startswith("cbam_end_") and not layer.name.endswith("_mul")
    ]
    assert names == [f"cbam_end_{unit}" for unit in units]


def test_imagenet_style_weights_load_by_layer_name(tmp_path):
    reference = keras.applications.ResNet50(include_top=False, weights=None, input_shape=SHAPE)
    path = tmp_path / "resnet50_notop.h5"
    reference.save(path)  # an .h5 file as keras.applications reads it (by layer name)
    model = build_apspnet(SHAPE, encoder_weights=path)
    for name in ("conv1_conv", "conv4_block6_2_conv", "conv5_block3_3_bn"):
        for ours, theirs in zip(model.get_layer(name).weights, reference.get_layer(name).weights, strict=True):
            np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"classes": 0}, "classes must be a positive int"),
        ({"backbone": "resnet18"}, "backbone must be one of"),
        ({"input_shape": (40, 64, 3)}, "too small"),
        ({"input_shape": (64, 64)}, "input_shape must be"),
        (
            {"encoder_weights": "/no/such/file.h5", "backbone": "resnet50"},
            "encoder_weights='/no/such/file.h5': no such file",
        ),
        ({"weights": "/no/such/file.weights.h5"}, "weights='/no/such/file.weights.h5': no such file"),
        ({"weights": "resnet50_notop.h5"}, "must be a Keras .weights.h5 or .keras file"),
        ({"encoder_weights": "imagenet", "backbone": "resnet14"}, "no pretrained encoder"),
        ({"encoder_weights": "imagenet", "backbone": "resnet50", "input_shape": (64, 64, 1)}, "need 3 input channels"),
        ({"return_attention": "yes"}, "return_attention must be True or False"),
        ({"cbam_order": "parallel"}, "cbam_order must be one of"),
    ],
)
def test_builders_reject_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_apspnet(**{"input_shape": SHAPE, "backbone": "resnet14", **kwargs})


@pytest.mark.parametrize(
    "builder, kwargs, message",
    [
        (build_danet, {"backbone": "vgg16"}, "backbone must be one of"),
        (build_pspnet, {"return_attention": True}, "pspnet has no attention maps"),
        (build_deeplabv3, {"return_attention": True}, "deeplabv3 has no attention maps"),
        (build_attention_resnet, {"backbone": "resnet18"}, "backbone must be one of"),
    ],
)
def test_baselines_reject_bad_arguments(builder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        builder(SHAPE, **{"backbone": "resnet14", **kwargs})


def test_danet_returns_its_position_and_channel_attention_from_a_checkpoint(models, tmp_path):
    """Fu et al. eq. 1 and 3: the maps are the softmaxes the modules compute (rows sum
    to one), returned without recomputation; a checkpoint of the plain DANet loads
    through ``weights=`` into the build that returns them."""
    plain = models("danet")
    for layer in ("danet_pam", "danet_cam"):  # alpha, beta = 0.3: the attention matters
        plain.get_layer(layer).weights[-1].assign(0.3)
    path = tmp_path / "danet.weights.h5"
    plain.save_weights(path)
    model = build_danet(SHAPE, backbone="resnet14", weights=path, return_attention=True)
    inputs = random_inputs(model)
    outputs = model(inputs, training=False)
    np.testing.assert_array_equal(np.asarray(outputs["mask"]), np.asarray(plain(inputs, training=False)))
    features = SIZE // 8
    assert sorted(outputs) == ["channel_attention", "mask", "position_attention"]
    assert outputs["position_attention"].shape == (2, features**2, features**2)
    assert outputs["channel_attention"].shape == (2, 512, 512)  # 2048 / 4 head channels
    for name in ("position_attention", "channel_attention"):
        np.testing.assert_allclose(np.asarray(outputs[name]).sum(axis=-1), 1.0, rtol=1e-5)
    assert model.get_layer("danet_pam").output[1] is model.output["position_attention"]
    with pytest.raises(ValueError, match=r"danet.weights.h5' is not a checkpoint of model 'pspnet'"):
        build_pspnet(SHAPE, backbone="resnet14", weights=path)


def test_attention_resnet_returns_the_cbam_maps():
    """Eq. 5: the start CBAM on conv1 (stride 2), the end CBAM on conv5 (stride 32)."""
    model = build_attention_resnet(SHAPE, 2, backbone="resnet14", return_attention=True)
    maps = {name: tuple(tensor.shape) for name, tensor in model.output.items() if name != "probabilities"}
    assert maps == {
        "cbam_start_channel": (None, 1, 1, 64),
        "cbam_start_spatial": (None, SIZE // 2, SIZE // 2, 1),
        "cbam_end_channel": (None, 1, 1, 2048),
        "cbam_end_spatial": (None, SIZE // 32, SIZE // 32, 1),
    }
    assert model.output["cbam_end_spatial"] is model.get_layer("cbam_end_spatial").output
    assert build_attention_resnet50((SIZE, SIZE, 3), 2).name == "attention_resnet50"


def test_deeplabv3_output_stride_sets_the_atrous_rates(models):
    model = models("deeplabv3")  # output stride 16: 4x4 features
    rates = {
        layer.name: layer.dilation_rate[0]
        for layer in model.layers
        if layer.name.startswith("aspp_rate") and layer.name.endswith("_conv")
    }
    # Nominal rates 6, 12, 18; those beyond the 4x4 map only see padding off-centre.
    assert rates == {"aspp_rate6_conv": 4, "aspp_rate12_conv": 4, "aspp_rate18_conv": 4}
    with pytest.raises(ValueError, match="output_stride"):
        build_deeplabv3(SHAPE, backbone="resnet14", output_stride=32)


def test_capped_atrous_rate_gives_the_same_output():
    x = np.random.default_rng(1).random((1, 5, 4, 3), dtype=np.float32)
    wide = keras.layers.Conv2D(2, 3, padding="same", dilation_rate=12)
    capped = keras.layers.Conv2D(2, 3, padding="same", dilation_rate=5)
    wide.build(x.shape)
    capped.build(x.shape)
    capped.set_weights(wide.get_weights())
    np.testing.assert_allclose(np.asarray(capped(x)), np.asarray(wide(x)), rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(wide(x)), np.asarray(keras.ops.conv(x, wide.kernel[1:2, 1:2]) + wide.bias), rtol=1e-5
    )  # centre tap only


def _conv_bn(cin: int, cout: int, kernel: int) -> int:
    """Parameters of zoo.common.resnet.conv_bn: conv with bias, BN (4 per channel)."""
    return kernel * kernel * cin * cout + cout + 4 * cout


def test_pyramid_pooling_and_deeplabv3plus_decoder_shapes_and_parameters():
    features = keras.Input((12, 12, 8))
    pyramid = keras.Model(features, heads.pyramid_pooling_module(features, filters=2))
    assert pyramid.output.shape == (None, 12, 12, 8 + 4 * 2)
    assert pyramid.count_params() == 4 * _conv_bn(8, 2, 1)
    x = np.random.default_rng(0).random((1, 12, 12, 8), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(pyramid(x))[..., :8], x)  # the input is kept
    low_level, high_level = keras.Input((16, 16, 8)), keras.Input((4, 4, 16))
    decoder = keras.Model([high_level, low_level], heads.deeplabv3plus_decoder(high_level, low_level))
    assert decoder.output.shape == (None, 16, 16, 256)
    assert decoder.count_params() == (_conv_bn(8, 48, 1) + _conv_bn(16 + 48, 256, 3) + _conv_bn(256, 256, 3))


# ------------------------------------------------------------------ MAC counter
def test_count_flops_matches_a_hand_count():
    inputs = keras.Input((6, 5, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)  # 6*5*4 * 3*3*2
    x = keras.layers.Conv2D(3, 1, strides=2, use_bias=False)(x)  # 3*3*3 * 4
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(7, use_bias=False)(x)  # 27 * 7
    count = count_flops(keras.Model(inputs, x))
    assert count.macs == 6 * 5 * 4 * 18 + 3 * 3 * 3 * 4 + 27 * 7
    assert count.flops_by_op == {"Conv2D": 2 * (2160 + 108), "MatMul": 2 * 189}


def test_count_flops_frozen_and_live_graphs_agree_with_a_hand_count_of_cbam():
    model = build_attention_resnet(SHAPE, 3, backbone="resnet14")
    live, frozen = count_flops(model), count_flops(model, freeze=True)
    assert live == frozen

    def macs_up_to(layer: str) -> int:
        return count_flops(keras.Model(model.input, model.get_layer(layer).output)).macs

    # Each CBAM's MACs by hand: both MLP passes and the 7x7 convolution.
    start = 2 * (2 * 64 * 4) + 98 * (SIZE // 2) ** 2
    assert macs_up_to("cbam_start_spatial_mul") - macs_up_to("conv1_relu") == start
    end, classifier = 2 * (2 * 2048 * 128) + 98 * (SIZE // 32) ** 2, 2048 * 3
    assert live.macs - macs_up_to("conv5_block1_out") == end + classifier


def test_count_flops_needs_a_known_single_input():
    with pytest.raises(ValueError, match="input shape"):
        count_flops(keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3)]))
