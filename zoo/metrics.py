"""Evaluation metrics as the papers and the ISIC challenges define them.

Numpy functions compute the tables' numbers; two registered Keras metrics
(:class:`DiceCoefficient`, :class:`JaccardIndex`) monitor training (``val_dice``).

Segmentation follows the official scorer (the ISIC Archive's public isic-challenge-scoring
repository): masks are binarised at > 128 (integer masks) or > 0.5
(probabilities); a ratio whose denominator is zero counts as perfect (1.0), e.g.
the Jaccard of a blank mask predicted blank.

===================================  ===============================================
table                                function
===================================  ===============================================
AER-Net Tables 1-3 (JSI, DC)         :func:`segmentation_scores` (per image),
                                     :func:`mean_segmentation_scores` (macro)
ISIC 2018 Task 1 score               ``mean_segmentation_scores(...)["threshold_jaccard"]``
SANet Tables 2-4 (ISIC 2018 Task 2)  :func:`isic2018_task2_scores`
A-PSPNet Tables I, III (MIoU, MPA)   :func:`mean_iou`, :func:`mean_average_precision`
                                     (eq. 8), :func:`mean_pixel_accuracy`
AttnMel, ARL-CNN (AUC, AP, ...)      :func:`classification_scores`,
                                     :func:`isic2017_average_auc`
===================================  ===============================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import keras
import numpy as np
from keras import ops
from sklearn import metrics as sk_metrics

from data_tools.layouts import ISIC2018_ATTRIBUTES

#: ISIC 2018 Task 1: a per-image Jaccard below this counts as 0 in the score.
ISIC2018_JACCARD_THRESHOLD = 0.65
#: The official scorer's threshold for 8-bit masks (0/255).
UINT8_THRESHOLD = 128
PROBABILITY_THRESHOLD = 0.5


# --------------------------------------------------------------------------- confusion counts


def binarize(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    """Boolean mask: ``> 128`` for integer masks, ``> 0.5`` for float ones, bools as they are."""
    mask = np.asarray(mask)
    if mask.dtype == bool:
        return mask
    if np.issubdtype(mask.dtype, np.integer):
        return mask > UINT8_THRESHOLD
    if np.issubdtype(mask.dtype, np.floating):
        if not np.all(np.isfinite(mask)):
            raise ValueError(f"{name} contains NaN or infinite values.")
        return mask > PROBABILITY_THRESHOLD
    raise ValueError(f"{name} has dtype {mask.dtype}; expected bool, integer or float values.")


@dataclasses.dataclass(frozen=True)
class Confusion:
    """Binary confusion counts (or pixel fractions, once normalised)."""

    tp: float
    fp: float
    fn: float
    tn: float

    @classmethod
    def of(cls, y_true: np.ndarray, y_pred: np.ndarray) -> Confusion:
        """Counts of two masks of the same shape, binarised with :func:`binarize`."""
        truth, prediction = binarize(y_true, "y_true"), binarize(y_pred, "y_pred")
        if truth.shape != prediction.shape:
            raise ValueError(f"y_true has shape {truth.shape} but y_pred has shape {prediction.shape}.")
        return cls(
            tp=float(np.sum(truth & prediction)),
            fp=float(np.sum(~truth & prediction)),
            fn=float(np.sum(truth & ~prediction)),
            tn=float(np.sum(~truth & ~prediction)),
        )

    @property
    def total(self) -> float:
        return self.tp + self.fp + self.fn + self.tn

    def normalized(self) -> Confusion:
        """Each count divided by the pixel count (ISIC 2018 Task 2: images differ in size)."""
        total = self.total
        return Confusion(self.tp / total, self.fp / total, self.fn / total, self.tn / total)

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    def jaccard(self) -> float:
        """TP / (TP + FP + FN) (AER-Net eq. 2); 1 when there is nothing to find or miss."""
        return _ratio(self.tp, self.tp + self.fp + self.fn)

    def dice(self) -> float:
        """2 TP / (2 TP + FP + FN) (AER-Net eq. 3); 1 when there is nothing to find or miss."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def accuracy(self) -> float:
        return _ratio(self.tp + self.tn, self.total)

    def sensitivity(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    def specificity(self) -> float:
        return _ratio(self.tn, self.tn + self.fp)


def _ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, and 1.0 (perfect) for 0 / 0, as the ISIC scorer does."""
    return 1.0 if denominator == 0 else float(numerator / denominator)


# --------------------------------------------------------------------------- segmentation

SEGMENTATION_METRICS = ("jaccard", "dice", "accuracy", "sensitivity", "specificity")


def segmentation_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Jaccard, Dice, accuracy, sensitivity and specificity of one image's binary masks."""
    confusion = Confusion.of(y_true, y_pred)
    return {name: getattr(confusion, name)() for name in SEGMENTATION_METRICS}


def threshold_jaccard(jaccard: float, threshold: float = ISIC2018_JACCARD_THRESHOLD) -> float:
    """ISIC 2018 Task 1: a per-image Jaccard below ``threshold`` scores 0."""
    return jaccard if jaccard >= threshold else 0.0


def mean_segmentation_scores(
    y_true: Iterable[np.ndarray],
    y_pred: Iterable[np.ndarray],
    threshold: float = ISIC2018_JACCARD_THRESHOLD,
) -> dict[str, float]:
    """Macro averages over images of :func:`segmentation_scores`, plus the Task 1 score.

    ``threshold_jaccard`` is the ISIC 2018 Task 1 score: the mean over images of
    :func:`threshold_jaccard`. Images may differ in size (pass lists).
    """
    per_image = [segmentation_scores(t, p) for t, p in _pairs(y_true, y_pred)]
    means = {name: float(np.mean([s[name] for s in per_image])) for name in SEGMENTATION_METRICS}
    means["threshold_jaccard"] = float(np.mean([threshold_jaccard(s["jaccard"], threshold) for s in per_image]))
    return means


def _pairs(y_true: Iterable[np.ndarray], y_pred: Iterable[np.ndarray]) -> list[tuple]:
    """``(truth, prediction)`` per image; lists, or arrays with images on axis 0."""
    y_true, y_pred = list(y_true), list(y_pred)
    if not y_true or len(y_true) != len(y_pred):
        raise ValueError(
            f"y_true and y_pred must hold the same, non-zero number of images; got {len(y_true)} and {len(y_pred)}."
        )
    return list(zip(y_true, y_pred, strict=True))


def isic2018_task2_scores(
    y_true: Iterable[np.ndarray],
    y_pred: Iterable[np.ndarray],
    attributes: Sequence[str] = ISIC2018_ATTRIBUTES,
) -> dict[str, dict[str, float]]:
    """ISIC 2018 Task 2 (lesion attributes) as the official scorer computes it.

    Each image's confusion matrix per attribute is normalised by its pixel count and
    summed over images; Jaccard and Dice come from the sums. ``micro_average`` sums
    over the attributes too. A blank attribute predicted blank adds only true
    negatives, so it never lowers a score. Also returned: ``macro_average`` (mean of
    the per-attribute values, SANet Table 4) and ``sanet_average``, the mean of the
    five attribute values and the micro average (SANet's "Avg JA"/"Avg DICE",
    Tables 2-3).

    Args:
        y_true, y_pred: per image, masks ``[H, W, len(attributes)]`` in the order of
            ``attributes``.
    """
    sums = {name: Confusion(0.0, 0.0, 0.0, 0.0) for name in attributes}
    for index, (truth, prediction) in enumerate(_pairs(y_true, y_pred)):
        truth, prediction = np.asarray(truth), np.asarray(prediction)
        if truth.ndim != 3 or truth.shape[-1] != len(attributes) or truth.shape != prediction.shape:
            raise ValueError(
                f"image {index}: expected y_true and y_pred [H, W, {len(attributes)}] (one "
                f"channel per attribute {list(attributes)}), got {truth.shape} and "
                f"{prediction.shape}."
            )
        for channel, name in enumerate(attributes):
            confusion = Confusion.of(truth[..., channel], prediction[..., channel])
            sums[name] = sums[name] + confusion.normalized()
    scores = {name: {"jaccard": c.jaccard(), "dice": c.dice()} for name, c in sums.items()}
    micro = sum(sums.values(), Confusion(0.0, 0.0, 0.0, 0.0))
    scores["micro_average"] = {"jaccard": micro.jaccard(), "dice": micro.dice()}
    for summary, members in (
        ("macro_average", list(attributes)),
        ("sanet_average", [*attributes, "micro_average"]),
    ):
        scores[summary] = {
            metric: float(np.mean([scores[m][metric] for m in members])) for metric in ("jaccard", "dice")
        }
    return scores


# --------------------------------------------------------------------------- multi-class (A-PSPNet)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``[num_classes, num_classes]`` pixel counts: row = true class i, column = predicted j."""
    truth, prediction = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if truth.shape != prediction.shape:
        raise ValueError(f"y_true and y_pred hold {truth.size} and {prediction.size} pixels; they must match.")
    for name, labels in (("y_true", truth), ("y_pred", prediction)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(
                f"{name} holds class indices in [{labels.min()}, {labels.max()}]; expected "
                f"0..{num_classes - 1} (num_classes={num_classes})."
            )
    flat = truth.astype(np.int64) * num_classes + prediction.astype(np.int64)
    return np.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def mean_iou(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """A-PSPNet eq. 7, MIoU: ``1 / (k + 1)`` times the sum over the k + 1 classes of
    ``p_ii / (row_i + col_i - p_ii)``.

    Counts are accumulated over all pixels given (pass the whole test set, as
    hszhao/semseg does). Eq. 7 divides by the number of classes; a class that is
    neither in the truth nor predicted anywhere (0 / 0) counts as 1: nothing to
    find and nothing wrongly found. A class predicted but absent counts 0.
    """
    return _miou(confusion_matrix(y_true, y_pred, num_classes))


def _miou(counts: np.ndarray) -> float:
    counts = counts.astype(np.float64)
    hits = np.diag(counts)
    union = counts.sum(axis=0) + counts.sum(axis=1) - hits
    return float(np.mean(np.where(union > 0, hits / np.where(union > 0, union, 1.0), 1.0)))


def mean_pixel_accuracy(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Mean pixel accuracy, the usual "MPA": mean over classes of ``p_ii / sum_j p_ij``
    (the per-class recall).

    This is what A-PSPNet's "MPA" name means; its eq. 8 computes something else
    (:func:`mean_average_precision`). Classes absent from the truth are left out
    (their recall is undefined).
    """
    return _mean_pixel_accuracy(confusion_matrix(y_true, y_pred, num_classes))


def _mean_pixel_accuracy(counts: np.ndarray) -> float:
    counts = counts.astype(np.float64)
    support = counts.sum(axis=1)
    return float(np.mean(np.diag(counts)[support > 0] / support[support > 0]))


def mean_average_precision(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """A-PSPNet eq. 8, written as ``sum_n (R_n - R_{n-1}) P_n`` over the k + 1 classes:
    the mean over classes of the area under the precision-recall curve.

    ``sum_n (R_n - R_{n-1}) P_n`` is the average precision of scikit-learn's
    ``average_precision_score``, computed one-vs-rest per class over all pixels,
    then averaged over the k + 1 classes (eq. 8 is a mean PR-AUC
    despite its name). Classes absent from the truth are left out.

    Args:
        y_true: class indices ``[..., H, W]``.
        probabilities: softmax output ``[..., H, W, k + 1]``.
    """
    probabilities = np.asarray(probabilities)
    num_classes = probabilities.shape[-1]
    truth = np.asarray(y_true).ravel()
    scores = probabilities.reshape(-1, num_classes)
    if truth.size != scores.shape[0]:
        raise ValueError(
            f"y_true holds {truth.size} pixels but probabilities hold {scores.shape[0]} "
            f"(shape {probabilities.shape}); expected y_true [..., H, W] and probabilities "
            "[..., H, W, classes]."
        )
    precisions = [
        sk_metrics.average_precision_score(truth == c, scores[:, c]) for c in range(num_classes) if np.any(truth == c)
    ]
    return float(np.mean(precisions))


class SegmentationScores:
    """A-PSPNet's scores accumulated image by image, at any image size.

    The test images of an ultrasound set at their original resolution do not fit in
    memory together, so the pixel counts are accumulated: the confusion matrix for
    eq. 7 (:func:`mean_iou`) and the mean pixel accuracy, and for eq. 8
    (:func:`mean_average_precision`) per-class histograms of the scores of positive
    and negative pixels in ``bins`` equal bins. The average precision from the
    histograms is exact for scores that are multiples of ``1 / bins`` and otherwise
    differs by at most the precision change within one bin.
    """

    def __init__(self, num_classes: int, bins: int = 1000):
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}.")
        self.num_classes, self.bins = num_classes, bins
        self.counts = np.zeros((num_classes, num_classes), np.int64)
        self.positives = np.zeros((num_classes, bins + 1), np.int64)
        self.negatives = np.zeros((num_classes, bins + 1), np.int64)

    def update(self, y_true: np.ndarray, probabilities: np.ndarray) -> None:
        """Adds one image: class indices ``[H, W]`` and probabilities ``[H, W, classes]``."""
        probabilities = np.asarray(probabilities, np.float64)
        truth = np.asarray(y_true).astype(np.int64)
        if probabilities.shape != (*truth.shape, self.num_classes):
            raise ValueError(
                f"probabilities of shape {probabilities.shape} do not match truth "
                f"{truth.shape} with {self.num_classes} classes."
            )
        if not np.isfinite(probabilities).all():
            raise ValueError("probabilities hold NaN or infinite values.")
        self.counts += confusion_matrix(truth, probabilities.argmax(-1), self.num_classes)
        levels = np.clip(np.rint(probabilities * self.bins), 0, self.bins).astype(np.int64)
        for c in range(self.num_classes):
            positive = truth == c
            self.positives[c] += np.bincount(levels[..., c][positive], minlength=self.bins + 1)
            self.negatives[c] += np.bincount(levels[..., c][~positive], minlength=self.bins + 1)

    def mean_iou(self) -> float:
        return _miou(self.counts)

    def mean_pixel_accuracy(self) -> float:
        return _mean_pixel_accuracy(self.counts)

    def mean_average_precision(self) -> float:
        """Eq. 8 from the score histograms (thresholds at every bin, high to low)."""
        precisions = []
        for positives, negatives in zip(self.positives, self.negatives, strict=True):
            total = positives.sum()
            if total == 0:
                continue
            true_pos = np.cumsum(positives[::-1])
            predicted = true_pos + np.cumsum(negatives[::-1])
            steps = positives[::-1] > 0
            precision = true_pos[steps] / predicted[steps]
            recall_steps = positives[::-1][steps] / total
            precisions.append(float(np.sum(recall_steps * precision)))
        return float(np.mean(precisions))


# --------------------------------------------------------------------------- classification


def classification_scores(y_true: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """AUC and AP (scikit-learn, as AttnMel footnote 1) and thresholded accuracy,
    sensitivity and specificity of one binary task (ARL-CNN Tables III-VII)."""
    truth, scores = np.asarray(y_true).ravel(), np.asarray(scores, dtype=np.float64).ravel()
    if truth.shape != scores.shape:
        raise ValueError(f"y_true has {truth.size} labels but scores has {scores.size} values.")
    if not np.all(np.isin(truth, (0, 1))):
        raise ValueError("y_true must hold binary labels 0/1.")
    if len(np.unique(truth)) < 2:
        raise ValueError("AUC and AP need both classes in y_true; it holds only one.")
    confusion = Confusion.of(truth.astype(bool), scores > threshold)
    return {
        "auc": float(sk_metrics.roc_auc_score(truth, scores)),
        "ap": float(sk_metrics.average_precision_score(truth, scores)),
        "accuracy": confusion.accuracy(),
        "sensitivity": confusion.sensitivity(),
        "specificity": confusion.specificity(),
    }


def isic2017_average_auc(y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """ISIC 2017 Part 3: the AUCs of melanoma and of seborrheic keratosis, and their mean.

    Args:
        y_true, scores: ``[N, 2]``, columns ``melanoma, seborrheic_keratosis`` (the
            official CSV's order).
    """
    truth, scores = np.asarray(y_true), np.asarray(scores, dtype=np.float64)
    if truth.ndim != 2 or truth.shape[1] != 2 or truth.shape != scores.shape:
        raise ValueError(
            f"expected y_true and scores of shape [N, 2] (melanoma, seborrheic_keratosis), "
            f"got {truth.shape} and {scores.shape}."
        )
    result = {
        f"{name}_auc": float(sk_metrics.roc_auc_score(truth[:, i], scores[:, i]))
        for i, name in enumerate(("melanoma", "seborrheic_keratosis"))
    }
    result["average_auc"] = float(np.mean(list(result.values())))
    return result


# --------------------------------------------------------------------------- Keras metrics


class _ThresholdedOverlap(keras.metrics.Metric):
    """Streaming mean over images of a thresholded overlap score.

    Each image's prediction is binarised at ``threshold`` and scored against its
    mask (binarised at 0.5) over all pixels and channels; the metric is the mean of
    those per-image scores (the macro average of the tables), with the ISIC
    convention that a blank mask predicted blank scores 1.
    """

    def __init__(self, threshold: float = 0.5, name: str | None = None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        if not 0 < threshold < 1:
            raise ValueError(f"`threshold` must be in (0, 1), got {threshold!r}.")
        self.threshold = float(threshold)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def _score(self, tp, fp, fn):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.cast(ops.convert_to_tensor(y_pred) > self.threshold, self.dtype)
        y_true = ops.cast(ops.convert_to_tensor(y_true) > 0.5, self.dtype)
        axes = list(range(1, len(y_pred.shape)))
        tp = ops.sum(y_true * y_pred, axis=axes)
        fp = ops.sum((1.0 - y_true) * y_pred, axis=axes)
        fn = ops.sum(y_true * (1.0 - y_pred), axis=axes)
        scores = self._score(tp, fp, fn)
        weights = (
            ops.ones_like(scores)
            if sample_weight is None
            else ops.reshape(ops.cast(sample_weight, self.dtype), ops.shape(scores))
        )
        self.total.assign_add(ops.sum(scores * weights))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "threshold": self.threshold}


def _overlap_ratio(numerator, denominator):
    """Elementwise ``numerator / denominator``, 1 where the denominator is 0."""
    safe = ops.where(denominator > 0, denominator, 1.0)
    return ops.where(denominator > 0, numerator / safe, 1.0)


@keras.saving.register_keras_serializable(package="zoo")
class DiceCoefficient(_ThresholdedOverlap):
    """Streaming per-image Dice of thresholded predictions (``val_dice`` in logs)."""

    def __init__(self, threshold: float = 0.5, name: str = "dice", dtype=None):
        super().__init__(threshold=threshold, name=name, dtype=dtype)

    def _score(self, tp, fp, fn):
        return _overlap_ratio(2.0 * tp, 2.0 * tp + fp + fn)


@keras.saving.register_keras_serializable(package="zoo")
class JaccardIndex(_ThresholdedOverlap):
    """Streaming per-image Jaccard of thresholded predictions (``val_jaccard`` in logs)."""

    def __init__(self, threshold: float = 0.5, name: str = "jaccard", dtype=None):
        super().__init__(threshold=threshold, name=name, dtype=dtype)

    def _score(self, tp, fp, fn):
        return _overlap_ratio(tp, tp + fp + fn)
