"""AttnMel-CNN's reference maps of ROIs (Yan et al., AttnMel-CNN, IPMI 2019, sections 2.2 and 3.2, Table 2).

Eq. 5 regularises the attention maps of pool-3 and pool-4 with "a reference binary map
of ROIs" (eq. 4). Table 2 trains three such models ("How does the Regularization
Influence the Model?"): AttnMel-CNN-Lesion "uses the whole lesion segmentation map",
AttnMel-CNN-Dermo "the union of four dermoscopic features" and AttnMel-CNN-Bkg "image
background (the inverse of whole lesion segmentation)".

* :data:`ROI_MASKS`: the mask file each ROI is read from;
* :func:`roi_target`: the reference map of an ROI from that mask;
* :func:`roi_dataset`: augmented images with their labels and reference maps, from
  one segmentation pipeline (each image decoded and augmented once, its reference
  map aligned with it);
* :func:`attention_targets`: the targets of AttnMel-CNN's three outputs.

A data module: import it where it is needed (``import zoo`` does not).
"""

from __future__ import annotations

from typing import Any, Sequence

from data_tools.lazy_tensorflow import lazy_tensorflow
from data_tools.pipeline import segmentation_dataset
from data_tools.preprocess import InputSpec
from data_tools.records import Record
from zoo.attnmel.models import ATTENTION_OUTPUTS

tf = lazy_tensorflow("AttnMel's ROI maps in tf.data")

ROI_MASKS = {"lesion": "lesion", "dermo": "dermo", "background": "lesion"}
"""ROI (Table 2's -Lesion, -Dermo, -Bkg) -> the name of the record's mask read for it
(the Dermo mask, the union of the four ISIC 2017 Part 2 features, is written by
:func:`data_tools.isic.write_isic2017_feature_masks`)."""
ROIS = tuple(ROI_MASKS)


def roi_target(masks: tf.Tensor, roi: str) -> tf.Tensor:
    """The reference map of eq. 4 from the ROI's mask (:data:`ROI_MASKS`): the mask
    itself, or its inverse for ``"background"``."""
    _check_roi(roi)
    return 1.0 - masks if roi == "background" else masks


def roi_dataset(
    records: Sequence[Record], spec: InputSpec, roi: str, *, label_name: str, **options: Any
) -> tf.data.Dataset:
    """``(image, {"labels": float32 [B, 1], "reference": float32 [B, h, w, 1]})`` batches.

    The ROI's mask rides with its image through
    :func:`data_tools.pipeline.segmentation_dataset` (``options``: ``batch_size``,
    ``training``, ``augment``, ``seed``, ...), the record's ``label_name`` beside it.
    """
    _check_roi(roi)
    masked = segmentation_dataset(records, spec, mask_names=(ROI_MASKS[roi],), label_names=(label_name,), **options)
    return masked.map(
        lambda image, targets: (image, {"labels": targets["labels"], "reference": roi_target(targets["masks"], roi)})
    )


def attention_targets(probabilities: tf.Tensor, reference: tf.Tensor) -> dict[str, tf.Tensor]:
    """AttnMel-CNN's targets keyed by its outputs (eq. 5): ``probabilities`` for the
    softmax, ``reference`` for both attention maps (:func:`zoo.losses.attnmel_losses`
    average-pools it to each map's size: "downsampled to the size of pool-3 and
    pool-4", section 2.2)."""
    return {"probabilities": probabilities, **{name: reference for name in ATTENTION_OUTPUTS}}


def _check_roi(roi: str) -> None:
    if roi not in ROI_MASKS:
        raise ValueError(f"roi must be one of {ROIS}, got {roi!r}.")
