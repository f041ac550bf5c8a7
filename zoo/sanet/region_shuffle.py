"""SANet's random shuffle module (RSM) as a tf.data transform.

SANet (sanet.txt, Methodology, "Random shuffle module") deconstructs training
images as in Destruction and Construction Learning (DCL, Chen et al. 2019): the
image is split into 7x7 regions, the regions are shuffled with their neighbours
"according to uniform distribution in a row-major order", and the shuffled
regions are reassembled; "the ratio of the destructed images in batch [is] 1:1".

The shuffle is DCL's region confusion mechanism: in every row of the grid, region
``i`` gets the sort key ``i + r`` with ``r ~ U(-k, k)`` and the row is reordered by
the keys; then every column likewise. ``k`` (``neighbourhood``) bounds the move:
a region ends fewer than ``2k`` places from where it started along each axis.
DCL's value ``k = 2`` is the default (the SANet paper gives none).

Masks and superpixel maps are shuffled with their image, by the same permutation,
so targets stay aligned (the paper shuffles the labels too: "noisy supervision
signal from shuffled labels", Fig. 2). When the size is not a multiple of the
grid, the last ``H mod 7`` rows and ``W mod 7`` columns stay in place (regions
must have equal sizes to trade places), so the output is always a permutation of
the input's pixels.

Usage, on batches (after ``.batch``)::

    rsm = RegionShuffle()
    train = rsm.apply(train, seed=0)   # ((image, superpixels), masks) batches

Elements at odd positions of each batch (1, 3, ...) are shuffled, the others are
kept: 1:1 in a batch of even size (2 of 5 in SANet's batch of 5), and since the
pipeline shuffles samples first, which samples are deconstructed is random.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf

#: SANet's grid: 7x7 regions.
RSM_GRID = 7
#: DCL's neighbourhood range ``k``.
RSM_NEIGHBOURHOOD = 2


def region_permutation(seed: tf.Tensor, grid: int = RSM_GRID,
                       neighbourhood: float = RSM_NEIGHBOURHOOD) -> tf.Tensor:
    """DCL's region confusion: ``int32 [grid * grid]``, output region -> source region.

    Regions are numbered in row-major order. Rows are reordered first (each by
    ``argsort(i + U(-k, k))``), then columns. Deterministic for a given ``seed``
    (int ``[2]``).
    """
    row_seed, column_seed = tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2))
    positions = tf.range(grid, dtype=tf.float32)

    def order(key_seed: tf.Tensor) -> tf.Tensor:
        jitter = tf.random.stateless_uniform((grid, grid), key_seed, -neighbourhood, neighbourhood)
        return tf.argsort(positions + jitter, axis=-1, stable=True)

    cells = tf.reshape(tf.range(grid * grid, dtype=tf.int32), (grid, grid))
    rows_shuffled = tf.gather(cells, order(row_seed), batch_dims=1)
    columns_shuffled = tf.gather(tf.transpose(rows_shuffled), order(column_seed), batch_dims=1)
    return tf.reshape(tf.transpose(columns_shuffled), [-1])


def shuffle_regions(images: tf.Tensor, permutation: tf.Tensor, grid: int = RSM_GRID) -> tf.Tensor:
    """Rearranges the regions of ``images`` ``(B, H, W[, C])``.

    Args:
        images: any dtype; rank 3 (e.g. label maps) or 4.
        permutation: ``int32 (B, grid * grid)``: output region -> source region
            (row-major), one per image.
        grid: regions per side.

    Returns:
        ``images`` with region ``j`` of image ``b`` taken from region
        ``permutation[b, j]``; the remainder rows/columns (``H mod grid``,
        ``W mod grid``) unchanged.
    """
    images = tf.convert_to_tensor(images)
    rank = images.shape.rank
    if rank not in (3, 4):
        raise ValueError(f"shuffle_regions: expected (batch, H, W) or (batch, H, W, C), got shape {images.shape}.")
    height, width = images.shape[1], images.shape[2]
    if (height is not None and height < grid) or (width is not None and width < grid):
        raise ValueError(f"shuffle_regions: images of {height}x{width} are smaller than the {grid}x{grid} grid.")
    x = images if rank == 4 else images[..., None]
    shape = tf.shape(x)
    batch, cell_h, cell_w, channels = shape[0], shape[1] // grid, shape[2] // grid, shape[3]
    core = x[:, : grid * cell_h, : grid * cell_w]
    cells = tf.reshape(core, [batch, grid, cell_h, grid, cell_w, channels])
    cells = tf.reshape(tf.transpose(cells, [0, 1, 3, 2, 4, 5]), [batch, grid * grid, cell_h, cell_w, channels])
    cells = tf.gather(cells, permutation, batch_dims=1)
    cells = tf.transpose(tf.reshape(cells, [batch, grid, grid, cell_h, cell_w, channels]), [0, 1, 3, 2, 4, 5])
    core = tf.reshape(cells, [batch, grid * cell_h, grid * cell_w, channels])
    core = tf.concat([core, x[:, : grid * cell_h, grid * cell_w:]], axis=2)
    shuffled = tf.ensure_shape(tf.concat([core, x[:, grid * cell_h:]], axis=1), x.shape)
    return shuffled if rank == 4 else shuffled[..., 0]


@dataclasses.dataclass(frozen=True)
class RegionShuffle:
    """The random shuffle module on batches: odd positions shuffled, even ones kept.

    Attributes:
        grid: regions per side (SANet: 7).
        neighbourhood: DCL's ``k``, the range of the uniform jitter (>= 0; 0
            keeps every region in place).
    """

    grid: int = RSM_GRID
    neighbourhood: float = RSM_NEIGHBOURHOOD

    def __post_init__(self) -> None:
        if isinstance(self.grid, bool) or not isinstance(self.grid, int) or self.grid < 1:
            raise ValueError(f"RegionShuffle.grid must be a positive int, got {self.grid!r}.")
        if not self.neighbourhood >= 0:
            raise ValueError(f"RegionShuffle.neighbourhood must be >= 0, got {self.neighbourhood!r}.")

    def permutations(self, batch_size: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """``int32 (batch, grid * grid)``: a drawn permutation at odd positions, identity at even."""
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), batch_size)
        drawn = tf.map_fn(lambda s: region_permutation(s, self.grid, self.neighbourhood), seeds,
                          fn_output_signature=tf.int32)
        identity = tf.broadcast_to(tf.range(self.grid * self.grid, dtype=tf.int32), tf.shape(drawn))
        odd = tf.range(batch_size) % 2 == 1
        return tf.where(odd[:, None], drawn, identity)

    def __call__(self, batch: Any, seed: tf.Tensor) -> Any:
        """Shuffles every spatial tensor (rank 3 or 4) of a nested ``batch`` alike.

        All of them must share the batch size, height and width; tensors of lower
        rank (labels) pass through.
        """
        spatial = [t for t in tf.nest.flatten(batch) if t.shape.rank in (3, 4)]
        if not spatial:
            raise ValueError("RegionShuffle: the batch holds no (batch, H, W[, C]) tensor to shuffle.")
        sizes = {tuple(t.shape[:3]) for t in spatial}
        if len(sizes) > 1:
            raise ValueError(
                f"RegionShuffle: image, masks and maps must share (batch, H, W) to be shuffled alike, "
                f"got {sorted(sizes, key=str)}.")
        permutations = self.permutations(tf.shape(spatial[0])[0], seed)
        return tf.nest.map_structure(
            lambda t: shuffle_regions(t, permutations, self.grid) if t.shape.rank in (3, 4) else t, batch)

    def apply(self, dataset: tf.data.Dataset, seed: int = 0) -> tf.data.Dataset:
        """The transform on a batched dataset; new draws every epoch, the same for a given seed."""
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        return tf.data.Dataset.zip(dataset, seeds).map(
            lambda batch, pair: self(batch, pair), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
