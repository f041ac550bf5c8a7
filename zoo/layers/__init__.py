"""Custom Keras layers of the zoo (attention modules, superpixel pooling, ...).

Importing this package registers every layer for ``.keras`` loading.
"""
from zoo.layers.arl import AttentionNormalization, ScaleGate
from zoo.layers.attention_gate import AttentionGate
from zoo.layers.attnmel_attention import AttnMelAttention
from zoo.layers.cbam import CBAM_ORDERS, ChannelAttention, SpatialAttention, cbam
from zoo.layers.danet import DANetChannelAttention, DANetPositionAttention
from zoo.layers.input_scaling import InputScaling
from zoo.layers.pyramid_pooling import AdaptiveAveragePooling2D
from zoo.layers.ran import attention_module
from zoo.layers.se import SqueezeExcitation
from zoo.layers.superpixel import SuperpixelAttention, SuperpixelAveragePooling, SuperpixelUnpooling

__all__ = ["AdaptiveAveragePooling2D", "CBAM_ORDERS", "ChannelAttention", "DANetChannelAttention",
           "DANetPositionAttention", "InputScaling", "SpatialAttention", "cbam", "AttentionGate", "AttnMelAttention", "AttentionNormalization", "ScaleGate", "SqueezeExcitation", "attention_module",
           "SuperpixelAttention", "SuperpixelAveragePooling", "SuperpixelUnpooling"]
