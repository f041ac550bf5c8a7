"""SANet's random shuffle module (zoo.sanet.region_shuffle) against a numpy loop."""
import numpy as np
import pytest
import tensorflow as tf

from zoo.sanet.region_shuffle import RSM_GRID, RegionShuffle, region_permutation, shuffle_regions


def _numpy_shuffle(image, permutation, grid):
    """Region j of the output is region permutation[j] of the input (row-major)."""
    out = image.copy()
    cell_h, cell_w = image.shape[0] // grid, image.shape[1] // grid
    for j, source in enumerate(permutation):
        (r, c), (sr, sc) = divmod(j, grid), divmod(int(source), grid)
        out[r * cell_h:(r + 1) * cell_h, c * cell_w:(c + 1) * cell_w] = \
            image[sr * cell_h:(sr + 1) * cell_h, sc * cell_w:(sc + 1) * cell_w]
    return out


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_permutation_moves_regions_less_than_2k_per_axis(seed):
    k = 2
    permutation = region_permutation(tf.constant([seed, 7]), neighbourhood=k).numpy()
    np.testing.assert_array_equal(np.sort(permutation), np.arange(RSM_GRID ** 2))
    target_rows, target_columns = np.divmod(np.arange(RSM_GRID ** 2), RSM_GRID)
    source_rows, source_columns = np.divmod(permutation, RSM_GRID)
    assert np.abs(target_rows - source_rows).max() < 2 * k
    assert np.abs(target_columns - source_columns).max() < 2 * k
    assert not np.array_equal(permutation, np.arange(RSM_GRID ** 2))


def test_permutation_is_seeded_and_k0_is_identity():
    first = region_permutation(tf.constant([4, 5])).numpy()
    np.testing.assert_array_equal(first, region_permutation(tf.constant([4, 5])).numpy())
    assert not np.array_equal(first, region_permutation(tf.constant([4, 6])).numpy())
    np.testing.assert_array_equal(region_permutation(tf.constant([4, 5]), neighbourhood=0).numpy(),
                                  np.arange(RSM_GRID ** 2))


@pytest.mark.parametrize("shape", [(2, 21, 14, 3), (2, 30, 33, 1), (2, 16, 23)])
def test_shuffle_regions_matches_numpy_and_leaves_the_remainder(shape):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 1000, shape).astype(np.int32)
    permutations = np.stack([rng.permutation(RSM_GRID ** 2) for _ in range(shape[0])]).astype(np.int32)
    out = shuffle_regions(images, permutations).numpy()
    for b in range(shape[0]):
        np.testing.assert_array_equal(out[b], _numpy_shuffle(images[b], permutations[b], RSM_GRID))


def test_shuffle_regions_rejects_images_smaller_than_the_grid():
    with pytest.raises(ValueError, match="smaller than the 7x7 grid"):
        shuffle_regions(np.zeros((1, 5, 20, 3)), np.zeros((1, 49), np.int32))


def _batches(batch_size=5, height=30, width=31):
    """Images whose two channels encode each pixel's (row, column); masks and maps derived from them."""
    rows, columns = np.mgrid[:height, :width]
    images = np.stack([np.stack([rows + 100 * b, columns], -1) for b in range(batch_size)]).astype(np.float32)
    maps = (images[..., 0] * 1000 + images[..., 1]).astype(np.int32)
    masks = (images[..., :1] % 2).astype(np.float32)
    return images, maps, masks


def test_dataset_transform_shuffles_odd_positions_alike():
    images, maps, masks = _batches()
    dataset = tf.data.Dataset.from_tensor_slices(((images, maps), masks)).batch(5)
    (shuffled, shuffled_maps), shuffled_masks = next(iter(RegionShuffle().apply(dataset, seed=3)))
    shuffled, shuffled_maps, shuffled_masks = (t.numpy() for t in (shuffled, shuffled_maps, shuffled_masks))
    for b in range(5):
        # a permutation of the input's pixels
        np.testing.assert_array_equal(np.sort(shuffled[b].reshape(-1, 2), axis=0),
                                      np.sort(images[b].reshape(-1, 2), axis=0))
        assert np.array_equal(shuffled[b], images[b]) == (b % 2 == 0)
    # mask and map moved with their pixels: recompute them from the shuffled image
    np.testing.assert_array_equal(shuffled_maps, (shuffled[..., 0] * 1000 + shuffled[..., 1]).astype(np.int32))
    np.testing.assert_array_equal(shuffled_masks, shuffled[..., :1] % 2)


def test_dataset_transform_redraws_every_epoch_and_repeats_per_seed():
    images, _, _ = _batches(batch_size=2)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(2)
    transformed = RegionShuffle().apply(dataset, seed=1)
    epoch1, epoch2 = (next(iter(transformed)).numpy() for _ in range(2))
    assert not np.array_equal(epoch1[1], epoch2[1])
    again = next(iter(RegionShuffle().apply(dataset, seed=1))).numpy()
    np.testing.assert_array_equal(epoch1, again)


def test_mismatched_sizes_and_bad_settings_are_named():
    with pytest.raises(ValueError, match="share"):
        RegionShuffle()((tf.zeros((2, 14, 14, 3)), tf.zeros((2, 7, 7, 1))), tf.constant([0, 0]))
    with pytest.raises(ValueError, match="grid"):
        RegionShuffle(grid=0)
    with pytest.raises(ValueError, match="neighbourhood"):
        RegionShuffle(neighbourhood=-1)
