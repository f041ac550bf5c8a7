"""SANet's random shuffle module (RSM) as a tf.data transform.

SANet (the SANet paper, Methodology, "Random shuffle module") deconstructs training
images as in Destruction and Construction Learning (DCL, Chen et al. 2019): "we
partition an input image into 7 x 7 sub-regions. Second, shuffling sub-regions with
their nearest neighbors according to uniform distribution in a row-major order.
Finally, these random shuffled sub-regions are assembled. Noted, in order to avoid
that the original images are overwhelmed by the destructed images, we set the
ratio of the destructed images in batch to 1:1."

**The shuffle** is DCL's region confusion mechanism: in every row of the grid,
region ``i`` gets the sort key ``i + r`` with ``r ~ U(-k, k)`` and the row is
reordered by the keys; then every column likewise. Two regions ``2k`` or more
apart never trade places, so a region ends fewer than ``2k`` cells from where it
started along each axis. "Nearest neighbors" reads as moves of one cell:
:data:`RSM_NEIGHBOURHOOD` ``k = 1`` (a region stays or trades places with the
region beside it, along rows and then along columns, so at most one cell along
each axis). DCL's own ``k = 2`` (:data:`DCL_NEIGHBOURHOOD`, moves of up to three
cells) is the wider option.

**The 1:1 ratio.** The paper's mini-batch holds 5 images, which no split makes
1:1, so we read the ratio as DCL implements it: every sampled image is paired with
its destructed copy (DCL's ``collate_fn4train`` stacks each image and its shuffled
version). A batch of ``B`` samples becomes ``2B`` images: even positions the intact
samples, odd positions their destructed copies, so the batch size of the pipeline
(``--batch-size`` of the table scripts) counts sampled images, and the model
trains on twice as many per step (5 intact + 5 destructed at the paper's 5).

**Targets and superpixels.** Masks and superpixel maps are shuffled with their
image, by the same permutation, so targets stay aligned (the paper shuffles the
labels too: "noisy supervision signal from shuffled labels", Fig. 2). A shuffled
map keeping its labels would let one superpixel span far-apart pieces, which SAM
would average across; so the destructed copy's map (the ``"superpixels"`` entry
of a dict in the batch) is relabelled by :func:`connected_superpixels`: every
4-connected piece of one label in the shuffled map is one superpixel, labels
consecutive and below ``max_segments`` (the smallest pieces merged into a
neighbour when the pieces outnumber it). When the size is not a multiple of the
grid, the last ``H mod 7`` rows and ``W mod 7`` columns stay in place (regions must
have equal sizes to trade places), so the output is always a permutation of the
input's pixels.

Usage, on batches (after ``.batch``)::

    rsm = RegionShuffle(max_segments=256)
    train = rsm.apply(train, seed=0)   # ({"image", "superpixels"}, masks) batches of 2B
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from skimage.measure import label as connected_components

from data_tools.lazy_tensorflow import lazy_tensorflow
from zoo.sanet.models import SANET_MAX_SEGMENTS
from zoo.sanet.superpixels import SUPERPIXELS

tf = lazy_tensorflow("SANet's region shuffle (a tf.data transform)")

#: SANet's grid: 7x7 regions.
RSM_GRID = 7
#: The jitter range ``k`` of SANet's "nearest neighbors": moves of at most one cell per axis.
RSM_NEIGHBOURHOOD = 1
#: DCL's ``k = 2``: moves of up to three cells per axis (``RegionShuffle(neighbourhood=DCL_NEIGHBOURHOOD)``).
DCL_NEIGHBOURHOOD = 2


def region_permutation(seed: tf.Tensor, grid: int = RSM_GRID, neighbourhood: float = RSM_NEIGHBOURHOOD) -> tf.Tensor:
    """DCL's region confusion: ``int32 [grid * grid]``, output region -> source region.

    Regions are numbered in row-major order. Rows are reordered first (each by
    ``argsort(i + U(-k, k))``), then columns; a region moves fewer than ``2k`` cells
    along each axis. Deterministic for a given ``seed`` (int ``[2]``).
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
    core = tf.concat([core, x[:, : grid * cell_h, grid * cell_w :]], axis=2)
    shuffled = tf.ensure_shape(tf.concat([core, x[:, grid * cell_h :]], axis=1), x.shape)
    return shuffled if rank == 4 else shuffled[..., 0]


def connected_superpixels(labels: np.ndarray, max_segments: int) -> np.ndarray:
    """One superpixel per 4-connected piece of ``labels``: ``int32`` labels ``0 .. K-1``, ``K <= max_segments``.

    A shuffled superpixel map splits a superpixel into pieces in different cells;
    each piece becomes its own superpixel, numbered in raster order of its first
    pixel. When there are more pieces than ``max_segments`` (the grid's cuts add
    pieces: a 256x256 SLIC map of 152 superpixels gave 250-350 pieces at ``k = 1``,
    about 420 at ``k = 2``), the
    smallest pieces (slivers cut off by the grid) are merged, one at a time, into the
    neighbouring piece they share the longest border with, as SLIC's connectivity
    step merges small segments, until ``max_segments`` are left (there, at
    ``max_segments = 256``: under 2% of the pixels at ``k = 1``, about 5% at ``k = 2``,
    joined a superpixel of another original label; a larger ``max_segments``
    keeps every piece). Every label is then still one 4-connected piece, and below
    ``max_segments``.

    Args:
        labels: ``(H, W)`` integer map (any labels).
        max_segments: the bound on the output labels (>= 1).
    """
    pieces = connected_components(np.asarray(labels), background=-1, connectivity=1) - 1
    count = int(pieces.max(initial=-1)) + 1
    if count <= max_segments:
        return pieces.astype(np.int32)
    # shared border lengths of 4-adjacent pieces
    first = np.concatenate([pieces[:, :-1].ravel(), pieces[:-1, :].ravel()])
    second = np.concatenate([pieces[:, 1:].ravel(), pieces[1:, :].ravel()])
    apart = first != second
    pairs, borders = np.unique(np.sort(np.stack([first[apart], second[apart]], 1), axis=1), axis=0, return_counts=True)
    neighbours: list[list[tuple[int, int]]] = [[] for _ in range(count)]
    for (a, b), border in zip(pairs.tolist(), borders.tolist(), strict=True):
        neighbours[a].append((border, b))
        neighbours[b].append((border, a))
    parent = list(range(count))

    def root(piece: int) -> int:
        while parent[piece] != piece:
            parent[piece] = parent[parent[piece]]
            piece = parent[piece]
        return piece

    smallest_first = np.argsort(np.bincount(pieces.ravel()), kind="stable").tolist()
    while count > max_segments:  # every pass merges at least once: the pieces tile one connected image
        for piece in smallest_first:
            own = root(piece)
            others = [(border, -other, root(other)) for border, other in neighbours[piece] if root(other) != own]
            if others:
                parent[own] = max(others)[2]
                count -= 1
                if count == max_segments:
                    break
    roots = np.array([root(piece) for piece in range(len(parent))])
    return np.unique(roots, return_inverse=True)[1].reshape(-1)[pieces].astype(np.int32)


def _connected_batch(maps: np.ndarray, max_segments: int) -> np.ndarray:
    """:func:`connected_superpixels` on each map of ``(B, H, W[, 1])``."""
    flat = maps.reshape(maps.shape[:3])
    return np.stack([connected_superpixels(labels, max_segments) for labels in flat]).reshape(maps.shape)


@dataclasses.dataclass(frozen=True)
class RegionShuffle:
    """The random shuffle module on batches: each sample followed by its destructed copy.

    Attributes:
        grid: regions per side (SANet: 7).
        neighbourhood: DCL's ``k``, the range of the uniform jitter (>= 0; 0 keeps
            every region in place; :data:`RSM_NEIGHBOURHOOD` = 1, moves of at most
            one cell; :data:`DCL_NEIGHBOURHOOD` = 2, DCL's wider moves).
        max_segments: the bound on the relabelled superpixel maps (the model's).
    """

    grid: int = RSM_GRID
    neighbourhood: float = RSM_NEIGHBOURHOOD
    max_segments: int = SANET_MAX_SEGMENTS

    def __post_init__(self) -> None:
        for name in ("grid", "max_segments"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RegionShuffle.{name} must be a positive int, got {value!r}.")
        if not self.neighbourhood >= 0:
            raise ValueError(f"RegionShuffle.neighbourhood must be >= 0, got {self.neighbourhood!r}.")

    def _relabel(self, maps: tf.Tensor) -> tf.Tensor:
        relabelled = tf.numpy_function(
            lambda m: _connected_batch(m, self.max_segments), [tf.cast(maps, tf.int32)], tf.int32, stateful=False
        )
        return tf.cast(tf.ensure_shape(relabelled, maps.shape), maps.dtype)

    def __call__(self, batch: Any, seed: tf.Tensor) -> Any:
        """``B`` samples -> ``2B``: sample ``i`` at ``2i``, its destructed copy at ``2i + 1``.

        Every spatial tensor (rank 3 or 4) of the nested ``batch`` is shuffled alike;
        all must share the batch size, height and width. The ``"superpixels"`` entry
        of a dict is relabelled in the copies (:func:`connected_superpixels`).
        Tensors of lower rank (image-level labels) are repeated.
        """
        spatial = [t for t in tf.nest.flatten(batch) if t.shape.rank in (3, 4)]
        if not spatial:
            raise ValueError("RegionShuffle: the batch holds no (batch, H, W[, C]) tensor to shuffle.")
        sizes = {tuple(t.shape[:3]) for t in spatial}
        if len(sizes) > 1:
            raise ValueError(
                f"RegionShuffle: image, masks and maps must share (batch, H, W) to be shuffled alike, "
                f"got {sorted(sizes, key=str)}."
            )
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), tf.shape(spatial[0])[0])
        permutations = tf.map_fn(
            lambda s: region_permutation(s, self.grid, self.neighbourhood), seeds, fn_output_signature=tf.int32
        )

        def pair(tensor: tf.Tensor, name: str | None) -> tf.Tensor:
            copy = tensor
            if tensor.shape.rank in (3, 4):
                copy = shuffle_regions(tensor, permutations, self.grid)
                if name == SUPERPIXELS:
                    copy = self._relabel(copy)
            paired = tf.reshape(tf.stack([tensor, copy], axis=1), tf.concat([[-1], tf.shape(tensor)[1:]], axis=0))
            samples = tensor.shape[0]
            paired.set_shape([None if samples is None else 2 * samples, *tensor.shape[1:]])
            return paired

        return _map_with_keys(batch, pair)

    def apply(self, dataset: tf.data.Dataset, seed: int = 0) -> tf.data.Dataset:
        """The transform on a batched dataset; new draws every epoch, the same for a given seed."""
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        return tf.data.Dataset.zip(dataset, seeds).map(
            lambda batch, pair: self(batch, pair), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )


def _map_with_keys(structure: Any, fn, key: str | None = None) -> Any:
    """``fn(tensor, dict key or None)`` on every tensor of nested dicts, tuples and lists."""
    if isinstance(structure, dict):
        return {name: _map_with_keys(value, fn, name) for name, value in structure.items()}
    if isinstance(structure, (tuple, list)):
        return type(structure)(_map_with_keys(value, fn) for value in structure)
    return fn(structure, key)
