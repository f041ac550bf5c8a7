"""The ``tf.distribute`` pieces of :func:`zoo.runtime.make_strategy` (TensorFlow backend only).

Imported by ``make_strategy("multi_worker")`` only, so the rest of the zoo runs
without TensorFlow.
"""

from __future__ import annotations

from typing import Any

from data_tools.lazy_tensorflow import require_tensorflow

tf = require_tensorflow("the tf.distribute strategies (strategy='mirrored' or 'multi_worker')")


class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """``MultiWorkerMirroredStrategy`` whose ``reduce`` takes what Keras 3 gives it.

    Keras 3.15 ``fit`` on a cluster fails twice in ``strategy.reduce`` with
    TensorFlow 2.21 (keras-team/keras#20585):

    * it reduces its first input batch, a nest, to build the model symbolically;
      TensorFlow reduces single values only ("Attempt to convert a value
      (PerReplica...)"): this ``reduce`` maps over the nest;
    * it averages the per-step logs, which are scalars, with ``axis=0`` ("Invalid
      reduction dimension 0 for input with 0 dimensions"): a scalar has no batch
      axis, so it is averaged across replicas only (``axis=None``).
    """

    def reduce(self, reduce_op, value, axis):
        parent = super()

        def reduce_leaf(leaf):
            leaf_axis = None if _rank(leaf) == 0 else axis
            return parent.reduce(reduce_op, leaf, leaf_axis)

        return tf.nest.map_structure(reduce_leaf, value)


def _rank(value: Any) -> int | None:
    if isinstance(value, tf.distribute.DistributedValues):
        value = value.values[0]
    return tf.convert_to_tensor(value).shape.rank
