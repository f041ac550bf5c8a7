"""ARL-CNN (Zhang, Xie, Xia and Shen, Attention Residual Learning for Skin Lesion
Classification, IEEE TMI 2019) and the classifiers of its Tables II-V.

Builders: :func:`build_resnet14`/``50``, :func:`build_arl_cnn14`/``50``,
:func:`build_senet14`/``50``, :func:`build_ran14`/``50``; input :data:`ARL_INPUT`
(patches in [0, 1]; ``ARL_PRETRAINED_INPUT`` for ImageNet weights); recipe
:data:`ARL_RECIPE`.
"""

from data_tools.preprocess import InputSpec
from zoo.arl_cnn.models import (
    ATTENTION_TYPES,
    PAPER_PARAMS,
    build_arl_cnn14,
    build_arl_cnn50,
    build_ran14,
    build_ran50,
    build_resnet14,
    build_resnet50,
    build_senet14,
    build_senet50,
)
from zoo.arl_cnn.recipe import ARL_AUGMENTATION, ARL_RECIPE
from zoo.registry import ModelEntry, register_model

ARL_INPUT = InputSpec(image_size=(224, 224), scale="unit")
"""Sec. IV-B: 224x224 patches (cut by :mod:`zoo.arl_cnn.patches`), in [0, 1] for
models trained from scratch."""
ARL_PRETRAINED_INPUT = InputSpec(image_size=(224, 224), scale="caffe")
"""The same patches in keras.applications' "caffe" scale, which ImageNet ResNet50
weights expect (the 50-layer models fine-tuned from ImageNet, Sec. IV-B)."""

__all__ = [
    "ARL_AUGMENTATION",
    "ARL_INPUT",
    "ARL_PRETRAINED_INPUT",
    "ARL_RECIPE",
    "ATTENTION_TYPES",
    "PAPER_PARAMS",
    "build_arl_cnn14",
    "build_arl_cnn50",
    "build_ran14",
    "build_ran50",
    "build_resnet14",
    "build_resnet50",
    "build_senet14",
    "build_senet50",
]

_BLOCKS = {14: (1, 1, 1, 1), 50: (3, 4, 6, 3)}
"""Residual blocks per stage (conv2..conv5): an ARL or SE map per block."""
_PARAMETERS = {
    "resnet14": 8_049_026,
    "arl_cnn14": 8_049_030,
    "senet14": 10_839_106,
    "ran14": 12_112_002,
    "resnet50": 23_591_810,
    "arl_cnn50": 23_591_826,
    "senet50": 26_122_802,
    "ran50": 36_492_930,
}
"""Paper-size parameter counts (2 classes), checked against builds by tests/test_registry.py."""


def _block_maps(depth: int, suffix: str) -> tuple[str, ...]:
    return tuple(
        f"conv{stage}_block{block}_{suffix}"
        for stage, blocks in zip((2, 3, 4, 5), _BLOCKS[depth], strict=True)
        for block in range(1, blocks + 1)
    )


for _depth, _resnet, _arl, _senet, _ran in (
    (14, build_resnet14, build_arl_cnn14, build_senet14, build_ran14),
    (50, build_resnet50, build_arl_cnn50, build_senet50, build_ran50),
):
    _test = {"input_shape": (32, 32, 3)}
    _ran_maps = tuple(f"conv{stage}_attention_mask_sigmoid" for stage in ((2, 3) if _depth == 14 else (2, 3, 4)))
    for _name, _builder, _attention, _maps in (
        (f"resnet{_depth}", _resnet, False, ()),
        (f"arl_cnn{_depth}", _arl, True, _block_maps(_depth, "attention_mask")),
        (f"senet{_depth}", _senet, True, _block_maps(_depth, "se")),
        (f"ran{_depth}", _ran, True, _ran_maps),
    ):
        _baseline = None if _name.startswith("resnet") else f"resnet{_depth}"
        _tags = {"large"} if _depth == 50 or _name == "ran14" else set()  # RAN-14: 441 layers
        register_model(
            ModelEntry(
                _name,
                "arl_cnn",
                _builder,
                ARL_INPUT,
                ARL_RECIPE,
                output="probabilities",
                attention=_attention,
                test_kwargs=_test,
                family="resnet",
                baseline=_baseline,
                parameters=_PARAMETERS[_name],
                attention_maps=_maps,
                tags=_tags | ({"baseline"} if _baseline is None else {"attention"}),
            )
        )
