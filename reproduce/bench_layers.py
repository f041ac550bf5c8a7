"""Every custom layer of the zoo under XLA and under mixed precision.

XLA compiles a ``jit_compile=True`` function whole or not at all: an op without an
XLA kernel (``tf.numpy_function``, some string or sparse ops) makes the compilation
fail rather than run on the host. :func:`check_layer` therefore compiles each
layer's forward pass *and* its gradient (the training step's backward pass) under
XLA and compares both with the eager, uncompiled result; it then rebuilds the layer
under the ``mixed_float16`` policy with the same weights and compares its compiled
forward pass with the float32 one (float16 overflow and the float32 islands the
layers keep, e.g. softmaxes, show up there).

:data:`LAYER_CASES` holds one small case per layer registered under the
``"zoo"`` package (:func:`registered_layers`); ``tests/test_bench_layers.py`` fails
when a registered layer has no case, and ``reproduce/benchmark.py`` reports the
checks beside the model timings.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
import warnings
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

import data_tools.colour  # noqa: F401 (registers RGBToLab)
import zoo  # noqa: F401 (registers every layer of the paper packages and zoo.common)
from data_tools.colour import RGBToLab
from zoo.layers import (
    AdaptiveAveragePooling2D,
    AttentionGate,
    AttentionNormalization,
    AttnMelAttention,
    ChannelAttention,
    DANetChannelAttention,
    DANetPositionAttention,
    InputScaling,
    ScaleGate,
    SpatialAttention,
    SqueezeExcitation,
    SuperpixelAttention,
    SuperpixelAveragePooling,
    SuperpixelUnpooling,
)
from zoo.runtime import precision_policy

PACKAGE = "zoo"
OK = "ok"
XLA_FAILED = "xla failed"
MISMATCH = "xla mismatch"
MIXED_FAILED = "mixed precision failed"

LAYER_COLUMNS: tuple[str, ...] = (
    "case",
    "layer",
    "status",
    "compile_s",
    "xla_error",
    "gradient_error",
    "mixed_error",
    "mixed_dtype",
    "error",
)
"""Columns of a check's row (see :func:`check_layer`)."""

XLA_TOLERANCE = 1e-4
"""Largest |XLA - eager| allowed, relative to the largest |eager| value (and at least absolute)."""
MIXED_TOLERANCE = 3e-2
"""Largest |mixed_float16 - float32| allowed, relative likewise (float16 keeps ~3 digits)."""

Inputs = Callable[[np.random.Generator], list[np.ndarray]]


@dataclasses.dataclass(frozen=True)
class LayerCase:
    """One layer, made small, and inputs to call it on.

    Attributes:
        name: the case's name (unique; a layer may have several cases).
        layer: the layer's class.
        make: returns a new layer (called again under the mixed policy).
        inputs: random inputs, a list (one array per input of the layer's call).
    """

    name: str
    layer: type[keras.layers.Layer]
    make: Callable[[], keras.layers.Layer]
    inputs: Inputs


def _features(*shape: int) -> Inputs:
    return lambda rng: [rng.normal(size=shape).astype(np.float32)]


def _images(*shape: int) -> Inputs:
    return lambda rng: [rng.random(shape).astype(np.float32)]


def _pair(first: Sequence[int], second: Sequence[int]) -> Inputs:
    return lambda rng: [rng.normal(size=first).astype(np.float32), rng.normal(size=second).astype(np.float32)]


def _with_superpixels(features: Sequence[int], label_size: int, segments: int) -> Inputs:
    """Features and a superpixel map of ``label_size`` squared with ``segments`` labels
    (every label present: each label a block of rows, shuffled)."""

    def make(rng: np.random.Generator) -> list[np.ndarray]:
        rows = np.arange(label_size) * segments // label_size
        labels = np.stack([rng.permutation(segments)[rows] for _ in range(features[0])])
        labels = np.broadcast_to(labels[:, :, None, None], (features[0], label_size, label_size, 1))
        return [rng.normal(size=features).astype(np.float32), labels.astype(np.int32)]

    return make


def _regions_and_superpixels(batch: int, segments: int, channels: int, label_size: int) -> Inputs:
    def make(rng: np.random.Generator) -> list[np.ndarray]:
        labels = rng.integers(0, segments, (batch, label_size, label_size, 1)).astype(np.int32)
        return [rng.normal(size=(batch, segments, channels)).astype(np.float32), labels]

    return make


LAYER_CASES: tuple[LayerCase, ...] = (
    LayerCase(
        "adaptive_average_pooling",
        AdaptiveAveragePooling2D,
        lambda: AdaptiveAveragePooling2D(bins=3),
        _features(2, 7, 9, 4),
    ),
    LayerCase(
        "attention_gate", AttentionGate, lambda: AttentionGate(inter_channels=4), _pair((2, 8, 8, 6), (2, 4, 4, 8))
    ),
    *(
        LayerCase(
            f"attention_normalization_{kind}",
            AttentionNormalization,
            lambda kind=kind: AttentionNormalization(kind),
            _features(2, 6, 6, 8),
        )
        for kind in ("spatial", "channel", "mixed")
    ),
    LayerCase("scale_gate", ScaleGate, lambda: ScaleGate(alpha_initial=0.5), _pair((2, 6, 6, 8), (2, 6, 6, 8))),
    *(
        LayerCase(
            f"scale_gate_{kind}",
            ScaleGate,
            lambda kind=kind: ScaleGate(alpha_initial=0.5, normalization=kind),
            _pair((2, 6, 6, 8), (2, 6, 6, 8)),
        )
        for kind in ("spatial", "channel", "mixed")
    ),
    *(
        LayerCase(
            f"attnmel_attention_{kind}",
            AttnMelAttention,
            lambda kind=kind: AttnMelAttention(filters=8, normalization=kind),
            _pair((2, 8, 8, 6), (2, 2, 2, 10)),
        )
        for kind in ("sigmoid", "softmax")
    ),
    LayerCase("channel_attention", ChannelAttention, lambda: ChannelAttention(reduction=2), _features(2, 8, 8, 8)),
    LayerCase("spatial_attention", SpatialAttention, lambda: SpatialAttention(), _features(2, 8, 8, 8)),
    LayerCase(
        "danet_position_attention",
        DANetPositionAttention,
        lambda: DANetPositionAttention(reduction=2),
        _features(2, 6, 6, 8),
    ),
    LayerCase("danet_channel_attention", DANetChannelAttention, lambda: DANetChannelAttention(), _features(2, 6, 6, 8)),
    LayerCase("squeeze_excitation", SqueezeExcitation, lambda: SqueezeExcitation(ratio=2), _features(2, 6, 6, 8)),
    LayerCase(
        "input_scaling_bgr",
        InputScaling,
        lambda: InputScaling(255.0, (-103.939, -116.779, -123.68), reverse_channels=True),
        _images(2, 4, 4, 3),
    ),
    LayerCase("rgb_to_lab", RGBToLab, lambda: RGBToLab(), _images(2, 8, 8, 3)),
    LayerCase(
        "superpixel_average_pooling",
        SuperpixelAveragePooling,
        lambda: SuperpixelAveragePooling(max_segments=16),
        _with_superpixels((2, 8, 8, 4), 16, 12),
    ),
    LayerCase(
        "superpixel_unpooling",
        SuperpixelUnpooling,
        lambda: SuperpixelUnpooling(output_size=(8, 8)),
        _regions_and_superpixels(2, 16, 4, 16),
    ),
    LayerCase(
        "superpixel_attention",
        SuperpixelAttention,
        lambda: SuperpixelAttention(max_segments=16, filters=6),
        _with_superpixels((2, 8, 8, 4), 16, 12),
    ),
)
"""One small case (or one per option that changes the computation) per registered layer."""


def registered_layers(package: str = PACKAGE) -> dict[str, type[keras.layers.Layer]]:
    """Every ``keras.layers.Layer`` registered as serialisable under ``package``, by name."""
    prefix = f"{package}>"
    return {
        name[len(prefix) :]: obj
        for name, obj in keras.saving.get_custom_objects().items()
        if name.startswith(prefix) and inspect.isclass(obj) and issubclass(obj, keras.layers.Layer)
    }


def uncovered_layers(cases: Sequence[LayerCase] = LAYER_CASES) -> list[str]:
    """Registered layers that no case exercises."""
    covered = {case.layer for case in cases}
    return sorted(name for name, layer in registered_layers().items() if layer not in covered)


# ---------------------------------------------------------------------- checks


def _float_outputs(outputs: Any) -> list[tf.Tensor]:
    return [tensor for tensor in tf.nest.flatten(outputs) if tensor.dtype.is_floating]


def _forward_and_gradient(
    layer: keras.layers.Layer, inputs: list[tf.Tensor]
) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
    """The layer's float outputs, and the gradient of the sum of their squares with
    respect to its trainable weights and float inputs (in float32)."""
    sources = [*layer.trainable_variables, *(x for x in inputs if x.dtype.is_floating)]
    with tf.GradientTape() as tape:
        tape.watch([x for x in inputs if x.dtype.is_floating])
        outputs = _float_outputs(layer(_call_inputs(inputs), training=False))
        loss = tf.add_n([tf.reduce_sum(tf.square(tf.cast(output, tf.float32))) for output in outputs])
    gradients = tape.gradient(loss, sources, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return outputs, gradients


def _call_inputs(inputs: Sequence[tf.Tensor]) -> tf.Tensor | list[tf.Tensor]:
    """A layer's call argument: the tensor itself for one input, else the list."""
    return inputs[0] if len(inputs) == 1 else list(inputs)


def _largest_error(actual: Sequence[tf.Tensor], expected: Sequence[tf.Tensor]) -> float:
    """max |actual - expected| / max(1, max |expected|) over every pair; inf when not finite."""
    worst = 0.0
    for got, want in zip(actual, expected, strict=True):
        got, want = np.asarray(tf.cast(got, tf.float32)), np.asarray(tf.cast(want, tf.float32))
        if got.shape != want.shape or not np.all(np.isfinite(got)):
            return float("inf")
        scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
        worst = max(worst, float(np.max(np.abs(got - want), initial=0.0)) / scale)
    return worst


def _error_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [""]
    useful = [line for line in lines if "unsupported" in line.lower() or "not supported" in line.lower()]
    return f"{type(error).__name__}: {(useful or lines)[0][:300]}"


def check_layer(case: LayerCase, seed: int = 0, mixed: bool = True) -> dict[str, Any]:
    """Compiles ``case`` under XLA (forward and gradient) and, if ``mixed``, under
    ``mixed_float16``; compares each with the eager float32 result.

    Returns a row: ``case``, ``layer``, ``status`` (:data:`OK`, :data:`XLA_FAILED`,
    :data:`MISMATCH` or :data:`MIXED_FAILED`), ``compile_s`` (first compiled call),
    ``xla_error`` and ``gradient_error`` (relative, see :data:`XLA_TOLERANCE`),
    ``mixed_error`` (see :data:`MIXED_TOLERANCE`), ``mixed_dtype`` (the float
    outputs' dtypes under the mixed policy) and ``error`` (the failure's text).
    Never raises for a failing layer: the failure is the row's status.
    """
    row = _row(case=case.name, layer=case.layer.__name__, status=OK)
    inputs = [tf.constant(array) for array in case.inputs(np.random.default_rng(seed))]
    layer = case.make()
    layer(_call_inputs(inputs))  # builds it, so the gradient sees its weights
    outputs, gradients = _forward_and_gradient(layer, inputs)
    compiled = tf.function(lambda *xs: _forward_and_gradient(layer, list(xs)), jit_compile=True, autograph=False)
    try:
        start = time.perf_counter()
        xla_outputs, xla_gradients = compiled(*inputs)
        row["compile_s"] = time.perf_counter() - start
    except Exception as error:  # noqa: BLE001 (the row reports it)
        return {**row, "status": XLA_FAILED, "error": _error_line(error)}
    row["xla_error"] = _largest_error(xla_outputs, outputs)
    row["gradient_error"] = _largest_error(xla_gradients, gradients)
    if max(row["xla_error"], row["gradient_error"]) > XLA_TOLERANCE:
        return {
            **row,
            "status": MISMATCH,
            "error": f"XLA differs from eager by {max(row['xla_error'], row['gradient_error']):.2e}",
        }
    if not mixed:
        return row
    try:
        with warnings.catch_warnings():  # precision_policy warns that float16 is slow on CPU
            warnings.simplefilter("ignore", UserWarning)
            with precision_policy(True):
                mixed_layer = case.make()
                mixed_layer(_call_inputs(inputs))
        mixed_layer.set_weights(layer.get_weights())
        forward = tf.function(
            lambda *xs: _float_outputs(mixed_layer(_call_inputs(xs), training=False)), jit_compile=True, autograph=False
        )
        mixed_outputs = forward(*inputs)
    except Exception as error:  # noqa: BLE001 (the row reports it)
        return {**row, "status": MIXED_FAILED, "error": _error_line(error)}
    row["mixed_dtype"] = ",".join(sorted({output.dtype.name for output in mixed_outputs}))
    row["mixed_error"] = _largest_error(mixed_outputs, outputs)
    if row["mixed_error"] > MIXED_TOLERANCE:
        row.update(status=MIXED_FAILED, error=f"mixed_float16 differs from float32 by {row['mixed_error']:.2e}")
    return row


def check_layers(cases: Sequence[LayerCase] = LAYER_CASES, seed: int = 0) -> list[dict[str, Any]]:
    """:func:`check_layer` for every case."""
    return [check_layer(case, seed) for case in cases]


def _row(**values: Any) -> dict[str, Any]:
    return {**dict.fromkeys(LAYER_COLUMNS), **values}
