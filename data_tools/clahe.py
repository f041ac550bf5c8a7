"""Contrast-limited adaptive histogram equalisation (CLAHE) in pure TensorFlow.

SANet (the SANet paper, "Data augmentation") sharpens training images "by employing
CLAHE", following the recipe of Jahanifar et al. (2018). This is Zuiderveld's
CLAHE with OpenCV's conventions (``cv2.createCLAHE``), so ``clahe`` on a
``uint8 / 255`` image agrees with OpenCV to within one grey level:

1. The image is cut into a ``rows x cols`` grid of equal tiles. When a side is not
   a multiple of its tile count, the image is first padded at the bottom and right
   by reflection (edge pixel not repeated, OpenCV's ``BORDER_REFLECT_101``), as
   OpenCV does it: *both* sides by ``tiles - size % tiles`` pixels, a whole tile
   count on a side that already was a multiple.
2. Every tile gets a ``bins``-level histogram. Bins above the clip limit
   ``max(int(clip_limit * tile_area / bins), 1)`` are cut to it; the excess is
   spread evenly over all bins and its remainder one count at a time over every
   ``bins // remainder``-th bin from the first.
3. Every tile's mapping is its clipped cumulative histogram divided by the tile
   area (a value in [0, 1]).
4. Every pixel is mapped by bilinear interpolation between the mappings of the
   four tiles whose centres surround it (the nearest ones at the borders).

The one difference from OpenCV: the mappings are not rounded to 8 bits (the output
is float).

Everything is plain TF (histograms by ``bincount``, mappings by ``gather``), so it
runs in graph mode and inside ``tf.data`` maps, with static or dynamic image
sizes; ``clip_limit`` may be a tensor (a randomly drawn limit).
"""

from __future__ import annotations

from data_tools.lazy_tensorflow import lazy_tensorflow

tf = lazy_tensorflow("CLAHE (data_tools.clahe)")


def clahe(
    image: tf.Tensor,
    clip_limit: float | tf.Tensor | None = 2.0,
    tile_grid: tuple[int, int] = (8, 8),
    bins: int = 256,
) -> tf.Tensor:
    """CLAHE of every channel of ``image`` (float ``[H, W, C]`` in [0, 1]) on its own.

    Args:
        image: float image; values are quantised to ``bins`` levels
            (``round(x * (bins - 1))``, values outside [0, 1] saturate).
        clip_limit: OpenCV's relative clip limit (``clipLimit``: a multiple of the
            mean bin count), > 0; None turns clipping off (plain adaptive
            histogram equalisation).
        tile_grid: ``(rows, cols)`` of tiles (OpenCV's ``tileGridSize`` is
            ``(cols, rows)``); each side of the image needs more pixels than tiles.
        bins: number of histogram bins / grey levels (256 for 8-bit images).

    Returns:
        float32 ``[H, W, C]`` in [0, 1], the same static shape as ``image``.
    """
    image = _checked_image(image)
    rows, cols = checked_tile_grid(tile_grid)
    if not isinstance(bins, int) or bins < 2:
        raise ValueError(f"clahe: bins must be an integer >= 2, got {bins!r}.")
    if isinstance(clip_limit, (int, float)) and not clip_limit > 0:
        raise ValueError(f"clahe: clip_limit must be > 0 or None, got {clip_limit!r}.")

    height, width = _checked_size(image, rows, cols)
    channels = image.shape[-1]
    levels = tf.cast(tf.round(tf.clip_by_value(image, 0.0, 1.0) * (bins - 1)), tf.int32)
    needs_padding = tf.cast((height % rows != 0) | (width % cols != 0), tf.int32)
    pad_rows, pad_cols = needs_padding * (rows - height % rows), needs_padding * (cols - width % cols)
    padded = tf.pad(levels, [[0, pad_rows], [0, pad_cols], [0, 0]], mode="REFLECT")
    tile_height, tile_width = (height + pad_rows) // rows, (width + pad_cols) // cols

    histograms = _tile_histograms(padded, tile_height, tile_width, rows, cols, channels, bins)
    tile_area = tile_height * tile_width
    if clip_limit is not None:
        histograms = _clip_and_redistribute(histograms, clip_limit, tile_area, bins)
    mappings = tf.cumsum(tf.cast(histograms, tf.float32), axis=-1) / tf.cast(tile_area, tf.float32)
    return _interpolate(mappings, levels, tile_height, tile_width, rows, cols)


def clahe_lightness(
    rgb: tf.Tensor,
    clip_limit: float | tf.Tensor | None = 2.0,
    tile_grid: tuple[int, int] = (8, 8),
    bins: int = 256,
) -> tf.Tensor:
    """CLAHE of the lightness of ``rgb`` (float ``[H, W, 3]`` in [0, 1]), keeping its colours.

    The lightness is the HSV value ``V = max(R, G, B)``; the output is the image with
    ``V`` replaced by ``clahe(V)`` and hue and saturation unchanged, i.e. every pixel
    scaled by ``clahe(V) / V`` (black pixels become the grey ``clahe(V)``).
    Equalising R, G and B separately would shift hues, which carry the dermoscopic
    colour cues; HSV value is one of the lightness channels imgaug's ``CLAHE`` (the
    reference code's library) equalises, and unlike CIELAB's L it needs no round
    trip through a non-linear colour space.

    Arguments as :func:`clahe`.
    """
    rgb = _checked_image(rgb)
    if rgb.shape[-1] != 3:
        raise ValueError(f"clahe_lightness: expected an RGB image [H, W, 3], got shape {rgb.shape}.")
    rgb = tf.clip_by_value(rgb, 0.0, 1.0)
    value = tf.reduce_max(rgb, axis=-1, keepdims=True)
    equalised = clahe(value, clip_limit, tile_grid, bins)
    return tf.where(value > 0, rgb * (equalised / tf.maximum(value, 1e-12)), equalised)


def _checked_image(image: tf.Tensor) -> tf.Tensor:
    image = tf.convert_to_tensor(image)
    if not image.dtype.is_floating:
        raise TypeError(f"clahe: expected a float image in [0, 1], got dtype {image.dtype.name}.")
    if image.shape.rank != 3 or image.shape[-1] is None:
        raise ValueError(f"clahe: expected one image [H, W, C] with a known channel count, got shape {image.shape}.")
    return tf.cast(image, tf.float32)


def checked_tile_grid(tile_grid: tuple[int, int], argument: str = "clahe: tile_grid") -> tuple[int, int]:
    """``tile_grid`` as ``(rows, cols)``; a ValueError naming ``argument`` unless two positive integers."""
    if len(tile_grid) != 2 or not all(isinstance(n, int) and n >= 1 for n in tile_grid):
        raise ValueError(f"{argument} must be (rows, cols) of positive integers, got {tile_grid!r}.")
    return tile_grid[0], tile_grid[1]


def _checked_size(image: tf.Tensor, rows: int, cols: int) -> tuple[tf.Tensor, tf.Tensor]:
    """The image's height and width (tensors); each side needs more pixels than tiles (for the padding)."""
    static_height, static_width = image.shape[0], image.shape[1]
    if (static_height is not None and static_height <= rows) or (static_width is not None and static_width <= cols):
        raise ValueError(
            f"clahe: an image of shape {image.shape} is too small for the tile grid ({rows}, {cols}): "
            "each side needs more pixels than tiles."
        )
    shape = tf.shape(image)
    message = f"clahe: the image is too small for the tile grid ({rows}, {cols})"
    with tf.control_dependencies([tf.debugging.assert_greater(shape[:2], tf.constant([rows, cols]), message=message)]):
        return tf.identity(shape[0]), tf.identity(shape[1])


def _tile_histograms(levels, tile_height, tile_width, rows, cols, channels, bins) -> tf.Tensor:
    """int32 ``[rows, cols, C, bins]`` counts of the padded ``levels`` in every tile."""
    tile_row = (tf.range(tf.shape(levels)[0]) // tile_height)[:, None, None]
    tile_col = (tf.range(tf.shape(levels)[1]) // tile_width)[None, :, None]
    channel = tf.range(channels)[None, None, :]
    ids = ((tile_row * cols + tile_col) * channels + channel) * bins + levels
    size = rows * cols * channels * bins
    counts = tf.math.bincount(tf.reshape(ids, [-1]), minlength=size, maxlength=size, dtype=tf.int32)
    return tf.reshape(counts, (rows, cols, channels, bins))


def _clip_and_redistribute(histograms, clip_limit, tile_area, bins) -> tf.Tensor:
    """Step 2: clip every histogram at the limit and hand the excess back out (as OpenCV)."""
    limit = tf.cast(tf.cast(clip_limit, tf.float32) * tf.cast(tile_area, tf.float32) / bins, tf.int32)
    limit = tf.maximum(limit, 1)
    excess = tf.reduce_sum(tf.maximum(histograms - limit, 0), axis=-1, keepdims=True)
    clipped = tf.minimum(histograms, limit) + excess // bins
    remainder = excess % bins
    step = tf.maximum(bins // tf.maximum(remainder, 1), 1)
    index = tf.range(bins)
    return clipped + tf.cast((index % step == 0) & (index // step < remainder), tf.int32)


def _interpolate(mappings, levels, tile_height, tile_width, rows, cols) -> tf.Tensor:
    """Step 4: bilinear blend of the four surrounding tiles' mappings at every pixel."""
    channels, bins = mappings.shape[-2], mappings.shape[-1]
    top, bottom, down = _neighbour_tiles(tf.shape(levels)[0], tile_height, rows)
    left, right, across = _neighbour_tiles(tf.shape(levels)[1], tile_width, cols)
    top, bottom, down = top[:, None, None], bottom[:, None, None], down[:, None, None]
    left, right, across = left[None, :, None], right[None, :, None], across[None, :, None]
    flat = tf.reshape(mappings, [-1])
    pixel = tf.range(channels)[None, None, :] * bins + levels

    def lookup(row, col):
        return tf.gather(flat, (row * cols + col) * (channels * bins) + pixel)

    upper = lookup(top, left) * (1.0 - across) + lookup(top, right) * across
    lower = lookup(bottom, left) * (1.0 - across) + lookup(bottom, right) * across
    return upper * (1.0 - down) + lower * down


def _neighbour_tiles(size, tile_size, count) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Along one axis: the tiles before/after every pixel's position among tile centres, and its weight."""
    position = tf.cast(tf.range(size), tf.float32) / tf.cast(tile_size, tf.float32) - 0.5
    before = tf.floor(position)
    weight = position - before
    before = tf.cast(before, tf.int32)
    return tf.clip_by_value(before, 0, count - 1), tf.clip_by_value(before + 1, 0, count - 1), weight
