"""zoo.predict: registered models on raw images of any size, written as ISIC
submissions that zoo.evaluate (and the independent scorer of test_evaluate) reads."""

import csv
import re

import cv2
import numpy as np
import pytest
from PIL import Image

import zoo
from data_tools.preprocess import preprocess_images, restore_geometry
from data_tools.records import DatasetError
from data_tools.synthetic import make_isic2018
from tests.test_evaluate import reference_task1, reference_task2
from zoo.evaluate import evaluate
from zoo.export import export_saved_model
from zoo.predict import CheckpointMismatchError, load_predictor, main, model_window, predict_images, spec_for_model


@pytest.fixture(scope="module")
def isic2018(tmp_path_factory):
    """Four synthetic test images of different sizes with Task 1 and Task 2 ground truth."""
    root = make_isic2018(
        tmp_path_factory.mktemp("isic2018"), n_train=0, n_val=0, n_test=4, image_size=(48, 64), vary_size=True
    )
    return {
        "images": root / "ISIC2018_Task1-2_Test_Input",
        "task1": root / "ISIC2018_Task1_Test_GroundTruth",
        "task2": root / "ISIC2018_Task2_Test_GroundTruth",
    }


@pytest.fixture(scope="module")
def unet(tmp_path_factory):
    """attention_unet (small): its checkpoint (of the default model, as training saves it)
    and the model built from it with its outputs: the mask and four attention maps."""
    entry = zoo.get_model("attention_unet")
    path = tmp_path_factory.mktemp("ckpt") / "attention_unet.weights.h5"
    entry.build(small=True).save_weights(path)
    return entry.build(small=True, weights=path, return_attention=True), path


def test_task1_masks_are_the_models_own_preprocessing_at_the_original_size(tmp_path, isic2018, unet):
    model, weights = unet
    predictor = load_predictor("attention_unet", weights=weights, small=True)
    summary = predict_images(predictor, isic2018["images"], tmp_path, format="isic2018-task1", batch_size=3)
    assert len(summary.predicted) == 4 and len(summary.files) == 4
    spec = spec_for_model(zoo.get_model("attention_unet").input_spec, (32, 32))
    assert spec.colour == "lab" and spec.image_size == (32, 32)
    for image_path in sorted(isic2018["images"].iterdir()):
        image = np.asarray(Image.open(image_path).convert("RGB"))
        probabilities = model(preprocess_images(image[None], spec), training=False)["mask"].numpy()[0, ..., 0]
        expected = np.where(cv2.resize(probabilities, image.shape[1::-1], interpolation=cv2.INTER_LINEAR) > 0.5, 255, 0)
        written = np.asarray(Image.open(tmp_path / f"{image_path.stem}_segmentation.png"))
        assert written.shape == image.shape[:2]
        np.testing.assert_array_equal(written, expected)
    # the submission scores: zoo.evaluate equals the independent implementation
    result = evaluate("isic2018-task1", isic2018["task1"], tmp_path)
    for name, value in reference_task1(isic2018["task1"], tmp_path).items():
        assert result.metrics["macro_average"][name] == pytest.approx(value, abs=1e-12)


def test_task2_sanet_with_slic_superpixels_scores_like_the_reference(tmp_path, isic2018):
    model = zoo.get_model("sanet").build(small=True)
    weights = tmp_path / "sanet.weights.h5"
    model.save_weights(weights)
    predictor = load_predictor("sanet", weights=weights, small=True)
    assert predictor.max_segments == 16  # the small model's bound, read from its layers
    out = tmp_path / "task2"
    summary = predict_images(predictor, isic2018["images"], out, format="isic2018-task2")
    assert len(summary.files) == 4 * 5
    result = evaluate("isic2018-task2", isic2018["task2"], out)
    expected = reference_task2(isic2018["task2"], out)
    for group, values in expected.items():
        for name, value in values.items():
            assert result.metrics[group][name] == pytest.approx(value, abs=1e-12)


def test_a_checkpoint_of_another_model_names_the_file_and_the_model(tmp_path, unet):
    _, weights = unet
    with pytest.raises(CheckpointMismatchError) as caught:
        load_predictor("unet", weights=weights, small=True)
    message = str(caught.value)
    assert message.startswith(f"{weights}: this checkpoint does not match model 'unet' built with {{'small': True}}")
    assert re.search(
        r"\(122,829 parameters\): layer '\w+' \(Conv2D\) has weights of shapes \[.*\], "
        r"the file's are",
        message,
    )
    other = tmp_path / "unet3.weights.h5"
    zoo.get_model("unet").build(small=True, classes=3).save_weights(other)
    with pytest.raises(CheckpointMismatchError, match=r"head_conv.*\(1, 1, 4, 1\)\], the file's are .*\(1, 1, 4, 3\)"):
        load_predictor("unet", weights=other, small=True)
    load_predictor("unet", weights=other, small=True, builder_args={"classes": 3})  # built as trained: loads
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_predictor("unet", weights=tmp_path / "missing.weights.h5", small=True)
    not_keras = tmp_path / "noise.weights.h5"
    not_keras.write_bytes(b"not hdf5")
    with pytest.raises(
        CheckpointMismatchError,
        match=r"noise.weights.h5: the checkpoint cannot be read: it is "
        r"truncated or corrupt, or not a Keras checkpoint",
    ):
        load_predictor("unet", weights=not_keras, small=True)
    with pytest.raises(ValueError, match=r"unexpected keyword argument 'clases'"):
        load_predictor("unet", weights=other, small=True, builder_args={"clases": 3})


def _distinct_checkpoint(name, path):
    """``name``'s default small model with every weight moved off its initial value
    (so that two layers of the same shape differ), saved to ``path`` and loaded back
    into it (Keras' own loading, into the layout it was saved from)."""
    model = zoo.get_model(name).build(small=True)
    rng = np.random.default_rng(7)
    for variable in model.weights:
        value = np.asarray(variable) + rng.normal(0, 0.2, variable.shape)
        if "variance" in variable.path:
            value = np.abs(value) + 0.5
        variable.assign(value.astype(variable.dtype))
    model.save_weights(path)
    model.load_weights(path)  # layers that derive state from their variables when loaded (Normalization)
    return model


# the registered models whose weighted layers change places in model.layers when the maps
# are outputs (DANet's position and channel attention branches swap; A-PSPNet's, ARL's,
# RAN's, the U-Nets' layers keep their Keras weight-file keys)
@pytest.mark.parametrize("name", ["danet", "sanet_danet"])
def test_a_default_checkpoint_loads_into_the_attention_model_layer_by_layer(tmp_path, name):
    """--overlays builds the model with its attention maps as outputs: the checkpoint of the
    default model must still go into the same layers (it would not with model.load_weights)."""
    from zoo.common.weights import layer_keys

    weights = tmp_path / f"{name}.weights.h5"
    default = _distinct_checkpoint(name, weights)
    with_maps = zoo.get_model(name).build(small=True, return_attention=True)
    moved = [
        key
        for (key, a), (_, b) in zip(layer_keys(default), layer_keys(with_maps), strict=True)
        if a.weights and a.name != b.name
    ]
    assert moved, f"{name}'s layer order no longer changes with its outputs: pick another model for this test"

    predictor = load_predictor(name, weights=weights, small=True, attention=True)
    assert predictor.attention  # the maps are outputs
    images = [np.random.default_rng(3).integers(0, 256, (50, 70, 3), dtype=np.uint8)]
    got = predictor.predict(images)[0][predictor.main]
    expected = load_predictor(name, keras_model=default).predict(images)[0][predictor.main]
    assert np.std(expected) > 1e-3  # not saturated: a wrong layer would show
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_unreadable_images_stop_the_run_or_are_skipped_and_listed(tmp_path, isic2018, unet):
    _, weights = unet
    images = tmp_path / "images"
    images.mkdir()
    for path in isic2018["images"].iterdir():
        (images / path.name).write_bytes(path.read_bytes())
    (images / "ISIC_0999999.jpg").write_bytes(b"not a jpeg")
    predictor = load_predictor("attention_unet", weights=weights, small=True)
    with pytest.raises(DatasetError, match="ISIC_0999999.jpg: not a readable image"):
        predict_images(predictor, images, tmp_path / "out", format="isic2018-task1")
    summary = predict_images(predictor, images, tmp_path / "out", format="isic2018-task1", skip_bad=True)
    assert len(summary.predicted) == 4 and len(summary.skipped) == 1
    assert "ISIC_0999999.jpg: not a readable image" in (tmp_path / "out" / "skipped.txt").read_text()
    assert "skipped 1 unreadable image(s)" in summary.line()
    (images / "ISIC_0999999.jpg").unlink()
    predict_images(predictor, images, tmp_path / "out", format="isic2018-task1", skip_bad=True)
    assert not (tmp_path / "out" / "skipped.txt").exists()  # no stale list


def test_overlays_draw_the_outline_and_every_spatial_attention_map(tmp_path, isic2018, unet):
    _, weights = unet
    predictor = load_predictor("attention_unet", weights=weights, small=True)
    image = sorted(isic2018["images"].iterdir())[0]
    summary = predict_images(predictor, [image], tmp_path / "out", format="isic2018-task1", overlays=True)
    overlays = tmp_path / "out_overlays"  # beside the submission, not inside it
    assert summary.overlays_dir == overlays and sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"{image.stem}_segmentation.png"
    ]
    names = sorted(p.name for p in overlays.iterdir())
    assert names == sorted([f"{image.stem}_prediction.png"] + [f"{image.stem}_attention_{k}.png" for k in range(1, 5)])
    assert summary.overlays == 5 and f"5 overlay(s) to {overlays}" in summary.line()
    with Image.open(overlays / names[0]) as overlay:
        assert overlay.format == "PNG" and max(overlay.size) >= 512
    chosen = predict_images(
        predictor, [image], tmp_path / "out", format="isic2018-task1", overlays=tmp_path / "pictures"
    )
    assert chosen.overlays_dir == tmp_path / "pictures" and len(list((tmp_path / "pictures").iterdir())) == 5
    with pytest.raises(
        ValueError,
        match=r"--overlays .*inside the output folder .*out, whose files are the "
        r"submission",
    ):
        predict_images(
            predictor, [image], tmp_path / "out", format="isic2018-task1", overlays=tmp_path / "out" / "overlays"
        )


def test_readme_flow_predict_with_overlays_then_evaluate_the_submission(tmp_path, isic2018, unet, capsys, monkeypatch):
    """``zoo.predict --out submission --overlays`` then ``zoo.evaluate --task isic2018-task1
    truth submission``: the overlays once went into submission/overlays/, which the scorer
    refused as a folder among the masks."""
    from zoo.evaluate import main as evaluate_main

    _, weights = unet
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "--model",
                "attention_unet",
                "--small",
                "--weights",
                str(weights),
                "--images",
                str(isic2018["images"]),
                "--out",
                "submission",
                "--format",
                "isic2018-task1",
                "--overlays",
            ]
        )
        == 0
    )
    assert "overlay(s) to submission_overlays" in capsys.readouterr().out
    assert len(list((tmp_path / "submission_overlays").iterdir())) == 4 * 5
    assert evaluate_main(["--task", "isic2018-task1", str(isic2018["task1"]), "submission"]) == 0, (
        capsys.readouterr().err
    )


def test_window_of_the_model_input_in_original_pixels():
    from data_tools.preprocess import InputSpec

    assert model_window((40, 60), InputSpec((32, 32))) == (0, 0, 40, 60)
    assert model_window((40, 60), InputSpec((32, 32), fit="pad")) == (-10, 0, 60, 60)
    # AttnMel: centre square 0.8 x 40 = 32, resized to 256, centre 224 of it
    top, left, height, width = model_window((40, 60), InputSpec((224, 224), fit="crop", pre_crop_size=(256, 256)))
    assert (height, width) == (32 * 224 / 256, 32 * 224 / 256)
    assert (top, left) == (4 + 32 * 16 / 256, 14 + 32 * 16 / 256)


def test_padded_multi_class_masks_are_class_indices_on_the_original_pixels(tmp_path):
    model = zoo.get_model("apspnet").build(small=True)
    predictor = load_predictor("apspnet", keras_model=model)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (50, 80, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "scan1.png")
    predict_images(predictor, tmp_path / "scan1.png", tmp_path / "out", format="masks")
    assert predictor.softmax
    spec = predictor.spec
    probabilities = model(preprocess_images(image[None], spec), training=False).numpy()[0]
    expected = restore_geometry(probabilities, (50, 80), spec).numpy().argmax(-1)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "scan1.png")), expected)


def test_saved_model_gives_the_keras_predictions(tmp_path, isic2018):
    model = zoo.get_model("unet").build(small=True)
    spec = spec_for_model(zoo.get_model("unet").input_spec, (32, 32))
    export_saved_model(model, tmp_path / "served", input_spec=spec, accept_encoded=False)
    served = load_predictor("unet", saved_model=tmp_path / "served")
    local = load_predictor("unet", keras_model=model)
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(isic2018["images"].iterdir())[:2]]
    for a, b in zip(served.predict(images), local.predict(images), strict=True):
        np.testing.assert_allclose(a["mask"], b["mask"], rtol=1e-5, atol=1e-6)


def test_isic2017_part3_from_a_melanoma_and_a_keratosis_model(tmp_path, isic2018):
    entry = zoo.get_model("resnet14")
    paths = []
    for task in ("melanoma", "keratosis"):
        paths.append(tmp_path / f"{task}.weights.h5")
        entry.build(small=True).save_weights(paths[-1])
    melanoma = load_predictor("resnet14", weights=paths[0], small=True)
    with pytest.raises(ValueError, match="needs --sk-run or --sk-weights"):
        predict_images(melanoma, isic2018["images"], tmp_path / "out", format="isic2017-part3")
    keratosis = load_predictor("resnet14", weights=paths[1], small=True)
    predict_images(melanoma, isic2018["images"], tmp_path / "out", format="isic2017-part3", sk_predictor=keratosis)
    with (tmp_path / "out" / "predictions.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["image_id", "melanoma", "seborrheic_keratosis"] and len(rows) == 5
    # scored by zoo.evaluate against a ground-truth CSV
    ids = [r[0] for r in rows[1:]]
    with (tmp_path / "truth.csv").open("w") as handle:
        handle.write("image_id,melanoma,seborrheic_keratosis\n")
        handle.writelines(f"{i},{k % 2},{(k // 2) % 2}\n" for k, i in enumerate(ids))
    result = evaluate("isic2017-part3", tmp_path / "truth.csv", tmp_path / "out" / "predictions.csv")
    assert 0.0 <= result.score <= 1.0


def test_isic2016_and_isic2017_test_layouts_are_predicted_and_scored(tmp_path, unet):
    """The official test folders (2017's holds superpixel PNGs and a metadata CSV beside
    the images) give one file per ground-truth file, under its name, that zoo.evaluate scores."""
    from data_tools.layouts import ISIC2016_LAYOUT, ISIC2017_LAYOUT
    from data_tools.synthetic import make_isic2016, make_isic2017

    _, weights = unet
    segmenter = load_predictor("attention_unet", weights=weights, small=True)
    isic2016 = make_isic2016(tmp_path / "2016", n_train=0, n_test=4, image_size=(40, 56), vary_size=True)
    isic2017 = make_isic2017(tmp_path / "2017", n_train=0, n_val=0, n_test=3, image_size=(40, 56), vary_size=True)
    for format, root, layout, images in (
        ("isic2016-part1", isic2016, ISIC2016_LAYOUT["test"], "part1_images"),
        ("isic2017-part1", isic2017, ISIC2017_LAYOUT["test"], "images"),
    ):
        truth = root / layout["part1"]
        summary = predict_images(segmenter, root / layout[images], tmp_path / format, format=format)
        assert sorted(p.name for p in summary.files) == sorted(p.name for p in truth.iterdir())
        for path in summary.files:
            assert Image.open(path).size == Image.open(truth / path.name).size  # the original size
        assert 0.0 <= evaluate(format, truth, tmp_path / format).score <= 1.0

    weights = tmp_path / "resnet14.weights.h5"
    zoo.get_model("resnet14").build(small=True).save_weights(weights)
    classifier = load_predictor("resnet14", weights=weights, small=True)
    layout = ISIC2016_LAYOUT["test"]
    predict_images(classifier, isic2016 / layout["part3_images"], tmp_path / "part3", format="isic2016-part3")
    with (tmp_path / "part3" / "predictions.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 4 and all(len(row) == 2 and row[0].startswith("ISIC_") for row in rows)  # no header
    result = evaluate("isic2016-part3", isic2016 / layout["part3"], tmp_path / "part3" / "predictions.csv")
    assert result.primary == ("melanoma", "average_precision") and 0.0 <= result.score <= 1.0
    predict_images(
        classifier,
        isic2016 / layout["part3_images"],
        tmp_path / "csv",
        format="csv",
        class_names=["benign", "melanoma"],
    )
    with (tmp_path / "csv" / "predictions.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["image_id", "benign", "melanoma"] and len(rows) == 5
    np.testing.assert_allclose([float(a) + float(b) for _, a, b in rows[1:]], 1.0, atol=1e-5)  # a softmax


def test_cli_predicts_and_reports_bad_names_and_formats(tmp_path, isic2018, unet, capsys):
    _, weights = unet
    args = [
        "--model",
        "attention_unet",
        "--weights",
        str(weights),
        "--small",
        "--images",
        str(isic2018["images"]),
        "--out",
        str(tmp_path / "out"),
    ]
    assert main([*args, "--format", "isic2018-task1"]) == 0
    assert "attention_unet: predicted 4 image(s)" in capsys.readouterr().out
    assert main([*args, "--format", "isic2018-task2"]) == 1
    assert "--format isic2018-task2 needs a mask output with 5 channel(s)" in capsys.readouterr().err
    other = tmp_path / "photo.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(other)
    assert main([*args[:6], str(other), *args[7:], "--format", "isic2018-task1"]) == 1
    assert "ISIC formats need images named ISIC_<7 digits>; got photo.png" in capsys.readouterr().err
