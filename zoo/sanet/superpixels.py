"""SLIC superpixel maps for SANet, computed once and cached on disk beside the data.

SANet (the SANet paper, "Superpixel Average Pooling") pools features inside the
superpixels ``s_i`` of each dermoscopy image. The paper takes them from SLIC
(Achanta et al. 2012) but does not give its parameters; :class:`SlicParams` holds
ours. Maps are computed with scikit-image and cached as 16-bit grey PNGs::

    <image folder>_superpixels/<params.key>/<image id>_superpixels.png

so a cache is tied to the image *and* to the SLIC parameters: other parameters
get another folder, and a map older than its image is recomputed.

Labels are **consecutive** (``0 .. K-1``) and **bounded** (``K <=
params.max_segments``). The bound matters: the superpixel layers
(:mod:`zoo.sanet.layers`) pool with ``tf.math.unsorted_segment_sum`` over
``max_segments`` segments per image (default :data:`zoo.sanet.models.SANET_MAX_SEGMENTS`), and
under XLA an id out of range is silently
dropped, or leaks into the next image of the batch (measured with
TensorFlow 2.21 and JAX: tests/test_superpixel_layers.py). SLIC may return more segments than
asked (n_segments=256 gave up to
266); :func:`slic_superpixels` then retries with fewer.

Large images (ISIC 2018 goes up to 6688x4439) are segmented at a working size
whose longer side is at most ``params.max_side`` pixels (SLIC costs about 1 s at
1024x768), and the map is stored at that size; readers resize it to their image
with nearest neighbour (:func:`data_tools.pipeline.decode_label_map` does).

:func:`superpixel_segmentation_dataset` is SANet's tf.data pipeline:
:func:`data_tools.pipeline.segmentation_dataset` carrying the cached maps beside
the attribute masks, optionally through the random shuffle module.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
from PIL import Image
from skimage.segmentation import slic
from tqdm import tqdm

from data_tools.augment import Augmentation
from data_tools.imageio import as_policy, is_up_to_date, load_image, save_png
from data_tools.lazy_tensorflow import lazy_tensorflow
from data_tools.preprocess import InputSpec
from data_tools.records import BadInputPolicy, DatasetError, Record
from zoo.sanet.models import SANET_MAX_SEGMENTS

tf = lazy_tensorflow("SANet's superpixel maps in tf.data")

if TYPE_CHECKING:  # zoo.sanet.region_shuffle imports this module
    from zoo.sanet.region_shuffle import RegionShuffle

#: ``Record.extra`` key of a record's cached superpixel map.
SUPERPIXELS = "superpixels"
SUPERPIXEL_SUFFIX = "_superpixels.png"
#: The most labels a 16-bit PNG map can hold.
MAX_STORABLE_SEGMENTS = 2**16
#: Retries with fewer segments when SLIC returns more than ``max_segments``.
_SLIC_RETRIES = 8


@dataclasses.dataclass(frozen=True)
class SlicParams:
    """SLIC settings (scikit-image ``slic``); the cache is keyed by them.

    Attributes:
        n_segments: the approximate number of superpixels asked of SLIC.
        compactness: colour versus space trade-off (higher: squarer superpixels).
        sigma: Gaussian smoothing before segmentation, in pixels of the working size.
        max_segments: hard bound on the labels of a map (``0 .. max_segments-1``);
            pass the same value to the superpixel layers (default: the models'
            :data:`~zoo.sanet.models.SANET_MAX_SEGMENTS`).
        max_side: the longer side of the working size; ``None`` segments at full
            resolution.
    """

    n_segments: int = 200
    compactness: float = 10.0
    sigma: float = 1.0
    max_segments: int = SANET_MAX_SEGMENTS
    max_side: int | None = 1024

    def __post_init__(self) -> None:
        for name in ("n_segments", "max_segments"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SlicParams.{name} must be a positive int, got {value!r}.")
        if self.max_segments > MAX_STORABLE_SEGMENTS:
            raise ValueError(
                f"SlicParams.max_segments must be at most {MAX_STORABLE_SEGMENTS} (16-bit maps), "
                f"got {self.max_segments}."
            )
        if self.n_segments > self.max_segments:
            raise ValueError(
                f"SlicParams.n_segments ({self.n_segments}) must not exceed max_segments ({self.max_segments})."
            )
        if not self.compactness > 0:
            raise ValueError(f"SlicParams.compactness must be > 0, got {self.compactness!r}.")
        if not self.sigma >= 0:
            raise ValueError(f"SlicParams.sigma must be >= 0, got {self.sigma!r}.")
        if self.max_side is not None and (
            isinstance(self.max_side, bool) or not isinstance(self.max_side, int) or self.max_side < 8
        ):
            raise ValueError(f"SlicParams.max_side must be None or an int >= 8, got {self.max_side!r}.")

    @property
    def key(self) -> str:
        """The cache folder name, e.g. ``"slic_n200_c10_s1_max256_side1024"``."""
        side = "full" if self.max_side is None else str(self.max_side)
        return f"slic_n{self.n_segments}_c{self.compactness:g}_s{self.sigma:g}_max{self.max_segments}_side{side}"


def relabel_consecutive(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Any integer label map -> ``(labels in 0 .. K-1, K)``, keeping the order of labels."""
    values, consecutive = np.unique(np.asarray(labels), return_inverse=True)
    return consecutive.reshape(np.shape(labels)).astype(np.int32), len(values)


def working_size(height: int, width: int, max_side: int | None) -> tuple[int, int]:
    """``(height, width)`` scaled down so the longer side is at most ``max_side``."""
    if max_side is None or max(height, width) <= max_side:
        return height, width
    scale = max_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def slic_superpixels(image: np.ndarray, params: SlicParams = SlicParams()) -> np.ndarray:
    """The superpixel map of one RGB (or grey) image at its working size.

    Args:
        image: ``uint8`` ``(H, W, 3)`` or ``(H, W)``.
        params: SLIC settings.

    Returns:
        ``int32`` ``(h, w)`` labels ``0 .. K-1``, ``K <= params.max_segments``;
        ``(h, w) = working_size(H, W, params.max_side)``.

    Raises:
        ValueError: not an image (a 0x0 one included), or SLIC keeps returning too
            many segments.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (1, 3)):
        raise ValueError(f"slic_superpixels: expected an (H, W, 3) or (H, W) image, got shape {image.shape}.")
    height, width = image.shape[:2]
    if min(height, width) < 1:
        raise ValueError(
            f"slic_superpixels: the image is {height}x{width} pixels; superpixels need an image of at least 1x1."
        )
    size = working_size(height, width, params.max_side)
    if size != (height, width):
        image = np.asarray(Image.fromarray(image.squeeze()).resize(size[::-1], Image.Resampling.BILINEAR))
    channel_axis = -1 if image.ndim == 3 and image.shape[-1] == 3 else None
    image = image.squeeze() if channel_axis is None else image
    n_segments = params.n_segments
    for _ in range(_SLIC_RETRIES):
        labels = slic(
            image,
            n_segments=n_segments,
            compactness=params.compactness,
            sigma=params.sigma,
            start_label=0,
            channel_axis=channel_axis,
        )
        labels, count = relabel_consecutive(labels)
        if count <= params.max_segments:
            return labels
        n_segments = max(1, int(n_segments * params.max_segments / count) - 1)
    raise ValueError(
        f"slic_superpixels: SLIC returned {count} > max_segments={params.max_segments} segments "
        f"even with n_segments={n_segments}; raise max_segments."
    )


def superpixel_path(record: Record, params: SlicParams, cache_dir: str | Path | None = None) -> Path:
    """Where the map of ``record`` under ``params`` is cached.

    Default ``cache_dir``: ``<image folder>_superpixels`` beside the image folder
    (the dataset folder must then be writable; pass another ``cache_dir`` if not).
    """
    image_dir = Path(record.image_path).parent
    root = Path(cache_dir) if cache_dir is not None else image_dir.with_name(image_dir.name + "_superpixels")
    return root / params.key / f"{record.image_id}{SUPERPIXEL_SUFFIX}"


def read_superpixel_map(path: str | Path, max_segments: int | None = None) -> np.ndarray:
    """A cached map as ``int32`` ``(h, w)``; checks it is a 16-bit grey PNG within bounds.

    Raises:
        DatasetError: naming the file, when it is unreadable, not a one-channel
            16-bit map, or holds a label ``>= max_segments``.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            mode = image.mode
            labels = np.asarray(image).astype(np.int32)
    except (OSError, ValueError) as error:
        raise DatasetError(path, f"cannot be read as a superpixel map ({error})") from None
    if mode not in ("I;16", "I") or labels.ndim != 2:
        raise DatasetError(path, f"is not a one-channel 16-bit superpixel map (PIL mode {mode!r})")
    if max_segments is not None and labels.size and labels.max() >= max_segments:
        raise DatasetError(path, f"holds label {labels.max()} >= max_segments={max_segments}")
    return labels


def write_superpixel_map(path: str | Path, labels: np.ndarray) -> Path:
    """Writes labels ``0 .. 65535`` as a 16-bit grey PNG, atomically."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.min(initial=0) < 0 or labels.max(initial=0) >= MAX_STORABLE_SEGMENTS:
        raise ValueError(
            f"write_superpixel_map: expected (h, w) labels in [0, {MAX_STORABLE_SEGMENTS}), "
            f"got shape {labels.shape}, range [{labels.min(initial=0)}, {labels.max(initial=0)}]."
        )
    return save_png(path, labels.astype(np.uint16))


def cache_superpixels(
    records: Sequence[Record],
    params: SlicParams = SlicParams(),
    *,
    cache_dir: str | Path | None = None,
    skip_bad: bool | BadInputPolicy = False,
    workers: int | None = None,
) -> list[Record]:
    """Computes the missing or outdated maps and returns the records pointing at them.

    Each returned record is the input record with ``extra["superpixels"]`` set to
    its map (:func:`superpixel_path`). Maps already cached for the same
    parameters, and no older than their image, are not recomputed. Runs on
    ``workers`` threads (default: one per CPU) with a progress bar.

    Raises:
        DatasetError: an image cannot be decoded (unless ``skip_bad``: the record
            is then logged and left out).
    """
    policy = as_policy(skip_bad)
    records = list(records)
    paths = [superpixel_path(record, params, cache_dir) for record in records]

    def compute(job: tuple[Record, Path]) -> DatasetError | None:
        record, path = job
        if is_up_to_date(path, [record.image_path]):
            return None
        try:
            write_superpixel_map(path, slic_superpixels(load_image(record.image_path), params))
        except DatasetError as error:
            return error
        return None

    pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1)
    try:
        errors = tqdm(
            pool.map(compute, zip(records, paths, strict=True)),
            total=len(records),
            desc=f"superpixels ({params.key})",
            unit="image",
            disable=not sys.stderr.isatty(),
        )
        updated = []
        for record, path, error in zip(records, paths, errors, strict=True):
            if error is not None:
                policy.reject(error.path, error.problem)
                continue
            updated.append(dataclasses.replace(record, extra={**record.extra, SUPERPIXELS: path}))
    finally:
        pool.shutdown(cancel_futures=True)
    return updated


def superpixel_segmentation_dataset(
    records: Sequence[Record],
    spec: InputSpec,
    *,
    mask_names: Sequence[str],
    batch_size: int,
    training: bool,
    augment: Augmentation | None = None,
    max_segments: int = SANET_MAX_SEGMENTS,
    region_shuffle: RegionShuffle | None = None,
    seed: int = 0,
    cache: bool | str = True,
    shuffle_buffer: int | None = None,
    repeat: bool = False,
    drop_remainder: bool | None = None,
) -> tf.data.Dataset:
    """``({"image", "superpixels"}, masks)`` batches: SANet's input pipeline.

    :func:`data_tools.pipeline.segmentation_dataset` with ``extra_maps=("superpixels",)``:
    each record's cached superpixel map (``record.extra["superpixels"]``, from
    :func:`cache_superpixels`) carried beside the masks, resized to its image,
    then fitted, cropped and augmented with the same geometry (nearest neighbour,
    labels kept). Reading a map with a label ``>= max_segments`` (the model's bound)
    fails with a ``tf.errors.InvalidArgumentError`` naming the file. With
    ``region_shuffle`` (training only) the batches then go through SANet's random
    shuffle module (:class:`zoo.sanet.region_shuffle.RegionShuffle`), which pairs
    every sample with its destructed copy (image, masks and map shuffled alike, the
    map relabelled below ``region_shuffle.max_segments``).

    Returns:
        A dataset of ``({"image": float32 [B, h, w, 3], "superpixels": int32 [B,
        h, w, 1]}, float32 [B, h, w, len(mask_names)])``; ``2 * batch_size`` per
        batch with ``region_shuffle``.

    Raises:
        ValueError: a record has no cached map, or ``region_shuffle.max_segments``
            exceeds ``max_segments``.
    """
    missing = [r.image_id for r in records if SUPERPIXELS not in r.extra]
    if missing:
        raise ValueError(
            f"records {missing[:3]}{'...' if len(missing) > 3 else ''} have no superpixel map; "
            f"pass them through zoo.sanet.superpixels.cache_superpixels first."
        )
    if region_shuffle is not None and region_shuffle.max_segments > max_segments:
        raise ValueError(
            f"region_shuffle.max_segments={region_shuffle.max_segments} exceeds max_segments={max_segments}: "
            f"the shuffled maps would hold labels the model cannot pool; pass the same bound to both."
        )
    from data_tools.pipeline import segmentation_dataset  # TensorFlow's: here, so SLIC alone needs none

    dataset = segmentation_dataset(
        records,
        spec,
        mask_names=mask_names,
        batch_size=batch_size,
        training=training,
        augment=augment,
        extra_maps=(SUPERPIXELS,),
        extra_map_bounds={SUPERPIXELS: max_segments},
        seed=seed,
        cache=cache,
        shuffle_buffer=shuffle_buffer,
        repeat=repeat,
        drop_remainder=drop_remainder,
    )
    if training and region_shuffle is not None:
        dataset = region_shuffle.apply(dataset, seed)
    return dataset
