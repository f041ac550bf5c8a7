"""zoo.metrics against scikit-learn and hand-computed examples."""

import keras
import numpy as np
import pytest
from sklearn import metrics as sk

from zoo import metrics


def _random_masks(seed: int, shape=(6, 7)):
    rng = np.random.default_rng(seed)
    return rng.random(shape) > 0.5, rng.random(shape) > 0.4


def test_binarize_follows_the_isic_thresholds():
    eight_bit = np.array([0, 128, 129, 255], np.uint8)
    np.testing.assert_array_equal(metrics.binarize(eight_bit), [0, 0, 1, 1])
    np.testing.assert_array_equal(metrics.binarize(np.array([0.2, 0.5, 0.51])), [0, 0, 1])
    np.testing.assert_array_equal(metrics.binarize(np.array([True, False])), [1, 0])
    with pytest.raises(ValueError, match="dtype"):
        metrics.binarize(np.array(["a"]))
    with pytest.raises(ValueError, match="NaN"):
        metrics.binarize(np.array([np.nan]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_segmentation_scores_match_sklearn(seed):
    truth, prediction = _random_masks(seed)
    t, p = truth.ravel(), prediction.ravel()
    scores = metrics.segmentation_scores(truth.astype(np.uint8) * 255, prediction.astype(float))
    assert scores["jaccard"] == pytest.approx(sk.jaccard_score(t, p))
    assert scores["dice"] == pytest.approx(sk.f1_score(t, p))
    assert scores["accuracy"] == pytest.approx(sk.accuracy_score(t, p))
    assert scores["sensitivity"] == pytest.approx(sk.recall_score(t, p))
    assert scores["specificity"] == pytest.approx(sk.recall_score(t, p, pos_label=0))
    tn, fp, fn, tp = sk.confusion_matrix(t, p).ravel()
    assert metrics.Confusion.of(truth, prediction) == metrics.Confusion(tp, fp, fn, tn)


def test_blank_mask_predicted_blank_is_perfect():
    blank = np.zeros((3, 3), np.uint8)
    perfect = dict.fromkeys(metrics.SEGMENTATION_METRICS, 1.0)
    assert metrics.segmentation_scores(blank, blank) == perfect


def _mask_with(n_true: int, n_pred_inside: int, size: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Truth of n_true pixels, prediction covering n_pred_inside of them (Jaccard = ratio)."""
    truth, prediction = np.zeros(size, bool), np.zeros(size, bool)
    truth[:n_true] = True
    prediction[:n_pred_inside] = True
    return truth.reshape(4, 5), prediction.reshape(4, 5)


def test_threshold_jaccard_is_the_isic2018_task1_score():
    pairs = [_mask_with(10, 10), _mask_with(10, 6), _mask_with(10, 8)]  # Jaccard 1, 0.6, 0.8
    means = metrics.mean_segmentation_scores([t for t, _ in pairs], [p for _, p in pairs])
    assert means["jaccard"] == pytest.approx((1 + 0.6 + 0.8) / 3)
    assert means["threshold_jaccard"] == pytest.approx((1 + 0 + 0.8) / 3)
    assert means["dice"] == pytest.approx((1 + 2 * 6 / 16 + 2 * 8 / 18) / 3)
    assert metrics.threshold_jaccard(0.65) == 0.65
    with pytest.raises(ValueError, match="same, non-zero number"):
        metrics.mean_segmentation_scores([pairs[0][0]], [])


def _task2_case():
    """Two attributes, two images of different sizes; hand-computed in the test below."""
    truth1 = np.zeros((2, 2, 2), np.uint8)
    prediction1 = np.zeros_like(truth1)
    truth1[0, :, 0] = 255  # attribute a: 2 of 4 pixels
    prediction1[0, 0, 0] = 255  # finds 1 of them; attribute b blank, predicted blank
    truth2 = np.zeros((1, 8, 2), np.uint8)
    prediction2 = np.zeros_like(truth2)
    truth2[0, :4, 1] = 255  # attribute b: 4 of 8 pixels; attribute a blank, predicted blank
    prediction2[0, [0, 1, 4], 1] = 255  # 2 hits, 1 false positive
    return [truth1, truth2], [prediction1, prediction2]


def test_isic2018_task2_scores_by_hand():
    truths, predictions = _task2_case()
    scores = metrics.isic2018_task2_scores(truths, predictions, attributes=("a", "b"))
    # a: tp 1/4, fn 1/4 (image 2 adds only tn). b: tp 2/8, fn 2/8, fp 1/8.
    assert scores["a"] == pytest.approx({"jaccard": 0.5, "dice": 0.5 / 0.75})
    assert scores["b"] == pytest.approx({"jaccard": 0.25 / 0.625, "dice": 0.5 / 0.875})
    # micro: tp 0.5, fn 0.5, fp 0.125.
    assert scores["micro_average"] == pytest.approx({"jaccard": 0.5 / 1.125, "dice": 1 / 1.625})
    assert scores["macro_average"]["jaccard"] == pytest.approx((0.5 + 0.4) / 2)
    assert scores["sanet_average"]["jaccard"] == pytest.approx((0.5 + 0.4 + 0.5 / 1.125) / 3)

    # An all-negative image predicted all-negative changes nothing.
    blank = np.zeros((3, 3, 2), np.uint8)
    with_blank = metrics.isic2018_task2_scores(truths + [blank], predictions + [blank], ("a", "b"))
    for name, values in scores.items():
        assert with_blank[name] == pytest.approx(values)


def test_isic2018_task2_attribute_blank_everywhere_and_predicted_blank_is_perfect():
    blank = np.zeros((2, 2, 5), np.uint8)
    scores = metrics.isic2018_task2_scores([blank], [blank])
    assert all(s == {"jaccard": 1.0, "dice": 1.0} for s in scores.values())
    with pytest.raises(ValueError, match="one channel per attribute"):
        metrics.isic2018_task2_scores([blank[..., :3]], [blank[..., :3]])


def test_multiclass_metrics_match_sklearn():
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 3, size=(2, 5, 5))
    noise = rng.integers(0, 3, size=truth.shape)
    prediction = np.where(rng.random(truth.shape) > 0.3, truth, noise)
    t, p = truth.ravel(), prediction.ravel()
    counts = metrics.confusion_matrix(truth, prediction, 3)
    np.testing.assert_array_equal(counts, sk.confusion_matrix(t, p))
    assert metrics.mean_iou(truth, prediction, 3) == pytest.approx(sk.jaccard_score(t, p, average="macro"))
    assert metrics.mean_pixel_accuracy(truth, prediction, 3) == pytest.approx(sk.recall_score(t, p, average="macro"))
    with pytest.raises(ValueError, match="class indices"):
        metrics.confusion_matrix(truth, prediction + 1, 3)


def test_mean_iou_by_hand():
    truth = np.array([0, 0, 1, 1])
    prediction = np.array([0, 1, 1, 1])
    # class 0: 1 / (2 + 1 - 1) = 0.5; class 1: 2 / (2 + 3 - 2) = 2/3.
    assert metrics.mean_iou(truth, prediction, 2) == pytest.approx((0.5 + 2 / 3) / 2)
    # Pixel accuracy per class: 1/2 and 2/2.
    assert metrics.mean_pixel_accuracy(truth, prediction, 2) == pytest.approx(0.75)


def test_mean_average_precision_is_apspnet_eq8_by_hand():
    truth = np.array([[0, 0, 1, 1]])
    foreground = np.array([0.1, 0.4, 0.35, 0.8])
    probabilities = np.stack([1 - foreground, foreground], axis=-1)[None]
    # class 1, ranked 0.8 (hit), 0.4 (miss), 0.35 (hit):
    # sum (R_n - R_n-1) P_n = 0.5 * 1 + 0.5 * 2/3.
    # class 0, ranked 0.9 (hit), 0.65 (miss), 0.6 (hit): the same.
    assert metrics.mean_average_precision(truth, probabilities) == pytest.approx(0.5 + 1 / 3)


def test_classification_scores():
    truth = np.array([0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.6, 0.35, 0.8, 0.9])
    result = metrics.classification_scores(truth, scores)
    assert result["auc"] == pytest.approx(sk.roc_auc_score(truth, scores))
    # Pairs (positive, negative) ranked right: 0.35>0.1, 0.8>both, 0.9>both -> 5 of 6.
    assert result["auc"] == pytest.approx(5 / 6)
    assert result["ap"] == pytest.approx(sk.average_precision_score(truth, scores))
    # At 0.5: predictions 0 1 0 1 1 -> tp 2, fp 1, fn 1, tn 1.
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert result["sensitivity"] == pytest.approx(2 / 3)
    assert result["specificity"] == pytest.approx(1 / 2)
    with pytest.raises(ValueError, match="both classes"):
        metrics.classification_scores(np.ones(3), np.ones(3) / 2)


def test_isic2017_average_auc():
    truth = np.array([[1, 0], [0, 1], [0, 0], [0, 0]])
    scores = np.array([[0.9, 0.2], [0.3, 0.1], [0.4, 0.3], [0.2, 0.05]])
    # melanoma: 0.9 above all three negatives -> 1. SK: 0.1 above only 0.05 -> 1/3.
    result = metrics.isic2017_average_auc(truth, scores)
    assert result == pytest.approx({"melanoma_auc": 1.0, "seborrheic_keratosis_auc": 1 / 3, "average_auc": 2 / 3})
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        metrics.isic2017_average_auc(truth[:, :1], scores[:, :1])


def _per_image_numpy(truth, probabilities, score):
    pairs = zip(truth > 0.5, probabilities > 0.5, strict=True)
    return np.mean([score(metrics.Confusion.of(t, p)) for t, p in pairs])


def test_streaming_dice_and_jaccard_are_macro_means():
    rng = np.random.default_rng(8)
    truth = (rng.random((5, 4, 4, 1)) > 0.5).astype(np.float32)
    truth[0] = 0.0  # a blank mask ...
    probabilities = rng.random((5, 4, 4, 1)).astype(np.float32)
    probabilities[0] = 0.1  # ... predicted blank: scores 1
    for metric, score in (
        (metrics.DiceCoefficient(), metrics.Confusion.dice),
        (metrics.JaccardIndex(), metrics.Confusion.jaccard),
    ):
        metric.update_state(truth[:2], probabilities[:2])
        metric.update_state(truth[2:], probabilities[2:])
        expected = _per_image_numpy(truth, probabilities, score)
        assert float(metric.result()) == pytest.approx(expected, rel=1e-5)
        restored = type(metric).from_config(metric.get_config())
        assert restored.get_config() == metric.get_config()
        with pytest.raises(ValueError, match="threshold"):
            type(metric)(threshold=1.5)


def test_dice_metric_in_a_jit_compiled_fit_is_val_dice():
    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs))
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=[metrics.DiceCoefficient()], jit_compile=True)
    rng = np.random.default_rng(9)
    x = rng.random((4, 4, 4, 1)).astype(np.float32)
    y = (x > 0.5).astype(np.float32)
    history = model.fit(x, y, validation_data=(x, y), epochs=1, batch_size=4, verbose=0).history
    expected = _per_image_numpy(y, keras.ops.convert_to_numpy(model(x)), metrics.Confusion.dice)
    assert history["val_dice"][0] == pytest.approx(expected, rel=1e-5)


def test_mean_iou_follows_eq7_and_counts_an_absent_class_as_one():
    """Eq. 7 divides by k + 1: a class in neither truth nor prediction counts 1 (0/0:
    nothing to find, nothing found), one only predicted counts 0."""
    truth = np.array([0, 0, 1, 1])
    prediction = np.array([0, 1, 1, 1])
    assert metrics.mean_iou(truth, prediction, 3) == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    assert metrics.mean_iou(truth, np.array([0, 1, 1, 2]), 3) == pytest.approx((0.5 + 1 / 3 + 0.0) / 3)


def test_streaming_scores_equal_the_whole_set_functions():
    """SegmentationScores over images of different sizes = the functions on all pixels
    (scores on the 1/1000 grid, where the binned eq. 8 is exact)."""
    rng = np.random.default_rng(3)
    scores = metrics.SegmentationScores(3, bins=1000)
    truths, probabilities = [], []
    for shape in ((5, 7), (9, 4), (3, 3)):
        truth = rng.integers(0, 3, shape)
        raw = rng.integers(1, 1000, (*shape, 3)).astype(np.float64)
        p = np.round(raw / raw.sum(-1, keepdims=True), 3)
        scores.update(truth, p)
        truths.append(truth.ravel())
        probabilities.append(p.reshape(-1, 3))
    truth, p = np.concatenate(truths), np.concatenate(probabilities)
    assert scores.mean_iou() == pytest.approx(metrics.mean_iou(truth, p.argmax(-1), 3))
    assert scores.mean_pixel_accuracy() == pytest.approx(metrics.mean_pixel_accuracy(truth, p.argmax(-1), 3))
    assert scores.mean_average_precision() == pytest.approx(metrics.mean_average_precision(truth, p), abs=1e-12)
    with pytest.raises(ValueError, match="do not match"):
        scores.update(truth.reshape(-1, 1), p)
