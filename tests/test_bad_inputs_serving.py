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


# --------------------------------------------------------------------------- shared small models


@pytest.fixture(scope="module")
def unet(tmp_path_factory):
    """A small U-Net: its checkpoint, a run folder, and a folder of two images."""
    import zoo
    from zoo.serving import spec_for_model

    root = tmp_path_factory.mktemp("serving")
    entry = zoo.get_model("unet")
    model = entry.build(small=True)
    weights = root / "unet.weights.h5"
    model.save_weights(weights)
    spec = spec_for_model(entry.input_spec, tuple(model.inputs[0].shape[1:3]))
    run = zoo.save_run(root / "run", model, entry=entry, builder_args=dict(entry.test_kwargs), input_spec=spec,
                       recipe=entry.recipe)
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(images / f"{name}.png")
    return {"root": root, "weights": weights, "run": Path(run), "images": images, "model": model}


def _one_line(capsys) -> str:
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "Traceback" not in error, error
    return error


def _poison(path: Path) -> str:
    """Writes NaN into the first float dataset of a Keras weights file; returns its name."""
    with h5py.File(path, "r+") as file:
        names = []
        file.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset)
                        and item.dtype.kind == "f" and item.size else None)
        data = file[names[0]][()]
        data.flat[0] = np.nan
        file[names[0]][...] = data
    return names[0]


# --------------------------------------------------------------------------- 4. non-finite weights


def test_non_finite_weights_are_refused_for_prediction_and_export(unet, tmp_path, capsys):
    import shutil

    from zoo import export, predict

    weights = tmp_path / "nan.weights.h5"
    shutil.copy(unet["weights"], weights)
    _poison(weights)
    common = ["--model", "unet", "--small", "--weights", str(weights)]
    assert predict.main([*common, "--images", str(unet["images"]), "--out", str(tmp_path / "masks")]) == 1
    error = _one_line(capsys)
    assert str(weights) in error and "NaN" in error
    assert not (tmp_path / "masks").exists()
    assert export.main([*common, "--out", str(tmp_path / "saved")]) == 1
    assert str(weights) in _one_line(capsys)
    assert not (tmp_path / "saved").exists()
    run = tmp_path / "run"
    shutil.copytree(unet["run"], run)
    _poison(run / "model.weights.h5")
    assert export.main(["--run", str(run), "--out", str(tmp_path / "saved")]) == 1
    error = _one_line(capsys)
    assert str(run / "model.weights.h5") in error and "NaN" in error


# --------------------------------------------------------------------------- 6. a sentence, not a traceback


def test_truncated_checkpoint_is_one_line_naming_the_file(unet, tmp_path, capsys):
    from zoo import export, predict

    data = unet["weights"].read_bytes()
    cut = tmp_path / "cut.weights.h5"
    cut.write_bytes(data[: len(data) // 2])
    common = ["--model", "unet", "--small", "--weights", str(cut)]
    assert predict.main([*common, "--images", str(unet["images"]), "--out", str(tmp_path / "masks")]) == 1
    error = _one_line(capsys)
    assert str(cut) in error and "truncated or corrupt" in error
    assert export.main([*common, "--out", str(tmp_path / "saved")]) == 1
    assert "truncated or corrupt" in _one_line(capsys)
