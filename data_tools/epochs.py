"""Which epoch training is about to run, told to every live training dataset.

A training dataset that reshuffles per epoch (the tf.data pipelines of
:mod:`data_tools.pipeline`, :class:`zoo.train.ArrayDataset`) registers a listener
here; :func:`zoo.train.fit` calls :func:`set_training_epoch` before each epoch, so
that a run resumed at epoch ``e`` sees exactly the batches an uninterrupted run sees
there. No TensorFlow: this is the part of the pipelines that training on arrays
needs too.
"""

from __future__ import annotations

from typing import Callable

_LISTENERS: list[Callable[[int], object]] = []
"""Every training dataset's epoch setter, held strongly (tf.data's functions hold
the variables they read only weakly; one per dataset built)."""


def on_training_epoch(listener: Callable[[int], object]) -> None:
    """Call ``listener(epoch)`` whenever :func:`set_training_epoch` is called."""
    _LISTENERS.append(listener)


def set_training_epoch(epoch: int) -> None:
    """Make every live training dataset's next pass start at ``epoch``."""
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"set_training_epoch: epoch must be a non-negative int, got {epoch!r}.")
    for listener in _LISTENERS:
        listener(epoch)
