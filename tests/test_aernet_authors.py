"""``build_aernet(decoder="authors")`` is the authors' network (josegpl/AER-Net, issue 25.1).

Their ``UEfficientNet`` (tf.keras), rebuilt in Keras 3 outside this repository with
EfficientNetB1 built without weights at 256x256x3, counts 22,596,239 trainable and
59,161 non-trainable parameters; with the same weights set layer by layer it gives
the zoo's outputs exactly. These tests hold the counts, the layers that make them, and
the gate against a second implementation of the code's ``attention_block``.
"""

import keras
import numpy as np
import pytest

from zoo.aernet.models import AUTHORS_DECODER_FILTERS, build_aernet
from zoo.common.attention_gate import AttentionGate

SIZE = 64


@pytest.fixture(scope="module")
def authors():
    return build_aernet((SIZE, SIZE, 3), decoder="authors")


def _count(weights) -> int:
    return sum(int(np.prod(w.shape)) for w in weights)


def test_authors_decoder_alone_has_the_authors_parameter_counts():
    model = build_aernet((256, 256, 3), decoder="authors")
    assert (_count(model.trainable_weights), _count(model.non_trainable_weights)) == (22_596_239, 59_161)


def test_authors_gates_put_a_3x3_stride_1_transposed_conv_after_phi_and_upsample_alpha_by_nearest(authors):
    gates = [layer for layer in authors.layers if isinstance(layer, AttentionGate)]
    assert [gate.name for gate in gates] == [f"decoder{level}_attention" for level in range(1, 5)]
    for gate, filters in zip(gates, AUTHORS_DECODER_FILTERS[: len(gates)], strict=True):
        assert (gate.variant, gate.attention_activation, gate.inter_channels) == ("aernet_code", "relu", filters)
        assert isinstance(gate.phi_up, keras.layers.Conv2DTranspose)
        assert (gate.phi_up.kernel_size, gate.phi_up.strides) == ((3, 3), (1, 1))
        assert gate.theta.use_bias  # Keras' default in their code
    gating = authors.get_layer("decoder1_gating_conv")
    assert (gating.kernel_size, gating.use_bias) == ((1, 1), True)
    assert isinstance(authors.get_layer("decoder1_gating_bn"), keras.layers.BatchNormalization)


def test_authors_residual_blocks_always_project_the_shortcut_and_keep_their_biases(authors):
    for block in ["bottleneck", *(f"decoder{level}_block" for level in range(1, 7))]:
        shortcut = authors.get_layer(f"{block}_shortcut_conv")  # also where the channels match (levels 5, 6)
        assert shortcut.kernel_size == (1, 1), block
        assert isinstance(authors.get_layer(f"{block}_shortcut_bn"), keras.layers.BatchNormalization)
        assert all(authors.get_layer(f"{block}_{part}_conv").use_bias for part in ("1", "2", "shortcut")), block
    assert authors.get_layer("head_conv").use_bias
    assert isinstance(authors.get_layer("head_bn"), keras.layers.BatchNormalization)
    ups = [layer for layer in authors.layers if layer.name.endswith("_up_upsampling")]
    assert [layer.interpolation for layer in ups] == ["nearest"] * 6


def test_paper_decoder_keeps_oktay_gates_and_options_override_each_decoder():
    paper = build_aernet((SIZE, SIZE, 3))
    gate = paper.get_layer("decoder1_attention")
    assert (gate.variant, gate.attention_activation, gate.phi_up) == ("oktay", "sigmoid", None)
    assert not paper.get_layer("decoder1_block_1_conv").use_bias
    with pytest.raises(ValueError):
        paper.get_layer("head_bn")
    mixed = build_aernet(
        (SIZE, SIZE, 3),
        decoder="authors",
        attention_activation="sigmoid",
        upsampling="transpose",
        head_batch_norm=False,
    )
    assert mixed.get_layer("decoder1_attention").attention_activation == "sigmoid"
    assert isinstance(mixed.get_layer("decoder1_up_transpose"), keras.layers.Conv2DTranspose)


def _their_attention_block(x, g, inter):
    """The code's ``attention_block`` written again with plain Keras layers."""
    theta = keras.layers.Conv2D(inter, 2, strides=2, padding="same", name="theta")(x)
    phi = keras.layers.Conv2D(inter, 1, padding="same", name="phi")(g)
    phi = keras.layers.Conv2DTranspose(inter, 3, strides=1, padding="same", name="phi_up")(phi)
    q = keras.layers.Conv2D(1, 1, padding="same", name="psi")(keras.layers.ReLU()(keras.layers.Add()([phi, theta])))
    alpha = keras.layers.UpSampling2D(2)(keras.layers.ReLU()(q))
    y = keras.layers.Conv2D(x.shape[-1], 1, padding="same", name="output_conv")(alpha * x)
    return keras.layers.BatchNormalization(name="output_bn")(y), alpha


def test_code_gate_equals_a_second_implementation_of_their_attention_block():
    x_in, g_in = keras.Input((8, 8, 6)), keras.Input((4, 4, 5))
    reference = keras.Model([x_in, g_in], _their_attention_block(x_in, g_in, 4))
    gate = AttentionGate(4, attention_activation="relu", variant="aernet_code")
    gate.build([(None, 8, 8, 6), (None, 4, 4, 5)])
    rng = np.random.default_rng(0)
    for name in ("theta", "phi", "phi_up", "psi", "output_conv", "output_bn"):
        values = [rng.uniform(0.2, 1.0, w.shape).astype(np.float32) for w in reference.get_layer(name).weights]
        reference.get_layer(name).set_weights(values)
        getattr(gate, name).set_weights(values)
    x = rng.normal(size=(2, 8, 8, 6)).astype(np.float32)
    g = rng.normal(size=(2, 4, 4, 5)).astype(np.float32)
    want, got = reference([x, g], training=False), gate([x, g], training=False)
    assert float(np.max(np.asarray(want[1]))) > 0.0  # some attention passes the ReLU
    for expected, actual in zip(want, got, strict=True):
        np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-5, atol=1e-5)
