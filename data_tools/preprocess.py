"""One declarative description of a model's input, shared by training and serving.

An :class:`InputSpec` says what a model expects: its spatial size, its colour space
and its value scale. The tf.data pipelines (``data_tools.pipeline``) and the
SavedModel export (``zoo.export``) both call :func:`preprocess_images` with the
model's spec, so a served model sees exactly the pixels it was trained on.

The preprocessing is split in steps so that the training pipelines can cache and
augment in between:

* :func:`resize_images`: any image (uint8 or float in [0, 1], 1 or 3 channels,
  batched or not) -> float32 RGB in [0, 1], fitted (``spec.fit``) and resized to
  ``spec.resize_size``; :func:`resize_masks` applies the same geometry to masks
  (background padding, nearest neighbour);
* :func:`crop_images`: the centred ``spec.image_size`` window when the spec resizes
  larger first (``pre_crop_size``; training pipelines take a random window instead);
* :func:`normalize_images`: float32 RGB in [0, 1] -> the model's colour space and
  scale.

``preprocess_images(x, spec) == normalize_images(crop_images(resize_images(x, spec), spec), spec)``.
Integer label maps carried as model inputs (SANet's superpixels) go through
:func:`preprocess_label_maps`, the masks' geometry without value changes:
``preprocess_label_maps(m, spec) == crop_images(resize_masks(m, spec), spec)``.
Each step is written once over :mod:`data_tools.tensor_ops`: ``ops="tensorflow"`` (the
default; tf.data, the SavedModel and LiteRT signatures) or ``ops="keras"`` (``keras.ops``
on any backend, no TensorFlow needed); both work under ``jit_compile=True``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import TYPE_CHECKING, Any, Literal, Mapping

import numpy as np

from data_tools.colour import rgb_to_lab_unit
from data_tools.patches import GREY, centre_crop, centre_square_crop, pad_to_square
from data_tools.tensor_ops import Ops, tensor_ops

if TYPE_CHECKING:  # annotations only: the TensorFlow path runs through data_tools.tensor_ops
    import tensorflow as tf

Colour = Literal["rgb", "lab"]
Scale = Literal["unit", "imagenet", "caffe", "raw255", "standard"]
Resize = Literal["bilinear", "nearest", "bicubic", "area"]
Fit = Literal["stretch", "pad", "crop"]

COLOURS: tuple[str, ...] = ("rgb", "lab")
SCALES: tuple[str, ...] = ("unit", "imagenet", "caffe", "raw255", "standard")
RESIZE_METHODS: tuple[str, ...] = ("bilinear", "nearest", "bicubic", "area")
FITS: tuple[str, ...] = ("stretch", "pad", "crop")
DEFAULT_CROP_FRACTION = 0.8  # AttnMel, section 3
# Scales that make sense for CIELAB input (ImageNet / Caffe statistics are RGB ones).
_LAB_SCALES = ("unit", "raw255", "standard")
COLOUR_CONSTANCY = (None, "gray_world")

# torchvision / keras "torch" mode statistics, on [0, 1] RGB.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# keras.applications "caffe" mode (VGG16, ResNet50): BGR, 0-255, minus this BGR mean.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What a model expects as input.

    Attributes:
        image_size: ``(height, width)`` of the model input.
        colour: ``"rgb"``, or ``"lab"`` for CIELAB (AER-Net, section 3.1).
        scale: value scale of the model input:
            ``"unit"``: [0, 1] (for ``"lab"``: :func:`data_tools.colour.lab_to_unit`);
            ``"imagenet"``: ``(x - IMAGENET_MEAN) / IMAGENET_STD`` on [0, 1] RGB;
            ``"caffe"``: BGR, 0-255, minus ``CAFFE_BGR_MEAN``, as keras.applications
            VGG16/ResNet50 expect; ``"raw255"``: the ``"unit"`` values times 255
            (keras.applications EfficientNet, which rescales internally);
            ``"standard"``: ``(x - mean) / std`` on the ``"unit"`` values with a
            dataset's own channel statistics (AttnMel normalises per dataset).
        resize: ``tf.image.resize`` method for images (masks always use nearest).
        fit: how the image becomes the model's aspect ratio before the resize:
            ``"stretch"`` resizes as is; ``"pad"`` fills to a square with grey
            borders (A-PSPNet, section IV.A); ``"crop"`` keeps the centred square of
            ``crop_fraction`` x the shorter side (AttnMel, section 3).
        crop_fraction: for ``fit="crop"`` (default 0.8); forbidden otherwise.
        pre_crop_size: resize to this ``(height, width)`` first and then take an
            ``image_size`` window: centred at test and in serving, random in
            training (AttnMel: resize 256, crop 224). ``None``: resize straight
            to ``image_size``.
        mean, std: channel statistics, required for ``scale="standard"`` and
            forbidden otherwise.
        colour_constancy: ``None``, or ``"gray_world"``: :func:`gray_world` on the
            whole image before anything else (ARL-CNN Sec. V-F, after Barata et al.).
    """

    image_size: tuple[int, int]
    colour: Colour = "rgb"
    scale: Scale = "unit"
    resize: Resize = "bilinear"
    fit: Fit = "stretch"
    crop_fraction: float | None = None
    pre_crop_size: tuple[int, int] | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    colour_constancy: str | None = None

    def __post_init__(self):
        _check_choice("colour_constancy", self.colour_constancy, COLOUR_CONSTANCY)
        object.__setattr__(self, "image_size", _check_size("image_size", self.image_size))
        _check_choice("colour", self.colour, COLOURS)
        _check_choice("scale", self.scale, SCALES)
        _check_choice("resize", self.resize, RESIZE_METHODS)
        _check_choice("fit", self.fit, FITS)
        if self.fit == "crop":
            fraction = DEFAULT_CROP_FRACTION if self.crop_fraction is None else float(self.crop_fraction)
            if not 0.0 < fraction <= 1.0:
                raise ValueError(f"InputSpec.crop_fraction must be in (0, 1], got {self.crop_fraction!r}.")
            object.__setattr__(self, "crop_fraction", fraction)
        elif self.crop_fraction is not None:
            raise ValueError(f"InputSpec.crop_fraction is only used with fit='crop', got fit={self.fit!r}.")
        if self.pre_crop_size is not None:
            pre_crop_size = _check_size("pre_crop_size", self.pre_crop_size)
            if pre_crop_size[0] < self.image_size[0] or pre_crop_size[1] < self.image_size[1]:
                raise ValueError(
                    f"InputSpec.pre_crop_size {pre_crop_size} must be at least image_size {self.image_size}."
                )
            object.__setattr__(self, "pre_crop_size", pre_crop_size)
        if self.colour == "lab" and self.scale not in _LAB_SCALES:
            raise ValueError(
                f"InputSpec: scale={self.scale!r} applies RGB statistics and does not fit "
                f"colour='lab'; use one of {_LAB_SCALES}."
            )
        for name in ("mean", "std"):
            value = getattr(self, name)
            if self.scale == "standard":
                if value is None or len(value) != 3:
                    raise ValueError(f"InputSpec: scale='standard' needs {name} as 3 floats, got {value!r}.")
                object.__setattr__(self, name, tuple(float(v) for v in value))
            elif value is not None:
                raise ValueError(f"InputSpec: {name} is only used with scale='standard', got scale={self.scale!r}.")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and not all(math.isfinite(v) for v in value):
                raise ValueError(f"InputSpec: {name} must be finite, got {value!r}.")
        if self.std is not None and min(self.std) <= 0:
            raise ValueError(f"InputSpec: std must be positive, got {self.std!r}.")

    @property
    def resize_size(self) -> tuple[int, int]:
        """The size :func:`resize_images` produces (``pre_crop_size`` or ``image_size``)."""
        return self.pre_crop_size or self.image_size

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The model's ``input_shape`` (height, width, 3)."""
        return (*self.image_size, 3)

    def to_config(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_config` inverts it."""
        config = dataclasses.asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in config.items()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "InputSpec":
        unknown = set(config) - {field.name for field in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"InputSpec.from_config: unknown keys {sorted(unknown)}.")
        if "image_size" not in config:
            raise ValueError("InputSpec.from_config: missing key 'image_size'.")
        values = dict(config)
        for name in ("image_size", "pre_crop_size", "mean", "std"):
            if values.get(name) is not None:
                values[name] = tuple(values[name])
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_config(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "InputSpec":
        return cls.from_config(json.loads(text))


def _check_size(name: str, size: Any) -> tuple[int, int]:
    size = tuple(size)
    if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
        raise ValueError(f"InputSpec.{name} must be two positive ints (height, width), got {size!r}.")
    return size


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"InputSpec.{name} must be one of {allowed}, got {value!r}.")


def to_float_rgb(images: tf.Tensor, ops: str | Ops = "tensorflow") -> tf.Tensor:
    """uint8/uint16 or float images -> float32 RGB in [0, 1] (grey is repeated to RGB).

    Integer images are divided by their dtype's maximum; float images must already
    be in [0, 1]. Works on ``[H, W, C]`` and ``[B, H, W, C]`` with C = 1 or 3.
    """
    xp = tensor_ops(ops)
    images = xp.asarray(images)
    shape = xp.static_shape(images)
    if len(shape) not in (3, 4):
        raise ValueError(f"images: expected [H, W, C] or [batch, H, W, C], got shape {shape}.")
    if shape[-1] not in (1, 3):
        raise ValueError(f"images: expected 1 (grey) or 3 (RGB) channels in the last axis, got shape {shape}.")
    kind = xp.dtype_kind(images)
    if kind == "int":
        images = xp.to_unit_float(images)
    elif kind == "float":
        images = xp.cast(images, "float32")
    else:
        raise TypeError(f"images: expected an integer or float tensor, got dtype {kind}.")
    if shape[-1] == 1:
        images = xp.concatenate([images] * 3, axis=-1)
    return images


def gray_world(images: tf.Tensor, ops: str | Ops = "tensorflow") -> tf.Tensor:
    """Gray-world colour constancy (Barata et al. 2015, Minkowski norm p = 1; ARL-CNN Sec. V-F).

    The illuminant of each image is estimated as its per-channel mean ``e_c``; each
    channel is scaled by ``mean(e) / e_c``, so the image's average colour becomes grey
    while its average brightness stays; values are clipped to [0, 1]. Float RGB
    ``[H, W, 3]`` or ``[B, H, W, 3]`` in [0, 1]; an all-black channel is left as is.
    """
    xp = tensor_ops(ops)
    images = xp.cast(xp.asarray(images), "float32")
    illuminant = xp.mean(images, axis=(-3, -2), keepdims=True)
    grey = xp.mean(illuminant, axis=-1, keepdims=True)
    positive = illuminant > 0
    gain = xp.where(positive, grey / xp.where(positive, illuminant, 1.0), 1.0)
    return xp.clip(images * gain, 0.0, 1.0)


def _fit_and_resize(images: tf.Tensor, spec: InputSpec, method: str, pad_value: float, xp: Ops) -> tf.Tensor:
    if spec.fit == "pad":
        images = pad_to_square(images, pad_value, xp)
    elif spec.fit == "crop":
        images = centre_square_crop(images, spec.crop_fraction, xp)
    if tuple(xp.static_shape(images)[-3:-1]) == spec.resize_size:
        return images
    return xp.resize(images, spec.resize_size, method)


def corrected_rgb(images: tf.Tensor, spec: InputSpec, ops: str | Ops = "tensorflow") -> tf.Tensor:
    """Any image -> float32 RGB in [0, 1] with ``spec.colour_constancy`` applied to the
    whole image: the first step of every path (resized inputs, ARL's patches)."""
    images = to_float_rgb(images, ops)
    return gray_world(images, ops) if spec.colour_constancy == "gray_world" else images


def resize_images(images: tf.Tensor, spec: InputSpec, ops: str | Ops = "tensorflow") -> tf.Tensor:
    """Any image -> float32 RGB in [0, 1], fitted per ``spec.fit`` and resized to ``spec.resize_size``."""
    xp = tensor_ops(ops)
    images = _fit_and_resize(corrected_rgb(images, spec, xp), spec, spec.resize, GREY, xp)
    # Bicubic overshoots; clipping keeps every method in [0, 1].
    return xp.clip(images, 0.0, 1.0)


def resize_masks(masks: tf.Tensor, spec: InputSpec, ops: str | Ops = "tensorflow") -> tf.Tensor:
    """Masks ``[H, W, K]`` (or batched) with the images' geometry: padding 0, nearest neighbour.

    Values are never interpolated, so binary and class-index masks stay so; the
    dtype is kept.
    """
    xp = tensor_ops(ops)
    masks = xp.asarray(masks)
    if len(xp.static_shape(masks)) not in (3, 4):
        raise ValueError(f"masks: expected [H, W, K] or [batch, H, W, K], got shape {xp.static_shape(masks)}.")
    resized = _fit_and_resize(masks, spec, "nearest", 0, xp)
    return xp.cast(resized, masks.dtype)


def restore_geometry(
    maps: tf.Tensor,
    original_size: tuple[int, int],
    spec: InputSpec,
    method: str = "bilinear",
    *,
    fill: float | None = None,
    ops: str | Ops = "tensorflow",
) -> tf.Tensor:
    """Model-resolution maps ``[H, W, C]`` back onto the original image's pixels.

    The inverse of :func:`preprocess_images`' geometry (at evaluation: centred
    crops): ``fit="stretch"`` resizes to ``original_size``; ``fit="pad"`` resizes to
    the padded square and cuts the image region out of it (the grey borders are no
    pixels of the image and are not scored, A-PSPNet section IV-B); ``fit="crop"``
    and a ``pre_crop_size`` window drop pixels of the image, which get ``fill``
    (required then; e.g. 0 for an attention map that does not look there, AttnMel
    Table 3). The model's window is resized straight to its box in the original
    image, so no fill value is blended into it.

    Args:
        maps: ``[spec.image_size..., C]`` probabilities or class scores.
        original_size: ``(height, width)`` of the original image.
        method: ``tf.image.resize`` method (``"bilinear"`` for probabilities,
            ``"nearest"`` for labels).
        fill: the value of original pixels the model never saw.
        ops: ``"tensorflow"`` or ``"keras"`` (:mod:`data_tools.tensor_ops`).
    """
    height, width = (int(side) for side in original_size)
    if height < 1 or width < 1:
        raise ValueError(f"restore_geometry: original_size must be positive, got {original_size!r}.")
    xp = tensor_ops(ops)
    maps = xp.asarray(maps)
    # The region the fitted (pre-crop) image covers in the original: (top, left, height, width).
    if spec.fit == "stretch":
        region = (0.0, 0.0, float(height), float(width))
    elif spec.fit == "pad":
        side = max(height, width)
        region = (float(-((side - height) // 2)), float(-((side - width) // 2)), float(side), float(side))
    else:
        side = max(int(spec.crop_fraction * min(height, width)), 1)  # as centre_square_crop
        region = (float((height - side) // 2), float((width - side) // 2), float(side), float(side))
    # The model's window inside the resized image (a centred crop of pre_crop_size, if any).
    resized = spec.resize_size
    window_top, window_left = ((r - i) // 2 for r, i in zip(resized, spec.image_size, strict=True))
    scale_y, scale_x = region[2] / resized[0], region[3] / resized[1]
    top, left = region[0] + window_top * scale_y, region[1] + window_left * scale_x
    box = (round(top), round(left), round(spec.image_size[0] * scale_y), round(spec.image_size[1] * scale_x))
    window = xp.resize(maps, (max(box[2], 1), max(box[3], 1)), method)
    if box == (0, 0, height, width):
        return window
    # Cut the part of the window inside the image; pad what the window does not cover.
    cut_top, cut_left = max(-box[0], 0), max(-box[1], 0)
    inside = window[cut_top : cut_top + height - max(box[0], 0), cut_left : cut_left + width - max(box[1], 0)]
    pad_top, pad_left = max(box[0], 0), max(box[1], 0)
    pad_bottom = height - pad_top - int(xp.static_shape(inside)[0])
    pad_right = width - pad_left - int(xp.static_shape(inside)[1])
    if min(pad_top, pad_left, pad_bottom, pad_right) < 0:
        raise AssertionError(f"restore_geometry: window {box} does not fit {original_size}")
    if (pad_top, pad_left, pad_bottom, pad_right) != (0, 0, 0, 0) and fill is None:
        raise ValueError(
            f"restore_geometry: fit={spec.fit!r} with pre_crop_size={spec.pre_crop_size} leaves "
            "pixels of the image unseen; pass fill= for them (only fit='stretch' or 'pad' "
            "can be mapped back without)."
        )
    return xp.pad(inside, [[pad_top, pad_bottom], [pad_left, pad_right], [0, 0]], fill or 0)


def crop_images(images: tf.Tensor, spec: InputSpec, ops: str | Ops = "tensorflow") -> tf.Tensor:
    """The centred ``spec.image_size`` window of resized images (identity without ``pre_crop_size``)."""
    if spec.pre_crop_size is None:
        return images
    return centre_crop(images, spec.image_size, ops)


def normalize_images(images: tf.Tensor, spec: InputSpec, ops: str | Ops = "tensorflow") -> tf.Tensor:
    """Float32 RGB in [0, 1] (any size) -> the model's colour space and scale."""
    xp = tensor_ops(ops)
    images = xp.cast(xp.asarray(images), "float32")
    if spec.colour == "lab":
        images = rgb_to_lab_unit(images, xp)
    if spec.scale == "unit":
        return images
    if spec.scale == "raw255":
        return images * 255.0
    if spec.scale == "imagenet":
        return (images - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
    if spec.scale == "standard":
        return (images - np.float32(spec.mean)) / np.float32(spec.std)
    # "caffe"
    return xp.reverse_channels(images) * 255.0 - np.float32(CAFFE_BGR_MEAN)


def preprocess_images(images: tf.Tensor, spec: InputSpec, ops: str | Ops = "tensorflow") -> tf.Tensor:
    """Images of any size (uint8 or float in [0, 1], batched or not) -> model input.

    The evaluation transform of the training pipelines: :func:`resize_images`,
    :func:`crop_images`, :func:`normalize_images`. Returns float32
    ``[..., *spec.image_size, 3]``. ``ops="keras"`` computes the same numbers with
    ``keras.ops`` on the Keras backend in use (JAX, PyTorch: no TensorFlow needed).
    """
    return normalize_images(crop_images(resize_images(images, spec, ops), spec, ops), spec, ops)


def preprocess_label_maps(maps: tf.Tensor, spec: InputSpec, ops: str | Ops = "tensorflow") -> tf.Tensor:
    """Integer label maps at their image's size -> the model's map input (nearest neighbour).

    The evaluation transform that :func:`data_tools.pipeline.segmentation_dataset`
    applies to its ``extra_maps`` (SANet's superpixel maps): :func:`resize_masks`
    (the images' fit, padding label 0, nearest neighbour) then :func:`crop_images`.
    Labels are never interpolated and the dtype is kept, so a map bounded by
    ``max_segments`` stays so. Works on ``[H, W, 1]`` and ``[batch, H, W, 1]``;
    returns ``[..., *spec.image_size, 1]``.
    """
    return crop_images(resize_masks(maps, spec, ops), spec, ops)
