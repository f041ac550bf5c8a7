"""AER-Net (Lima & Braz Junior, Attention Efficient Residual U-Net) and the U-Nets of its Tables 2 and 3.

Builders: :func:`build_unet` (Ronneberger et al.; the shared U-Net of
:mod:`zoo.common.unet`), :func:`build_attention_unet`, :func:`build_attention_residual_unet`,
:func:`build_aernet`; Table 1's segmentation_models U-Nets are
:func:`zoo.aernet.encoder_sweep.build_sm_unet` (imported on demand: it needs the
``sweep`` extra). Input: :data:`AERNET_INPUT`; recipe: :data:`AERNET_RECIPE`.
"""

from zoo.aernet.models import (
    AERNET_INPUT,
    aernet_encoder,
    build_aernet,
    build_attention_residual_unet,
    build_attention_unet,
)
from zoo.aernet.recipe import AERNET_RECIPE
from zoo.common.unet import build_unet
from zoo.registry import ModelEntry, register_model

__all__ = [
    "AERNET_INPUT",
    "AERNET_RECIPE",
    "aernet_encoder",
    "build_aernet",
    "build_attention_residual_unet",
    "build_attention_unet",
    "build_unet",
]

_TINY_UNET = {"input_shape": (32, 32, 3), "base_filters": 4}
_MAPS = tuple(f"attention_{level}" for level in range(1, 6))  # one per skip connection, deepest last
# name, builder, attention, family, baseline, small kwargs, paper-size parameters, attention maps
for _name, _builder, _attention, _family, _baseline, _test, _parameters, _maps in (
    ("unet", build_unet, False, "unet", None, _TINY_UNET, 31_049_409, ()),
    ("attention_unet", build_attention_unet, True, "unet", "unet", _TINY_UNET, 32_973_893, _MAPS[:4]),
    (
        "attention_residual_unet",
        build_attention_residual_unet,
        True,
        "unet",
        "attention_unet",
        _TINY_UNET,
        33_674_053,
        _MAPS[:4],
    ),
    (
        "aernet",
        build_aernet,
        True,
        "efficientnet",
        "attention_residual_unet",
        {"input_shape": (64, 64, 3)},
        20_920_789,
        _MAPS,
    ),
):
    register_model(
        ModelEntry(
            _name,
            "aernet",
            _builder,
            AERNET_INPUT,
            AERNET_RECIPE,
            output="mask",
            attention=_attention,
            test_kwargs=_test,
            family=_family,
            baseline=_baseline,
            parameters=_parameters,
            attention_maps=_maps,
            tags=({"attention"} if _attention else {"baseline"}) | ({"large"} if _name == "aernet" else set()),
        )
    )
