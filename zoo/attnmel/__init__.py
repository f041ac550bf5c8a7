"""AttnMel-CNN (Yan, Kawahara and Hamarneh, Melanoma Recognition via Visual Attention, IPMI
2019) and the VGG-16 classifiers of its Tables 1-2.

Builders: :func:`build_vgg16_classifier`, :func:`build_vgg16_gap`, :func:`build_mel_cnn`,
:func:`build_attnmel_cnn`; input :data:`ATTNMEL_INPUT`; recipes :data:`ATTNMEL_RECIPE`
(baselines) and :data:`ATTNMEL_REGULARISED_RECIPE` (AttnMel-CNN).
"""

from zoo.attnmel.models import ATTNMEL_INPUT, build_attnmel_cnn, build_mel_cnn, build_vgg16_classifier, build_vgg16_gap
from zoo.attnmel.recipe import ATTNMEL_AUGMENTATION, ATTNMEL_RECIPE, ATTNMEL_REGULARISED_RECIPE
from zoo.registry import ModelEntry, register_model

__all__ = [
    "ATTNMEL_AUGMENTATION",
    "ATTNMEL_INPUT",
    "ATTNMEL_RECIPE",
    "ATTNMEL_REGULARISED_RECIPE",
    "build_attnmel_cnn",
    "build_mel_cnn",
    "build_vgg16_classifier",
    "build_vgg16_gap",
]

# name, builder, recipe, attention, baseline, paper-size parameters (2 classes), attention maps
for _name, _builder, _recipe, _attention, _baseline, _parameters, _maps in (
    ("vgg16", build_vgg16_classifier, ATTNMEL_RECIPE, False, None, 134_268_738, ()),
    ("vgg16_gap", build_vgg16_gap, ATTNMEL_RECIPE, False, None, 14_715_714, ()),
    ("mel_cnn", build_mel_cnn, ATTNMEL_RECIPE, False, "vgg16_gap", 14_717_250, ()),
    (
        "attnmel_cnn",
        build_attnmel_cnn,
        ATTNMEL_REGULARISED_RECIPE,
        True,
        "vgg16_gap",
        15_176_516,
        ("attention_pool3", "attention_pool4"),
    ),
):
    register_model(
        ModelEntry(
            _name,
            "attnmel",
            _builder,
            ATTNMEL_INPUT,
            _recipe,
            output="probabilities",
            attention=_attention,
            test_kwargs={"input_shape": (64, 64, 3)},
            family="vgg",
            baseline=_baseline,
            parameters=_parameters,
            attention_maps=_maps,
            tags={"attention"} if _attention else {"baseline"},
        )
    )
