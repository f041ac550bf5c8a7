"""The AttnMel table scripts: targets of eq. 5, Table 3's scoring, and --smoke runs whose
run folders reload to the table's numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from data_tools.isic import read_isic2017
from data_tools.pipeline import classification_dataset
from data_tools.preprocess import InputSpec
from data_tools.synthetic import make_isic2017
from reproduce import attnmel_recipe, attnmel_table2, attnmel_table3
from zoo.attnmel.recipe import ATTNMEL_AUGMENTATION
from zoo.common.run_card import RunError
from zoo.run import load_run

SIDE, RESIZE = 32, 40


@pytest.fixture(scope="module")
def isic2017_train(tmp_path_factory):
    root = make_isic2017(tmp_path_factory.mktemp("isic2017"), n_train=6, n_val=0, n_test=0, image_size=(48, 64))
    return read_isic2017(root, "train", parts=(1, 3))


@pytest.fixture(scope="module")
def spec():
    return InputSpec(image_size=(SIDE, SIDE), fit="crop", crop_fraction=0.8, pre_crop_size=(RESIZE, RESIZE))


def test_attention_jaccard_by_hand():
    """Sec. 3.3 as the authors' test_jaccard.py scores it: min-max to [0, 1], a pixel at
    0.5 or above attended (their ge(0.5)), Jaccard with the lesion (1 when both are
    empty), mean over images."""
    maps = [
        np.array([[2.0, 4.0], [6.0, 10.0]]),  # normalised 0, .25, .5, 1 -> 6 and 10 attended
        np.array([[1.0, 1.0], [1.0, 1.0]]),  # constant -> nothing attended
        np.array([[3.0, 3.0], [3.0, 3.0]]),
    ]
    masks = [np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[1.0, 0.0], [0.0, 0.0]]), np.zeros((2, 2))]
    # image 1: prediction = lesion -> 1; image 2: 0 / 1 -> 0; image 3: both empty -> 1.
    assert attnmel_table3.authors_jaccard("pool3", maps, masks) == pytest.approx(2 / 3)


def test_cam_is_binarised_at_its_own_resolution_then_upsampled():
    """Issue 25.6, the authors' test_cam.py: the CAM is binarised at its 7x7, the binary
    map resized bilinearly (soft edges) and scored sum(min) / sum(max); an attention map
    (test_jaccard.py) is upsampled first, then binarised.

    A 1x2 map [0, 1] on a 1x4 mask [0, 0, 1, 1]: half-pixel bilinear upsampling gives
    [0, .25, .75, 1]. The CAM: binary [0, 1] upsampled -> [0, .25, .75, 1], Jaccard
    (0 + 0 + .75 + 1) / (0 + .25 + 1 + 1) = 7/9. The attention map: [0, .25, .75, 1]
    binarised -> [0, 0, 1, 1], Jaccard 1."""
    column_map, mask = np.array([[0.0, 1.0]]), np.array([[0.0, 0.0, 1.0, 1.0]])
    assert attnmel_table3.authors_jaccard("CAM", [column_map], [mask]) == pytest.approx(7 / 9, abs=1e-6)
    assert attnmel_table3.authors_jaccard("pool4", [column_map], [mask]) == pytest.approx(1.0)
    assert attnmel_table3.soft_jaccard(np.array([0.5, 1.0]), np.array([1.0, 0.0])) == pytest.approx(0.5 / 2)


def test_split_validation_is_stratified_and_disjoint(isic2017_train):
    records = isic2017_train  # 2 melanomas, 4 others
    train, validation = attnmel_recipe.split_validation(records, 0.3, seed=0)
    assert len(train) + len(validation) == len(records) and len(validation) == 2
    train_ids = {r.image_id for r in train}
    assert train_ids.isdisjoint(r.image_id for r in validation)
    for subset in (train, validation):
        assert {r.labels["melanoma"] for r in subset} == {0.0, 1.0}
    with pytest.raises(ValueError, match="--val-fraction"):
        attnmel_recipe.split_validation(records, 1.5, seed=0)


@pytest.mark.parametrize("roi", ["lesion", "background"])
def test_roi_targets_follow_their_images(isic2017_train, spec, roi):
    """Eq. 5's targets: one-hot labels and the ROI (or its inverse), aligned with the
    augmented image: the classification pipeline over the same records and seed yields
    the very same images with the same labels."""
    make = dict(spec=spec, batch_size=3, seed=5, attention_outputs=True)
    dataset = attnmel_recipe.make_dataset(isic2017_train, training=True, roi=roi, **make)
    labelled = classification_dataset(
        isic2017_train,
        spec,
        label_names=("melanoma",),
        batch_size=3,
        training=True,
        seed=5,
        augment=ATTNMEL_AUGMENTATION,
    )
    lesion = attnmel_recipe.make_dataset(isic2017_train, training=True, roi="lesion", **make)
    for (image, targets), (same_image, labels), (_, lesion_targets) in zip(dataset, labelled, lesion, strict=True):
        np.testing.assert_array_equal(image, same_image)
        np.testing.assert_array_equal(targets["probabilities"][:, 1], labels[:, 0])
        np.testing.assert_array_equal(targets["attention_pool3"], targets["attention_pool4"])
        expected = lesion_targets["attention_pool3"]
        if roi == "background":
            expected = 1.0 - expected
        np.testing.assert_array_equal(targets["attention_pool3"], expected)
        assert set(np.unique(targets["attention_pool3"])) <= {0.0, 1.0}


def test_unregularised_attnmel_targets_are_zero_maps(isic2017_train, spec):
    dataset = attnmel_recipe.make_dataset(
        isic2017_train, spec, batch_size=6, training=False, seed=0, attention_outputs=True
    )
    image, targets = next(iter(dataset))
    assert targets["attention_pool3"].shape == (6, SIDE, SIDE, 1)
    assert not np.any(targets["attention_pool3"])
    np.testing.assert_array_equal(targets["probabilities"][:, 1], [r.labels["melanoma"] for r in isic2017_train])
    np.testing.assert_allclose(tf.reduce_sum(targets["probabilities"], axis=-1), 1.0)


def test_smoke_table2_row_then_table3_on_its_weights(tmp_path):
    """The whole path on synthetic data: Table 2's -Lesion row trains with eq. 5 and
    leaves a run folder; reloaded with zoo.load_run, its model scores the table's AP and
    AUC on the same test images; Table 3 scores its attention maps from that run folder
    and draws Fig. 3."""
    row = "AttnMel-CNN-Lesion"
    table2 = attnmel_table2.main(["--smoke", "--out", str(tmp_path / "t2"), "--rows", row])
    result = table2.results[row]
    assert 0.0 <= result.values["AUC"] <= 1.0 and 0.0 <= result.values["AP"] <= 1.0
    assert {"attention_pool3_loss", "attention_pool4_loss", "val_probabilities_auc"} <= set(result.history)
    run = load_run(tmp_path / "t2" / "rows" / "attnmel-cnn-lesion")
    assert run.card.model == "attnmel_cnn" and run.card.builder_args["input_shape"] == [SIDE, SIDE, 3]
    assert run.card.overrides == {"epochs": 1, "batch_size": 4}  # --smoke's; the recipe is the registered one
    assert run.card.scores["auc"] == result.values["AUC"] and run.card.scores["table"] == row
    test = read_isic2017(tmp_path / "t2" / "synthetic_data", "test", parts=(1, 3))
    again = attnmel_recipe.score_test_set(run.model, run.input_spec, test, batch_size=3)
    assert again["ap"] == pytest.approx(result.values["AP"], abs=1e-6)
    assert again["auc"] == pytest.approx(result.values["AUC"], abs=1e-6)
    table3 = attnmel_table3.main(
        ["--smoke", "--out", str(tmp_path / "t3"), "--rows", row, "--trained", str(tmp_path / "t2")]
    )
    assert set(table3.results[row].values) == {"pool3", "pool4"}
    assert all(0.0 <= v <= 1.0 for v in table3.results[row].values.values())
    assert (tmp_path / "t3" / "rows" / "attnmel-cnn-lesion" / attnmel_table3.FIGURE_FILE).is_file()
    written = json.loads((tmp_path / "t2" / "table.json").read_text())
    assert "SYNTHETIC" in json.dumps(written)


def test_table3_scores_on_the_full_size_masks_where_the_crop_misses_lesion(tmp_path):
    """A map attending to the model's whole window, against a lesion filling the image:
    on the crop it scores 1; on the original pixels only the window's share."""
    from PIL import Image

    from data_tools.preprocess import InputSpec
    from data_tools.records import Record

    mask_path = tmp_path / "ISIC_0000000_Segmentation.png"
    Image.fromarray(np.full((60, 80), 255, np.uint8)).save(mask_path)
    record = Record("ISIC_0000000", tmp_path / "ISIC_0000000.jpg", mask_paths={"lesion": mask_path})
    spec = InputSpec(image_size=(28, 28), fit="crop", crop_fraction=0.8, pre_crop_size=(32, 32))
    attention = np.ones((28, 28))
    attention[0, 0] = 0.0  # min-max -> all 1 but one pixel
    crop = attnmel_table3.authors_jaccard("pool4", [attention], [np.ones((28, 28))])
    original = attnmel_table3.original_jaccard([attention], [record], spec)
    window = round(28 * 48 / 32)  # side 48 = 0.8 * 60, resized 32, cropped 28
    assert crop == pytest.approx(1 - 1 / 28**2)
    assert original == pytest.approx(window**2 / (60 * 80), abs=0.01)


def test_table1_smoke_trains_on_all_training_images_and_tests_the_final_epoch(tmp_path):
    """ISIC 2016 has no validation set: the paper's protocol is the default."""
    from reproduce import attnmel_table1

    row = "VGG-16-GAP"
    result = attnmel_table1.main(["--smoke", "--out", str(tmp_path), "--rows", row]).results[row]
    assert result.monitor == "loss" and 0.0 <= result.values["AUC"] <= 1.0
    assert result.extra["kept_epoch"] == len(result.history["loss"])  # the final epoch, counted from 1
    assert "hold-out" not in (tmp_path / "table.md").read_text()
    card = load_run(tmp_path / "rows" / "vgg-16-gap").card
    assert card.model == "vgg16_gap" and card.training["keep"] == "last"
    assert card.overrides["monitor"] == "loss"  # no validation set: recorded as a recipe override


def test_channel_statistics_by_hand(tmp_path):
    """Two flat images: channel means and population standard deviations by hand."""
    from PIL import Image

    from data_tools.records import Record
    from data_tools.statistics import channel_statistics, standardised_spec

    records = []
    for index, colour in enumerate(((51, 102, 153), (102, 153, 204))):  # 0.2 0.4 0.6 / 0.4 0.6 0.8
        path = tmp_path / f"ISIC_{index:07d}.png"
        Image.fromarray(np.full((16, 24, 3), colour, np.uint8)).save(path)
        records.append(Record(path.stem, path))
    spec = InputSpec(image_size=(8, 8))
    mean, std = channel_statistics(records, spec, progress=False)
    np.testing.assert_allclose(mean, (0.3, 0.5, 0.7), atol=1e-6)
    np.testing.assert_allclose(std, (0.1, 0.1, 0.1), atol=1e-6)
    standard = standardised_spec(records, spec, progress=False)
    assert standard.scale == "standard" and standard.mean == pytest.approx(mean)
    with pytest.raises(ValueError, match="constant over all 1 images"):
        channel_statistics(records[:1], spec, progress=False)


def test_batch_norm_rows_standardise_with_the_training_statistics(tmp_path):
    """--batch-norm (the code's VGG-16-BN): the statistics of the training images are
    the input spec of the row's run card, the test set is evaluated with them, and
    Table 3 reads them from the run folder."""
    from data_tools.statistics import channel_statistics

    row = "VGG-16-GAP"
    table2 = attnmel_table2.main(["--smoke", "--batch-norm", "--out", str(tmp_path / "t2"), "--rows", row])
    assert 0.0 <= table2.results[row].values["AUC"] <= 1.0
    assert "VGG-16-BN" in (tmp_path / "t2" / "table.md").read_text().splitlines()[0]
    row_dir = tmp_path / "t2" / "rows" / "vgg-16-gap"
    run = load_run(row_dir)
    stored = run.input_spec
    assert run.card.builder_args["batch_norm"] is True and run.card.builder_args["encoder_weights"] is None
    train = read_isic2017(tmp_path / "t2" / "synthetic_data", "train", parts=(1, 3))
    expected = channel_statistics(train, attnmel_recipe.input_spec(argparse_namespace(batch_norm=True)), progress=False)
    assert stored.scale == "standard"
    np.testing.assert_allclose((stored.mean, stored.std), expected, rtol=1e-6)
    table3 = attnmel_table3.main(
        ["--smoke", "--batch-norm", "--out", str(tmp_path / "t3"), "--rows", row, "--trained", str(tmp_path / "t2")]
    )
    assert 0.0 <= table3.results[row].values["CAM"] <= 1.0
    with pytest.raises(ValueError, match="batch_norm=True"):  # another model than asked for
        attnmel_table3.main(
            ["--smoke", "--out", str(tmp_path / "t3c"), "--rows", row, "--trained", str(tmp_path / "t2")]
        )
    (row_dir / "run.json").unlink()
    with pytest.raises(RunError, match="not a run folder"):
        attnmel_table3.main(
            [
                "--smoke",
                "--batch-norm",
                "--out",
                str(tmp_path / "t3b"),
                "--rows",
                row,
                "--trained",
                str(tmp_path / "t2"),
            ]
        )


def argparse_namespace(**overrides):
    """The recipe's flags at the --smoke sizes."""
    import argparse

    return argparse.Namespace(
        **{"image_size": attnmel_recipe.SMOKE["image_size"], "resize": attnmel_recipe.SMOKE["resize"], **overrides}
    )


def test_table3_scores_as_the_authors_by_default():
    """Issue 25.6: the authors' test_jaccard.py / test_cam.py (SaoYan/IPMI2019-AttnMel)
    score on the 224 crop with the melanoma class's CAM; the paper names neither."""
    import argparse

    parser = argparse.ArgumentParser()
    attnmel_table3.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.score_region, args.cam_class) == ("crop", "melanoma")


def test_table3_cam_is_the_melanoma_class_even_where_another_class_is_predicted():
    import keras

    import zoo
    from zoo.cam import class_activation_map

    model = zoo.get_model("vgg16_gap").build(small=True)
    dense = model.get_layer("predictions")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel, np.array([50.0, -50.0], np.float32)])  # every image predicted "rest" (0)
    images = np.random.default_rng(0).random((2, *model.input_shape[1:]), dtype=np.float32)
    assert (np.argmax(keras.ops.convert_to_numpy(model(images)), axis=-1) == 0).all()
    melanoma = class_activation_map(model, images, 1, resize_to_input=True)
    rest = class_activation_map(model, images, 0, resize_to_input=True)
    assert not np.allclose(melanoma, rest)
    native = attnmel_table3.native_maps(model, images)["CAM"]  # scored at pool-5's resolution (test_cam.py)
    assert native.shape[1:] == tuple(side // 32 for side in images.shape[1:3])
    np.testing.assert_allclose(native, class_activation_map(model, images, 1), rtol=1e-6)
    np.testing.assert_allclose(attnmel_table3.maps_of(model, images)["CAM"], melanoma, rtol=1e-6)
    np.testing.assert_allclose(attnmel_table3.maps_of(model, images, "predicted")["CAM"], rest, rtol=1e-6)
