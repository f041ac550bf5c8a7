"""The attention module of AttnMel-CNN (Yan, Kawahara & Hamarneh, IPMI 2019, Fig. 2).

A local feature map ``F`` (pool-3 or pool-4 of VGG-16) is weighted by a spatial
attention map computed from ``F`` and the global feature ``G`` (pool-5)::

    R     = W (x) ReLU(W_f (x) F + up(W_g (x) G))        # eq. 1
    A     = sigmoid(R)                                   # eq. 2
    f^_i  = a_i * f_i                                    # eq. 3
    g^    = GAP(F^)                                      # Sec. 2.1, Fig. 1

``W_f`` and ``W_g`` are 1x1 convolutions with 256 filters and no bias, ``W`` a 1x1
convolution to one channel with a bias; ``up`` is bilinear interpolation (half-pixel
centres, as PyTorch's ``align_corners=False``) of the *projected* global term to
``F``'s size (as the authors' code, SaoYan/IPMI2019-AttnMel, does). The layer returns the pooled vector ``g^``
(eq. 3 followed by the global average pooling of Fig. 1) and the attention map ``A``.

The authors' code offers a second normalisation, ``normalization="softmax"``: ``A``
is a softmax over the spatial positions and ``g^ = sum_i a_i f_i`` (the
attention-weighted sum, Jetley et al. 2018). The paper uses the sigmoid.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from zoo.common.resizing import resize_like

NORMALIZATIONS: tuple[str, ...] = ("sigmoid", "softmax")
ATTNMEL_ATTENTION_FILTERS = 256  # Sec. 2.1: "W_f and W_g ... with 256 filters"


@keras.saving.register_keras_serializable(package="zoo")
class AttnMelAttention(keras.layers.Layer):
    """``[F, G] -> (g^, A)``: AttnMel's attention module (eq. 1-3, Fig. 2).

    Args:
        filters: output channels of ``W_f`` and ``W_g`` (the paper: 256).
        normalization: eq. 2's normalisation, ``"sigmoid"`` (the paper) or
            ``"softmax"`` over space (an option of the authors' code).
        kernel_initializer: initialiser of the three convolutions (the paper:
            He's initialisation, Sec. 3.1).

    Call arguments:
        inputs: ``[F, G]``: the local feature map ``(batch, H, W, C)`` and the
            global feature map ``(batch, H_g, W_g, C_g)``, usually smaller (it is
            bilinearly resized to ``H x W`` after its projection).

    Returns:
        ``(g^, A)``: the attended feature vector ``(batch, C)`` and the attention
        map ``(batch, H, W, 1)``.
    """

    def __init__(
        self,
        filters: int = ATTNMEL_ATTENTION_FILTERS,
        normalization: str = "sigmoid",
        kernel_initializer: Any = "he_normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
            raise ValueError(f"AttnMelAttention: filters must be a positive int, got {filters!r}.")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"AttnMelAttention: normalization must be one of {NORMALIZATIONS}, got {normalization!r}.")
        self.filters = filters
        self.normalization = normalization
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"AttnMelAttention expects inputs [local, global], got {len(input_shape)} inputs.")
        local_shape, global_shape = tuple(input_shape[0]), tuple(input_shape[1])
        if len(local_shape) != 4 or len(global_shape) != 4:
            raise ValueError(
                f"AttnMelAttention expects 4-D (batch, H, W, C) local and global "
                f"features, got {local_shape} and {global_shape}."
            )
        conv = dict(kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy)
        self.local_projection = keras.layers.Conv2D(self.filters, 1, use_bias=False, name="local_projection", **conv)
        self.global_projection = keras.layers.Conv2D(self.filters, 1, use_bias=False, name="global_projection", **conv)
        self.response = keras.layers.Conv2D(1, 1, use_bias=True, name="response", **conv)
        self.local_projection.build(local_shape)
        self.global_projection.build(global_shape)
        self.response.build((*local_shape[:-1], self.filters))

    def call(self, inputs):
        local, global_ = inputs
        projected_global = resize_like(self.global_projection(global_), local)
        response = self.response(ops.relu(self.local_projection(local) + projected_global))
        if self.normalization == "sigmoid":
            attention = ops.sigmoid(response)
            attended = ops.mean(attention * local, axis=(1, 2))
        else:
            batch, height, width = ops.shape(response)[0], ops.shape(response)[1], ops.shape(response)[2]
            flat = ops.softmax(ops.reshape(response, (batch, height * width)), axis=-1)
            attention = ops.reshape(flat, (batch, height, width, 1))
            attended = ops.sum(attention * local, axis=(1, 2))
        return attended, attention

    def compute_output_shape(self, input_shape):
        local_shape = tuple(input_shape[0])
        return (local_shape[0], local_shape[-1]), (*local_shape[:-1], 1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            filters=self.filters,
            normalization=self.normalization,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
