"""``python -m zoo.train`` (zoo.train.command) and layout detection (data_tools.detect).

Tiny synthetic datasets in the official layouts (data_tools.synthetic), small models
(``--small``), one or two epochs; the command runs in-process (``train``/``main``),
once in a fresh process (``python -m zoo.train``: no runpy warning, one-line errors).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from data_tools import synthetic
from data_tools.detect import LAYOUTS, LayoutError, detect_layout, find_layouts, labelme_labels
from data_tools.pipeline import segmentation_dataset
from data_tools.records import BadInputPolicy
from zoo.common.run_card import read_card
from zoo.registry import get_model
from zoo.run import load_run
from zoo.train import LOG_FILE, read_log
from zoo.train.command import (
    SETTINGS_FILE,
    CommandError,
    main,
    parse_args,
    plan_targets,
    prepare_out,
    read_records,
    train,
)

REPO = Path(__file__).resolve().parents[1]
SIZE = (40, 48)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    return {
        "isic2016": synthetic.make_isic2016(root / "isic2016", n_train=12, n_test=1, image_size=SIZE),
        "isic2017": synthetic.make_isic2017(root / "isic2017", n_train=12, n_val=6, n_test=1, image_size=SIZE),
        "isic2018": synthetic.make_isic2018(root / "isic2018", n_train=8, n_val=4, n_test=1, image_size=SIZE),
        "mask-folder": synthetic.make_mask_folder(root / "masks", n=6, image_size=SIZE),
        "labelme": synthetic.make_ultrasound_labelme(root / "labelme", n=6, image_size=SIZE),
        "empty": Path(tmp_path_factory.mktemp("empty")),
    }


def _quiet(*extra: str) -> list[str]:
    return ["--verbose", "0", "--no-xla", *extra]


def _run(data: dict[str, Path], out: Path, model: str, dataset: str, *extra: str):
    args = parse_args(["--model", model, "--data", str(data[dataset]), "--out", str(out), "--small", *_quiet(*extra)])
    return train(args, log=lambda line: None)


UNET_FLAGS = ("--epochs", "2", "--batch-size", "4", "--learning-rate", "0.002", "--builder-args", '{"depth": 2}')


@pytest.fixture(scope="module")
def unet_run(data, tmp_path_factory):
    return _run(data, tmp_path_factory.mktemp("runs") / "unet", "unet", "isic2018", *UNET_FLAGS)


# --------------------------------------------------------------------------- detection


def test_each_layout_is_detected(data):
    assert find_layouts(data["isic2016"]) == ["isic2016-part1", "isic2016-part3"]
    assert find_layouts(data["isic2017"]) == ["isic2017-part1", "isic2017-part3"]
    assert find_layouts(data["isic2018"]) == ["isic2018-task1", "isic2018-task2"]
    assert find_layouts(data["mask-folder"]) == ["mask-folder"]
    assert find_layouts(data["labelme"]) == ["labelme"]
    assert detect_layout(data["isic2016"], target="labels").name == "isic2016-part3"
    assert detect_layout(data["isic2017"], target="masks").name == "isic2017-part1"
    assert detect_layout(data["isic2018"], target="masks", channels=1).name == "isic2018-task1"
    assert detect_layout(data["isic2018"], target="masks", channels=5).name == "isic2018-task2"
    assert detect_layout(data["isic2018"], target="masks", channels=1).has_validation(data["isic2018"])
    assert not detect_layout(data["isic2016"], target="masks").has_validation(data["isic2016"])
    assert labelme_labels(data["labelme"]) == sorted(synthetic.ULTRASOUND_LABEL_MAP)


def test_detection_errors_say_what_was_looked_for(data):
    with pytest.raises(LayoutError, match="several layouts.*isic2018-task1, isic2018-task2.*--layout"):
        detect_layout(data["isic2018"], target="masks")
    with pytest.raises(LayoutError, match="no dataset layout.*ISIC2018_Task1-2_Training_Input.*images/"):
        detect_layout(data["empty"])
    with pytest.raises(LayoutError, match="holds isic2018-task1, isic2018-task2, whose targets are not labels"):
        detect_layout(data["isic2018"], target="labels")


# --------------------------------------------------------------------------- the run folder


def test_run_folder_loads_with_the_trained_models_predictions(unet_run):
    run = load_run(unet_run.folder)
    images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        run.model.predict_on_batch(images), unet_run.model.predict_on_batch(images), rtol=1e-6, atol=1e-6
    )
    assert tuple(run.input_spec.image_size) == (32, 32)


def test_run_json_records_overrides_data_split_and_scores(unet_run):
    card = read_card(unet_run.folder)
    assert card.model == "unet"
    assert card.overrides == {"learning_rate": 0.002, "batch_size": 4, "epochs": 2}
    assert card.recipe["epochs"] == 2 and card.builder_args["base_filters"] == 4 and card.builder_args["depth"] == 2
    assert card.data["layout"] == "isic2018-task1"
    assert card.data["split"]["kind"] == "official"
    assert card.data["counts"] == {"train": 8, "validation": 4}
    scores = card.scores["validation"]
    assert 0.0 <= scores["dice"] <= 1.0 and 0.0 <= scores["jaccard"] <= scores["dice"] and scores["images"] == 4
    assert card.training["settings"]["overrides"] == {"learning_rate": 0.002, "batch_size": 4, "epochs": 2}
    # the kept epoch as Keras prints it ("Epoch 2/2"), not the history's 0-based index (issue 26)
    assert card.training["kept_epoch"] == unet_run.result.best_epoch + 1 and card.training["epochs_run"] == 2
    assert (unet_run.folder / SETTINGS_FILE).is_file()


class _Interrupted(Exception):
    pass


class _InterruptAtSecondEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:  # epoch 0 is logged, checkpointed and backed up
            raise _Interrupted


def test_rerun_after_an_interruption_resumes_to_the_same_weights(data, unet_run, tmp_path):
    out = tmp_path / "unet"
    args = ["--model", "unet", "--data", str(data["isic2018"]), "--out", str(out), "--small", *_quiet(*UNET_FLAGS)]
    with pytest.raises(_Interrupted):
        train(parse_args(args), callbacks=[_InterruptAtSecondEpoch()], log=lambda line: None)
    assert (out / "backup").is_dir() and not (out / "run.json").exists()
    resumed = train(parse_args(args), log=lambda line: None)
    assert read_log(out / LOG_FILE)["epoch"] == [0, 1]
    for mine, reference in zip(load_run(out).model.weights, load_run(unet_run.folder).model.weights, strict=True):
        np.testing.assert_allclose(np.asarray(mine), np.asarray(reference), rtol=1e-5, atol=1e-6)
    assert resumed.result.best_epoch == unet_run.result.best_epoch


def test_out_of_another_run_is_refused_unless_overwrite(data, unet_run, tmp_path, capsys):
    argv = [
        "--model",
        "unet",
        "--data",
        str(data["isic2018"]),
        "--out",
        str(unet_run.folder),
        "--small",
        *_quiet(*UNET_FLAGS[:-3], "0.005", *UNET_FLAGS[-2:]),
    ]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "holds another run" in error and "learning_rate" in error
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(CommandError, match="not a run of python -m zoo.train"):
        prepare_out(foreign, {"model": "unet"}, overwrite=False)
    (foreign / "run.json").write_text("{}")
    (foreign / "backup").mkdir()
    assert prepare_out(foreign, {"model": "unet"}, overwrite=True) == "overwrite"
    assert sorted(path.name for path in foreign.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--epochs", "0"), "argument --epochs: must be a positive"),
        (("--builder-args", "{classes: 2"), "argument --builder-args: not JSON"),
        (("--validation-fraction", "1.5"), "argument --validation-fraction: must be in (0, 1)"),
    ],
)
def test_a_bad_flag_value_is_one_line(data, tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as stop:
        main(["--model", "unet", "--data", str(data["isic2018"]), "--out", str(tmp_path / "run"), *flags])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error, error


@pytest.mark.parametrize(
    "model, dataset, message",
    [
        ("no_such_model", "isic2018", "no model named 'no_such_model'"),
        ("unet", "empty", "no dataset layout with masks found"),
        ("attnmel_cnn", "isic2016", "reproduce/attnmel_table"),
        ("vgg16", "isic2018", "no dataset layout with labels found"),
    ],
)
def test_errors_are_one_line(data, tmp_path, capsys, model, dataset, message):
    assert main(["--model", model, "--data", str(data[dataset]), "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error, error
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- other targets


def test_classifier_on_a_held_out_fraction(data, tmp_path):
    outcome = _run(
        data,
        tmp_path / "mel",
        "mel_cnn",
        "isic2016",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--validation-fraction",
        "0.3",
        "--seed",
        "3",
    )
    card = read_card(outcome.folder)
    split = card.data["split"]
    assert card.data["layout"] == "isic2016-part3" and split["kind"] == "fraction" and split["seed"] == 3
    assert len(split["validation_ids"]) == card.data["counts"]["validation"] == 3  # 1 of 4 melanomas, 2 of 8 nevi
    assert card.data["counts"]["train"] == 9 and split["stratified_by"] == "melanoma"
    assert card.data["oversampling"] == {"label": "melanoma", "factor": 4, "training_samples": 9 + 3 * 3}
    scores = card.scores["validation"]
    assert 0.0 <= scores["auc"] <= 1.0 and 0.0 <= scores["accuracy"] <= 1.0


def test_arl_trains_on_patches_and_scores_images(data, tmp_path):
    outcome = _run(
        data,
        tmp_path / "arl",
        "resnet14",
        "isic2017",
        "--epochs",
        "1",
        "--batch-size",
        "90",
        "--label",
        "seborrheic_keratosis",
    )
    card = read_card(outcome.folder)
    assert card.data["layout"] == "isic2017-part3" and card.data["targets"]["names"] == ["seborrheic_keratosis"]
    assert card.training["steps_per_epoch"] == 60 * 12 // 90
    assert card.scores["validation"]["images"] == 6 and "auc" in card.scores["validation"]


def test_index_masks_become_one_hot_or_per_class_targets(data, tmp_path):
    args = parse_args(["--model", "pspnet", "--data", str(data["labelme"]), "--out", str(tmp_path / "run")])
    softmax = plan_targets(get_model("pspnet"), LAYOUTS["labelme"], args)
    sigmoid = plan_targets(get_model("unet"), LAYOUTS["labelme"], args)
    assert (softmax.classes, softmax.encoding, sigmoid.classes, sigmoid.encoding) == (3, "one_hot", 2, "binary")
    records = read_records(LAYOUTS["labelme"], data["labelme"], "train", args, softmax, BadInputPolicy())
    batches = segmentation_dataset(
        records,
        dataclasses.replace(get_model("pspnet").input_spec, image_size=(32, 32)),
        mask_names=("classes",),
        mask_mode="index",
        batch_size=6,
        training=False,
    )
    _, masks = next(iter(batches))
    one_hot, per_class = softmax.convert(masks).numpy(), sigmoid.convert(masks).numpy()
    assert one_hot.shape == (6, 32, 32, 3) and per_class.shape == (6, 32, 32, 2)
    np.testing.assert_array_equal(one_hot.argmax(-1), masks.numpy()[..., 0])
    np.testing.assert_array_equal(per_class, one_hot[..., 1:])
    assert set(np.unique(masks)) == {0, 1, 2}
    mask_targets = plan_targets(get_model("pspnet"), LAYOUTS["isic2018-task1"], args)
    assert mask_targets.classes == 2 and mask_targets.convert(np.ones((1, 2, 2, 1), "float32")).numpy()[
        0, 0, 0
    ].tolist() == [0, 1]


@pytest.mark.slow
def test_labelme_class_masks_train_a_softmax_segmenter(data, tmp_path):
    outcome = _run(data, tmp_path / "psp", "pspnet", "labelme", "--epochs", "1", "--batch-size", "4")
    card = read_card(outcome.folder)
    assert card.data["targets"]["label_map"] == {"hydronephrosis": 1, "kidney": 2}
    assert card.builder_args["classes"] == 3 and card.outputs
    assert set(card.scores["validation"]["per_channel"]) == {"hydronephrosis", "kidney"}


@pytest.mark.slow
def test_sanet_gets_superpixels_and_attnmel_cnn_its_roi(data, tmp_path):
    sanet = read_card(
        _run(
            data,
            tmp_path / "sanet",
            "sanet",
            "isic2018",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--superpixel-cache",
            str(tmp_path / "superpixels"),
        ).folder
    )
    assert sanet.data["layout"] == "isic2018-task2" and len(sanet.scores["validation"]["per_channel"]) == 5
    assert any((tmp_path / "superpixels").rglob("*.png"))
    attnmel = read_card(
        _run(data, tmp_path / "attnmel", "attnmel_cnn", "isic2017", "--epochs", "1", "--batch-size", "4").folder
    )
    assert attnmel.data["roi"] == "lesion" and attnmel.training["monitor"] == "val_probabilities_auc"
    assert "auc" in attnmel.scores["validation"]


# --------------------------------------------------------------------------- a fresh process


def test_python_m_zoo_train_runs_without_runpy_warning_and_errors_in_one_line(data, tmp_path):
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "zoo.train",
            "--model",
            "unet",
            "--data",
            str(data["empty"]),
            "--out",
            str(tmp_path / "run"),
        ],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "found in sys.modules" not in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("python -m zoo.train: error: ")
    assert "looked for" in done.stderr
