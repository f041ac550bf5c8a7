"""SANet's random shuffle module (zoo.sanet.region_shuffle) against a numpy loop."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from zoo.sanet.region_shuffle import (
    DCL_NEIGHBOURHOOD,
    RSM_GRID,
    RSM_NEIGHBOURHOOD,
    RegionShuffle,
    connected_superpixels,
    region_permutation,
    shuffle_regions,
)


def _numpy_shuffle(image, permutation, grid):
    """Region j of the output is region permutation[j] of the input (row-major)."""
    out = image.copy()
    cell_h, cell_w = image.shape[0] // grid, image.shape[1] // grid
    for j, source in enumerate(permutation):
        (r, c), (sr, sc) = divmod(j, grid), divmod(int(source), grid)
        out[r * cell_h : (r + 1) * cell_h, c * cell_w : (c + 1) * cell_w] = image[
            sr * cell_h : (sr + 1) * cell_h, sc * cell_w : (sc + 1) * cell_w
        ]
    return out


def _displacements(neighbourhood, seeds=300):
    """The largest row and column move of any region over ``seeds`` draws."""
    permutations = tf.map_fn(
        lambda seed: region_permutation(seed, neighbourhood=neighbourhood),
        tf.stack([tf.range(seeds), tf.fill([seeds], 7)], 1),
        fn_output_signature=tf.int32,
    ).numpy()
    for permutation in permutations:
        np.testing.assert_array_equal(np.sort(permutation), np.arange(RSM_GRID**2))
    target_rows, target_columns = np.divmod(np.arange(RSM_GRID**2), RSM_GRID)
    source_rows, source_columns = np.divmod(permutations, RSM_GRID)
    return np.abs(target_rows - source_rows).max(), np.abs(target_columns - source_columns).max()


def test_default_moves_regions_to_nearest_neighbours_only():
    """the SANet paper: sub-regions shuffled "with their nearest neighbors": at most one cell per axis."""
    assert RSM_NEIGHBOURHOOD == 1
    assert RegionShuffle().neighbourhood == RSM_NEIGHBOURHOOD
    assert _displacements(RSM_NEIGHBOURHOOD) == (1, 1)


def test_dcl_neighbourhood_moves_regions_further_but_less_than_2k():
    rows, columns = _displacements(DCL_NEIGHBOURHOOD)
    assert 1 < rows < 2 * DCL_NEIGHBOURHOOD and 1 < columns < 2 * DCL_NEIGHBOURHOOD


def test_permutation_is_seeded_and_k0_is_identity():
    first = region_permutation(tf.constant([4, 5])).numpy()
    np.testing.assert_array_equal(first, region_permutation(tf.constant([4, 5])).numpy())
    assert not np.array_equal(first, region_permutation(tf.constant([4, 6])).numpy())
    np.testing.assert_array_equal(
        region_permutation(tf.constant([4, 5]), neighbourhood=0).numpy(), np.arange(RSM_GRID**2)
    )


@pytest.mark.parametrize("shape", [(2, 21, 14, 3), (2, 30, 33, 1), (2, 16, 23)])
def test_shuffle_regions_matches_numpy_and_leaves_the_remainder(shape):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 1000, shape).astype(np.int32)
    permutations = np.stack([rng.permutation(RSM_GRID**2) for _ in range(shape[0])]).astype(np.int32)
    out = shuffle_regions(images, permutations).numpy()
    for b in range(shape[0]):
        np.testing.assert_array_equal(out[b], _numpy_shuffle(images[b], permutations[b], RSM_GRID))


def test_shuffle_regions_rejects_images_smaller_than_the_grid():
    with pytest.raises(ValueError, match="smaller than the 7x7 grid"):
        shuffle_regions(np.zeros((1, 5, 20, 3)), np.zeros((1, 49), np.int32))


def _batches(batch_size=5, height=30, width=31, block=4):
    """Images whose two channels encode each pixel's (row, column); masks derived from them;
    superpixel maps of ``block`` x ``block`` squares (not aligned with the 4x4 cells)."""
    rows, columns = np.mgrid[:height, :width]
    images = np.stack([np.stack([rows + 100 * b, columns], -1) for b in range(batch_size)]).astype(np.float32)
    masks = (images[..., :1] % 2).astype(np.float32)
    maps = np.stack([(rows + b) // block * 100 + columns // block for b in range(batch_size)]).astype(np.int32)
    return images, maps[..., None], masks


def _assert_connected_and_bounded(labels, max_segments):
    """Every label one 4-connected piece (scipy's default structure), labels 0 .. K-1, K <= max_segments."""
    count = labels.max() + 1
    assert count <= max_segments
    np.testing.assert_array_equal(np.unique(labels), np.arange(count))
    for label in range(count):
        _, pieces = ndimage.label(labels == label)
        assert pieces == 1, f"label {label} has {pieces} pieces"


def test_each_sample_is_followed_by_its_destructed_copy_one_to_one():
    """the SANet paper: "the ratio of the destructed images in batch [is] 1:1", at the paper's batch of 5."""
    images, maps, masks = _batches()
    dataset = tf.data.Dataset.from_tensor_slices(({"image": images, "superpixels": maps}, masks)).batch(5)
    rsm = RegionShuffle(max_segments=1000)
    inputs, shuffled_masks = next(iter(rsm.apply(dataset, seed=3)))
    shuffled, shuffled_maps = inputs["image"].numpy(), inputs["superpixels"].numpy()
    assert shuffled.shape[0] == shuffled_maps.shape[0] == shuffled_masks.shape[0] == 10
    intact = [b for b in range(10) if any(np.array_equal(shuffled[b], image) for image in images)]
    assert intact == [0, 2, 4, 6, 8]
    for b in range(5):
        np.testing.assert_array_equal(shuffled[2 * b], images[b])
        np.testing.assert_array_equal(shuffled_maps[2 * b], maps[b])
        copy = shuffled[2 * b + 1]
        assert not np.array_equal(copy, images[b])
        # a permutation of its sample's pixels
        np.testing.assert_array_equal(np.sort(copy.reshape(-1, 2), axis=0), np.sort(images[b].reshape(-1, 2), axis=0))
        # each superpixel of the copy is one piece of one superpixel of the sample
        source = maps[b][copy[..., 0].astype(int) - 100 * b, copy[..., 1].astype(int), 0]
        relabelled = shuffled_maps[2 * b + 1, ..., 0]
        _assert_connected_and_bounded(relabelled, rsm.max_segments)
        assert all(len(np.unique(source[relabelled == label])) == 1 for label in np.unique(relabelled))
    # masks moved with their pixels: recompute them from the shuffled image
    np.testing.assert_array_equal(shuffled_masks, shuffled[..., :1] % 2)


def test_shuffled_superpixels_stay_connected_without_relabelling_the_old_way():
    """The map keeps its labels when shuffled, so a superpixel can span far-apart pieces;
    connected_superpixels gives each piece its own label."""
    _, maps, _ = _batches(batch_size=1, height=28, width=28, block=7)
    shuffled = shuffle_regions(maps[..., 0], region_permutation(tf.constant([1, 2]))[None]).numpy()[0]
    assert max(ndimage.label(shuffled == label)[1] for label in np.unique(shuffled)) > 1
    _assert_connected_and_bounded(connected_superpixels(shuffled, 1000), 1000)


@pytest.mark.parametrize("seed", range(3))
def test_more_pieces_than_max_segments_merge_into_neighbours_and_stay_connected(seed):
    _, maps, _ = _batches(batch_size=1, height=35, width=35, block=3)
    labels = maps[0, ..., 0]
    max_segments = len(np.unique(labels))  # the sample's superpixels fit, their pieces do not
    shuffled = shuffle_regions(labels[None], region_permutation(tf.constant([seed, 0]), neighbourhood=3)[None])
    assert connected_superpixels(shuffled.numpy()[0], 10**6).max() + 1 > max_segments
    relabelled = connected_superpixels(shuffled.numpy()[0], max_segments)
    _assert_connected_and_bounded(relabelled, max_segments)
    assert relabelled.max() + 1 == max_segments


def test_dataset_transform_redraws_every_epoch_and_repeats_per_seed():
    images, _, _ = _batches(batch_size=2)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(2)
    transformed = RegionShuffle().apply(dataset, seed=1)
    epoch1, epoch2 = (next(iter(transformed)).numpy() for _ in range(2))
    assert not np.array_equal(epoch1[1], epoch2[1]) and not np.array_equal(epoch1[3], epoch2[3])
    again = next(iter(RegionShuffle().apply(dataset, seed=1))).numpy()
    np.testing.assert_array_equal(epoch1, again)


def test_mismatched_sizes_and_bad_settings_are_named():
    with pytest.raises(ValueError, match="share"):
        RegionShuffle()((tf.zeros((2, 14, 14, 3)), tf.zeros((2, 7, 7, 1))), tf.constant([0, 0]))
    with pytest.raises(ValueError, match="grid"):
        RegionShuffle(grid=0)
    with pytest.raises(ValueError, match="neighbourhood"):
        RegionShuffle(neighbourhood=-1)
    with pytest.raises(ValueError, match="max_segments"):
        RegionShuffle(max_segments=0)
