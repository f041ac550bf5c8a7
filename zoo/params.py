"""Parameter counts as Keras and as the papers' PyTorch-era tables count them.

Keras' ``count_params`` counts every weight, including the batch-norm moving mean
and variance (not trainable) and the biases of convolutions followed by batch norm,
which keras.applications' ResNets keep for their ImageNet weights. The papers' tables
count a PyTorch model's ``parameters()``: trainable tensors only, and torchvision's
ResNets have no bias in a convolution that batch norm follows (the norm's shift makes
it redundant). :func:`count_parameters` gives both, so a Keras ResNet50 with a 2-class
head reads 23,512,130, torchvision's 25,557,032 less its 1000-class classifier
(2,049,000) plus the 2-class one (4,098).
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np


@dataclasses.dataclass(frozen=True)
class ParameterCount:
    """``keras``: ``model.count_params()``; ``trainable``: trainable weights only;
    ``pytorch_style``: trainable, less the biases of convolutions feeding a batch norm."""

    keras: int
    trainable: int
    pytorch_style: int


def _size(weight) -> int:
    return int(np.prod(weight.shape))


def count_parameters(model: keras.Model) -> ParameterCount:
    """The counts of :class:`ParameterCount` for a functional ``model``."""
    redundant = set()
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        for node in layer._inbound_nodes:
            for parent in node.parent_nodes:
                operation = parent.operation
                if isinstance(operation, keras.layers.Conv2D) and operation.use_bias and operation.trainable:
                    redundant.add(id(operation.bias))
    trainable = model.trainable_weights
    return ParameterCount(
        keras=int(model.count_params()),
        trainable=sum(map(_size, trainable)),
        pytorch_style=sum(_size(w) for w in trainable if id(w) not in redundant),
    )
