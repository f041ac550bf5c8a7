"""A-PSPNet, PSPNet, DeepLabv3 and DANet builders, and the MAC counter of Table II.

Builders run through the shared harness at 64x64 on the ResNet14 backbone (one
block per stage: the same code path as ResNet50, a fraction of the compile time).
"""
import keras
import numpy as np
import pytest
import tensorflow as tf

from data_tools.preprocess import InputSpec, preprocess_images
from tests.model_checks import (check_forward, check_gradients, check_keras_roundtrip,
                                 check_xla_train_step, random_inputs)
from zoo.export import export_saved_model
from zoo.flops import count_flops
from zoo.apspnet.models import (APSPNET_CLASSES, build_apspnet, build_attention_resnet,
                                build_danet, build_deeplabv3, build_pspnet)
from zoo.common import segmentation_heads as heads
from zoo.common.resnet import RESNET14_BLOCKS

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


# A-PSPNet, the paper's model, runs every check by default; the baselines' XLA step
# and export (about 45 s of CPU each) are marked slow.
FULL_CHECKS = [name if name == "apspnet" else pytest.param(name, marks=pytest.mark.slow)
               for name in sorted(BUILDERS)]


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
def test_builder_forward_gradients_and_keras_roundtrip(models, name, tmp_path):
    model = models(name)
    assert tuple(_mask(model.output).shape) == (None, SIZE, SIZE, len(APSPNET_CLASSES))
    inputs = random_inputs(model)
    check_forward(model, inputs)
    probabilities = np.asarray(_mask(model(inputs, training=False)))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    check_gradients(model, inputs)
    check_keras_roundtrip(model, inputs, tmp_path)


@pytest.mark.parametrize("name", FULL_CHECKS)
def test_builder_exports_a_saved_model(models, name, tmp_path):
    model = models(name)
    spec = InputSpec(image_size=(SIZE, SIZE), fit="pad", scale="caffe")
    path = export_saved_model(model, tmp_path / "served", input_spec=spec, accept_encoded=False)
    images = np.random.default_rng(0).integers(0, 256, (2, 40, 52, 3), dtype=np.uint8)
    served = tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(images))
    expected = _mask(model(preprocess_images(tf.constant(images), spec), training=False))
    np.testing.assert_allclose(served["mask"].numpy(), np.asarray(expected), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", FULL_CHECKS)
def test_builder_trains_a_step_with_xla(models, name):
    model = models(name)
    check_xla_train_step(model, random_inputs(model))


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
    assert maps == {"cbam_start_channel": (None, 1, 1, 64),
                    "cbam_start_spatial": (None, SIZE // 2, SIZE // 2, 1),
                    "cbam_end_channel": (None, 1, 1, 2048),
                    "cbam_end_spatial": (None, SIZE // 8, SIZE // 8, 1)}


@pytest.mark.parametrize("order, units", [("spatial", ["spatial"]), ("channel", ["channel"]),
                                          ("spatial_channel", ["spatial", "channel"])])
def test_cbam_order_selects_the_table_1_units(order, units):
    model = build_attention_resnet(RESNET14_BLOCKS, "tiny", SHAPE, classes=2, cbam_order=order)
    names = [layer.name for layer in model.layers if layer.name.startswith("cbam_end_")
             and not layer.name.endswith("_mul")]
    assert names == [f"cbam_end_{unit}" for unit in units]


def test_imagenet_style_weights_load_by_layer_name(tmp_path):
    reference = keras.applications.ResNet50(include_top=False, weights=None, input_shape=SHAPE)
    path = tmp_path / "resnet50_notop.h5"
    reference.save(path)  # an .h5 file as keras.applications reads it (by layer name)
    model = build_apspnet(SHAPE, weights=path)
    for name in ("conv1_conv", "conv4_block6_2_conv", "conv5_block3_3_bn"):
        for ours, theirs in zip(model.get_layer(name).weights, reference.get_layer(name).weights):
            np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_mixed_precision_keeps_the_softmax_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_apspnet((48, 48, 3), backbone="resnet14", classes=2)
        output = model(np.random.default_rng(0).random((1, 48, 48, 3), dtype=np.float32))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert output.dtype == "float32" and np.all(np.isfinite(np.asarray(output)))


@pytest.mark.parametrize("kwargs, message", [
    ({"classes": 0}, "classes must be a positive int"),
    ({"backbone": "resnet18"}, "backbone must be one of"),
    ({"input_shape": (40, 64, 3)}, "too small"),
    ({"input_shape": (64, 64)}, "input_shape must be"),
    ({"weights": "/no/such/file.h5"}, "weights must be None"),
    ({"weights": "imagenet", "backbone": "resnet14"}, "no ImageNet weights"),
    ({"weights": "imagenet", "backbone": "resnet50", "input_shape": (64, 64, 1)},
     "need 3 input channels"),
    ({"cbam_order": "parallel"}, "cbam_order must be one of"),
])
def test_builders_reject_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_apspnet(**{"input_shape": SHAPE, "backbone": "resnet14", **kwargs})


@pytest.mark.parametrize("kwargs, message", [
    ({"backbone": "vgg16"}, "backbone must be one of"),
])
def test_danet_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_danet(SHAPE, **{"backbone": "resnet14", **kwargs})


def test_deeplabv3_output_stride_sets_the_atrous_rates(models):
    model = models("deeplabv3")  # output stride 16: 4x4 features
    rates = {layer.name: layer.dilation_rate[0] for layer in model.layers
             if layer.name.startswith("aspp_rate") and layer.name.endswith("_conv")}
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
    np.testing.assert_allclose(np.asarray(wide(x)), np.asarray(
        keras.ops.conv(x, wide.kernel[1:2, 1:2]) + wide.bias), rtol=1e-5)  # centre tap only


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
    decoder = keras.Model([high_level, low_level],
                          heads.deeplabv3plus_decoder(high_level, low_level))
    assert decoder.output.shape == (None, 16, 16, 256)
    assert decoder.count_params() == (_conv_bn(8, 48, 1) + _conv_bn(16 + 48, 256, 3)
                                      + _conv_bn(256, 256, 3))


# ------------------------------------------------------------------ MAC counter
def test_count_flops_matches_a_hand_count():
    inputs = keras.Input((6, 5, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)   # 6*5*4 * 3*3*2
    x = keras.layers.Conv2D(3, 1, strides=2, use_bias=False)(x)             # 3*3*3 * 4
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(7, use_bias=False)(x)                            # 27 * 7
    count = count_flops(keras.Model(inputs, x))
    assert count.macs == 6 * 5 * 4 * 18 + 3 * 3 * 3 * 4 + 27 * 7
    assert count.flops_by_op == {"Conv2D": 2 * (2160 + 108), "MatMul": 2 * 189}


def test_count_flops_frozen_and_live_graphs_agree_with_a_hand_count_of_cbam():
    model = build_attention_resnet(RESNET14_BLOCKS, "tiny", SHAPE, classes=3)
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
