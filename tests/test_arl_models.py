"""The eight classifiers of the ARL paper: sizes (Table III), ImageNet transfer, harness."""

import keras
import numpy as np
import pytest

from zoo.arl_cnn import models as arl_cnn
from zoo.arl_cnn.models import PAPER_PARAMS
from zoo.common import resnet

FULL_SIZE_BUILDERS = {
    "resnet14": arl_cnn.build_resnet14,
    "ran14": arl_cnn.build_ran14,
    "senet14": arl_cnn.build_senet14,
    "arl_cnn14": arl_cnn.build_arl_cnn14,
    "resnet50": arl_cnn.build_resnet50,
    "ran50": arl_cnn.build_ran50,
    "senet50": arl_cnn.build_senet50,
    "arl_cnn50": arl_cnn.build_arl_cnn50,
}
# Table II's own SEnet14 / RAN14 layouts, which miss Table III's counts (see zoo.arl_cnn.models).
TABLE_II_LAYOUTS = {
    "senet14": lambda: arl_cnn.build_senet14(ratio=16),
    "ran14": lambda: arl_cnn.build_ran14(attention_stages=(2, 3, 4, 5)),
}
TINY = (32, 32, 3)


@pytest.fixture(scope="module")
def param_counts():
    """Parameters of every model at 224x224x3 and 2 classes, counted as Table III does."""
    from zoo.params import count_parameters

    counts = {name: count_parameters(build()).pytorch_style for name, build in FULL_SIZE_BUILDERS.items()}
    counts.update(
        {
            f"{name} (Table II layout)": count_parameters(build()).pytorch_style
            for name, build in TABLE_II_LAYOUTS.items()
        }
    )
    print("\nmodel                 ours (1e7)  paper (1e7)")
    for name, count in counts.items():
        print(f"{name:20s}  {count / 1e7:9.3f}  {PAPER_PARAMS[name.split()[0]] / 1e7:10.1f}")
    return counts


@pytest.mark.parametrize("name", sorted(FULL_SIZE_BUILDERS))
def test_default_parameter_count_within_ten_percent_of_table_iii(param_counts, name):
    """Issue 14: the defaults are the models Table III's counts identify."""
    paper = PAPER_PARAMS[name]
    assert abs(param_counts[name] - paper) <= 0.1 * paper, (name, param_counts[name], paper)


def test_table_ii_layouts_miss_table_iii_as_documented(param_counts):
    assert param_counts["senet14 (Table II layout)"] < 0.9 * PAPER_PARAMS["senet14"]
    assert param_counts["ran14 (Table II layout)"] > 4 * PAPER_PARAMS["ran14"]


def test_arl_adds_one_alpha_per_block_and_nothing_else(param_counts):
    assert param_counts["arl_cnn14"] - param_counts["resnet14"] == 4
    assert param_counts["arl_cnn50"] - param_counts["resnet50"] == 3 + 4 + 6 + 3


def test_se_adds_two_fc_layers_per_block(param_counts):
    # r on C = 256, 512, 1024, 2048: C*C/r * 2 weights + C/r + C biases each.
    for name, r in (("senet14", arl_cnn.SENET14_RATIO), ("senet14 (Table II layout)", 16)):
        expected = sum(2 * c * c // r + c // r + c for c in (256, 512, 1024, 2048))
        assert param_counts[name] - param_counts["resnet14"] == expected


def test_resnet50_matches_torchvision_count(param_counts):
    assert param_counts["resnet50"] == 23_512_130  # torchvision resnet50 with a 2-class head


# ------------------------------------------------------------ ImageNet weight transfer
@pytest.fixture(scope="module")
def random_keras_resnet50():
    """keras.applications ResNet50 (no top) with random weights and BN statistics."""
    model = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(64, 64, 3))
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape),
                    rng.normal(0, 0.1, beta.shape),
                    rng.normal(0, 0.1, mean.shape),
                    rng.uniform(0.5, 2, var.shape),
                ]
            )
    return model


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(5).random((2, 64, 64, 3), dtype=np.float32)


def _backbone(model):
    return keras.Model(model.input, model.get_layer("conv5_block3_out").output)


def test_arl_cnn50_with_zero_alpha_equals_transferred_resnet50(random_keras_resnet50, images):
    model = arl_cnn.build_arl_cnn50(input_shape=(64, 64, 3), alpha_initial=0.0)
    copied = resnet.transfer_resnet_weights(random_keras_resnet50, model)
    assert len(copied) == 106  # 53 convolutions + 53 batch norms
    expected = np.asarray(random_keras_resnet50(images, training=False))
    np.testing.assert_array_equal(np.asarray(_backbone(model)(images, training=False)), expected)


def test_local_keras_weights_file_loads_like_imagenet(random_keras_resnet50, images, tmp_path):
    path = tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    random_keras_resnet50.save(path)  # legacy HDF5, the layout of keras' download
    model = arl_cnn.build_resnet50(input_shape=(64, 64, 3), encoder_weights=str(path))
    np.testing.assert_allclose(
        np.asarray(_backbone(model)(images, training=False)),
        np.asarray(random_keras_resnet50(images, training=False)),
        rtol=1e-6,
        atol=1e-6,
    )


def test_failed_imagenet_download_explains_the_local_path_remedy(monkeypatch):
    from keras.src.utils import file_utils

    def unreachable(*args, **kwargs):
        raise OSError("URL fetch failure: network is unreachable")

    monkeypatch.setattr(file_utils, "get_file", unreachable)
    with pytest.raises(RuntimeError, match="pass its local path as encoder_weights="):
        arl_cnn.build_arl_cnn50(input_shape=(64, 64, 3), encoder_weights="imagenet")


@pytest.mark.parametrize(
    "build,kwargs,message",
    [
        (arl_cnn.build_arl_cnn50, {"encoder_weights": "imagenet21k"}, "encoder_weights must be None, 'imagenet'"),
        (arl_cnn.build_arl_cnn50, {"encoder_weights": "/no/such/file.h5"}, "encoder_weights='/no/such/file.h5'"),
        (arl_cnn.build_arl_cnn14, {"encoder_weights": "imagenet"}, "arl_cnn14 has no pretrained encoder"),
        (arl_cnn.build_resnet50, {"weights": "resnet50_notop.h5"}, "must be a Keras .weights.h5 or .keras file"),
        (arl_cnn.build_resnet14, {"return_attention": True}, "resnet14 has no attention maps"),
        (arl_cnn.build_resnet14, {"classes": 0}, "classes must be a positive int"),
        (arl_cnn.build_senet14, {"input_shape": (32, 32)}, "input_shape must be"),
    ],
)
def test_arguments_are_validated_before_building(build, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build(**{"input_shape": TINY, **kwargs})


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="attention must be one of"):
        arl_cnn.build_arl_cnn14(input_shape=TINY, attention="softmax")
    with pytest.raises(ValueError, match="attention_stages"):
        arl_cnn.build_ran14(input_shape=TINY, attention_stages=(1,))
    with pytest.raises(ValueError, match="output_stride"):
        resnet.resnet_features(keras.Input(TINY), output_stride=4)


# ------------------------------------------------------------ ARL-specific behaviour
def test_attention_maps_are_outputs_and_spatial_masks_sum_to_one():
    model = arl_cnn.build_arl_cnn14(input_shape=TINY, return_attention=True)
    outputs = model(np.random.default_rng(0).random((2, *TINY), dtype=np.float32))
    masks = {k: np.asarray(v) for k, v in outputs.items() if k != "probabilities"}
    assert sorted(masks) == [f"conv{s}_block1_attention_mask" for s in (2, 3, 4, 5)]
    assert masks["conv2_block1_attention_mask"].shape == (2, 8, 8, 256)
    for mask in masks.values():
        np.testing.assert_allclose(mask.sum(axis=(1, 2)), 1.0, rtol=1e-4)


def test_senet_returns_every_se_blocks_excitation_vector():
    """Hu et al. eq. 2-3: s = sigmoid(W2 relu(W1 GAP(u) + b1) + b2), one (batch, C) vector
    per block, the tensor the block scales its residual branch with."""
    model = arl_cnn.build_senet14(input_shape=TINY, return_attention=True)
    image = np.random.default_rng(1).random((2, *TINY), dtype=np.float32)
    outputs = model(image, training=False)
    maps = {name: value for name, value in outputs.items() if name != "probabilities"}
    assert {name: tuple(value.shape) for name, value in maps.items()} == {
        f"conv{stage}_block1_se": (2, channels)
        for stage, channels in zip((2, 3, 4, 5), (256, 512, 1024, 2048), strict=True)
    }
    layer = model.get_layer("conv3_block1_se")
    assert model.output["conv3_block1_se"] is layer.output[1]  # returned, not recomputed
    residual = np.asarray(keras.Model(model.input, layer.input)(image, training=False))
    squeeze, squeeze_bias, excite, excite_bias = (np.asarray(w) for w in layer.weights)
    hidden = np.maximum(residual.mean(axis=(1, 2)) @ squeeze + squeeze_bias, 0.0)
    expected = 1.0 / (1.0 + np.exp(-(hidden @ excite + excite_bias)))
    np.testing.assert_allclose(np.asarray(maps["conv3_block1_se"]), expected, rtol=1e-5, atol=1e-6)


def test_checkpoint_of_the_plain_model_loads_into_the_attention_build(tmp_path):
    """A whole-model checkpoint through ``weights=``: the plain ARL-CNN14 the recipe trains
    loads into the build that returns its masks, with the same probabilities."""
    plain = arl_cnn.build_arl_cnn14(input_shape=TINY)
    for variable in plain.trainable_variables:
        variable.assign(variable * 1.5 + 0.01)
    path = tmp_path / "arl_cnn14.weights.h5"
    plain.save_weights(path)
    restored = arl_cnn.build_arl_cnn14(input_shape=TINY, weights=path, return_attention=True)
    image = np.random.default_rng(2).random((2, *TINY), dtype=np.float32)
    np.testing.assert_array_equal(
        np.asarray(restored(image, training=False)["probabilities"]), np.asarray(plain(image, training=False))
    )
    with pytest.raises(ValueError, match=r"'conv2_block1_se' \(SqueezeExcitation\) has no weights in the file"):
        arl_cnn.build_senet14(input_shape=TINY, weights=path)


def test_output_stride_8_dilates_instead_of_striding():
    inputs = keras.Input((64, 64, 3))
    features = resnet.resnet_features(inputs, resnet.RESNET50_BLOCKS, output_stride=8)
    assert [tuple(f.shape[1:3]) for f in features] == [(32, 32), (16, 16), (8, 8), (8, 8), (8, 8)]
    model = keras.Model(inputs, features[-1])
    assert model.get_layer("conv4_block2_2_conv").dilation_rate == (2, 2)
    assert model.get_layer("conv5_block1_2_conv").dilation_rate == (4, 4)
    assert model.count_params() == 23_587_712  # keras ResNet50 no-top: same weights


def test_arl_cnn14_exports_a_saved_model_with_its_attention_maps(tmp_path):
    """TF Serving path: uint8 images in, probabilities and ARL masks out."""
    import tensorflow as tf

    from data_tools.preprocess import InputSpec, preprocess_images
    from zoo.export import export_saved_model

    model = arl_cnn.build_arl_cnn14(input_shape=TINY, return_attention=True)
    spec = InputSpec(image_size=TINY[:2])
    path = export_saved_model(model, tmp_path / "arl_cnn14" / "1", input_spec=spec, accept_encoded=False)
    images = np.random.default_rng(2).integers(0, 256, (2, 40, 30, 3), dtype=np.uint8)
    served = tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(images))
    expected = model(preprocess_images(tf.constant(images), spec), training=False)
    assert set(served) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(served[name].numpy(), np.asarray(value), rtol=1e-5, atol=1e-6)
