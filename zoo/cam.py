"""Class activation maps (Zhou et al., CVPR 2016) as used in the ARL paper (eq. 13).

For a classifier ending in global average pooling and one fully connected layer,
the CAM of class k is C_k(i, j) = sum_c w_c^k f_c(i, j), where f is the feature
map entering the GAP layer and w^k the FC weights of class k (the bias is not
part of eq. 13). Fig. 5 and 6 of the paper show CAMs over dermoscopy images;
:func:`plot_class_activation_maps` draws such a grid.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np


def _gap_layer(model: keras.Model, pooling_layer: str | None) -> keras.layers.Layer:
    if pooling_layer is not None:
        return model.get_layer(pooling_layer)
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)]
    if len(pools) != 1:
        raise ValueError(
            f"model {model.name!r} has {len(pools)} GlobalAveragePooling2D layers; pass pooling_layer= to choose one"
        )
    return pools[0]


def class_activation_map(
    model: keras.Model,
    images,
    class_index: int,
    classifier_layer: str = "predictions",
    pooling_layer: str | None = None,
    resize_to_input: bool = False,
) -> np.ndarray:
    """CAMs (eq. 13) of ``class_index`` for a batch of images.

    Args:
        model: a GAP + Dense classifier, e.g. any ``build_*`` of
            :mod:`zoo.arl_cnn.models` (GAP ``avg_pool``, Dense ``predictions``).
        images: (batch, height, width, channels) array, preprocessed as for the model.
        class_index: the class k.
        classifier_layer: name of the Dense layer after the GAP.
        pooling_layer: name of the GAP layer; by default the model's only one.
        resize_to_input: bilinearly upsample the maps to the image size.

    Returns:
        float32 array (batch, h, w): at the feature resolution, or the image's.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must be (batch, height, width, channels), got shape {images.shape}")
    dense = model.get_layer(classifier_layer)
    kernel = np.asarray(dense.kernel)
    if not 0 <= class_index < kernel.shape[1]:
        raise ValueError(f"class_index must be in [0, {kernel.shape[1]}), got {class_index}")
    if len(model.inputs) != 1:
        raise ValueError(
            f"model {model.name!r} has {len(model.inputs)} inputs; class_activation_map "
            f"needs a model with one image input."
        )
    gap = _gap_layer(model, pooling_layer)
    # the input tensor itself, not ``model.input``: a model built with ``inputs=[x]``
    # would expect a one-element list and warn on a plain batch of images
    features_model = keras.Model(model.inputs[0], gap.input)
    features = np.asarray(features_model(images, training=False), dtype=np.float32)
    if features.shape[-1] != kernel.shape[0]:
        raise ValueError(
            f"{gap.name!r} has {features.shape[-1]} channels but {classifier_layer!r} expects {kernel.shape[0]}"
        )
    cams = np.tensordot(features, kernel[:, class_index].astype(np.float32), axes=([3], [0]))
    if resize_to_input:
        resized = keras.ops.image.resize(cams[..., None], images.shape[1:3], interpolation="bilinear")
        cams = np.asarray(resized)[..., 0]
    return cams.astype(np.float32)


def normalize_map(cam: np.ndarray) -> np.ndarray:
    """Min-max scale one map to [0, 1] (a constant map becomes zeros)."""
    low, high = float(np.min(cam)), float(np.max(cam))
    return np.zeros_like(cam) if high == low else (cam - low) / (high - low)


def plot_class_activation_maps(
    images, cams_by_model: Mapping[str, np.ndarray], alpha: float = 0.5, colormap: str = "jet"
):
    """A Fig. 5-style grid: images in the top row, one row of CAM overlays per model.

    Args:
        images: (batch, height, width, 3) images in [0, 1] or [0, 255].
        cams_by_model: row label (e.g. "ResNet50", "ARL-CNN50") -> (batch, h, w)
            CAMs at the image size (``resize_to_input=True``).
        alpha: opacity of the CAM overlay.

    Returns:
        the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    images = np.asarray(images, dtype=np.float32)
    if images.max() > 1.0:
        images = images / 255.0
    for label, cams in cams_by_model.items():
        if np.shape(cams) != images.shape[:3]:
            raise ValueError(
                f"CAMs of {label!r} have shape {np.shape(cams)}, expected {images.shape[:3]} (use resize_to_input=True)"
            )
    rows, columns = 1 + len(cams_by_model), len(images)
    figure, axes = plt.subplots(rows, columns, figsize=(2 * columns, 2 * rows), squeeze=False)
    for column, image in enumerate(images):
        axes[0, column].imshow(np.clip(image, 0, 1))
        for row, (label, cams) in enumerate(cams_by_model.items(), start=1):
            axes[row, column].imshow(np.clip(image, 0, 1))
            axes[row, column].imshow(normalize_map(cams[column]), cmap=colormap, alpha=alpha, vmin=0, vmax=1)
            if column == 0:
                axes[row, column].set_ylabel(label)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.tight_layout()
    return figure
