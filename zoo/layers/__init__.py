"""Custom Keras layers of the zoo (attention modules, superpixel pooling, ...).

Importing this package registers every layer for ``.keras`` loading.
"""

from zoo.apspnet.layers import CBAM_ORDERS, ChannelAttention, SpatialAttention, cbam
from zoo.arl_cnn.layers import AttentionNormalization, ScaleGate
from zoo.arl_cnn.ran import attention_module
from zoo.arl_cnn.se import SqueezeExcitation
from zoo.attnmel.layers import AttnMelAttention
from zoo.common.attention_gate import AttentionGate
from zoo.common.danet_attention import DANetChannelAttention, DANetPositionAttention
from zoo.common.input_scaling import InputScaling
from zoo.common.pyramid_pooling import AdaptiveAveragePooling2D
from zoo.sanet.layers import SuperpixelAttention, SuperpixelAveragePooling, SuperpixelUnpooling

__all__ = [
    "AdaptiveAveragePooling2D",
    "CBAM_ORDERS",
    "ChannelAttention",
    "DANetChannelAttention",
    "DANetPositionAttention",
    "InputScaling",
    "SpatialAttention",
    "cbam",
    "AttentionGate",
    "AttnMelAttention",
    "AttentionNormalization",
    "ScaleGate",
    "SqueezeExcitation",
    "attention_module",
    "SuperpixelAttention",
    "SuperpixelAveragePooling",
    "SuperpixelUnpooling",
]
