"""tf.data pipelines (data_tools.pipeline) and joint augmentation (data_tools.augment)."""

import functools
import itertools

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from scipy import stats

from data_tools.augment import Augmentation, gaussian_blur, joint_random_crop
from data_tools.pipeline import classification_dataset, oversample_positives, segmentation_dataset
from data_tools.preprocess import InputSpec
from data_tools.records import DatasetError, Record
from zoo.arl_cnn.patches import ARL_TEST_PATCHES, ARL_TRAIN_PATCHES, arl_test_patches, arl_training_patches
from zoo.arl_cnn.recipe import ARL_AUGMENTATION
from zoo.sanet.recipe import SANET_AUGMENTATION

GEOMETRIC = Augmentation(
    horizontal_flip=True,
    vertical_flip=True,
    rotate90=True,
    rotation_degrees=10.0,
    zoom=(0.9, 1.1),
    interpolation="nearest",
)


def _write_sample(folder, index, rng, size=(20, 24)):
    """A PNG whose red channel is 255 exactly where the lesion mask is 255."""
    mask = np.zeros(size, np.uint8)
    top, left = rng.integers(0, size[0] // 2), rng.integers(0, size[1] // 2)
    mask[top : top + size[0] // 2, left : left + size[1] // 3] = 255
    image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    image[..., 0] = mask
    image_path, mask_path = folder / f"img_{index}.png", folder / f"img_{index}_mask.png"
    Image.fromarray(image).save(image_path)
    Image.fromarray(mask).save(mask_path)
    labels = {"melanoma": float(index % 3 == 0)}
    return Record(f"img_{index}", image_path, {"lesion": mask_path}, labels)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline")
    rng = np.random.default_rng(7)
    return [_write_sample(folder, index, rng) for index in range(6)]


def _all(dataset):
    return [tuple(np.asarray(x) for x in batch) for batch in dataset.as_numpy_iterator()]


# ---------------------------------------------------------------- augment


def test_augment_keeps_image_and_mask_aligned():
    rng = np.random.default_rng(0)
    mask = (rng.random((16, 16, 1)) > 0.5).astype(np.uint8)
    image = np.concatenate([mask, rng.random((16, 16, 2))], axis=-1).astype(np.float32)
    changed = 0
    for step in range(6):
        out_image, out_mask = GEOMETRIC(image, mask, seed=tf.constant([step, 1]))
        assert out_mask.dtype == tf.uint8
        np.testing.assert_array_equal(out_image.numpy()[..., 0], out_mask.numpy()[..., 0])
        changed += not np.array_equal(out_mask.numpy(), mask)
    assert changed >= 4


def test_augment_bilinear_image_agrees_with_nearest_mask():
    mask = np.zeros((32, 32, 1), np.uint8)
    mask[8:24, 6:20] = 1
    image = np.repeat(mask, 3, axis=-1).astype(np.float32)
    out_image, out_mask = ARL_AUGMENTATION(image, mask, seed=tf.constant([3, 4]))
    agreement = np.mean((out_image.numpy()[..., 0] > 0.5) == (out_mask.numpy()[..., 0] == 1))
    assert set(np.unique(out_mask.numpy())) <= {0, 1}
    assert agreement > 0.97


def test_augment_deterministic_per_seed():
    image = np.random.default_rng(1).random((12, 12, 3)).astype(np.float32)
    first, _ = SANET_AUGMENTATION(image, seed=tf.constant([5, 6]))
    again, _ = SANET_AUGMENTATION(image, seed=tf.constant([5, 6]))
    other, _ = SANET_AUGMENTATION(image, seed=tf.constant([5, 7]))
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    assert not np.array_equal(first.numpy(), other.numpy())
    assert first.numpy().min() >= 0 and first.numpy().max() <= 1


def test_gaussian_blur_matches_scipy():
    from scipy.ndimage import gaussian_filter

    image = np.random.default_rng(2).random((9, 11, 2)).astype(np.float32)
    ours = gaussian_blur(image, 1.0, radius=3).numpy()
    # scipy's "mirror" mode is TF's REFLECT padding (edge pixel not repeated).
    expected = gaussian_filter(image, sigma=(1.0, 1.0, 0), mode="mirror", truncate=3.0)
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_joint_random_crop_takes_same_window():
    image = np.arange(10 * 8 * 1, dtype=np.float32).reshape(10, 8, 1)
    crop_image, crop_mask = joint_random_crop(image, image.astype(np.int32), (4, 4), tf.constant([1, 2]))
    np.testing.assert_array_equal(crop_image.numpy(), crop_mask.numpy())
    top, left = divmod(int(crop_image.numpy()[0, 0, 0]), 8)
    np.testing.assert_array_equal(crop_image.numpy(), image[top : top + 4, left : left + 4])


def test_joint_random_crop_keeps_a_static_size_inside_tf_function():
    @tf.function(input_signature=[tf.TensorSpec((None, None, 3), tf.float32)])
    def crop_then_rotate(image):
        crop, _ = joint_random_crop(image, None, (4, 4), tf.constant([1, 2]))
        assert crop.shape.as_list() == [4, 4, 3]
        return Augmentation(rotate90=True)(crop, seed=tf.constant([3, 4]))[0]

    assert crop_then_rotate(tf.zeros((9, 7, 3))).shape == (4, 4, 3)


def test_augment_rejects_bad_arguments():
    with pytest.raises(ValueError, match="zoom"):
        Augmentation(zoom=(1.1, 0.9))
    with pytest.raises(ValueError, match="rotate90 needs square"):
        Augmentation(rotate90=True)(np.zeros((4, 6, 3), np.float32), seed=tf.constant([0, 0]))


# ---------------------------------------------------------------- pipeline


def test_segmentation_eval_shapes_and_values(records):
    spec = InputSpec((8, 12), scale="unit")
    batches = _all(segmentation_dataset(records, spec, batch_size=4, training=False))
    assert [b[0].shape for b in batches] == [(4, 8, 12, 3), (2, 8, 12, 3)]
    image, mask = batches[0]
    assert image.dtype == np.float32 and mask.dtype == np.float32 and mask.shape == (4, 8, 12, 1)
    assert set(np.unique(mask)) <= {0.0, 1.0}
    # Same order as the records and the same resize as the serving path.
    expected = tf.image.resize(np.asarray(Image.open(records[0].image_path), np.float32) / 255, (8, 12)).numpy()
    np.testing.assert_allclose(image[0], expected, atol=1e-6)


def test_segmentation_training_keeps_masks_aligned_and_is_deterministic(records):
    spec = InputSpec((16, 16), resize="nearest")

    def build(seed):
        return segmentation_dataset(
            records, spec, batch_size=3, training=True, augment=GEOMETRIC, seed=seed, cache=False
        )

    first = _all(build(1))
    assert len(first) == 2  # drop_remainder in training
    for image, mask in first:
        # The red channel is the (nearest-resized) mask, so it stays binary and equal.
        np.testing.assert_array_equal(image[..., 0], mask[..., 0])
    again = _all(build(1))
    other = _all(build(2))
    for (a_image, a_mask), (b_image, b_mask) in zip(first, again, strict=True):
        np.testing.assert_array_equal(a_image, b_image)
        np.testing.assert_array_equal(a_mask, b_mask)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other, strict=True))


def test_segmentation_epochs_draw_new_augmentations(records):
    spec = InputSpec((16, 16))
    dataset = segmentation_dataset(records, spec, batch_size=6, training=True, augment=GEOMETRIC, seed=3)
    epoch1, epoch2 = _all(dataset), _all(dataset)
    assert not np.array_equal(epoch1[0][0], epoch2[0][0])


def test_segmentation_index_masks(tmp_path):
    mask = np.array([[0, 1, 2, 2]] * 4, np.uint8)
    image_path, mask_path = tmp_path / "a.png", tmp_path / "a_mask.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(image_path)
    Image.fromarray(mask).save(mask_path)
    record = Record("a", image_path, {"classes": mask_path})
    spec = InputSpec((8, 8), fit="pad")
    ((_, out),) = _all(
        segmentation_dataset([record], spec, mask_names=("classes",), mask_mode="index", batch_size=1, training=False)
    )
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out[0, ..., 0], np.kron(mask, np.ones((2, 2), np.uint8)))


def test_segmentation_reports_bad_files(records, tmp_path):
    spec = InputSpec((8, 8))
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DatasetError, match="broken.png"):
        segmentation_dataset(
            [Record("x", bad, {"lesion": records[0].mask_paths["lesion"]})], spec, batch_size=1, training=False
        )
    with pytest.raises(DatasetError, match="missing.png"):
        segmentation_dataset(
            [Record("x", tmp_path / "missing.png", {"lesion": bad})], spec, batch_size=1, training=False
        )
    with pytest.raises(DatasetError, match="no mask"):
        segmentation_dataset(records, spec, mask_names=("streaks",), batch_size=1, training=False)
    mismatched = Record("x", records[0].image_path, {"lesion": tmp_path / "small.png"})
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(mismatched.mask_paths["lesion"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="mask size differs from its image"):
        _all(segmentation_dataset([mismatched], spec, batch_size=1, training=False))


def test_classification_pre_crop_and_labels(records):
    spec = InputSpec((8, 8), fit="crop", pre_crop_size=(10, 10), scale="imagenet")
    dataset = classification_dataset(
        records, spec, label_names=("melanoma",), batch_size=6, training=True, augment=ARL_AUGMENTATION, seed=4
    )
    ((images, labels),) = _all(dataset)
    assert images.shape == (6, 8, 8, 3) and labels.shape == (6, 1) and labels.dtype == np.float32
    assert sorted(labels[:, 0]) == sorted(r.labels["melanoma"] for r in records)
    evaluation = _all(classification_dataset(records, spec, label_names=("melanoma",), batch_size=6, training=False))
    np.testing.assert_array_equal(evaluation[0][1][:, 0], [r.labels["melanoma"] for r in records])


def _arl_hooks(size):
    return (functools.partial(arl_training_patches, size=size), functools.partial(arl_test_patches, size=size))


def test_expand_training_yields_every_patch_and_evaluation_stacks_them(records):
    spec = InputSpec((8, 8))
    train_hook, test_hook = _arl_hooks((8, 8))
    train = classification_dataset(
        records[:2], spec, label_names=("melanoma",), batch_size=40, training=True, expand=train_hook
    )
    labels = np.concatenate([labels for _, labels in train.as_numpy_iterator()])
    assert len(labels) == 2 * ARL_TRAIN_PATCHES - (2 * ARL_TRAIN_PATCHES) % 40  # drop_remainder
    assert set(labels[:, 0]) == {records[0].labels["melanoma"], records[1].labels["melanoma"]}

    def evaluation(seed):
        return _all(
            classification_dataset(
                records[:3], spec, label_names=("melanoma",), batch_size=2, training=False, expand=test_hook, seed=seed
            )
        )

    (images, labels), (last, _) = evaluation(seed=3)
    assert images.shape == (2, ARL_TEST_PATCHES, 8, 8, 3) and last.shape == (1, ARL_TEST_PATCHES, 8, 8, 3)
    np.testing.assert_array_equal(labels[:, 0], [r.labels["melanoma"] for r in records[:2]])
    # the image's patches, seeded by (seed, its index in records)
    image = tf.io.decode_image(tf.io.read_file(str(records[1].image_path)), channels=3)
    expected = test_hook(tf.image.convert_image_dtype(image, tf.float32), tf.constant([3, 1], tf.int64))
    np.testing.assert_allclose(images[1], expected.numpy(), atol=1e-6)
    np.testing.assert_array_equal(images, evaluation(seed=3)[0][0])
    assert not np.array_equal(images, evaluation(seed=4)[0][0])


@pytest.fixture(scope="module")
def hundred_images(tmp_path_factory):
    """100 small random images, each labelled with its index."""
    folder = tmp_path_factory.mktemp("hundred")
    rng = np.random.default_rng(3)
    result = []
    for index in range(100):
        path = folder / f"image_{index}.png"
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(path)
        result.append(Record(f"image_{index}", path, labels={"index": float(index)}))
    return result


def _patch_epochs(records, seed, epochs=2, **options):
    """The image index of every patch, batch by batch, of ``epochs`` epochs."""
    dataset = classification_dataset(
        records,
        InputSpec((8, 8)),
        label_names=("index",),
        batch_size=32,
        training=True,
        expand=_arl_hooks((8, 8))[0],
        seed=seed,
        **options,
    )
    return [[batch for batch in dataset.as_numpy_iterator()] for _ in range(epochs)]


def test_expand_batches_mix_many_images_in_a_new_order_every_epoch(hundred_images):
    """Issue 14 item 2 (Zhang et al., ARL-CNN, IEEE TMI 2019 Sec. IV-B): the images are shuffled every epoch and
    their patches mixed, so a batch of 32 holds patches of at least 16 images (22 on
    average). Expanding the images in record order through 8 images' worth of patches
    gave at least 8 (16 on average), the same neighbours at the same place every epoch."""
    first, second = _patch_epochs(hundred_images, seed=1)
    for epoch in (first, second):
        distinct = [len(set(labels[:, 0])) for _, labels in epoch]
        assert len(distinct) == 100 * ARL_TRAIN_PATCHES // 32
        assert min(distinct) >= 16 and np.mean(distinct) >= 22

    def mean_position(epoch):
        order = np.concatenate([labels[:, 0] for _, labels in epoch]).astype(int)
        return np.bincount(order, weights=np.arange(len(order)), minlength=100) / np.bincount(order, minlength=100)

    assert stats.spearmanr(mean_position(first), mean_position(second)).statistic < 0.5
    again = _patch_epochs(hundred_images, seed=1)
    for epoch, same in zip((first, second), again, strict=True):
        for (images, labels), (same_images, same_labels) in zip(epoch, same, strict=True):
            np.testing.assert_array_equal(images, same_images)
            np.testing.assert_array_equal(labels, same_labels)


def test_expand_patches_of_an_image_are_fixed_and_the_cache_changes_nothing(hundred_images):
    """An image's patches are cut once per seed (the paper extracts them before the
    online augmentation): the same in every epoch; without the cache the batches are
    the very same."""
    records = hundred_images[:6]
    cached = _patch_epochs(records, seed=2, drop_remainder=False)
    uncached = _patch_epochs(records, seed=2, drop_remainder=False, cache=False)
    for epoch, same in zip(cached, uncached, strict=True):
        for (images, labels), (same_images, same_labels) in zip(epoch, same, strict=True):
            np.testing.assert_array_equal(images, same_images)
            np.testing.assert_array_equal(labels, same_labels)

    def patches_by_image(epoch):
        images = np.concatenate([images for images, _ in epoch])
        labels = np.concatenate([labels[:, 0] for _, labels in epoch])
        return {index: sorted(map(bytes, images[labels == index])) for index in range(len(records))}

    assert patches_by_image(cached[0]) == patches_by_image(cached[1])
    assert patches_by_image(cached[0]) != patches_by_image(
        _patch_epochs(records, seed=3, epochs=1, drop_remainder=False)[0]
    )


def test_expand_rejects_what_it_cannot_use(records):
    spec = InputSpec((8, 8))
    common = dict(label_names=("melanoma",), batch_size=2, training=False)
    with pytest.raises(ValueError, match=r"expand must return float32 samples \[n, 8, 8, 3\].*\(9, 6, 6, 3\)"):
        classification_dataset(records, spec, expand=_arl_hooks((6, 6))[1], **common)
    with pytest.raises(ValueError, match="expand: .*pre_crop_size"):
        classification_dataset(
            records, InputSpec((8, 8), pre_crop_size=(10, 10)), expand=_arl_hooks((8, 8))[1], **common
        )
    with pytest.raises(ValueError, match="sample_buffer: .*pass expand"):
        classification_dataset(records, spec, sample_buffer=10, **common)
    with pytest.raises(ValueError, match="sample_buffer must be a positive int"):
        classification_dataset(records, spec, expand=_arl_hooks((8, 8))[1], sample_buffer=0, **common)


def test_oversample_positives(records):
    result = oversample_positives(records, "melanoma", factor=4)
    positives = sum(r.labels["melanoma"] == 1.0 for r in records)
    assert len(result) == len(records) + 3 * positives
    assert [r.image_id for r in result[:4]] == ["img_0"] * 4


# ---------------------------------------------------------------- extra label maps


def _with_label_map(record, folder):
    """The record plus a 16-bit label map equal to its lesion mask (0 or 255)."""
    mask = np.asarray(Image.open(record.mask_paths["lesion"]))
    path = folder / f"{record.image_id}_labels.png"
    Image.fromarray(mask.astype(np.uint16)).save(path)
    return Record(record.image_id, record.image_path, record.mask_paths, record.labels, {"labels": path})


def test_extra_maps_follow_the_mask_geometry(records, tmp_path):
    with_maps = [_with_label_map(record, tmp_path) for record in records]
    spec = InputSpec(image_size=(16, 16))
    dataset = segmentation_dataset(
        with_maps, spec, batch_size=3, training=True, augment=GEOMETRIC, extra_maps=("labels",), seed=5
    )
    for inputs, masks in dataset:
        labels = inputs["labels"].numpy()
        assert labels.dtype == np.int32 and labels.shape == (3, 16, 16, 1)
        np.testing.assert_array_equal(labels == 255, masks.numpy() == 1.0)


def test_extra_maps_missing_from_a_record_names_the_image(records):
    with pytest.raises(DatasetError, match=r"img_0\.png.*no extra map"):
        segmentation_dataset(
            records, InputSpec(image_size=(16, 16)), batch_size=2, training=False, extra_maps=("labels",)
        )


# ---------------------------------------------------------------- image-level labels


def test_label_names_ride_with_their_images_and_masks(records):
    """The labels of a shuffled, augmented sample are its record's: the same as the
    classification pipeline's (same seed), beside the same masks as without labels."""
    spec = InputSpec((16, 16), resize="nearest")
    common = dict(batch_size=3, training=True, augment=GEOMETRIC, seed=5, cache=False)
    with_labels = segmentation_dataset(records, spec, label_names=("melanoma",), **common)
    masks_only = segmentation_dataset(records, spec, **common)
    labelled = classification_dataset(records, spec, label_names=("melanoma",), **common)
    seen = []
    for (image, targets), (same_image, masks), (image_again, labels) in zip(
        with_labels, masks_only, labelled, strict=True
    ):
        assert set(targets) == {"masks", "labels"}
        assert targets["labels"].dtype == tf.float32 and targets["labels"].shape == (3, 1)
        np.testing.assert_array_equal(image, same_image)
        np.testing.assert_array_equal(image, image_again)
        np.testing.assert_array_equal(targets["masks"], masks)
        np.testing.assert_array_equal(targets["labels"], labels)
        np.testing.assert_array_equal(image[..., 0], targets["masks"][..., 0])  # red channel = mask
        seen.extend(targets["labels"].numpy()[:, 0])
    assert sorted(seen) == sorted(r.labels["melanoma"] for r in records)  # 2 batches of 3: every sample once


def test_label_names_with_extra_maps_and_in_record_order(records, tmp_path):
    with_maps = [_with_label_map(record, tmp_path) for record in records]
    dataset = segmentation_dataset(
        with_maps,
        InputSpec(image_size=(8, 8)),
        batch_size=6,
        training=False,
        extra_maps=("labels",),
        label_names=("melanoma",),
    )
    ((inputs, targets),) = list(dataset)
    assert set(inputs) == {"image", "labels"} and set(targets) == {"masks", "labels"}
    np.testing.assert_array_equal(targets["labels"][:, 0], [r.labels["melanoma"] for r in records])
    np.testing.assert_array_equal(inputs["labels"] == 255, targets["masks"] == 1.0)


def test_label_names_missing_from_a_record_names_the_image(records):
    with pytest.raises(DatasetError, match=r"img_0\.png.*no label \['benign'\]"):
        segmentation_dataset(
            records, InputSpec(image_size=(16, 16)), batch_size=2, training=False, label_names=("benign",)
        )
    with pytest.raises(ValueError, match="label_names"):
        segmentation_dataset(
            records, InputSpec(image_size=(16, 16)), batch_size=2, training=False, label_names=("melanoma", "melanoma")
        )


def test_an_epoch_is_the_same_in_a_new_dataset_told_which_epoch_it_is(records):
    """Exact resume (issue 16): epoch 2 of a dataset iterated three times equals the
    first pass of a fresh dataset once set_training_epoch(2) says so, for a dataset
    iterated epoch by epoch and for a repeated one."""
    from data_tools.pipeline import set_training_epoch

    spec = InputSpec((16, 16))

    def build(repeat=False):
        return segmentation_dataset(
            records, spec, batch_size=2, training=True, augment=GEOMETRIC, seed=5, repeat=repeat
        )

    continuous = build()
    epochs = [_all(continuous) for _ in range(3)]
    assert not np.array_equal(epochs[1][0][0], epochs[2][0][0])
    fresh = build()
    set_training_epoch(2)
    for (a, _), (b, _) in zip(_all(fresh), epochs[2], strict=True):
        np.testing.assert_array_equal(a, b)
    repeated = build(repeat=True)
    set_training_epoch(1)
    batches = list(itertools.islice(repeated, 2 * len(epochs[1])))
    for (a, _), (b, _) in zip(batches, [*epochs[1], *epochs[2]], strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)
    with pytest.raises(ValueError, match="non-negative int"):
        set_training_epoch(-1)


def test_epoch_order_does_not_depend_on_the_global_seed(records):
    """keras.utils.set_random_seed sets a graph-level seed; the epoch shuffle must
    neither fail on it nor change with it (a resumed process may set another)."""
    import keras

    spec = InputSpec((16, 16))

    def first_epoch(global_seed):
        keras.utils.set_random_seed(global_seed)
        dataset = segmentation_dataset(records, spec, batch_size=2, training=True, seed=5, cache=False)
        return _all(dataset)

    for (a, _), (b, _) in zip(first_epoch(1), first_epoch(99), strict=True):
        np.testing.assert_array_equal(a, b)
