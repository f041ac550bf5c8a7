"""SANet (SANet: Superpixel Attention Network for Skin Lesion Attributes Detection) and the networks of
its Table 3.

Builders: :func:`build_attribute_unet`, :func:`build_deeplab`, :func:`build_attribute_danet`,
:func:`build_resunet`, :func:`build_sanet`; input :data:`SANET_INPUT` (and, for SANet, a
superpixel label map); recipe :data:`SANET_RECIPE`.
"""

from zoo.registry import ModelEntry, register_model
from zoo.sanet.models import (
    SANET_ATTRIBUTES,
    SANET_INPUT,
    SANET_MAX_SEGMENTS,
    build_attribute_danet,
    build_attribute_unet,
    build_deeplab,
    build_resunet,
    build_sanet,
)
from zoo.sanet.recipe import SANET_AUGMENTATION, SANET_RECIPE

__all__ = [
    "SANET_ATTRIBUTES",
    "SANET_AUGMENTATION",
    "SANET_INPUT",
    "SANET_MAX_SEGMENTS",
    "SANET_RECIPE",
    "build_attribute_danet",
    "build_attribute_unet",
    "build_deeplab",
    "build_resunet",
    "build_sanet",
]

# Small versions: the same networks on 14-layer (dilated) ResNets or a VGG-16 encoder
# with 8-filter decoders; ResNet-101's 100+ layers at 32x32 would cost the test
# harness (tests/test_registry_harness.py) ~30 s per model on 2 CPU cores.
_SMALL_DILATED = {"input_shape": (32, 32, 3), "backbone": "resnet14"}
_SMALL_RESUNET = {"input_shape": (32, 32, 3), "backbone": "vgg16", "decoder_filters": (8,) * 5}
_DANET_MAPS = ("position_attention", "channel_attention")
_PARAMETERS = {
    "sanet_unet": 31_049_669,
    "sanet_deeplab": 59_504_501,
    "sanet_danet": 66_592_263,
    "resunet": 51_673_173,
    "sanet": 51_687_045,
}
"""Paper-size parameter counts, checked against builds by tests/test_registry.py."""
for _name, _builder, _attention, _family, _baseline, _test, _tags, _extra, _maps in (
    (
        "sanet_unet",
        build_attribute_unet,
        False,
        "unet",
        None,
        {"input_shape": (32, 32, 3), "base_filters": 4},
        set(),
        (),
        (),
    ),
    ("sanet_deeplab", build_deeplab, False, "resnet", None, _SMALL_DILATED, {"large"}, (), ()),
    ("sanet_danet", build_attribute_danet, True, "resnet", None, _SMALL_DILATED, {"large"}, (), _DANET_MAPS),
    ("resunet", build_resunet, False, "resnet", None, _SMALL_RESUNET, {"large"}, (), ()),
    (
        "sanet",
        build_sanet,
        True,
        "resnet",
        "resunet",
        {**_SMALL_RESUNET, "sam_filters": 8, "max_segments": 16},
        {"large"},
        ("superpixels",),
        ("superpixel_attention",),
    ),
):
    register_model(
        ModelEntry(
            _name,
            "sanet",
            _builder,
            SANET_INPUT,
            SANET_RECIPE,
            output="mask",
            attention=_attention,
            test_kwargs=_test,
            family=_family,
            baseline=_baseline,
            extra_inputs=_extra,
            parameters=_PARAMETERS[_name],
            attention_maps=_maps,
            tags=_tags | ({"attention"} if _attention else {"baseline"}),
        )
    )
