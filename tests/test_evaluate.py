"""zoo.evaluate against a second implementation written here from the official
definitions (the public isic-challenge-scoring repository, which is not
installable here): plain numpy on PIL-decoded files, no zoo.metrics, no sklearn."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zoo.evaluate import SubmissionError, evaluate, main

ATTRIBUTES = ("globules", "milia_like_cyst", "negative_network", "pigment_network", "streaks")


# --------------------------------------------------------------------------- the second implementation


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(image.convert("L") if image.mode == "1" else image)


def _counts(truth: np.ndarray, prediction: np.ndarray) -> dict:
    t, p = truth > 128, prediction > 128
    return {
        "TP": float(np.sum(t & p)),
        "FP": float(np.sum(~t & p)),
        "FN": float(np.sum(t & ~p)),
        "TN": float(np.sum(~t & ~p)),
    }


def _jaccard(cm):
    return 1.0 if cm["TP"] + cm["FP"] + cm["FN"] == 0 else cm["TP"] / (cm["TP"] + cm["FP"] + cm["FN"])


def _dice(cm):
    return 1.0 if cm["TP"] + cm["FP"] + cm["FN"] == 0 else 2 * cm["TP"] / (2 * cm["TP"] + cm["FP"] + cm["FN"])


def reference_task1(truth_dir: Path, prediction_dir: Path) -> dict:
    """Task 1 / Part 1 macro averages, the official way."""
    per_image = []
    for truth_file in sorted(truth_dir.iterdir()):
        if truth_file.name in ("ATTRIBUTION.txt", "LICENSE.txt"):
            continue
        number = truth_file.stem.split("_")[1]
        (prediction_file,) = [p for p in prediction_dir.iterdir() if number in p.stem]
        cm = _counts(_read(truth_file), _read(prediction_file))
        jaccard = _jaccard(cm)
        per_image.append(
            {
                "accuracy": (cm["TP"] + cm["TN"]) / sum(cm.values()),
                "sensitivity": 1.0 if cm["TP"] + cm["FN"] == 0 else cm["TP"] / (cm["TP"] + cm["FN"]),
                "specificity": 1.0 if cm["TN"] + cm["FP"] == 0 else cm["TN"] / (cm["TN"] + cm["FP"]),
                "jaccard": jaccard,
                "threshold_jaccard": jaccard if jaccard >= 0.65 else 0.0,
                "dice": _dice(cm),
            }
        )
    return {name: float(np.mean([row[name] for row in per_image])) for name in per_image[0]}


def reference_task2(truth_dir: Path, prediction_dir: Path) -> dict:
    sums, total = {}, {"TP": 0.0, "FP": 0.0, "FN": 0.0, "TN": 0.0}
    for truth_file in sorted(truth_dir.iterdir()):
        number, attribute = truth_file.stem.split("_")[1], truth_file.stem.split("_attribute_")[1]
        (prediction_file,) = [p for p in prediction_dir.iterdir() if number in p.stem and attribute in p.stem]
        cm = _counts(_read(truth_file), _read(prediction_file))
        pixels = sum(cm.values())
        summed = sums.setdefault(attribute, {"TP": 0.0, "FP": 0.0, "FN": 0.0, "TN": 0.0})
        for key in cm:
            summed[key] += cm[key] / pixels
            total[key] += cm[key] / pixels
    scores = {a: {"jaccard": _jaccard(cm), "dice": _dice(cm)} for a, cm in sums.items()}
    scores["micro_average"] = {"jaccard": _jaccard(total), "dice": _dice(total)}
    return scores


def _auc(truth, scores):
    """Mann-Whitney: P(score of a positive > score of a negative), ties count half."""
    positives, negatives = scores[truth == 1], scores[truth == 0]
    wins = (positives[:, None] > negatives[None, :]).sum() + 0.5 * (positives[:, None] == negatives[None, :]).sum()
    return wins / (len(positives) * len(negatives))


def _average_precision(truth, scores):
    """sum_n (R_n - R_{n-1}) P_n over the distinct thresholds, high to low."""
    ap, previous_recall = 0.0, 0.0
    for threshold in sorted(set(scores), reverse=True):
        chosen = scores >= threshold
        recall = (chosen & (truth == 1)).sum() / (truth == 1).sum()
        precision = (chosen & (truth == 1)).sum() / chosen.sum()
        ap += (recall - previous_recall) * precision
        previous_recall = recall
    return ap


def _spec_at_sens(truth, scores, sensitivity):
    """The scorer's rule on its ROC curve: scikit-learn's roc_curve keeps only the corners
    (a point collinear with its neighbours is dropped), so the first point reaching
    ``sensitivity`` may lie further along the curve than on the full staircase."""
    points = [(0.0, 0.0)]
    for threshold in sorted(set(scores), reverse=True):
        chosen = scores >= threshold
        points.append(
            (((chosen) & (truth == 0)).sum() / (truth == 0).sum(), (chosen & (truth == 1)).sum() / (truth == 1).sum())
        )
    counts = [(fpr * (truth == 0).sum(), tpr * (truth == 1).sum()) for fpr, tpr in points]
    kept = [points[0]] + [
        points[k]
        for k in range(1, len(points) - 1)
        if any(counts[k - 1][a] - 2 * counts[k][a] + counts[k + 1][a] != 0 for a in (0, 1))
    ]
    kept.append(points[-1])
    for fpr, tpr in kept:
        if tpr >= sensitivity:
            return 1.0 - fpr
    return 0.0


def reference_category(truth, scores):
    t, p = truth > 0.5, scores > 0.5
    return {
        "accuracy": float(np.mean(t == p)),
        "sensitivity": float((t & p).sum() / t.sum()),
        "specificity": float((~t & ~p).sum() / (~t).sum()),
        "average_precision": _average_precision(truth, scores),
        **{f"spec_at_sens_{s}": _spec_at_sens(truth, scores, s / 100) for s in (82, 89, 95)},
        "area_under_roc": _auc(truth, scores),
    }


# --------------------------------------------------------------------------- fixtures


def _png(path: Path, mask: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8)).save(path)
    return path


def _disc(size, centre, radius):
    rows, cols = np.mgrid[: size[0], : size[1]]
    return np.where((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2, 255, 0).astype(np.uint8)


@pytest.fixture
def task1(tmp_path):
    """Five images of different sizes: a good, a poor (Jaccard < 0.65), an empty
    truth predicted empty, an empty prediction and a full one."""
    truth, prediction = tmp_path / "truth", tmp_path / "pred"
    cases = [
        ((40, 50), _disc((40, 50), (20, 25), 12), _disc((40, 50), (21, 26), 11)),
        ((33, 61), _disc((33, 61), (16, 30), 10), _disc((33, 61), (16, 38), 10)),
        ((20, 20), np.zeros((20, 20)), np.zeros((20, 20))),
        ((25, 30), _disc((25, 30), (12, 15), 8), np.zeros((25, 30))),
        ((30, 25), _disc((30, 25), (15, 12), 6), np.full((30, 25), 255)),
    ]
    for index, (_, t, p) in enumerate(cases):
        _png(truth / f"ISIC_000000{index}_segmentation.png", t)
        _png(prediction / f"ISIC_000000{index}_segmentation.png", p)
    (truth / "LICENSE.txt").write_text("licence")
    return truth, prediction


def test_task1_matches_the_official_definitions(task1):
    truth, prediction = task1
    result = evaluate("isic2018-task1", truth, prediction)
    expected = reference_task1(truth, prediction)
    for name, value in expected.items():
        assert result.metrics["macro_average"][name] == pytest.approx(value, abs=1e-12), name
    assert result.primary == ("macro_average", "threshold_jaccard")
    assert 0 < result.score < result.metrics["macro_average"]["jaccard"]  # the poor image counts 0
    per_image = {row["image_id"]: row for row in result.per_image}
    assert per_image["ISIC_0000002"]["jaccard"] == 1.0  # empty predicted empty is perfect
    assert per_image["ISIC_0000003"]["jaccard"] == 0.0


def test_part1_ranks_by_jaccard_and_reads_capital_s_names(tmp_path, task1):
    truth, prediction = task1
    renamed = tmp_path / "truth2016"
    renamed.mkdir()
    for path in truth.glob("*.png"):
        (renamed / path.name.replace("_segmentation", "_Segmentation")).write_bytes(path.read_bytes())
    result = evaluate("isic2016-part1", renamed, prediction)
    assert result.primary == ("macro_average", "jaccard")
    assert result.score == pytest.approx(reference_task1(renamed, prediction)["jaccard"], abs=1e-12)


def test_task2_normalised_sums_match_the_official_definitions(tmp_path):
    rng = np.random.default_rng(0)
    truth, prediction = tmp_path / "truth", tmp_path / "pred"
    for index, size in enumerate([(30, 40), (50, 20), (16, 16)]):
        for k, attribute in enumerate(ATTRIBUTES):
            t = _disc(size, (size[0] // 2, size[1] // 2), 3 + k) if (index + k) % 3 else np.zeros(size)
            p = np.where(rng.random(size) < 0.2, 255 - t, t)
            if (index, k) == (2, 0):
                p = np.zeros(size)  # an empty attribute predicted empty: only true negatives
            _png(truth / f"ISIC_000000{index}_attribute_{attribute}.png", t)
            _png(prediction / f"ISIC_000000{index}_attribute_{attribute}.png", p)
    result = evaluate("isic2018-task2", truth, prediction)
    expected = reference_task2(truth, prediction)
    for group, values in expected.items():
        for name, value in values.items():
            assert result.metrics[group][name] == pytest.approx(value, abs=1e-12), (group, name)
    assert result.metrics["macro_average"]["jaccard"] == pytest.approx(
        np.mean([expected[a]["jaccard"] for a in ATTRIBUTES]), abs=1e-12
    )
    assert len(result.per_image) == 15


def test_every_problem_of_a_bad_submission_is_listed_at_once(tmp_path, task1):
    truth, prediction = task1
    (prediction / "ISIC_0000000_segmentation.png").unlink()  # missing
    _png(prediction / "ISIC_9999999_segmentation.png", np.zeros((5, 5)))  # extra
    _png(prediction / "ISIC_0000001_copy.png", np.zeros((33, 61)))  # duplicate
    _png(prediction / "ISIC_0000002_segmentation.png", np.zeros((21, 20)))  # wrong size
    Image.fromarray(np.zeros((25, 30), np.uint8)).save(prediction / "ISIC_0000003_segmentation.jpg")  # JPEG
    (prediction / "ISIC_0000003_segmentation.png").unlink()
    _png(prediction / "ISIC_0000004_segmentation.png", np.full((30, 25), 200))  # grey values
    (prediction / "notes.txt").write_text("hello")
    with pytest.raises(SubmissionError) as caught:
        evaluate("isic2018-task1", truth, prediction)
    message = str(caught.value)
    for expected in (
        "missing predictions for 1 ground-truth file(s): ISIC_0000000_segmentation.png",
        "ISIC_9999999_segmentation.png: extra file (no ground truth for ISIC_9999999)",
        "duplicate predictions for ISIC_0000001_segmentation.png",
        "ISIC_0000002_segmentation.png: size 21x20 (height x width); its ground truth",
        "ISIC_0000003_segmentation.jpg: not a PNG file",
        "ISIC_0000004_segmentation.png: values other than 0 and 255",
        "notes.txt: extra file (no ISIC_<7 digits> image id in its name)",
    ):
        assert expected in message, expected
    assert len(caught.value.problems) == 7


def test_rgb_and_undecodable_predictions_are_named(tmp_path, task1):
    truth, prediction = task1
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(prediction / "ISIC_0000000_segmentation.png")
    (prediction / "ISIC_0000001_segmentation.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(SubmissionError) as caught:
        evaluate("isic2018-task1", truth, prediction)
    message = str(caught.value)
    assert "ISIC_0000000_segmentation.png: not a single-channel 8-bit greyscale image (PIL mode 'RGB'" in message
    assert "ISIC_0000001_segmentation.png: cannot be decoded" in message


def test_binarize_scores_grey_masks_at_128_like_the_scorer(task1):
    truth, prediction = task1
    grey = _read(prediction / "ISIC_0000000_segmentation.png").astype(np.int32)
    grey = np.where(grey > 0, 129, 128)  # 129 counts as foreground, 128 not
    _png(prediction / "ISIC_0000000_segmentation.png", grey)
    result = evaluate("isic2018-task1", truth, prediction, binarize=True)
    expected = reference_task1(truth, prediction)
    assert result.metrics["macro_average"]["jaccard"] == pytest.approx(expected["jaccard"], abs=1e-12)


def test_cli_writes_scores_json_and_per_image_csv(tmp_path, task1, capsys):
    truth, prediction = task1
    out = tmp_path / "scores"
    assert main(["--task", "isic2018-task1", str(truth), str(prediction), "--out", str(out)]) == 0
    scores = json.loads((out / "scores.json").read_text())
    assert scores["primary"]["value"] == pytest.approx(reference_task1(truth, prediction)["threshold_jaccard"])
    with (out / "per_image.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["image_id"] for r in rows] == [f"ISIC_000000{i}" for i in range(5)]
    assert "threshold_jaccard" in capsys.readouterr().out
    (prediction / "ISIC_0000000_segmentation.png").unlink()
    assert main(["--task", "isic2018-task1", str(truth), str(prediction), "--out", str(out)]) == 1
    assert "missing predictions" in capsys.readouterr().err


def _csv(path: Path, rows, header=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def test_isic2017_part3_matches_hand_computed_auc_ap_and_specificities(tmp_path):
    rng = np.random.default_rng(3)
    ids = [f"ISIC_00001{i:02d}" for i in range(30)]
    melanoma = (rng.random(30) < 0.4).astype(float)
    keratosis = np.where(melanoma == 1, 0.0, (rng.random(30) < 0.4).astype(float))
    scores = np.clip(np.stack([melanoma, keratosis], 1) * 0.3 + rng.random((30, 2)) * 0.7, 0, 1).round(2)
    header = ["image_id", "melanoma", "seborrheic_keratosis"]
    truth = _csv(
        tmp_path / "gt" / "ISIC-2017_Test_v2_Part3_GroundTruth.csv",
        [[i, m, k] for i, m, k in zip(ids, melanoma, keratosis, strict=True)],
        header,
    )
    prediction = _csv(tmp_path / "pred" / "mine.csv", [[i, *s] for i, s in zip(ids, scores, strict=True)], header)
    result = evaluate("isic2017-part3", truth.parent, prediction.parent)
    for index, category in enumerate(("melanoma", "seborrheic_keratosis")):
        expected = reference_category(np.array([melanoma, keratosis][index]), scores[:, index])
        for name, value in expected.items():
            assert result.metrics[category][name] == pytest.approx(value, abs=1e-12), (category, name)
    assert result.primary == ("mean", "area_under_roc")
    assert result.score == pytest.approx(
        np.mean([result.metrics[c]["area_under_roc"] for c in ("melanoma", "seborrheic_keratosis")])
    )


def test_isic2016_part3_reads_headerless_csvs_and_ranks_by_ap(tmp_path):
    ids = [f"ISIC_00002{i:02d}" for i in range(10)]
    truth = _csv(tmp_path / "truth.csv", [[i, "malignant" if k % 3 == 0 else "benign"] for k, i in enumerate(ids)])
    scores = np.linspace(0.05, 0.95, 10)
    prediction = _csv(tmp_path / "pred.csv", [[i, s] for i, s in zip(ids, scores, strict=True)])
    result = evaluate("isic2016-part3", truth, prediction)
    labels = np.array([1.0 if k % 3 == 0 else 0.0 for k in range(10)])
    assert result.primary == ("melanoma", "average_precision")
    assert result.score == pytest.approx(_average_precision(labels, scores), abs=1e-12)
    assert result.metrics["melanoma"]["area_under_roc"] == pytest.approx(_auc(labels, scores), abs=1e-12)


def test_bad_classification_csv_lists_every_problem(tmp_path):
    ids = [f"ISIC_00003{i:02d}" for i in range(5)]
    truth = _csv(tmp_path / "truth.csv", [[i, k % 2] for k, i in enumerate(ids)])
    prediction = _csv(
        tmp_path / "pred.csv", [[ids[0], 0.2], [ids[1], "high"], [ids[2], 1.5], [ids[0], 0.1], ["ISIC_0999999", 0.3]]
    )
    with pytest.raises(SubmissionError) as caught:
        evaluate("isic2016-part3", truth, prediction)
    message = str(caught.value)
    for expected in (
        "line 2: values ['high'] for ISIC_0000301 are not numbers",
        "line 3: a value for ISIC_0000302 lies outside [0, 1]",
        "line 4: duplicate row for ISIC_0000300",
        "missing rows for 2 image(s): ISIC_0000303, ISIC_0000304",
        "extra rows for 1 image(s) without ground truth: ISIC_0999999",
    ):
        assert expected in message, expected
    assert len(caught.value.problems) == 5


def test_index_masks_miou_matches_hand_computed_counts(tmp_path):
    rng = np.random.default_rng(4)
    truth_dir, prediction_dir = tmp_path / "truth", tmp_path / "pred"
    truths, predictions = [], []
    for index, size in enumerate([(20, 30), (25, 25)]):
        t = rng.integers(0, 3, size)
        p = np.where(rng.random(size) < 0.3, rng.integers(0, 3, size), t)
        _png(truth_dir / f"case{index}_mask.png", t)
        _png(prediction_dir / f"case{index}.png", p)
        truths.append(t.ravel())
        predictions.append(p.ravel())
    result = evaluate("masks", truth_dir, prediction_dir, classes=3, truth_suffix="_mask")
    t, p = np.concatenate(truths), np.concatenate(predictions)
    ious = [((t == c) & (p == c)).sum() / ((t == c) | (p == c)).sum() for c in range(3)]
    assert result.metrics["overall"]["miou"] == pytest.approx(np.mean(ious), abs=1e-12)
    assert result.metrics["overall"]["pixel_accuracy"] == pytest.approx(np.mean(t == p), abs=1e-12)
    assert result.metrics["overall"]["mean_pixel_accuracy"] == pytest.approx(
        np.mean([((t == c) & (p == c)).sum() / (t == c).sum() for c in range(3)]), abs=1e-12
    )
    _png(prediction_dir / "case0.png", np.full((20, 30), 5))
    with pytest.raises(SubmissionError, match=r"prediction case0.png: class indices 5 outside 0..2"):
        evaluate("masks", truth_dir, prediction_dir, classes=3, truth_suffix="_mask")
