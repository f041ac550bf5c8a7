"""A-PSPNet (Wen et al., A-PSPNet: A novel segmentation method of renal ultrasound image) and the
segmentation networks of its Table III.

Builders: :func:`build_pspnet`, :func:`build_deeplabv3`, :func:`build_danet`,
:func:`build_apspnet`; Table II's classifiers :func:`build_attention_resnet50` and
:func:`build_attention_resnet`; input :data:`APSPNET_INPUT`; recipe :data:`APSPNET_RECIPE`.
"""

from zoo.apspnet.layers import CBAM_ORDERS
from zoo.apspnet.models import (
    APSPNET_CLASSES,
    APSPNET_INPUT,
    build_apspnet,
    build_attention_resnet,
    build_attention_resnet50,
    build_danet,
    build_deeplabv3,
    build_pspnet,
)
from zoo.apspnet.recipe import APSPNET_RECIPE
from zoo.registry import ModelEntry, register_model

__all__ = [
    "APSPNET_CLASSES",
    "APSPNET_INPUT",
    "APSPNET_RECIPE",
    "CBAM_ORDERS",
    "build_apspnet",
    "build_attention_resnet",
    "build_attention_resnet50",
    "build_danet",
    "build_deeplabv3",
    "build_pspnet",
]

_TEST = {"input_shape": (64, 64, 3), "backbone": "resnet14"}
_CBAM_MAPS = ("cbam_start_channel", "cbam_start_spatial", "cbam_end_channel", "cbam_end_spatial")
# name, builder, attention, baseline, paper-size parameters, attention maps
for _name, _builder, _attention, _baseline, _parameters, _maps in (
    ("pspnet", build_pspnet, False, None, 46_670_723, ()),
    ("deeplabv3", build_deeplabv3, False, None, 39_128_195, ()),
    ("danet", build_danet, True, None, 47_520_773, ("position_attention", "channel_attention")),
    ("apspnet", build_apspnet, True, "pspnet", 47_195_719, _CBAM_MAPS),
):
    register_model(
        ModelEntry(
            _name,
            "apspnet",
            _builder,
            APSPNET_INPUT,
            APSPNET_RECIPE,
            output="mask",
            attention=_attention,
            test_kwargs=_TEST,
            family="resnet",
            baseline=_baseline,
            parameters=_parameters,
            attention_maps=_maps,
            tags={"large", "attention"} if _attention else {"large", "baseline"},
        )
    )
register_model(
    ModelEntry(
        "attention_resnet50",
        "apspnet",
        build_attention_resnet50,
        APSPNET_INPUT,
        APSPNET_RECIPE,
        output="probabilities",
        attention=True,
        test_kwargs={"input_shape": (64, 64, 3), "classes": 2},
        family="resnet",
        parameters=26_161_708,
        attention_maps=_CBAM_MAPS,
        tags={"large", "attention"},
    )
)
