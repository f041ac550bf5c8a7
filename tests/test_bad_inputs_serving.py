"""Issue 24 for the serving commands (zoo.predict, zoo.evaluate, zoo.export, zoo.litert):
nothing lost, nothing silently wrong. One test per class of fault, each failing on the
code before the fix."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from tests.test_evaluate import _csv  # one CSV writer for the scorer tests
from zoo import evaluate as zoo_evaluate

IDS = [f"ISIC_00004{i:02d}" for i in range(12)]


# --------------------------------------------------------------------------- 1. read by name


def test_part3_csv_columns_are_read_by_name_as_the_official_scorer(tmp_path):
    rng = np.random.default_rng(0)
    melanoma = np.array([1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0], float)
    keratosis = np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1], float)
    truth = _csv(
        tmp_path / "truth.csv",
        [[i, m, k] for i, m, k in zip(IDS, melanoma, keratosis, strict=True)],
        ["image_id", "melanoma", "seborrheic_keratosis"],
    )
    scores_m = np.clip(melanoma * 0.6 + rng.random(12) * 0.3, 0, 1)
    scores_k = np.clip(keratosis * 0.6 + rng.random(12) * 0.3, 0, 1)
    ordered = _csv(
        tmp_path / "a" / "ordered.csv",
        [[i, m, k] for i, m, k in zip(IDS, scores_m, scores_k, strict=True)],
        ["image_id", "melanoma", "seborrheic_keratosis"],
    )
    swapped = _csv(
        tmp_path / "b" / "swapped.csv",
        [[k, i, m] for i, m, k in zip(IDS, scores_m, scores_k, strict=True)],
        ["seborrheic_keratosis", "image_id", "melanoma"],
    )
    first = zoo_evaluate.evaluate("isic2017-part3", truth, ordered)
    second = zoo_evaluate.evaluate("isic2017-part3", truth, swapped)
    assert first.score == 1.0
    assert second.metrics == first.metrics
    # isic2016-part3 with a header: by name as well
    truth16 = _csv(tmp_path / "t16.csv", [[i, int(m)] for i, m in zip(IDS, melanoma, strict=True)])
    named = _csv(
        tmp_path / "p16.csv",
        [[0.5, m, i] for i, m in zip(IDS, scores_m, strict=True)],
        ["other", "melanoma", "image_id"],
    )
    assert zoo_evaluate.evaluate("isic2016-part3", truth16, named).metrics["melanoma"]["area_under_roc"] == 1.0
    # a missing column: one line naming the file and the column
    missing = _csv(
        tmp_path / "c" / "missing.csv", [[i, m] for i, m in zip(IDS, scores_m, strict=True)], ["image_id", "melanoma"]
    )
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
    run = zoo.save_run(
        root / "run", model, entry=entry, builder_args=dict(entry.test_kwargs), input_spec=spec, recipe=entry.recipe
    )
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
        file.visititems(
            lambda name, item: (
                names.append(name) if isinstance(item, h5py.Dataset) and item.dtype.kind == "f" and item.size else None
            )
        )
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


# --------------------------------------------------------------------------- 2. outputs never overwrite inputs


def test_out_apart_from_the_inputs_is_checked_before_any_work(unet, tmp_path, capsys):
    from zoo import export, predict

    images = unet["images"]
    before = {path.name: path.read_bytes() for path in images.iterdir()}
    missing = str(tmp_path / "nothing.weights.h5")  # never reached: the --out check comes first
    for out in (images, images / "masks", images.parent):
        assert (
            predict.main(
                ["--model", "unet", "--small", "--weights", missing, "--images", str(images), "--out", str(out)]
            )
            == 1
        )
        error = _one_line(capsys)
        assert "--out" in error and "images" in error and "nothing.weights.h5" not in error, error
    assert (
        predict.main(
            [
                "--model",
                "unet",
                "--small",
                "--weights",
                missing,
                "--images",
                str(images / "a.png"),
                "--out",
                str(images),
            ]
        )
        == 1
    )
    assert "--out" in _one_line(capsys)
    assert {path.name: path.read_bytes() for path in images.iterdir()} == before
    weights = unet["weights"].read_bytes()
    for args in (
        ["--model", "unet", "--small", "--weights", str(unet["weights"]), "--out", str(unet["weights"])],
        ["--model", "unet", "--small", "--weights", str(unet["weights"]), "--out", str(unet["root"]), "--litert"],
        ["--run", str(unet["run"]), "--out", str(unet["run"])],
    ):
        assert export.main(args) == 1
        assert "--out" in _one_line(capsys)
    assert unet["weights"].read_bytes() == weights
    assert sorted(p.name for p in unet["run"].iterdir()) == ["model.weights.h5", "run.json"]


# --------------------------------------------------------------------------- 3. numbers checked first


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--threshold", "2"], "--threshold"),
        (["--threshold", "nan"], "--threshold"),
        (["--threshold", "0"], "--threshold"),
        (["--threshold", "inf"], "--threshold"),
        (["--batch-size", "0"], "--batch-size"),
        (["--batch-size", "-3"], "--batch-size"),
    ],
)
def test_predict_numbers_are_checked_before_any_work(unet, tmp_path, capsys, flags, expected):
    from zoo import predict

    out = tmp_path / "masks"
    assert (
        predict.main(
            [
                "--model",
                "unet",
                "--small",
                "--weights",
                str(tmp_path / "none.weights.h5"),
                "--images",
                str(unet["images"]),
                "--out",
                str(out),
                *flags,
            ]
        )
        == 1
    )
    assert expected in _one_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--quantization", "int8"], "--litert"),
        (["--input-size", "32", "32"], "--litert"),
        (["--litert", "--input-size", "0", "32"], "--input-size"),
        (["--attention"], "no attention maps"),
    ],
)
def test_export_arguments_are_checked_before_any_work(unet, tmp_path, capsys, flags, expected):
    from zoo import export

    out = tmp_path / "export"
    assert (
        export.main(["--model", "unet", "--small", "--weights", str(unet["weights"]), "--out", str(out), *flags]) == 1
    )
    assert expected in _one_line(capsys)
    assert not out.exists()


def test_predict_images_and_export_litert_check_their_numbers(unet, tmp_path):
    import zoo
    from zoo.litert import export_litert
    from zoo.predict import load_predictor, predict_images
    from zoo.serving import spec_for_model

    predictor = load_predictor("unet", keras_model=unet["model"], attention=False)
    for threshold in (float("nan"), 1.0, -0.1):
        with pytest.raises(ValueError, match="threshold"):
            predict_images(predictor, unet["images"], tmp_path / "out", threshold=threshold)
    spec = spec_for_model(zoo.get_model("unet").input_spec, (32, 32))
    with pytest.raises(ValueError, match="input_size"):
        export_litert(unet["model"], tmp_path / "m.tflite", input_spec=spec, input_size=(0, 32))
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- 5. whole or not at all


def test_written_files_are_whole_or_absent_and_masks_get_the_umask_mode(unet, tmp_path, monkeypatch, capsys):
    from zoo import predict, submission

    # masks: the umask's mode, not mkstemp's 0600
    out = tmp_path / "masks"
    assert (
        predict.main(
            [
                "--model",
                "unet",
                "--small",
                "--weights",
                str(unet["weights"]),
                "--images",
                str(unet["images"]),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    umask = os.umask(0)
    os.umask(umask)
    masks = sorted(out.iterdir())
    assert masks and all(stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask for p in masks)
    # a CSV whose write fails keeps the previous file whole (zoo.predict's and the submission writers)
    path = submission.write_isic2017_classification_csv(tmp_path / "p.csv", IDS[:2], [0.1, 0.2], [0.3, 0.4])
    good = path.read_text()

    class BrokenWriter:  # a disk that fills up halfway through the rows
        def __init__(self, handle, **kwargs):
            self.handle = handle

        def writerow(self, row):
            self.handle.write(",".join(map(str, row)) + "\n")

        def writerows(self, rows):
            self.handle.write("ISIC_0000400,0.")
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(submission.csv, "writer", BrokenWriter)
    with pytest.raises(OSError):
        submission.write_isic2017_classification_csv(path, IDS[:2], [0.5, 0.6], [0.7, 0.8])
    assert path.read_text() == good
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".")) == []
    monkeypatch.undo()
    # zoo.evaluate: a failing per_image.csv leaves both previous files whole
    truth = _csv(tmp_path / "t16.csv", [[i, k % 2] for k, i in enumerate(IDS)])
    prediction = _csv(tmp_path / "p16" / "p16.csv", [[i, 0.1 + 0.8 * (k % 2)] for k, i in enumerate(IDS)])
    result = zoo_evaluate.evaluate("isic2016-part3", truth, prediction)
    scores_dir = tmp_path / "scores"
    scores, table = result.write(scores_dir)
    before = scores.read_text(), table.read_text()
    monkeypatch.setattr(
        zoo_evaluate.csv.DictWriter,
        "writerows",
        lambda self, rows: (_ for _ in ()).throw(OSError(28, "No space left on device")),
    )
    assert zoo_evaluate.main(["--task", "isic2016-part3", str(truth), str(prediction), "--out", str(scores_dir)]) == 1
    assert "no space left" in _one_line(capsys).lower()
    assert (scores.read_text(), table.read_text()) == before


def test_litert_file_is_whole_or_absent(unet, tmp_path, monkeypatch):
    import zoo
    from zoo.litert import export_litert
    from zoo.serving import spec_for_model

    spec = spec_for_model(zoo.get_model("unet").input_spec, (32, 32))
    target = tmp_path / "unet.tflite"
    written = Path.write_bytes

    def disk_full(self, data):  # half the flatbuffer reaches the disk, then it is full
        written(self, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    with pytest.raises(OSError):
        export_litert(unet["model"], target, input_spec=spec)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("field, value", [("mean", (0.1, float("nan"), 0.3)), ("std", (1.0, float("inf"), 1.0))])
def test_an_input_spec_with_non_finite_statistics_is_refused(field, value):
    """Issue 24: an InputSpec with a NaN mean was accepted and every prediction became NaN."""
    from data_tools.preprocess import InputSpec

    statistics = {"mean": (0.1, 0.2, 0.3), "std": (1.0, 1.0, 1.0), field: value}
    with pytest.raises(ValueError, match=f"InputSpec: {field} must be finite"):
        InputSpec((32, 32), scale="standard", **statistics)
    with pytest.raises(ValueError, match=f"{field} must be finite"):
        InputSpec.from_json(
            InputSpec((32, 32), scale="standard", mean=(0.1, 0.2, 0.3), std=(1.0, 1.0, 1.0))
            .to_json()
            .replace("0.2", "NaN" if field == "mean" else "0.2")
            .replace("[1.0, 1.0, 1.0]", "[1.0, Infinity, 1.0]" if field == "std" else "[1.0, 1.0, 1.0]")
        )
