"""A training set's channel statistics, for ``InputSpec(scale="standard")``.

AttnMel-CNN's reference code (the public repository SaoYan/IPMI2019-AttnMel) standardises
its VGG-16-BN input with the mean and standard deviation of each RGB channel over
the training images (``transforms.Normalize(mean, std)``). :func:`channel_statistics`
computes them as the model sees the images at test time: the spec's colour
constancy, fit, resize and centred crop, in the spec's colour space at its ``"unit"``
scale, over every pixel of every image (population standard deviation, sums in
float64). :func:`standardised_spec` returns the spec that applies them.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
from tqdm import tqdm

from data_tools.pipeline import decode_image_file
from data_tools.preprocess import InputSpec, preprocess_images
from data_tools.records import Record


def channel_statistics(
    records: Sequence[Record], spec: InputSpec, *, progress: bool = True
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """``(mean, std)`` of each channel of ``records``' images under ``spec`` (its scale
    ignored: the statistics are of the ``"unit"`` values that ``"standard"`` divides).

    Raises:
        ValueError: no records; an image whose pixels are not finite, or a channel
            that is constant over the whole set (its standard deviation is 0).
    """
    if not records:
        raise ValueError("channel_statistics: no training images to compute the statistics of.")
    unit = dataclasses.replace(spec, scale="unit", mean=None, std=None)
    sums, squares, pixels = np.zeros(3), np.zeros(3), 0
    for record in tqdm(records, desc="channel statistics", unit="image", disable=not progress):
        image = preprocess_images(decode_image_file(str(record.image_path)), unit).numpy().astype(np.float64)
        if not np.isfinite(image).all():
            raise ValueError(f"{record.image_path}: non-finite pixels after preprocessing.")
        values = image.reshape(-1, 3)
        sums += values.sum(axis=0)
        squares += np.square(values).sum(axis=0)
        pixels += len(values)
    mean = sums / pixels
    std = np.sqrt(np.maximum(squares / pixels - np.square(mean), 0.0))
    if (std <= 0).any():
        raise ValueError(
            f"channel_statistics: channel(s) {np.flatnonzero(std <= 0).tolist()} are constant "
            f"over all {len(records)} images; they cannot be standardised."
        )
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def standardised_spec(records: Sequence[Record], spec: InputSpec, *, progress: bool = True) -> InputSpec:
    """``spec`` with ``scale="standard"`` and the channel statistics of ``records``."""
    mean, std = channel_statistics(records, spec, progress=progress)
    return dataclasses.replace(spec, scale="standard", mean=mean, std=std)
