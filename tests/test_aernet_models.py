"""AER-Net paper models: U-Net, Attention U-Net, Attention Residual U-Net, AER-Net."""

import keras
import numpy as np
import pytest

from tests import model_checks
from zoo.aernet import build_attention_residual_unet, build_attention_unet, build_unet
from zoo.aernet.models import AERNET_INPUT, AERNET_SKIPS, aernet_encoder, build_aernet
from zoo.common import encoders
from zoo.common.attention_gate import AttentionGate
from zoo.common.blocks import residual_block

SIZE = 64  # AER-Net's smallest input (divisible by 64)
UNET_DEPTH = 2
TINY_UNET = dict(input_shape=(16, 16, 3), base_filters=2, depth=UNET_DEPTH)
UNET_BUILDERS = {
    "unet": build_unet,
    "attention_unet": build_attention_unet,
    "attention_residual_unet": build_attention_residual_unet,
}


@pytest.fixture(scope="module")
def unets():
    return {name: builder(**TINY_UNET) for name, builder in UNET_BUILDERS.items()}


@pytest.fixture(scope="module")
def reference_b1_weights(tmp_path_factory):
    """A randomly initialised, perturbed keras.applications EfficientNetB1 and its weights file."""
    reference = keras.applications.EfficientNetB1(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    rng = np.random.default_rng(0)
    reference.set_weights(
        [w * rng.uniform(0.9, 1.1, size=np.shape(w)).astype(np.float32) for w in reference.get_weights()]
    )
    path = tmp_path_factory.mktemp("weights") / "efficientnetb1_notop.weights.h5"
    reference.save_weights(path)
    # Reload: Normalization layers refresh their cached statistics only on load.
    reference.load_weights(path)
    return reference, path


@pytest.fixture(scope="module")
def aernet(reference_b1_weights):
    """AER-Net whose encoder weights come through ``encoder_weights=<file>``, the ImageNet path."""
    return build_aernet((SIZE, SIZE, 3), encoder_weights=reference_b1_weights[1])


def _conv_params(filters_in, filters_out, kernel, bias):
    return kernel * kernel * filters_in * filters_out + (filters_out if bias else 0)


def _double_conv_params(filters_in, filters):
    # two conv (no bias) + BN (4 params per channel)
    return (
        _conv_params(filters_in, filters, 3, False)
        + 4 * filters
        + _conv_params(filters, filters, 3, False)
        + 4 * filters
    )


def test_unet_parameter_count_matches_hand_count(unets):
    """Ronneberger's layout, counted by hand: encoder levels, bottleneck, decoder, head."""
    base, depth = TINY_UNET["base_filters"], UNET_DEPTH
    widths = [base * 2**level for level in range(depth + 1)]
    want = 0
    channels_in = 3
    for width in widths:  # encoder levels and bottleneck
        want += _double_conv_params(channels_in, width)
        channels_in = width
    for width in widths[-2::-1]:  # decoder: up-conv (2x2, bias) then double conv over concat
        want += _conv_params(channels_in, width, 2, True)
        want += _double_conv_params(2 * width, width)
        channels_in = width
    want += _conv_params(channels_in, 1, 1, True)  # head
    counts = {name: model.count_params() for name, model in unets.items()}
    print("parameter counts (base_filters=2, depth=2):", counts)
    print("at the paper size (256x256x3):", {name: builder().count_params() for name, builder in UNET_BUILDERS.items()})
    assert counts["unet"] == want


def test_attention_variants_add_one_gate_and_gating_per_level(unets):
    for name in ("attention_unet", "attention_residual_unet"):
        gates = [layer for layer in unets[name].layers if isinstance(layer, AttentionGate)]
        assert len(gates) == UNET_DEPTH, name
    residual_adds = [layer for layer in unets["attention_residual_unet"].layers if isinstance(layer, keras.layers.Add)]
    assert len(residual_adds) == UNET_DEPTH


def test_residual_block_is_conv_path_plus_projected_shortcut():
    """Fig. 4 computed by hand from the block's own layers."""
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, residual_block(inputs, 5, name="res"))
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)

    def sub(name, value):
        return np.asarray(model.get_layer(name)(value, training=False))

    path = sub("res_1_relu", sub("res_1_bn", sub("res_1_conv", x)))
    path = sub("res_2_relu", sub("res_2_bn", sub("res_2_conv", path)))
    shortcut = sub("res_shortcut_bn", sub("res_shortcut_conv", x))
    np.testing.assert_allclose(np.asarray(model(x, training=False)), path + shortcut, rtol=1e-5, atol=1e-5)


def test_aernet_shapes_skips_and_parameter_counts(aernet, reference_b1_weights):
    assert aernet.output.shape == (None, SIZE, SIZE, 1)
    assert aernet.get_layer("mask").dtype_policy.compute_dtype == "float32"
    strides = [SIZE // aernet.get_layer(tap).output.shape[1] for tap in AERNET_SKIPS]
    assert strides == [32, 16, 8, 4, 2]
    reference, _ = reference_b1_weights
    reference_taps = keras.Model(reference.input, [reference.get_layer(tap).output for tap in AERNET_SKIPS])
    encoder = aernet_encoder(aernet)
    print(
        "AER-Net parameters at 64x64:",
        aernet.count_params(),
        "encoder:",
        encoder.count_params(),
        "EfficientNetB1 up to block7a_expand_activation:",
        reference_taps.count_params(),
        "whole EfficientNetB1 (no top):",
        reference.count_params(),
    )
    assert encoder.count_params() == reference_taps.count_params()


def test_aernet_paper_decoder_skips_every_level_and_halves_the_channels(aernet):
    """Section 3.2: each decoder level halves the channels and concatenates the
    corresponding encoder map behind an attention gate (1/32 ... 1/2)."""
    widths = [aernet.get_layer(f"decoder{level}_up_transpose").output.shape[-1] for level in range(1, 7)]
    assert widths == [256, 128, 64, 32, 16, 8]
    gated = [layer.name for layer in aernet.layers if layer.name.endswith("_attention")]
    assert gated == [f"decoder{level}_attention" for level in range(1, 6)]
    assert aernet.get_layer("decoder5_attention").input[0].shape[1] == SIZE // 2


def test_aernet_authors_decoder_and_attention_maps_are_outputs():
    model = build_aernet(
        (SIZE, SIZE, 3),
        decoder="authors",
        return_attention=True,
        attention_activation="relu",
        upsampling="nearest",
        head_batch_norm=True,
    )
    outputs = model(np.random.default_rng(0).random((1, SIZE, SIZE, 3), dtype=np.float32))
    assert sorted(outputs) == ["attention_1", "attention_2", "attention_3", "attention_4", "mask"]
    assert [outputs[f"attention_{level}"].shape[1] for level in range(1, 5)] == [2, 4, 8, 16]
    assert float(np.min(outputs["attention_1"])) >= 0.0  # ReLU maps
    assert model.get_layer("head_bn") is not None
    assert model.get_layer("deepest_skip_relu") is not None
    assert isinstance(model.get_layer("decoder1_attention").phi_up, keras.layers.Conv2DTranspose)
    assert model.get_layer("decoder1_attention").inter_channels == 256  # the level's full width
    with pytest.raises(ValueError, match="decoder must be one of"):
        build_aernet((SIZE, SIZE, 3), decoder="code")


def test_aernet_encoder_equals_efficientnetb1_with_transferred_weights(aernet, reference_b1_weights, monkeypatch):
    """A keras.applications EfficientNetB1 weights file loads into AER-Net's encoder, which
    is the network keras.applications builds when it downloads ImageNet weights (its stem
    has the extra ``Rescaling(1/sqrt(var))``): here the "download" hands back the file."""
    from keras.src.utils import file_utils

    _, path = reference_b1_weights
    monkeypatch.setattr(file_utils, "get_file", lambda *args, **kwargs: str(path))
    reference = keras.applications.EfficientNetB1(include_top=False, weights="imagenet", input_shape=(SIZE, SIZE, 3))
    image = np.random.default_rng(1).random((2, SIZE, SIZE, 3), dtype=np.float32)
    reference_taps = keras.Model(reference.input, [reference.get_layer(tap).output for tap in AERNET_SKIPS])
    want = reference_taps(image * 255.0, training=False)  # EfficientNet expects 0-255
    got = aernet_encoder(aernet)(image, training=False)
    for tap, expected, actual in zip(AERNET_SKIPS, want, got, strict=True):
        np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-4, atol=1e-5, err_msg=tap)


def test_imagenet_download_failure_suggests_a_local_file(monkeypatch, tmp_path):
    """The real keras download code, pointed at a closed local port, fails clearly."""
    from keras.src.utils import file_utils

    real_get_file = file_utils.get_file

    def offline_get_file(fname, origin, **kwargs):
        kwargs["cache_dir"] = str(tmp_path)
        return real_get_file(fname, "http://127.0.0.1:9/" + fname, **kwargs)

    monkeypatch.setattr(file_utils, "get_file", offline_get_file)
    with pytest.raises(encoders.WeightsUnavailableError, match=r"encoder_weights='/path/to/efficientnetb1"):
        build_aernet((SIZE, SIZE, 3), encoder_weights="imagenet")


@pytest.mark.parametrize(
    "builder, kwargs, message",
    [
        (build_aernet, dict(input_shape=(96, 96, 3)), "divisible by 64"),
        (build_aernet, dict(encoder_weights="imagenet", input_shape=(64, 64, 1)), "need 3 input channels"),
        (build_aernet, dict(encoder_weights="no/such/file.h5"), "encoder_weights='no/such/file.h5': no such file"),
        (build_aernet, dict(encoder_weights=3), "encoder_weights must be None, 'imagenet'"),
        (build_aernet, dict(weights="no/such/aernet.weights.h5"), "weights='no/such/aernet.weights.h5': no such file"),
        (build_aernet, dict(weights="efficientnetb1_notop.h5"), "must be a Keras .weights.h5 or .keras file"),
        (build_aernet, dict(head_batch_norm="yes"), "head_batch_norm must be True or False"),
        (build_aernet, dict(return_attention=1), "return_attention must be True or False"),
        (build_aernet, dict(attention_activation="tanh"), "attention_activation must be one of"),
        (build_aernet, dict(upsampling="cubic"), "upsampling must be one of"),
        (build_unet, dict(input_shape=(72, 72, 3)), "divisible by 16"),
        (build_attention_unet, dict(input_shape=(64, 64, 3), depth=0), "depth"),
        (build_unet, dict(input_shape=(64, 64)), "input_shape must be"),
        (build_unet, dict(classes=0), "classes must be a positive int"),
        (build_unet, dict(encoder_weights="imagenet"), "unet has no pretrained encoder"),
        (build_unet, dict(return_attention=True), "unet has no attention maps"),
        (build_unet, dict(base_filters=0), "base_filters"),
    ],
)
def test_bad_arguments_fail_early_with_a_named_argument(builder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        builder(**kwargs)


def test_attention_unet_checkpoint_round_trip_through_weights(unets, tmp_path):
    """A whole-model checkpoint (``model.save``) loads through ``weights=``, also into
    the build that returns the attention maps."""
    trained = unets["attention_unet"]
    image = model_checks.random_inputs(trained)
    for variable in trained.trainable_variables:  # away from the initialisation
        variable.assign(variable + 0.01)
    path = tmp_path / "attention_unet.keras"
    trained.save(path)
    restored = build_attention_unet(**TINY_UNET, weights=path, return_attention=True)
    np.testing.assert_array_equal(np.asarray(restored(image)["mask"]), np.asarray(trained(image)))
    with pytest.raises(ValueError, match=r"attention_unet.keras' is not a checkpoint of model 'unet'"):
        build_unet(**TINY_UNET, weights=path)


def test_input_spec_is_the_papers():
    assert AERNET_INPUT.image_size == (256, 256)
    assert (AERNET_INPUT.colour, AERNET_INPUT.scale) == ("lab", "unit")


@pytest.mark.parametrize("backbone", ["efficientnetb0", "resnet50", "mobilenetv2"])
def test_encoder_taps_sit_at_strides_2_to_32(backbone):
    inputs = keras.Input((SIZE, SIZE, 3))
    taps = encoders.build_encoder(backbone, inputs)
    assert [SIZE // tap.shape[1] for tap in taps] == list(encoders.TAP_STRIDES)


@pytest.mark.slow
@pytest.mark.parametrize("backbone", sorted(encoders.ENCODERS))
def test_every_encoder_tap_exists_at_its_stride(backbone):
    inputs = keras.Input((SIZE, SIZE, 3))
    taps = encoders.build_encoder(backbone, inputs)
    assert [SIZE // tap.shape[1] for tap in taps] == list(encoders.TAP_STRIDES)


def test_aernet_scales_unit_input_to_0_255_for_efficientnet(aernet):
    scaling = aernet.get_layer("encoder_input_scaling")
    np.testing.assert_allclose(np.asarray(scaling(np.full((1, 2, 2, 3), 0.5, np.float32))), 127.5)


def test_table1_backbones_are_in_segmentation_models():
    from zoo.aernet.encoder_sweep import TABLE1_BACKBONES, sm_backbones

    assert set(TABLE1_BACKBONES.values()) <= set(sm_backbones())


def test_sm_unet_builds_and_rejects_unknown_backbones():
    from zoo.aernet.encoder_sweep import build_sm_unet

    model = build_sm_unet((SIZE, SIZE, 3), backbone="efficientnetb0")
    assert model.output.shape == (None, SIZE, SIZE, 1)
    with pytest.raises(ValueError, match="backbone must be one of"):
        build_sm_unet((SIZE, SIZE, 3), backbone="efficientnetb9")
    with pytest.raises(ValueError, match="divisible by 32"):
        build_sm_unet((48, 48, 3), backbone="efficientnetb0")
    with pytest.raises(ValueError, match="encoder_weights must be one of"):
        build_sm_unet((SIZE, SIZE, 3), backbone="efficientnetb0", encoder_weights="efficientnetb0.h5")


@pytest.mark.parametrize("backbone", ["efficientnetb1", "seresnext101", "vgg16", "resnet34"])
def test_sm_encoders_get_the_scaling_their_imagenet_weights_expect(backbone):
    """Issue 15: Table 1's encoders see the CIELAB input scaled as their ImageNet
    preprocessing asks (segmentation_models' own function on 0-255), like AER-Net's."""
    from zoo.aernet.encoder_sweep import _segmentation_models, sm_input_scaling

    x = np.random.default_rng(0).random((2, 4, 4, 3), dtype=np.float32)
    layer = sm_input_scaling(backbone)
    expected = _segmentation_models().get_preprocessing(backbone)(255.0 * x)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5, atol=1e-4)
