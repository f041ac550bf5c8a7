"""SANet Tables 2-4 score the full-size Task 2 PNGs they write (issue 25.10).

Each table's row runs under ``--smoke`` with training replaced by a fixed stand-in model
(a 1x1 convolution: every attribute where the red channel is above 0.5, at the model's
32x32 input) and the run folder's save replaced by a no-op; the prediction and scoring
are the table's own. The row's scores must be those of the PNGs it left in
``predictions/`` against the full-size ground-truth masks, computed here the way the
official ISIC 2018 Task 2 scorer does (per image confusions normalised by the image's
pixel count, summed over images; the micro average over the attributes too). Scoring at
the model's resolution, or the masks before they are written, gives other numbers: the
synthetic images are 64x48, not square.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from PIL import Image

from data_tools.isic import read_isic2018
from data_tools.layouts import ISIC2018_ATTRIBUTES
from reproduce import frame, sanet_table2, sanet_table3, sanet_table4
from zoo.train import TrainResult

SIZE = 32


def _stand_in(superpixels: bool) -> keras.Model:
    """Attribute probabilities sigmoid(20 (red - 0.5)), the same in every channel."""
    image = keras.Input((SIZE, SIZE, 3), name="image")
    inputs = {"image": image}
    features = image
    if superpixels:  # SANet's second input, given zero weight
        inputs["superpixels"] = keras.Input((SIZE, SIZE, 1), name="superpixels", dtype="int32")
        features = keras.layers.Concatenate()(
            [image, keras.layers.Identity(dtype="float32")(keras.ops.cast(inputs["superpixels"], "float32"))]
        )
    layer = keras.layers.Conv2D(len(ISIC2018_ATTRIBUTES), 1, activation="sigmoid")
    outputs = layer(features)
    kernel = np.zeros(layer.kernel.shape, "float32")
    kernel[0] = 20.0
    layer.set_weights([kernel, np.full(len(ISIC2018_ATTRIBUTES), -10.0, "float32")])
    return keras.Model(inputs if superpixels else image, outputs)


@pytest.fixture
def untrained(monkeypatch, tmp_path):
    """frame.fit returns the stand-in model; RowContext.save_run writes nothing."""

    def fake_fit(build_model, train_data, val_data, config, **kwargs):
        superpixels = isinstance(train_data.element_spec[0], dict)
        return TrainResult(
            _stand_in(superpixels), {"loss": [1.0], "val_jaccard": [0.5]}, 0, tmp_path, tmp_path / "none"
        )

    monkeypatch.setattr(frame, "fit", fake_fit)
    monkeypatch.setattr(frame.RowContext, "save_run", lambda self, model, **kwargs: self.out_dir)


def _confusions(truth: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """(TP, FP, FN) of one mask, each divided by the mask's pixel count."""
    return (
        np.array([np.sum(truth & prediction), np.sum(~truth & prediction), np.sum(truth & ~prediction)], float)
        / truth.size
    )


def _scores_of_the_files(truth_records, predictions) -> dict[str, dict[str, float]]:
    sums = {name: np.zeros(3) for name in ISIC2018_ATTRIBUTES}
    for record in truth_records:
        (width, height) = Image.open(record.image_path).size
        for name in ISIC2018_ATTRIBUTES:
            truth = np.asarray(Image.open(record.mask_paths[name])) > 128
            png = Image.open(predictions / f"{record.image_id}_attribute_{name}.png")
            assert png.size == (width, height) == truth.shape[::-1]  # the original size
            prediction = np.asarray(png) > 128
            sums[name] += _confusions(truth, prediction)
    sums["micro_average"] = sum(sums.values())
    return {
        name: {"jaccard": tp / (tp + fp + fn), "dice": 2 * tp / (2 * tp + fp + fn)}
        for name, (tp, fp, fn) in sums.items()
    }


@pytest.mark.parametrize(
    "table, row",
    [(sanet_table2, "GBL γ = 1"), (sanet_table3, "ResUNet"), (sanet_table4, "SANet")],
    ids=["table2", "table3", "table4"],
)
def test_sanet_tables_score_the_full_size_pngs_they_write(table, row, tmp_path, untrained):
    out = tmp_path / "out"
    result = table.main(
        [
            "--smoke",
            "--out",
            str(out),
            "--rows",
            row,
            "--image-size",
            str(SIZE),
            "--superpixel-cache",
            str(tmp_path / "superpixels"),
        ]
    )
    records = read_isic2018(out / "synthetic_data", "test", tasks=(2,))
    predictions = out / "rows" / frame.slug(row) / "predictions"
    expected = _scores_of_the_files(records, predictions)
    scored = result.results[row].extra["task2_scores"]
    jaccards = [expected[name]["jaccard"] for name in expected]
    assert 0.0 < expected["micro_average"]["jaccard"] < 1.0  # predictions neither empty nor everything
    for name, scores in expected.items():
        assert scored[name] == pytest.approx(scores, abs=1e-9), name
    values = result.results[row].values
    if table is sanet_table4:
        assert values["Globules Jaccard"] == pytest.approx(100 * expected["globules"]["jaccard"])
        assert values["Micro avg Dice"] == pytest.approx(100 * expected["micro_average"]["dice"])
    else:
        assert values["Avg JA"] == pytest.approx(100 * np.mean(jaccards))
