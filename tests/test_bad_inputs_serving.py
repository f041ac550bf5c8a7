"""Issue 24 for the serving commands (zoo.predict, zoo.evaluate, zoo.export, zoo.litert):
nothing lost, nothing silently wrong. One test per class of fault, each failing on the
code before the fix."""
from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from zoo import evaluate as zoo_evaluate

IDS = [f"ISIC_00004{i:02d}" for i in range(12)]


def _csv(path: Path, rows, header=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


# --------------------------------------------------------------------------- 1. read by name


def test_part3_csv_columns_are_read_by_name_as_the_official_scorer(tmp_path):
    rng = np.random.default_rng(0)
    melanoma = np.array([1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0], float)
    keratosis = np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1], float)
    truth = _csv(tmp_path / "truth.csv", [[i, m, k] for i, m, k in zip(IDS, melanoma, keratosis)],
                 ["image_id", "melanoma", "seborrheic_keratosis"])
    scores_m = np.clip(melanoma * 0.6 + rng.random(12) * 0.3, 0, 1)
    scores_k = np.clip(keratosis * 0.6 + rng.random(12) * 0.3, 0, 1)
    ordered = _csv(tmp_path / "a" / "ordered.csv", [[i, m, k] for i, m, k in zip(IDS, scores_m, scores_k)],
                   ["image_id", "melanoma", "seborrheic_keratosis"])
    swapped = _csv(tmp_path / "b" / "swapped.csv", [[k, i, m] for i, m, k in zip(IDS, scores_m, scores_k)],
                   ["seborrheic_keratosis", "image_id", "melanoma"])
    first = zoo_evaluate.evaluate("isic2017-part3", truth, ordered)
    second = zoo_evaluate.evaluate("isic2017-part3", truth, swapped)
    assert first.score == 1.0
    assert second.metrics == first.metrics
    # isic2016-part3 with a header: by name as well
    truth16 = _csv(tmp_path / "t16.csv", [[i, int(m)] for i, m in zip(IDS, melanoma)])
    named = _csv(tmp_path / "p16.csv", [[0.5, m, i] for i, m in zip(IDS, scores_m)], ["other", "melanoma", "image_id"])
    assert zoo_evaluate.evaluate("isic2016-part3", truth16, named).metrics["melanoma"]["area_under_roc"] == 1.0
    # a missing column: one line naming the file and the column
    missing = _csv(tmp_path / "c" / "missing.csv", [[i, m] for i, m in zip(IDS, scores_m)], ["image_id", "melanoma"])
    assert zoo_evaluate.main(["--task", "isic2017-part3", str(truth), str(missing), "--out", str(tmp_path / "s")]) == 1
    with pytest.raises(ValueError) as caught:
        zoo_evaluate.evaluate("isic2017-part3", truth, missing)
    message = str(caught.value)
    assert "\n" not in message and str(missing) in message and "'seborrheic_keratosis'" in message
