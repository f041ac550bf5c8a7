"""tf.data pipelines from dataset records to ``(image, target)`` batches.

Stages, in order (training / evaluation):

1. **load** (parallel): read and decode the files (``tf.io.decode_image``: JPEG,
   PNG, BMP, GIF), then :func:`data_tools.preprocess.resize_images` (float32 RGB in
   [0, 1], fitted and resized to ``spec.resize_size``) and
   :func:`~data_tools.preprocess.resize_masks` (same geometry, nearest neighbour;
   also the ``extra_maps`` of :func:`segmentation_dataset`, integer maps such as
   SANet's superpixels, first resized to their image by :func:`decode_label_map`).
2. **cache** (``cache=True``: in memory; a string: a cache file): what is cached is
   the *decoded and resized, not yet augmented* data, float32 images and uint8
   masks, so every epoch skips decoding and resizing and still draws fresh
   augmentations. Float32 keeps training and serving bit-identical (the exported
   model runs the same ``resize_images``); it costs 4 bytes per value
   (ISIC 2018 at 256 x 256: about 2 GB). With an ``expand`` hook of
   :func:`classification_dataset` the raw file bytes are cached instead (its
   samples are cut from the full-resolution image).
3. **shuffle** (training: a new order every epoch, drawn from ``(seed, epoch)``),
   optional **repeat**.
4. **augment** (training, parallel): a random ``spec.image_size`` window when the
   spec has a ``pre_crop_size`` (centred in evaluation), then an
   :class:`~data_tools.augment.Augmentation`, jointly on image and masks.
5. **normalize**: :func:`~data_tools.preprocess.normalize_images` (colour space and
   scale), then **batch** and **prefetch**.

Determinism: ``options.deterministic`` is on, and epoch *e* of a training dataset
is a function of ``(seed, e)`` alone: its shuffle order is seeded by them and every
element draws its augmentation from the stateless seed ``(seed, e, position in the
epoch)``. The same ``seed`` gives the same batches in every run, each epoch gets
new draws, a different ``seed`` gives different ones, and, because nothing depends
on how many epochs a process has run, a run resumed at epoch *e* in a new process
sees exactly the batches an uninterrupted run sees (:func:`set_training_epoch`).

Epochs: every training dataset has an epoch counter. A new iterator of a dataset
that does not repeat takes the counter's value as its epoch and advances it, so a
plain loop over it, or Keras' ``fit``, gets epochs 0, 1, 2, ...; a repeated dataset
starts at the counter's value and counts on by itself. :func:`zoo.train.fit` sets
every counter to the epoch it is about to run (:func:`set_training_epoch`), which
makes resuming after an interruption exact. Build the datasets outside a
distribution strategy's scope (the counter is a plain variable).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Literal, Sequence

from data_tools.augment import Augmentation, joint_random_crop
from data_tools.epochs import on_training_epoch, set_training_epoch  # noqa: F401  (re-exported)
from data_tools.lazy_tensorflow import require_tensorflow
from data_tools.preprocess import InputSpec, corrected_rgb, crop_images, normalize_images, resize_images, resize_masks
from data_tools.records import DatasetError, Record

tf = require_tensorflow("the tf.data pipelines (data_tools.pipeline)")

AUTOTUNE = tf.data.AUTOTUNE
# ISIC scoring binarises ground-truth masks at > 128 (isic-challenge-scoring).
MASK_THRESHOLD = 128
MASK_MODES = ("binary", "index")
Expand = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
"""``expand(image, seed) -> samples``, the per-image hook of :func:`classification_dataset`."""
EXPAND_SHUFFLE_SAMPLES = 2048
"""Default ``sample_buffer`` of :func:`classification_dataset` (about 34 images of
ARL-CNN's 60 patches; at 224 x 224 float32 RGB, 1.2 GB)."""
_NO_END = tf.int64.max


# Leading bytes of the formats tf.io.decode_image reads.
_IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"GIF87a", b"GIF89a")


# --------------------------------------------------------------------- checks


def _check_common(records: Sequence[Record], batch_size: int, shuffle_buffer: int | None) -> None:
    if not records:
        raise ValueError("records: got an empty list; nothing to build a dataset from.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    if shuffle_buffer is not None and shuffle_buffer < 1:
        raise ValueError(f"shuffle_buffer must be a positive int or None, got {shuffle_buffer!r}.")


def _check_image_file(path: Path) -> None:
    """Fail early, naming the file, on what would otherwise fail deep inside tf.data."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as error:
        raise DatasetError(path, f"cannot be read ({error.strerror or error})") from error
    if not head.startswith(_IMAGE_SIGNATURES):
        raise DatasetError(path, "is not a JPEG, PNG, BMP or GIF file (unrecognised leading bytes)")


def _record_mask_paths(record: Record, mask_names: Sequence[str]) -> list[str]:
    missing = [name for name in mask_names if name not in record.mask_paths]
    if missing:
        raise DatasetError(
            record.image_path, f"record {record.image_id!r} has no mask {missing} (it has {sorted(record.mask_paths)})"
        )
    return [str(record.mask_paths[name]) for name in mask_names]


def _record_extra_map_paths(record: Record, extra_maps: Sequence[str]) -> list[str]:
    missing = [name for name in extra_maps if name not in record.extra]
    if missing:
        raise DatasetError(
            record.image_path,
            f"record {record.image_id!r} has no extra map {missing} in record.extra (it has {sorted(record.extra)})",
        )
    return [str(record.extra[name]) for name in extra_maps]


def _record_labels(record: Record, label_names: Sequence[str]) -> list[float]:
    missing = [name for name in label_names if name not in record.labels]
    if missing:
        raise DatasetError(
            record.image_path, f"record {record.image_id!r} has no label {missing} (it has {sorted(record.labels)})"
        )
    return [float(record.labels[name]) for name in label_names]


# ----------------------------------------------------------------- decoding


def decode_image_file(path: tf.Tensor, channels: int = 3) -> tf.Tensor:
    """Read and decode a JPEG/PNG/BMP/GIF file to uint8 ``[H, W, channels]``."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    return tf.ensure_shape(image, (None, None, channels))


def decode_label_map(path: tf.Tensor, size: tf.Tensor | None = None, bound: int | None = None) -> tf.Tensor:
    """A one-channel 16-bit PNG of integer labels -> ``int32`` ``[H, W, 1]``.

    16-bit only: ``tf.io.decode_png`` scales 8-bit values by 257 when asked for
    ``uint16``. SANet's :func:`zoo.sanet.superpixels.write_superpixel_map` writes such maps.

    With ``size`` (the decoded image's ``(height, width)``) the map is resized to it
    with nearest neighbour, labels kept, so a map stored at another size (SANet's
    superpixels are computed at a working size) lines up with its image.

    With ``bound``, a map holding a label ``>= bound`` fails (``InvalidArgumentError``
    naming the file and the label) instead of reaching a model: segment ops under XLA
    drop out-of-range ids silently (SANet's superpixel pooling; tests/test_superpixel_layers.py).
    """
    labels = tf.io.decode_png(tf.io.read_file(path), channels=1, dtype=tf.uint16)
    labels = tf.cast(tf.ensure_shape(labels, (None, None, 1)), tf.int32)
    if bound is not None:
        largest = tf.reduce_max(labels)
        check = tf.debugging.Assert(
            largest < bound, ["label map", path, "holds label", largest, f"but its labels must be < {bound}"]
        )
        with tf.control_dependencies([check]):
            labels = tf.identity(labels)
    if size is None:
        return labels
    return tf.cast(tf.image.resize(labels, size, method="nearest"), tf.int32)


_MASK_PNG_KINDS = {
    2: "an RGB PNG",
    3: "a palette PNG (tf.io.decode_image would return its colours, not its indices)",
    4: "a grey-level PNG with alpha",
    6: "an RGBA PNG",
}


def _check_mask_file(path: Path) -> None:
    """Masks must be 8-bit grey-level PNGs: ``tf.io.decode_image`` turns a palette PNG's
    indices into its colours (index 1 of the VOC palette, dark red, becomes 38), reads
    no one-channel BMP, and averages RGB. The data_tools readers convert such masks."""
    with open(path, "rb") as handle:
        header = handle.read(26)  # signature, then the IHDR chunk up to the colour type
    if not header.startswith(b"\x89PNG\r\n\x1a\n") or header[12:16] != b"IHDR":
        kind = "not a PNG"
    elif header[25] != 0:
        kind = _MASK_PNG_KINDS.get(header[25], f"a PNG of colour type {header[25]}")
    elif header[24] > 8:
        kind = f"a {header[24]}-bit PNG"
    else:
        return
    raise DatasetError(
        path,
        f"mask is {kind}; masks must be 8-bit grey-level PNGs. Read the dataset with a "
        "data_tools reader, which converts such masks, or save the mask's values as a "
        "grey-level PNG.",
    )


def _decode_masks(mask_paths: tf.Tensor, count: int, image_path: tf.Tensor, image_shape: tf.Tensor) -> tf.Tensor:
    """The ``count`` masks of one image stacked to uint8 ``[H, W, count]``; each must match the image size."""
    masks = []
    for index in range(count):
        path = mask_paths[index]
        mask = decode_image_file(path, channels=1)
        same_size = tf.reduce_all(tf.equal(tf.shape(mask)[:2], image_shape[:2]))
        check = tf.debugging.Assert(
            same_size, ["mask size differs from its image:", path, tf.shape(mask), "image:", image_path, image_shape]
        )
        with tf.control_dependencies([check]):
            masks.append(tf.identity(mask))
    return tf.concat(masks, axis=-1)


def _mask_target(masks: tf.Tensor, mask_mode: str) -> tf.Tensor:
    if mask_mode == "binary":
        return tf.cast(masks > MASK_THRESHOLD, tf.float32)
    return tf.cast(masks, tf.int32)


# ------------------------------------------------------------------ stages


def _epochs(one_epoch: Callable[[tf.Tensor], tf.data.Dataset], repeat: bool) -> tf.data.Dataset:
    """``one_epoch(e)`` for e = this iterator's first epoch (its counter), and on
    forever with ``repeat`` (see the module docstring)."""
    with tf.init_scope():
        counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="training_epoch")
    on_training_epoch(counter.assign)
    start = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64))
    if repeat:
        epochs = start.map(lambda _: counter.read_value()).flat_map(lambda first: tf.data.Dataset.range(first, _NO_END))
    else:
        epochs = start.map(lambda _: counter.assign_add(1) - 1).flat_map(
            lambda first: tf.data.Dataset.range(first, first + 1)
        )
    return epochs.flat_map(one_epoch)


def _epoch_shuffle(
    dataset: tf.data.Dataset, buffer: int, seed: int, epoch: tf.Tensor, stream: int = 0
) -> tf.data.Dataset:
    """``dataset`` shuffled with a seed that is a function of ``(seed, epoch, stream)``
    only; called while tf.data traces an epoch function.

    The function graph's own seed is cleared first: tf.data combines a shuffle's seed
    with the graph-level seed (``keras.utils.set_random_seed`` sets one), and that
    combination cannot take a seed computed from the epoch tensor.
    """
    tf.compat.v1.get_default_graph().seed = None
    epoch_seed = (tf.constant(seed, tf.int64) * 1_000_003 + epoch) * 2 + stream
    return dataset.shuffle(buffer, seed=epoch_seed, reshuffle_each_iteration=False)


def _with_seeds(dataset: tf.data.Dataset, seed: int, epoch: tf.Tensor) -> tf.data.Dataset:
    """Every element of one epoch with its stateless seed ``(seed, epoch, position)``."""
    key = tf.stack([tf.constant(seed, tf.int64), epoch])
    return dataset.enumerate().map(
        lambda position, element: (element, tf.random.experimental.stateless_fold_in(key, position))
    )


def _training_epochs(dataset: tf.data.Dataset, finish, buffer: int, seed: int, repeat: bool) -> tf.data.Dataset:
    """Shuffled (per epoch) and finished with per-element seeds: the training stages.
    One epoch holds every element once; said to tf.data, as the epochs' flat_map
    hides it, so that Keras knows an epoch's end (without it, it warns "Your input
    ran out of data" after every first epoch)."""

    def one_epoch(epoch):
        shuffled = _epoch_shuffle(dataset, buffer, seed, epoch)
        return _with_seeds(shuffled, seed, epoch).map(
            lambda element, seed_pair: finish(*element, seed_pair), num_parallel_calls=AUTOTUNE
        )

    epochs = _epochs(one_epoch, repeat)
    return epochs if repeat else epochs.apply(tf.data.experimental.assert_cardinality(dataset.cardinality()))


def _evaluation(dataset: tf.data.Dataset, finish, repeat: bool) -> tf.data.Dataset:
    dataset = dataset.map(finish, num_parallel_calls=AUTOTUNE)
    return dataset.repeat() if repeat else dataset


def _cache(dataset: tf.data.Dataset, cache: bool | str) -> tf.data.Dataset:
    if cache is True:
        return dataset.cache()
    if isinstance(cache, str):
        return dataset.cache(cache)
    return dataset


def _finish(dataset: tf.data.Dataset, batch_size: int, drop_remainder: bool) -> tf.data.Dataset:
    options = tf.data.Options()
    options.deterministic = True
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(AUTOTUNE).with_options(options)


def _augment_and_normalize(
    image: tf.Tensor,
    mask: tf.Tensor | None,
    seed: tf.Tensor | None,
    spec: InputSpec,
    augment: Augmentation | None,
) -> tuple[tf.Tensor, tf.Tensor | None]:
    """Stage 4-5 for one element; ``seed`` None means evaluation (no randomness)."""
    if seed is None:
        image = crop_images(image, spec)
        mask = None if mask is None else crop_images(mask, spec)
    else:
        crop_seed, augment_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        if spec.pre_crop_size is not None:
            image, mask = joint_random_crop(image, mask, spec.image_size, crop_seed)
        if augment is not None:
            image, mask = augment(image, mask, seed=augment_seed)
    return normalize_images(image, spec), mask


def _labelled_image_finisher(spec: InputSpec, augment: Augmentation | None):
    def finish(image, label, seed_pair=None):
        image, _ = _augment_and_normalize(image, None, seed_pair, spec, augment)
        return image, label

    return finish


# ------------------------------------------------------------------ public


def segmentation_dataset(
    records: Sequence[Record],
    spec: InputSpec,
    *,
    mask_names: Sequence[str] = ("lesion",),
    batch_size: int,
    training: bool,
    augment: Augmentation | None = None,
    mask_mode: Literal["binary", "index"] = "binary",
    extra_maps: Sequence[str] = (),
    extra_map_bounds: dict[str, int] | None = None,
    label_names: Sequence[str] = (),
    seed: int = 0,
    cache: bool | str = True,
    shuffle_buffer: int | None = None,
    repeat: bool = False,
    drop_remainder: bool | None = None,
) -> tf.data.Dataset:
    """``(image, mask)`` batches for segmentation.

    Args:
        records: samples with ``mask_paths`` holding every name in ``mask_names``.
        spec: the model's input (size, fit, colour, scale).
        mask_names: the masks to stack as channels, in order (ISIC 2018 Task 2:
            the five attribute names).
        batch_size: samples per batch.
        training: shuffle, random crop (with ``spec.pre_crop_size``) and augment.
        augment: joint augmentation (training only); None for none.
        mask_mode: ``"binary"``: float32 ``[H, W, K]`` in {0, 1}, files binarised
            at > 128 as in ISIC scoring; ``"index"``: one class-index mask file
            (pixel value = class), int32 ``[H, W, 1]``.
        extra_maps: names of integer maps carried beside the masks as model
            inputs (SANet: ``("superpixels",)``). Each record's
            ``record.extra[name]`` is a one-channel 16-bit PNG of labels
            (:func:`decode_label_map`); it is resized to its image with nearest
            neighbour, then fitted, cropped and augmented with the masks'
            geometry, labels kept.
        extra_map_bounds: ``{name: bound}`` for some of ``extra_maps``: reading a
            map with a label ``>= bound`` fails, naming the file
            (:func:`decode_label_map`; SANet: ``max_segments``).
        label_names: names of image-level labels carried beside the masks as
            targets (AttnMel: ``("melanoma",)`` with the lesion mask that
            regularises its attention maps), read from ``record.labels`` as in
            :func:`classification_dataset`. Each sample's labels travel with its
            image and masks through the shuffle, so they stay aligned.
        seed: seeds the shuffle and the augmentation.
        cache: True (memory), a file path (disk) or False; see the module docs.
        shuffle_buffer: default: the number of records (a full shuffle).
        repeat: repeat forever (then pass ``steps_per_epoch`` to ``fit``).
        drop_remainder: default: True when training, else False.

    Returns:
        A dataset of ``(inputs, targets)``. ``inputs`` is the image, float32
        ``[B, h, w, 3]``; with ``extra_maps``, ``{"image": image, name: int32
        [B, h, w, 1] for each name}``. ``targets`` is the mask ``[B, h, w, K]``;
        with ``label_names``, ``{"masks": mask, "labels": float32
        [B, len(label_names)]}``.
    """
    _check_common(records, batch_size, shuffle_buffer)
    if mask_mode not in MASK_MODES:
        raise ValueError(f"mask_mode must be one of {MASK_MODES}, got {mask_mode!r}.")
    mask_names, extra_maps, label_names = tuple(mask_names), tuple(extra_maps), tuple(label_names)
    if not mask_names:
        raise ValueError("mask_names: give at least one mask name.")
    if mask_mode == "index" and len(mask_names) != 1:
        raise ValueError(f"mask_mode='index' reads one class-index mask file, got mask_names={mask_names}.")
    if "image" in extra_maps or len(set(extra_maps)) != len(extra_maps):
        raise ValueError(f"extra_maps: names must be distinct and not 'image', got {extra_maps}.")
    bounds = dict(extra_map_bounds or {})
    if not set(bounds) <= set(extra_maps):
        raise ValueError(
            f"extra_map_bounds: {sorted(set(bounds) - set(extra_maps))} are not in extra_maps={extra_maps}."
        )
    bad_bounds = {
        name: bound
        for name, bound in bounds.items()
        if isinstance(bound, bool) or not isinstance(bound, int) or bound < 1
    }
    if bad_bounds:
        raise ValueError(f"extra_map_bounds: bounds must be positive ints, got {bad_bounds}.")
    if len(set(label_names)) != len(label_names):
        raise ValueError(f"label_names: names must be distinct, got {label_names}.")
    mask_paths = [_record_mask_paths(record, mask_names) for record in records]
    map_paths = [_record_extra_map_paths(record, extra_maps) for record in records]
    for record, paths, maps in zip(records, mask_paths, map_paths, strict=True):
        for path in (record.image_path, *paths, *maps):
            _check_image_file(Path(path))
        for path in paths:
            _check_mask_file(Path(path))
    image_paths = [str(record.image_path) for record in records]
    # What rides along with each image; load and finish see one sample's share of it.
    parts = {"masks": mask_paths}
    if extra_maps:
        parts["maps"] = map_paths
    if label_names:
        parts["labels"] = [_record_labels(record, label_names) for record in records]

    def load(image_path, sample):
        image = decode_image_file(image_path)
        masks = _decode_masks(sample["masks"], len(mask_names), image_path, tf.shape(image))
        loaded = {"masks": resize_masks(masks, spec)}
        if extra_maps:
            maps = [
                tf.cast(decode_label_map(sample["maps"][index], tf.shape(image)[:2], bounds.get(name)), tf.uint16)
                for index, name in enumerate(extra_maps)
            ]
            loaded["maps"] = resize_masks(tf.concat(maps, axis=-1), spec)
        if label_names:
            loaded["labels"] = sample["labels"]
        return resize_images(image, spec), loaded

    def finish(image, loaded, seed_pair=None):
        geometry = loaded["masks"]
        if extra_maps:
            # masks and maps travel as one int32 tensor so every geometric step treats them alike
            geometry = tf.concat([tf.cast(geometry, tf.int32), tf.cast(loaded["maps"], tf.int32)], axis=-1)
        image, geometry = _augment_and_normalize(image, geometry, seed_pair, spec, augment)
        inputs = image
        if extra_maps:
            inputs = {"image": image}
            for index, name in enumerate(extra_maps):
                channel = len(mask_names) + index
                inputs[name] = geometry[..., channel : channel + 1]
        targets = _mask_target(geometry[..., : len(mask_names)], mask_mode)
        if label_names:
            targets = {"masks": targets, "labels": loaded["labels"]}
        return inputs, targets

    dataset = tf.data.Dataset.from_tensor_slices((image_paths, parts))
    dataset = _cache(dataset.map(load, num_parallel_calls=AUTOTUNE), cache)
    if training:
        dataset = _training_epochs(dataset, finish, shuffle_buffer or len(records), seed, repeat)
    else:
        dataset = _evaluation(dataset, finish, repeat)
    return _finish(dataset, batch_size, training if drop_remainder is None else drop_remainder)


def classification_dataset(
    records: Sequence[Record],
    spec: InputSpec,
    *,
    label_names: Sequence[str],
    batch_size: int,
    training: bool,
    expand: Expand | None = None,
    augment: Augmentation | None = None,
    seed: int = 0,
    cache: bool | str = True,
    shuffle_buffer: int | None = None,
    sample_buffer: int | None = None,
    repeat: bool = False,
    drop_remainder: bool | None = None,
) -> tf.data.Dataset:
    """``(image, labels)`` batches for classification; labels float32 ``[B, len(label_names)]``.

    Args:
        records: samples whose ``labels`` hold every name in ``label_names``.
        spec: the model's input; with ``pre_crop_size`` (AttnMel: 256 -> 224)
            training takes random windows and evaluation the centred one.
        label_names: the label columns, in order, e.g. ``("melanoma",)``.
        expand: None (one sample per image), or a per-paper hook that cuts several
            samples from each image (ARL-CNN's patches:
            ``functools.partial(zoo.arl_cnn.patches.arl_training_patches,
            size=spec.image_size)``). Its contract:

            * it is called as ``expand(image, seed)`` on every image, inside
              tf.data (graph mode, TF ops only): ``image`` is the decoded file at
              full resolution, float32 RGB ``[H, W, 3]`` in [0, 1] (the file bytes
              are what ``cache`` keeps); ``seed`` is an int64 ``[2]`` stateless
              seed ``(seed, index of the image in records)``, so an image's
              samples are the same in every epoch and every run with this
              ``seed``, and differ between images and between seeds;
            * it returns float32 ``[n, *spec.image_size, 3]`` in [0, 1], ``n >= 1``
              samples, each with the image's labels; ``spec`` then only
              normalises them (its fit, resize and crop settings are not used,
              and ``pre_crop_size`` must be None);
            * training: the images are shuffled every epoch (``shuffle_buffer``)
              before they are expanded, and the samples of consecutive images are
              mixed in a shuffle buffer of ``sample_buffer`` samples before they are
              augmented and batched, so a batch draws from many images;
              evaluation: the ``n`` samples of an image stay together, images
              ``[B, n, h, w, 3]`` in record order (``n`` the same for every image).

            Memory besides the cache, in training: ``sample_buffer`` samples, plus
            the expansions being cut in parallel (about one image's per CPU core);
            with ``cache=False`` the image shuffle holds file names only.
        shuffle_buffer: images in the shuffle buffer; default: the number of
            records (a full shuffle).
        sample_buffer: with ``expand``, the samples mixed in training; default
            :data:`EXPAND_SHUFFLE_SAMPLES`.
        Other arguments as in :func:`segmentation_dataset`.
    """
    _check_common(records, batch_size, shuffle_buffer)
    label_names = tuple(label_names)
    if not label_names:
        raise ValueError("label_names: give at least one label name.")
    if expand is None and sample_buffer is not None:
        raise ValueError("sample_buffer: mixes the samples of an expand hook; pass expand too.")
    if expand is not None and spec.pre_crop_size is not None:
        raise ValueError(
            f"expand: its samples are the model's input (spec.image_size={spec.image_size}); "
            f"a spec with pre_crop_size={spec.pre_crop_size} is not supported."
        )
    if sample_buffer is not None and (not isinstance(sample_buffer, int) or sample_buffer < 1):
        raise ValueError(f"sample_buffer must be a positive int or None, got {sample_buffer!r}.")
    for record in records:
        _check_image_file(Path(record.image_path))
    image_paths = [str(record.image_path) for record in records]
    labels = [_record_labels(record, label_names) for record in records]
    dataset = tf.data.Dataset.from_tensor_slices((image_paths, labels))
    drop_remainder = training if drop_remainder is None else drop_remainder
    buffer = shuffle_buffer or len(records)
    finish = _labelled_image_finisher(spec, augment)

    if expand is not None:
        samples = _expanded_samples(
            dataset,
            spec,
            expand,
            training,
            seed,
            cache,
            buffer,
            repeat,
            finish,
            sample_buffer or EXPAND_SHUFFLE_SAMPLES,
        )
        return _finish(samples, batch_size, drop_remainder)

    def load(image_path, label):
        return resize_images(decode_image_file(image_path), spec), label

    dataset = _cache(dataset.map(load, num_parallel_calls=AUTOTUNE), cache)
    if training:
        dataset = _training_epochs(dataset, finish, buffer, seed, repeat)
    else:
        dataset = _evaluation(dataset, finish, repeat)
    return _finish(dataset, batch_size, drop_remainder)


def _expanded_samples(
    dataset: tf.data.Dataset,
    spec: InputSpec,
    expand: Expand,
    training: bool,
    seed: int,
    cache: bool | str,
    buffer: int,
    repeat: bool,
    finish,
    sample_buffer: int,
) -> tf.data.Dataset:
    """The ``expand`` samples of every image (see :func:`classification_dataset`):
    file bytes cached, images shuffled per epoch (training) and expanded. Training
    yields the samples of an epoch mixed, augmented and normalised (``finish``, with
    the per-element seeds of the module docstring); evaluation an image's samples
    together, normalised."""
    expected = (*spec.image_size, 3)

    def read(index, element):
        path, label = element
        return index, tf.io.read_file(path), label

    def cut(index, data, label):
        image = corrected_rgb(
            tf.ensure_shape(tf.io.decode_image(data, channels=3, expand_animations=False), (None, None, 3)), spec
        )
        samples = expand(image, tf.stack([tf.constant(seed, tf.int64), index]))
        if samples.dtype != tf.float32 or samples.shape.rank != 4 or not samples.shape[1:].is_compatible_with(expected):
            raise ValueError(
                f"expand must return float32 samples [n, {expected[0]}, {expected[1]}, 3] "
                f"(spec.image_size, RGB), got {samples.dtype.name} {samples.shape}."
            )
        samples = tf.ensure_shape(samples, (None, *expected))
        if not training:
            return normalize_images(samples, spec), label
        return samples, tf.tile(label[None], (tf.shape(samples)[0], 1))

    # index first: an image's seed is its place in records, whatever the shuffle
    dataset = dataset.enumerate()
    if cache:  # the files' bytes are cached; without a cache only the names are shuffled (same order)
        dataset = _cache(dataset.map(read, num_parallel_calls=AUTOTUNE), cache)
    if not training:
        if not cache:
            dataset = dataset.map(read, num_parallel_calls=AUTOTUNE)
        dataset = dataset.map(cut, num_parallel_calls=AUTOTUNE)
        return dataset.repeat() if repeat else dataset

    def one_epoch(epoch):
        images = _epoch_shuffle(dataset, buffer, seed, epoch)
        if not cache:
            images = images.map(read, num_parallel_calls=AUTOTUNE)
        samples = images.map(cut, num_parallel_calls=AUTOTUNE).unbatch()
        samples = _epoch_shuffle(samples, sample_buffer, seed, epoch, stream=1)
        return _with_seeds(samples, seed, epoch).map(
            lambda element, seed_pair: finish(*element, seed_pair), num_parallel_calls=AUTOTUNE
        )

    return _epochs(one_epoch, repeat)


def oversample_positives(records: Sequence[Record], label_name: str, factor: int = 4) -> list[Record]:
    """Repeat every record with ``labels[label_name] >= 0.5`` ``factor`` times in total.

    AttnMel's class balancing (Yan et al., AttnMel-CNN, IPMI 2019, section 3; reference code: each melanoma
    row 4x in the training list). Order is kept, copies are adjacent; the
    pipeline's shuffle spreads them.
    """
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"oversample_positives: factor must be a positive int, got {factor!r}.")
    result: list[Record] = []
    for record in records:
        positive = _record_labels(record, (label_name,))[0] >= 0.5
        result.extend([record] * (factor if positive else 1))
    return result
