"""Bilinear resizing (half-pixel centres, TF's), written once for the zoo's models and layers.

* :func:`resize_to`: a named ``keras.layers.Resizing`` layer to a static size, for
  functional model code (PSPNet's pyramid and the other segmentation heads, RAN's
  soft-mask branch, Wang et al. Sec. 3.1);
* :func:`resize_like`: ``keras.ops.image.resize`` to another tensor's height and width
  inside a layer's ``call`` (the attention gate's ``phi_g`` and ``alpha``, Oktay et
  al. eq. 1-2; AttnMel's projected global feature, eq. 1), a no-op when the static
  sizes agree.

Both resize with the same op (``Resizing`` calls ``ops.image.resize``, no antialiasing).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops


def resize_to(x: keras.KerasTensor, size: Sequence[int | None], name: str) -> keras.KerasTensor:
    """Bilinear resize of ``x`` to the static ``(height, width)`` ``size`` (layer ``name``)."""
    height, width = size
    if height is None or width is None:
        raise ValueError(
            f"{name}: resizing needs a static (height, width), got {tuple(size)}; "
            f"build the model with a fixed input_shape."
        )
    return keras.layers.Resizing(int(height), int(width), interpolation="bilinear", name=name)(x)


def resize_like(tensor, reference):
    """Bilinear resize of ``tensor`` to ``reference``'s height and width, inside a layer's call.

    A no-op when the static sizes already agree.
    """
    if tensor.shape[1:3] == reference.shape[1:3] and None not in tensor.shape[1:3]:
        return tensor
    return ops.image.resize(tensor, ops.shape(reference)[1:3], interpolation="bilinear")
