"""Joint image/mask augmentation in TF, deterministic under a per-element seed.

Every geometric transform draws its parameters once and applies them to the image
and to the masks, so the two stay aligned; masks are resampled with nearest
neighbour and keep their values (binary or class indices) and dtype. Photometric
transforms touch the image only. All randomness comes from stateless ops keyed by
``seed`` (int ``[2]``), so the same seed gives the same result in every run; the
pipelines derive one seed per element and epoch (``data_tools.pipeline``).

Paper recipes (see the presets at the bottom):

* ARL-CNN (Zhang et al., ARL-CNN, IEEE TMI 2019, section IV.B): random rotation in [-10, +10] degrees, zoom
  90-110 % of width and height, horizontal and vertical flips.
* AttnMel (the authors' code, SaoYan/IPMI2019-AttnMel): random crop 224 (done by the pipeline through
  ``InputSpec.pre_crop_size``), random 90-degree rotation, flips.
* SANet (the SANet paper, "Data augmentation"): Gaussian noise, random contrast and
  random sharpness (Gaussian blur of different sizes; sharpening by CLAHE,
  :mod:`data_tools.clahe`, and by imgaug's emboss), and nothing else: the paper names
  no flips or rotations (``zoo.sanet.recipe.SANET_GEOMETRIC_AUGMENTATION`` adds flips
  and 90-degree rotations as an option).
"""

from __future__ import annotations

import dataclasses
import math

from data_tools.clahe import checked_tile_grid, clahe, clahe_lightness
from data_tools.lazy_tensorflow import lazy_tensorflow

tf = lazy_tensorflow("the tf.data augmentation (data_tools.augment)")

FILL_MODES = ("reflect", "constant", "nearest", "wrap")
INTERPOLATIONS = ("bilinear", "nearest")
NOISE_TYPES = ("additive", "additive_grey", "multiplicative")
"""Gaussian noise kinds: ``additive`` (independent per pixel and channel),
``additive_grey`` (one draw per pixel, the same in every channel, imgaug's
``per_channel=False``) and ``multiplicative`` (speckle: ``x * (1 + n)``)."""
# One independent stream per random transform below. Only ever append: the first n
# of stateless_split(seed, m) are stateless_split(seed, n), so a new transform leaves
# the draws of the older ones, and seeded results without it, unchanged.
_NUM_SEEDS = 9


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """A joint image/mask augmentation; all transforms are off by default.

    Attributes:
        horizontal_flip, vertical_flip: flip with probability 0.5.
        rotate90: rotate by a uniformly drawn multiple of 90 degrees (square inputs).
        rotation_degrees: rotate by an angle uniform in [-r, r] degrees.
        zoom: ``(low, high)``: scale width and height independently by factors
            uniform in [low, high] (> 1 magnifies), about the image centre.
        fill_mode: how rotation/zoom fill pixels from outside the image; the
            same mode is used for masks so they stay aligned ("constant" fills 0).
        interpolation: image resampling for rotation/zoom (masks: always nearest).
        brightness: add a delta uniform in [-b, b] (images in [0, 1]).
        contrast: ``(low, high)``: scale the deviation from the per-channel mean
            by a factor uniform in [low, high].
        noise_std: ``(low, high)``: add Gaussian noise whose standard deviation is
            drawn uniformly in [low, high].
        noise_types: the kinds of Gaussian noise (:data:`NOISE_TYPES`); each image
            gets one, drawn uniformly.
        blur_sigma: ``(low, high)``: Gaussian blur with sigma uniform in
            [low, high] pixels, applied with probability ``blur_probability``.
        clahe_clip_limit: ``(low, high)``: CLAHE (:func:`data_tools.clahe.clahe`,
            OpenCV's relative clip limit uniform in [low, high], a
            ``clahe_tile_grid`` of tiles) with probability ``clahe_probability``;
            RGB images are equalised in their lightness (HSV value, colours kept,
            :func:`~data_tools.clahe.clahe_lightness`), other images per channel.
        emboss_alpha: ``(low, high)``: imgaug's ``Emboss`` (:func:`emboss`) with
            blend factor uniform in [low, high] (within [0, 1]) and strength uniform
            in ``emboss_strength``, with probability ``emboss_probability``.

    Order: geometry; brightness, contrast, CLAHE, emboss, noise, blur (sharpening
    acts on the image before noise is added, so it does not amplify the noise).
    """

    horizontal_flip: bool = False
    vertical_flip: bool = False
    rotate90: bool = False
    rotation_degrees: float = 0.0
    zoom: tuple[float, float] | None = None
    fill_mode: str = "reflect"
    interpolation: str = "bilinear"
    brightness: float = 0.0
    contrast: tuple[float, float] | None = None
    noise_std: tuple[float, float] | None = None
    noise_types: tuple[str, ...] = ("additive",)
    blur_sigma: tuple[float, float] | None = None
    blur_probability: float = 0.5
    clahe_clip_limit: tuple[float, float] | None = None
    clahe_tile_grid: tuple[int, int] = (8, 8)
    clahe_probability: float = 0.5
    emboss_alpha: tuple[float, float] | None = None
    emboss_strength: tuple[float, float] = (0.25, 1.0)
    emboss_probability: float = 0.5

    def __post_init__(self):
        if self.fill_mode not in FILL_MODES:
            raise ValueError(f"Augmentation.fill_mode must be one of {FILL_MODES}, got {self.fill_mode!r}.")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"Augmentation.interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}.")
        if not 0.0 <= self.rotation_degrees <= 180.0:
            raise ValueError(f"Augmentation.rotation_degrees must be in [0, 180], got {self.rotation_degrees!r}.")
        if not 0.0 <= self.brightness <= 1.0:
            raise ValueError(f"Augmentation.brightness must be in [0, 1], got {self.brightness!r}.")
        types = tuple(self.noise_types)
        if not types or any(kind not in NOISE_TYPES for kind in types) or len(set(types)) != len(types):
            raise ValueError(
                f"Augmentation.noise_types must be distinct values of {NOISE_TYPES}, got {self.noise_types!r}."
            )
        object.__setattr__(self, "noise_types", types)
        for name in ("blur_probability", "clahe_probability", "emboss_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"Augmentation.{name} must be in [0, 1], got {getattr(self, name)!r}.")
        ranges = (
            ("zoom", 1e-3, math.inf),
            ("contrast", 0.0, math.inf),
            ("noise_std", 0.0, math.inf),
            ("blur_sigma", 1e-3, math.inf),
            ("clahe_clip_limit", 1e-3, math.inf),
            ("emboss_alpha", 0.0, 1.0),
            ("emboss_strength", 0.0, math.inf),
        )
        for name, minimum, maximum in ranges:
            value = getattr(self, name)
            if value is None:
                continue
            if len(value) != 2 or not minimum <= value[0] <= value[1] <= maximum:
                bounds = f"{minimum} <= low <= high" + ("" if maximum == math.inf else f" <= {maximum}")
                raise ValueError(f"Augmentation.{name} must be (low, high) with {bounds}, got {value!r}.")
            object.__setattr__(self, name, (float(value[0]), float(value[1])))
        grid = checked_tile_grid(self.clahe_tile_grid, "Augmentation.clahe_tile_grid")
        object.__setattr__(self, "clahe_tile_grid", grid)

    def __call__(
        self, image: tf.Tensor, mask: tf.Tensor | None = None, *, seed: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor | None]:
        """Augment ``image`` (float ``[H, W, C]`` in [0, 1]) and ``mask`` (``[H, W, K]``) alike.

        Returns ``(image, mask)`` (``mask`` is None when none was given); the image
        is float32 clipped to [0, 1], the mask has its input dtype and values.
        """
        image = tf.convert_to_tensor(image, tf.float32)
        if image.shape.rank != 3:
            raise ValueError(f"Augmentation: expected one image [H, W, C], got shape {image.shape}.")
        if mask is not None:
            mask = tf.convert_to_tensor(mask)
            if mask.shape.rank != 3:
                raise ValueError(f"Augmentation: expected a mask [H, W, K], got shape {mask.shape}.")
        seeds = tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), _NUM_SEEDS))
        image, mask = self._geometric(image, mask, seeds[:3])
        image = self._photometric(image, seeds[3:])
        return tf.clip_by_value(image, 0.0, 1.0), mask

    # ------------------------------------------------------------------ geometry

    def _geometric(self, image, mask, seeds):
        flip_seed, rot90_seed, affine_seed = seeds
        both = [image] if mask is None else [image, mask]
        if self.horizontal_flip or self.vertical_flip:
            flips = tf.random.stateless_uniform((2,), flip_seed) < 0.5
            if self.horizontal_flip:
                both = [tf.where(flips[0], tf.reverse(x, [1]), x) for x in both]
            if self.vertical_flip:
                both = [tf.where(flips[1], tf.reverse(x, [0]), x) for x in both]
        if self.rotate90:
            height, width = image.shape[0], image.shape[1]
            if height is None or width is None or height != width:
                raise ValueError(f"Augmentation.rotate90 needs square images of static size, got shape {image.shape}.")
            quarter_turns = tf.random.stateless_uniform((), rot90_seed, 0, 4, dtype=tf.int32)
            both = [tf.ensure_shape(tf.image.rot90(x, quarter_turns), x.shape) for x in both]
        if self.rotation_degrees > 0 or self.zoom is not None:
            transform = self._affine_transform(tf.shape(image)[0], tf.shape(image)[1], affine_seed)
            both[0] = _warp(both[0], transform, self.interpolation, self.fill_mode)
            if mask is not None:
                both[1] = tf.cast(_warp(tf.cast(both[1], tf.float32), transform, "nearest", self.fill_mode), mask.dtype)
        return both[0], (None if mask is None else both[1])

    def _affine_transform(self, height, width, seed) -> tf.Tensor:
        """The ``[1, 8]`` output-to-input map: rotate by theta and zoom about the centre."""
        draws = tf.random.stateless_uniform((3,), seed)
        max_angle = math.radians(self.rotation_degrees)
        angle = (2.0 * draws[0] - 1.0) * max_angle
        zoom_x = _within(self.zoom or (1.0, 1.0), draws[1])
        zoom_y = _within(self.zoom or (1.0, 1.0), draws[2])
        cos, sin = tf.cos(angle), tf.sin(angle)
        centre_x = (tf.cast(width, tf.float32) - 1.0) / 2.0
        centre_y = (tf.cast(height, tf.float32) - 1.0) / 2.0
        # input = centre + diag(1/zoom) R(angle) (output - centre)
        a0, a1 = cos / zoom_x, -sin / zoom_x
        b0, b1 = sin / zoom_y, cos / zoom_y
        a2 = centre_x - a0 * centre_x - a1 * centre_y
        b2 = centre_y - b0 * centre_x - b1 * centre_y
        return tf.stack([a0, a1, a2, b0, b1, b2, 0.0, 0.0])[None]

    # ------------------------------------------------------------- photometric

    def _photometric(self, image, seeds):
        brightness_seed, contrast_seed, noise_seed, blur_seed, clahe_seed, emboss_seed = seeds
        if self.brightness > 0:
            image = tf.image.stateless_random_brightness(image, self.brightness, brightness_seed)
        if self.contrast is not None:
            image = tf.image.stateless_random_contrast(image, *self.contrast, contrast_seed)
        if self.clahe_clip_limit is not None:
            image = self._random_clahe(image, clahe_seed)
        if self.emboss_alpha is not None:
            image = self._random_emboss(image, emboss_seed)
        if self.noise_std is not None:
            image = self._random_noise(image, noise_seed)
        if self.blur_sigma is not None:
            draws = tf.random.stateless_uniform((2,), blur_seed)
            sigma = _within(self.blur_sigma, draws[0])
            radius = max(1, math.ceil(3.0 * self.blur_sigma[1]))
            image = tf.cond(
                draws[1] < self.blur_probability, lambda: gaussian_blur(image, sigma, radius), lambda: image
            )
        return image

    def _random_noise(self, image, seed):
        std_seed, pixel_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        std = tf.random.stateless_uniform((), std_seed, *self.noise_std)
        shape = tf.shape(image)
        kinds = {
            "additive": lambda: image + std * tf.random.stateless_normal(shape, pixel_seed),
            "additive_grey": lambda: image + std * tf.random.stateless_normal(shape[:-1], pixel_seed)[..., None],
            "multiplicative": lambda: image * (1.0 + std * tf.random.stateless_normal(shape, pixel_seed)),
        }
        if len(self.noise_types) == 1:
            return kinds[self.noise_types[0]]()
        kind_seed = tf.random.experimental.stateless_fold_in(seed, 1)
        index = tf.random.stateless_uniform((), kind_seed, 0, len(self.noise_types), dtype=tf.int32)
        return tf.switch_case(index, [kinds[kind] for kind in self.noise_types])

    def _random_clahe(self, image, seed):
        draws = tf.random.stateless_uniform((2,), seed)
        clip_limit = _within(self.clahe_clip_limit, draws[0])
        equalise = clahe_lightness if image.shape[-1] == 3 else clahe
        return tf.cond(
            draws[1] < self.clahe_probability,
            lambda: equalise(image, clip_limit, self.clahe_tile_grid),
            lambda: image,
        )

    def _random_emboss(self, image, seed):
        draws = tf.random.stateless_uniform((3,), seed)
        alpha, strength = _within(self.emboss_alpha, draws[0]), _within(self.emboss_strength, draws[1])
        return tf.cond(draws[2] < self.emboss_probability, lambda: emboss(image, alpha, strength), lambda: image)


def _within(bounds: tuple[float, float], draw: tf.Tensor) -> tf.Tensor:
    """Map a uniform draw in [0, 1) onto [low, high)."""
    return bounds[0] + (bounds[1] - bounds[0]) * draw


def _warp(image: tf.Tensor, transform: tf.Tensor, interpolation: str, fill_mode: str) -> tf.Tensor:
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform,
        output_shape=tf.shape(image)[:2],
        fill_value=0.0,
        interpolation=interpolation.upper(),
        fill_mode=fill_mode.upper(),
    )
    return warped[0]


def gaussian_blur(image: tf.Tensor, sigma: tf.Tensor | float, radius: int) -> tf.Tensor:
    """Separable Gaussian blur of ``[H, W, C]`` with reflected borders.

    The kernel has the static size ``2 radius + 1`` (so sigma may be a tensor) and
    is normalised to sum 1.
    """
    if radius < 1:
        raise ValueError(f"gaussian_blur: radius must be >= 1, got {radius}.")
    image = tf.convert_to_tensor(image, tf.float32)
    offsets = tf.range(-radius, radius + 1, dtype=tf.float32)
    weights = tf.exp(-0.5 * tf.square(offsets / tf.cast(sigma, tf.float32)))
    weights = weights / tf.reduce_sum(weights)
    padded = tf.pad(image[None], [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    blurred = _filter_each_channel(padded, tf.reshape(weights, (-1, 1)))
    return _filter_each_channel(blurred, tf.reshape(weights, (1, -1)))[0]


def emboss(image: tf.Tensor, alpha: tf.Tensor | float, strength: tf.Tensor | float) -> tf.Tensor:
    """imgaug's ``Emboss`` of ``[H, W, C]``: a 3x3 relief filter blended with the identity.

    The filter is ``(1 - alpha) I + alpha E`` with ``I`` the identity kernel and
    ``E = [[-1 - s, -s, 0], [-s, 1, s], [0, s, 1 + s]]`` (``s = strength``), i.e.
    ``(1 - alpha) image + alpha (E * image)``. It is applied as ``cv2.filter2D``
    (imgaug's implementation) applies it: as a correlation (kernel not flipped),
    with reflected borders (edge pixel not repeated). The output is not clipped.
    """
    image = tf.convert_to_tensor(image, tf.float32)
    if image.shape.rank != 3 or image.shape[-1] is None:
        raise ValueError(f"emboss: expected one image [H, W, C] with a known channel count, got shape {image.shape}.")
    alpha, strength = tf.cast(alpha, tf.float32), tf.cast(strength, tf.float32)
    identity = tf.constant([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    relief_at_zero_strength = tf.constant([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    relief_per_strength = tf.constant([[-1.0, -1.0, 0.0], [-1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    relief = relief_at_zero_strength + strength * relief_per_strength
    kernel = (1.0 - alpha) * identity + alpha * relief
    padded = tf.pad(image[None], [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
    return _filter_each_channel(padded, kernel)[0]


def _filter_each_channel(images: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """Correlate every channel of ``images`` ``[N, H, W, C]`` with the 2-D ``kernel`` (no padding)."""
    kernel = tf.tile(kernel[:, :, None, None], (1, 1, images.shape[-1], 1))
    return tf.nn.depthwise_conv2d(images, kernel, (1, 1, 1, 1), "VALID")


def joint_random_crop(
    image: tf.Tensor, mask: tf.Tensor | None, size: tuple[int, int], seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor | None]:
    """The same uniformly placed ``size`` window of ``image`` ``[H, W, C]`` and ``mask`` ``[H, W, K]``."""
    image = tf.convert_to_tensor(image)
    mask = None if mask is None else tf.convert_to_tensor(mask)
    shape = tf.shape(image)
    top_seed, left_seed = tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2))
    top = tf.random.stateless_uniform((), top_seed, 0, shape[0] - size[0] + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform((), left_seed, 0, shape[1] - size[1] + 1, dtype=tf.int32)

    def crop(x):
        # A static window size, so later static-shape steps (rot90 of squares) accept it.
        window = x[top : top + size[0], left : left + size[1], :]
        return tf.ensure_shape(window, (size[0], size[1], x.shape[-1]))

    return crop(image), (None if mask is None else crop(mask))
