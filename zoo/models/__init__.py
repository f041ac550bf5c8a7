"""Functional-API builders for every model of the five papers and their baselines."""
from zoo.models.aernet import AERNET_INPUT, build_aernet
from zoo.models.apspnet import (
    APSPNET_CLASSES,
    APSPNET_INPUT,
    build_apspnet,
    build_attention_resnet,
    build_attention_resnet50,
    build_danet,
    build_deeplabv3,
    build_pspnet,
)
from zoo.models.arl_cnn import (
    build_arl_cnn14,
    build_arl_cnn50,
    build_ran14,
    build_ran50,
    build_senet14,
    build_senet50,
)
from zoo.models.attnmel import (
    ATTNMEL_INPUT,
    build_attnmel_cnn,
    build_mel_cnn,
    build_vgg16_classifier,
    build_vgg16_gap,
)
from zoo.models.resnet import build_resnet14, build_resnet50
from zoo.models.unet import build_attention_residual_unet, build_attention_unet, build_unet
from zoo.models.sanet import (
    SANET_INPUT,
    build_attribute_unet,
    build_deeplab,
    build_resunet,
    build_sanet,
)

__all__ = [
    "APSPNET_CLASSES", "APSPNET_INPUT", "build_apspnet", "build_attention_resnet",
    "build_attention_resnet50", "build_danet", "build_deeplabv3", "build_pspnet",
    "AERNET_INPUT", "build_aernet", "build_attention_residual_unet", "build_attention_unet", "build_unet",
    "SANET_INPUT", "build_attribute_unet", "build_deeplab", "build_resunet", "build_sanet",
    "ATTNMEL_INPUT", "build_attnmel_cnn", "build_mel_cnn", "build_vgg16_classifier", "build_vgg16_gap",
    "build_arl_cnn14", "build_arl_cnn50", "build_ran14", "build_ran50", "build_resnet14",
    "build_resnet50", "build_senet14", "build_senet50",
]
