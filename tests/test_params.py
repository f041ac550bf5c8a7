"""zoo.params against torchvision's published parameter counts."""

import keras

from zoo.arl_cnn import build_resnet50
from zoo.params import count_parameters

TORCHVISION_RESNET50 = 25_557_032  # torchvision.models.resnet50(): sum(p.numel() for p in parameters())
TORCHVISION_FC = 2048 * 1000 + 1000


def test_resnet50_counts_as_torchvision_does():
    counts = count_parameters(build_resnet50(classes=2))
    assert counts.pytorch_style == TORCHVISION_RESNET50 - TORCHVISION_FC + 2048 * 2 + 2
    assert counts.keras == 23_591_810  # keras.applications ResNet50 + 2-class head
    assert counts.keras - counts.trainable == 53_120  # the batch norms' moving statistics


def test_a_conv_not_followed_by_batch_norm_keeps_its_bias():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="with_bn")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Conv2D(2, 1, name="plain")(x)
    counts = count_parameters(keras.Model(inputs, x))
    assert counts.trainable - counts.pytorch_style == 4  # only with_bn's bias is dropped
