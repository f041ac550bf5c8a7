"""Training on arrays in memory: a ``keras.utils.PyDataset`` that :func:`zoo.train.fit` resumes exactly.

``fit`` takes ``tf.data`` datasets and ``keras.utils.PyDataset`` objects; this is
the PyDataset for arrays already in memory, and needs no TensorFlow (JAX, PyTorch).
Its order is a function of ``(seed, epoch)`` only: ``fit`` tells it the epoch it is
about to run (:func:`data_tools.epochs.set_training_epoch`), so a run resumed at
epoch ``e`` draws the batches an uninterrupted run draws there.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import keras
import numpy as np

from data_tools.epochs import on_training_epoch


class ArrayDataset(keras.utils.PyDataset):
    """Batches of ``(inputs, targets[, sample_weights])`` from arrays, reshuffled per epoch.

    Args:
        inputs: an array, or a list/dict of arrays (models with several inputs,
            e.g. SANet's image and superpixel map), first axis the samples.
        targets: likewise, one per output.
        batch_size: samples per batch; the last batch of an epoch may be smaller.
        sample_weights: optional, as ``targets``.
        shuffle: draw a new order each epoch (seeded), else the arrays' order.
        seed: the shuffle's seed.
    """

    def __init__(
        self,
        inputs: Any,
        targets: Any,
        batch_size: int,
        *,
        sample_weights: Any = None,
        shuffle: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"ArrayDataset: batch_size must be a positive int, got {batch_size!r}.")
        parts = (inputs, targets) if sample_weights is None else (inputs, targets, sample_weights)
        self._parts = keras.tree.map_structure(np.asarray, parts)
        lengths = {len(array) for array in keras.tree.flatten(self._parts)}
        if len(lengths) != 1 or 0 in lengths:
            raise ValueError(
                f"ArrayDataset: inputs, targets and sample weights must hold the same number of "
                f"samples (at least one), got lengths {sorted(lengths)}."
            )
        (self._size,) = lengths
        self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, 0
        reference = weakref.ref(self)
        on_training_epoch(lambda epoch: setattr(reference(), "epoch", epoch) if reference() is not None else None)

    def __len__(self) -> int:
        return math.ceil(self._size / self.batch_size)

    def order(self) -> np.ndarray:
        """The sample order of the current epoch."""
        if not self.shuffle:
            return np.arange(self._size)
        return np.random.default_rng([self.seed, self.epoch]).permutation(self._size)

    def __getitem__(self, index: int) -> tuple:
        if not 0 <= index < len(self):
            raise IndexError(f"ArrayDataset: batch {index} of {len(self)}")
        rows = self.order()[index * self.batch_size : (index + 1) * self.batch_size]
        return keras.tree.map_structure(lambda array: array[rows], self._parts)
