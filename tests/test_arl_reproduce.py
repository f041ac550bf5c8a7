"""The ARL-CNN table scripts (Zhang et al., "Attention Residual Learning for Skin Lesion
Classification", IEEE TMI 2019): Sec. V-G's t-test, the 9-patch scores and their seeds,
the ROI box, the extra-image list, the rows' registered models and recipes, and
--smoke runs of Tables III and VII whose run folders score the tables' numbers again."""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

import zoo
from data_tools.isic import read_isic2017
from data_tools.preprocess import normalize_images, to_float_rgb
from data_tools.records import BadInputPolicy, DatasetError
from reproduce import arl_common, arl_extra_images, arl_table3, arl_table4, arl_table5, arl_table6, arl_table7, frame
from reproduce.datasets import MissingDataError
from reproduce.frame import PaperRow, RowContext, RowResult, TableResult
from zoo.arl_cnn.models import PAPER_PARAMS
from zoo.arl_cnn.patches import arl_test_patches
from zoo.arl_cnn.recipe import arl_sgd
from zoo.common.run_card import WEIGHTS_FILE, read_card
from zoo.losses import DiceLoss
from zoo.params import count_parameters
from zoo.recipe import add_override_flags, constant
from zoo.train import TrainResult

RESNET50 = arl_table7.PAPER_RUNS["ResNet50"]
ARL_CNN50 = arl_table7.PAPER_RUNS["ARL-CNN50"]


# --------------------------------------------------------------------------- t-test (Sec. V-G)


def test_t_test_on_table7_matches_scipy_and_the_pooled_formula():
    result = arl_table7.two_sample_t_test(RESNET50, ARL_CNN50)
    reference = stats.ttest_ind(RESNET50, ARL_CNN50, equal_var=True, alternative="less")
    assert result.t == pytest.approx(reference.statistic, rel=1e-12)
    assert result.p == pytest.approx(reference.pvalue, rel=1e-9)
    # Eq. 14-16 by hand with Table VII's values: sums of squares 0.224 and 0.064.
    x, y = np.array(RESNET50), np.array(ARL_CNN50)
    assert np.sum((x - x.mean()) ** 2) == pytest.approx(0.224)
    assert np.sum((y - y.mean()) ** 2) == pytest.approx(0.064)
    pooled = math.sqrt((0.224 + 0.064) / 18)
    assert result.pooled_sd == pytest.approx(pooled)
    assert result.t == pytest.approx((90.26 - 91.66) / (pooled * math.sqrt(0.2)))
    assert result.t == pytest.approx(-24.7487, abs=1e-4)
    assert result.df == 18 and result.critical == pytest.approx(-2.552, abs=1e-3)
    assert result.rejects_h0


def test_t_test_needs_two_runs_per_model():
    with pytest.raises(ValueError, match="at least two runs"):
        arl_table7.two_sample_t_test([90.0], [91.0, 91.5])


def test_t_test_report_prints_scipy_values(tmp_path):
    ours_x, ours_y = [50.0, 60.0, 55.0], [70.0, 65.0, 72.0]
    results = {
        "ResNet50*": RowResult({}, extra={"average_auc_percent": ours_x}),
        "ARL-CNN50*": RowResult({}, extra={"average_auc_percent": ours_y}),
    }
    table = TableResult(arl_table7.TABLE, results, tmp_path, synthetic=True, files=[])
    (tmp_path / "table.md").write_text("# table\n", encoding="utf-8")
    markdown = arl_table7.write_t_test(table)
    reference = stats.ttest_ind(ours_x, ours_y, equal_var=True, alternative="less")
    saved = json.loads((tmp_path / "ttest.json").read_text(encoding="utf-8"))
    assert saved["synthetic"] is True
    assert saved["ours"]["t"] == pytest.approx(reference.statistic)
    assert saved["ours"]["p"] == pytest.approx(reference.pvalue)
    assert saved["paper (printed)"]["t"] == arl_table7.PAPER_T
    t_row = next(line for line in markdown.splitlines() if line.startswith("| t |"))
    assert t_row.split("|")[2].strip() == f"{reference.statistic:.4f}"
    assert "-78.2624" in t_row and "-24.7487" in t_row
    assert (tmp_path / "table.md").read_text(encoding="utf-8").startswith("# table\n")
    assert "SYNTHETIC — Two-sample t-test" in (tmp_path / "table.md").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def isic2017(tmp_path_factory):
    root = arl_common.DATASET.make_synthetic(tmp_path_factory.mktemp("arl"))
    return root, {split: read_isic2017(root, split, parts=(3,)) for split in ("train", "validation", "test")}


def test_image_scores_average_each_images_nine_patches(isic2017):
    """The flattened 9-patch batches come back in image order: compare with a loop that
    cuts each image's patches itself and averages the model's softmax over them."""
    records = isic2017[1]["test"][:4]
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(pooled))
    spec = arl_common.input_spec(argparse.Namespace(image_size=32, colour_constancy=None), weights="imagenet")
    expected = []
    for index, record in enumerate(records):
        image = to_float_rgb(tf.io.decode_image(tf.io.read_file(str(record.image_path)), 3))
        seed = tf.constant([5, index], tf.int64)  # the run's seed, the image's place
        patches = normalize_images(arl_test_patches(image, seed, size=(32, 32)), spec)
        expected.append(np.mean(model(patches).numpy()[:, 1]))
    scores = arl_common.image_scores(model, records, "melanoma", spec, batch_size=10, seed=5)  # 2 images
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    assert np.ptp(scores) > 0  # the images are told apart


def test_each_run_draws_its_own_test_patches(isic2017):
    """Sec. IV-B "randomly crop nine patches from each test image", in each of Table
    VII's runs: the patches follow the run's seed, the same whenever it is rerun."""
    records = isic2017[1]["test"][:2]
    spec = arl_common.input_spec(argparse.Namespace(image_size=32, colour_constancy=None), weights=None)

    def patches(seed):
        data = arl_common.evaluation_patches(records, "melanoma", spec, 18, cache=False, seed=seed)
        return np.concatenate([images for images, _ in data.as_numpy_iterator()])

    run_1 = patches(seed=0)
    assert run_1.shape == (2 * 9, 32, 32, 3)
    np.testing.assert_array_equal(run_1, patches(seed=0))
    run_2 = patches(seed=1)
    assert not np.any([np.array_equal(a, b) for a, b in zip(run_1, run_2, strict=True)])


def test_table7_runs_score_with_their_own_seeds(monkeypatch):
    seeds = []

    def fake_score_model(ctx, splits, *, out_dir, seed, data):
        seeds.append(seed)
        return argparse.Namespace(challenge_scores=lambda: {"average_auc": 0.5})

    monkeypatch.setattr(arl_table7, "read_splits", lambda ctx: None)
    monkeypatch.setattr(arl_table7, "score_model", fake_score_model)
    ctx = RowContext(
        argparse.Namespace(runs=3, seed=5, repeat="retrain"),
        PaperRow("ResNet50*", {}),
        None,
        Path("unused"),
        True,
        BadInputPolicy(),
    )
    arl_table7.run_row(ctx)
    assert seeds == [5, 6, 7]


def test_roi_box_by_hand():
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1] = True  # rows 1-2, column 1 of a 4x4 mask over an 8x8 image
    assert arl_table6.lesion_box(mask, (8, 8), margin=0.0) == (2, 2, 4, 2)
    # margin 0.5: rows 2..6 grow by 2 on each side (0..8); columns 2..4 by 1 (1..5)
    assert arl_table6.lesion_box(mask, (8, 8), margin=0.5) == (0, 1, 8, 4)
    assert arl_table6.lesion_box(np.zeros((4, 4), bool), (8, 8), margin=0.1) is None


def _write_extras(path, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["image_id", "melanoma", "seborrheic_keratosis", "path"], *rows])
    return path


def test_extra_images_are_read_and_checked(isic2017, tmp_path):
    root, splits = isic2017
    listed = root.parent / arl_extra_images.SYNTHETIC_LIST
    challenge = {r.image_id for records in splits.values() for r in records}
    extras = arl_extra_images.read_extra_images(listed, challenge)
    assert [r.image_id for r in extras] == ["ISIC_0300000", "ISIC_0300001", "ISIC_0300002"]
    assert all(r.image_path.is_file() for r in extras)
    assert sum(r.labels["melanoma"] + r.labels["seborrheic_keratosis"] for r in extras) == 2

    image = extras[0].image_path
    test_id = splits["test"][0].image_id
    bad = _write_extras(
        tmp_path / "bad.csv",
        [
            ["ISIC_0400000", 0, 0, image],
            [test_id, 1, 0, image],
            ["ISIC_0400001", 1, 1, image],
            ["ISIC_0400002", 0, 0, tmp_path / "none.jpg"],
        ],
    )
    with pytest.raises(DatasetError, match=rf"bad\.csv: line 3: {test_id} is an ISIC 2017"):
        arl_extra_images.read_extra_images(bad, challenge)
    policy = BadInputPolicy(skip_bad=True)
    kept = arl_extra_images.read_extra_images(bad, challenge, skip_bad=policy)
    assert [r.image_id for r in kept] == ["ISIC_0400000"]
    assert [str(e).split(": ")[1] for e in policy.skipped] == ["line 3", "line 4", "line 5"]
    no_labels = tmp_path / "no_labels.csv"
    no_labels.write_text("image_id,path\nISIC_0400000,x.jpg\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="missing column"):
        arl_extra_images.read_extra_images(no_labels, challenge)


# --------------------------------------------------------------------------- --smoke


def test_table7_retests_one_trained_model_by_default(tmp_path, monkeypatch):
    """Issue 25.4: Sec. V-G "evaluated ... 10 times independently", spread 0.16 points: by
    default a row trains once and each test redraws the 9 test patches (its own seed)."""
    trainings, patch_seeds = [], []
    real_image_scores = arl_table7.image_scores

    def counting_score_model(ctx, splits, **kwargs):
        trainings.append(kwargs["seed"])
        return arl_common.score_model(ctx, splits, **kwargs)

    def recording_image_scores(model, records, task, spec, batch_size, seed):
        patch_seeds.append((task, seed))
        return real_image_scores(model, records, task, spec, batch_size, seed)

    monkeypatch.setattr(arl_table7, "score_model", counting_score_model)
    monkeypatch.setattr(arl_table7, "image_scores", recording_image_scores)
    result = arl_table7.main(["--smoke", "--rows", "resnet50", "--runs", "3", "--out", str(tmp_path)])
    assert trainings == [0]  # one training (seed --seed), three tests
    assert patch_seeds == [(task, seed) for seed in (0, 1, 2) for task in arl_common.TASKS]
    (row,) = result.results.values()
    assert row.extra["repeat"] == "retest" and [run["seed"] for run in row.extra["runs"]] == [0, 1, 2]
    assert len({run["average_auc"] for run in row.extra["runs"]}) > 1  # other patches, other scores


def test_table7_smoke_run_writes_a_synthetic_table(tmp_path):
    out = tmp_path / "table7"
    result = arl_table7.main(["--smoke", "--rows", "resnet50", "--runs", "1", "--repeat", "retrain", "--out", str(out)])
    markdown = (out / "table.md").read_text(encoding="utf-8")
    assert markdown.startswith("# SYNTHETIC") and "Two-sample t-test" in markdown
    table = json.loads((out / "table.json").read_text(encoding="utf-8"))
    assert table["synthetic"] is True
    ours = next(row for row in table["rows"] if row["name"] == "ResNet50*")["ours"]
    assert 0.0 <= ours["Test 1"] <= 100.0 and ours["Mean"] == ours["Test 1"]
    run = result.results["ResNet50*"].extra["runs"][0]
    assert all(math.isfinite(v) for k, v in run.items() if k not in ("seed", "folder"))
    assert json.loads((out / "ttest.json").read_text(encoding="utf-8"))["ours"] is None
    with (out / "rows" / "resnet50" / "run-01" / "predictions.csv").open() as handle:
        predictions = list(csv.DictReader(handle))
    assert len(predictions) == 6 and all(0.0 <= float(p["melanoma"]) <= 1.0 for p in predictions)
    # Each run's sub-task models are run folders under the row's (reloading one is
    # test_table3_smoke_row_reloads_from_its_run_folders_with_the_tables_numbers's: ResNet50 is slow to build).
    for task in arl_common.TASKS:
        card = read_card(Path(run["folder"]) / task)
        assert (Path(run["folder"]) / task / WEIGHTS_FILE).is_file()
        assert card.model == "resnet50" and card.data["table7_run"] == 1 and card.training["seed"] == run["seed"]
        assert card.scores["auc"] == pytest.approx(run[f"{task}_auc"], abs=1e-12)
        assert card.overrides == {"learning_rate": 1e-4, "batch_size": 4, "epochs": 1}  # --smoke's


def test_task_settings_leave_out_the_frames_non_result_flags():
    """A trained task is reused under the frame's rule for rows (frame.NON_RESULT_FLAGS)."""
    args = argparse.Namespace(
        out="results/x",
        rows=["ResNet14"],
        force=True,
        xla=True,
        strategy="mirrored",
        epochs=3,
        seed=0,
        learning_rate=0.01,
    )
    assert arl_common._settings(args, seed=7) == {"epochs": 3, "seed": 7, "learning_rate": 0.01}


def _table_args(argv=(), **extra):
    """The flags of an ARL table script (the frame's recipe overrides and the script's own)."""
    parser = argparse.ArgumentParser()
    add_override_flags(parser)
    arl_common.add_recipe_arguments(parser)
    return argparse.Namespace(**{**vars(parser.parse_args(list(argv))), **extra})


def test_finished_tasks_are_reused_and_stale_ones_restarted(isic2017, tmp_path, monkeypatch):
    """A rerun with the same flags keeps a finished task; other flags wipe its folder."""
    root, splits = isic2017
    trainings, saved = [], []

    def fake_train(ctx, plan, task, splits, out_dir, seed):
        trainings.append((task, seed))
        (out_dir / "best.weights.h5").write_text("weights")
        inputs = keras.Input((4,))
        return TrainResult(
            keras.Model(inputs, keras.layers.Dense(2)(inputs)), {"loss": [1.0]}, 0, out_dir, out_dir / "best.weights.h5"
        )

    scorings = []

    def fake_scores(model, records, task, spec, batch_size, seed):
        scorings.append((task, seed))
        return np.linspace(0.1, 0.9, len(records))

    monkeypatch.setattr(arl_common, "train_task", fake_train)
    monkeypatch.setattr(arl_common, "image_scores", fake_scores)
    monkeypatch.setattr(RowContext, "save_run", lambda self, model, **kwargs: saved.append(kwargs))
    args = _table_args(
        ["--epochs", "1", "--image-size", "32", "--batch-size", "4", "--no-pretrained"], seed=3, out=tmp_path, xla=None
    )
    ctx = RowContext(args, PaperRow("x", {}, model="resnet14"), root, tmp_path, True, BadInputPolicy())
    data = arl_common.Splits(splits["train"], splits["validation"], splits["test"])
    first = arl_common.score_model(ctx, data)
    assert trainings == [("melanoma", 3), ("seborrheic_keratosis", 3)]
    assert scorings == trainings  # the test patches of the run's seed
    assert [call["folder"] for call in saved] == [tmp_path / task for task in arl_common.TASKS]
    assert saved[0]["scores"]["auc"] == first.tasks["melanoma"].scores["auc"]
    args.xla = True  # does not change the numbers
    again = arl_common.score_model(ctx, data)
    assert len(trainings) == 2 and again.challenge_scores() == first.challenge_scores()
    args.epochs = 2
    (tmp_path / "melanoma" / "stale.txt").write_text("left by the epochs=1 run")
    arl_common.score_model(ctx, data, seed=4)
    assert trainings[2:] == [("melanoma", 4), ("seborrheic_keratosis", 4)]
    assert not (tmp_path / "melanoma" / "stale.txt").exists()
    with (tmp_path / "predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["image_id"] for r in rows] == [r.image_id for r in splits["test"]]
    np.testing.assert_allclose([float(r["melanoma"]) for r in rows], np.linspace(0.1, 0.9, len(rows)))


def test_tables_train_with_the_extra_images_unless_told_not_to(isic2017, tmp_path):
    """Sec. IV-A: Tables III, V, VI, VII are the model trained with the 1320 extras; a
    missing list stops with how to get it; --extra-images none says so in the title."""
    root, splits = isic2017
    parser = argparse.ArgumentParser()
    arl_common.add_recipe_arguments(parser)
    args = parser.parse_args([])
    assert args.extra_images == arl_extra_images.DEFAULT_LIST
    ctx = RowContext(args, PaperRow("x", {}), root, tmp_path, True, BadInputPolicy(False))
    enlarged = arl_common.read_splits(ctx)
    assert len(enlarged.train) == len(splits["train"]) + 3  # the synthetic extras
    missing = RowContext(
        parser.parse_args(["--extra-images", str(tmp_path / "none.csv")]),
        PaperRow("x", {}),
        root,
        tmp_path,
        False,
        BadInputPolicy(False),
    )
    with pytest.raises(MissingDataError, match=r"(?s)arl_extra_images\.py --isic2017 .*--extra-images none"):
        arl_common.read_splits(missing)
    none = parser.parse_args(["--extra-images", "none"])
    plain = RowContext(none, PaperRow("x", {}), root, tmp_path, False, BadInputPolicy(False))
    assert len(arl_common.read_splits(plain).train) == len(splits["train"])
    assert arl_common.extras_variant(none).startswith("no extra images")
    assert arl_common.extras_variant(args) is None


def test_colour_constancy_option_reaches_the_patches(isic2017):
    """Sec. V-F: gray world on the whole image, before the patches are cut; named in the title."""
    parser = argparse.ArgumentParser()
    arl_common.add_recipe_arguments(parser)
    args = parser.parse_args(["--colour-constancy", "gray_world", "--image-size", "32"])
    spec = arl_common.input_spec(args, None)
    assert spec.colour_constancy == "gray_world"
    assert "gray_world colour constancy" in arl_common.extras_variant(args)
    plain_spec = arl_common.input_spec(parser.parse_args(["--image-size", "32"]), None)
    records = isic2017[1]["test"][:2]
    corrected = arl_common.evaluation_patches(records, "melanoma", spec, 18, cache=False, seed=0)
    plain = arl_common.evaluation_patches(records, "melanoma", plain_spec, 18, cache=False, seed=0)
    a, b = (np.asarray(next(iter(d))[0]) for d in (corrected, plain))
    assert a.shape == b.shape and np.abs(a - b).max() > 1e-3


# --------------------------------------------------------------------------- rows, recipes, run folders


TABLES = (arl_table3, arl_table4, arl_table5, arl_table6, arl_table7)
TABLE_ROWS = [(table, row) for table in TABLES for row in table.TABLE.runnable_rows]


class _Captured(Exception):
    """Raised by the fake zoo.train.fit once it has seen what a table trains with."""


@pytest.fixture
def capture_fit(monkeypatch):
    """What :func:`reproduce.frame.fit` (the tables' one training path) is called with;
    nothing is built or trained."""
    calls = []

    def fake_fit(build, train_data, val_data, config, *, optimizer, loss, loss_weights=None, metrics=None):
        calls.append(dict(build=build, config=config, optimizer=optimizer, loss=loss, loss_weights=loss_weights))
        raise _Captured

    monkeypatch.setattr(frame, "fit", fake_fit)
    return calls


@pytest.fixture(scope="module")
def tiny_segmenter(tmp_path_factory):
    """A lesion 'segmenter' file for Table VI's --segmenter: any .keras image -> map model."""
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs))
    path = tmp_path_factory.mktemp("segmenter") / "segmenter.keras"
    model.save(path)
    return path


def _train_row(table, row, argv, isic2017, tmp_path, capture_fit, segmenter, monkeypatch):
    """Runs ``table``'s ``row`` with the flags ``argv`` (no --smoke: the paper's settings)
    up to its training; returns the row's context, the captured call and the builder
    arguments its model would be built with."""
    root, _ = isic2017
    add_arguments = getattr(table, "add_arguments", arl_common.add_recipe_arguments)
    parser = frame.build_parser(table.TABLE, table.DATASET, add_arguments)
    segmenter_flag = ["--segmenter", str(segmenter)] if table is arl_table6 else []
    args = frame.parse_flags(parser, [*argv, *segmenter_flag])
    ctx = RowContext(args, row, root, tmp_path / "out" / "rows" / row.slug, True, BadInputPolicy())
    ctx.out_dir.mkdir(parents=True)
    with pytest.raises(_Captured):
        table.run_row(ctx)
    built = []
    monkeypatch.setattr(RowContext, "build", lambda self, builder_args, **outputs: built.append(builder_args))
    capture_fit[-1]["build"]()
    return ctx, capture_fit[-1], built[0]


def _config(optimizer):
    """An optimiser's configuration but its name (Keras numbers each new one)."""
    return {key: value for key, value in optimizer.get_config().items() if key != "name"}


def _assert_trains_with(call, expected, steps=None):
    """``call`` (what frame.fit got) trains with ``expected``'s optimiser, loss and epochs
    (``steps`` batches an epoch: the training's own by default)."""
    config = call["config"]
    assert config.epochs == expected.epochs and config.monitor == expected.monitor
    steps = config.steps_per_epoch if steps is None else steps
    assert _config(call["optimizer"]()) == _config(expected.make_optimizer(steps))
    made, wanted = call["loss"](), expected.loss()
    if isinstance(wanted, keras.losses.Loss):
        assert type(made) is type(wanted) and made.get_config() == wanted.get_config()
    else:
        assert made == wanted
    assert call.get("loss_weights") is None and expected.loss_weights is None


@pytest.mark.parametrize("table, row", TABLE_ROWS, ids=[f"{t.TABLE.key}-{r.slug}" for t, r in TABLE_ROWS])
def test_every_row_trains_its_registered_model_with_its_recipe_and_named_overrides(
    table, row, isic2017, tmp_path, capture_fit, tiny_segmenter, monkeypatch
):
    """Every row names a registered ARL-CNN model; it trains (through RowContext.fit) with
    the registered recipe plus the row's overrides, nothing else: the "*" rows fine-tune
    from ImageNet at 1e-4 (Sec. IV-B), the others train from scratch at the recipe's 0.01."""
    entry = zoo.get_model(row.model)
    assert entry.paper == "arl_cnn"
    ctx, call, builder_args = _train_row(table, row, [], isic2017, tmp_path, capture_fit, tiny_segmenter, monkeypatch)
    expected = entry.recipe.with_overrides(**row.recipe_overrides)
    _assert_trains_with(call, expected)
    fine_tuning = row.model.endswith("50")  # Table III's "*": every 50-layer model of Tables III-VII
    assert entry.recipe.learning_rate == 0.01
    assert expected.learning_rate == (1e-4 if fine_tuning else 0.01)
    assert builder_args == {
        **row.builder_args,
        "input_shape": (224, 224, 3),
        "classes": 2,
        "encoder_weights": "imagenet" if fine_tuning else None,
    }
    train_images = len(
        arl_common.read_splits(ctx, extras=table is not arl_table4 or "no external" not in row.name).train
    )
    assert call["config"].steps_per_epoch == 60 * train_images // 32
    assert arl_common.row_recipe(ctx).overrides_from(entry.recipe) == ({"learning_rate": 1e-4} if fine_tuning else {})


def test_script_flags_are_recipe_overrides_recorded_in_the_card(
    isic2017, tmp_path, capture_fit, tiny_segmenter, monkeypatch
):
    """--momentum and --halving-epochs make another arl_sgd, --no-pretrained trains a "*"
    row from scratch at the recipe's rate, --learning-rate/--epochs override last."""
    row = next(r for r in arl_table3.TABLE.rows if r.name == "ARL-CNN50*")
    entry = zoo.get_model("arl_cnn50")
    argv = ["--momentum", "0.9", "--halving-epochs", "7", "--no-pretrained"]
    ctx, call, builder_args = _train_row(
        arl_table3, row, argv, isic2017, tmp_path, capture_fit, tiny_segmenter, monkeypatch
    )
    expected = entry.recipe.with_overrides(**row.recipe_overrides).with_overrides(
        optimizer=arl_sgd(0.9, 7), learning_rate=entry.recipe.learning_rate
    )
    _assert_trains_with(call, expected)
    optimizer = call["optimizer"]()
    assert optimizer.get_config()["momentum"] == 0.9
    assert optimizer.get_config()["learning_rate"]["config"]["decay_steps"] == 7 * call["config"].steps_per_epoch
    assert builder_args["encoder_weights"] is None
    assert arl_common.row_recipe(ctx).overrides_from(entry.recipe) == {
        "optimizer": "SGD(momentum=0.9), rate x0.5 every 7 epochs"
    }

    capture_fit.clear()
    argv = ["--momentum", "0.9", "--learning-rate", "0.003", "--epochs", "5", "--batch-size", "16"]
    ctx, call, builder_args = _train_row(
        arl_table3, row, argv, isic2017, tmp_path / "2", capture_fit, tiny_segmenter, monkeypatch
    )
    expected = entry.recipe.with_overrides(optimizer=arl_sgd(0.9), learning_rate=0.003, epochs=5, batch_size=16)
    _assert_trains_with(call, expected)
    assert call["config"].steps_per_epoch == 60 * 9 // 16  # 6 images and 3 synthetic extras
    assert builder_args["encoder_weights"] == "imagenet"
    assert arl_common.row_recipe(ctx).overrides_from(entry.recipe) == {
        "optimizer": "SGD(momentum=0.9), rate x0.5 every 30 epochs",
        "learning_rate": 0.003,
        "epochs": 5,
        "batch_size": 16,
    }


def test_table3_params_are_the_papers_counts_of_the_rows_models():
    """Table III's Params column: each row's paper value is Table III's count of the
    registered model it names (zoo.arl_cnn.models.PAPER_PARAMS)."""
    assert [row.model for row in arl_table3.TABLE.rows] == [
        "resnet14",
        "ran14",
        "senet14",
        "arl_cnn14",
        "resnet50",
        "ran50",
        "senet50",
        "arl_cnn50",
    ]
    for row in arl_table3.TABLE.rows:
        assert row.values["Params"] == pytest.approx(PAPER_PARAMS[row.model] / 1e7)
    assert arl_table3.TABLE.column("Params").decimals == 2


def _rescored(folder, test_records):
    """A run folder reloaded with zoo.load_run and scored again on the test images."""
    run = zoo.load_run(folder)
    scores, metrics = arl_common.rescore_run(run, test_records)
    return run, scores, metrics


def test_table3_smoke_row_reloads_from_its_run_folders_with_the_tables_numbers(tmp_path):
    """Issue 22: each trained sub-task model of a row is a run folder holding exactly the
    weights scored; reloaded, it scores the table's numbers again. Table III's Params
    prints our count (two decimals) beside the paper's as printed (ResNet14: 0.8)."""
    out = tmp_path / "table3"
    result = arl_table3.main(["--smoke", "--rows", "resnet14", "--out", str(out)])
    ours = result.results["ResNet14"].values
    test = read_isic2017(out / "synthetic_data" / "isic2017", "test", parts=(3,))
    for task in arl_common.TASKS:
        folder = out / "rows" / "resnet14" / task
        run, scores, metrics = _rescored(folder, test)
        assert run.entry.name == "resnet14" and run.card.scores["table"] == "ResNet14"
        assert run.card.overrides == {"learning_rate": 1e-4, "batch_size": 4, "epochs": 1}  # --smoke's
        saved = json.loads((folder / arl_common.RESULT_FILE).read_text(encoding="utf-8"))["image_scores"]
        np.testing.assert_allclose(scores, [saved[r.image_id] for r in test], rtol=0, atol=1e-6)
        prefix = arl_common.TASK_ABBREVIATIONS[task]
        for header, key in arl_common.SCORE_KEYS.items():
            assert metrics[key] == pytest.approx(ours[f"{prefix} {header}"], abs=1e-6)
            assert run.card.scores[key] == pytest.approx(ours[f"{prefix} {header}"], abs=1e-6)
    assert ours["Params"] == pytest.approx(count_parameters(run.model).pytorch_style / 1e7)
    assert ours["Params"] == pytest.approx(PAPER_PARAMS["resnet14"] / 1e7, abs=0.05)
    printed = next(
        line for line in (out / "table.md").read_text(encoding="utf-8").splitlines() if line.startswith("| ResNet14 |")
    )
    assert printed.split("|")[2:4] == [" 0.80 ", " 0.8 "]  # ours, the paper's as printed


def test_table6_segmenter_is_a_run_folder_of_the_registered_deeplab(isic2017, tmp_path, monkeypatch):
    """Sec. V-D's DeepLabv3+ is the registered sanet_deeplab with one lesion map, trained
    with its recipe plus the table's named overrides into a run folder that crops the
    ROIs. (Training itself is faked: a DeepLabv3+ step takes half a minute on a CPU.)"""
    root, splits = isic2017
    parser = frame.build_parser(arl_table6.TABLE, arl_table6.DATASET, arl_table6.add_arguments)
    args = frame.parse_flags(parser, ["--smoke"], smoke_overrides={**arl_common.SMOKE, **arl_table6.SMOKE_SEGMENTER})
    row = next(r for r in arl_table6.TABLE.rows if "segmented" in r.name)
    ctx = RowContext(args, row, root, tmp_path / "rows" / row.slug, True, BadInputPolicy())
    calls = []

    def fake_fit(build, train_data, val_data, config, *, optimizer, loss, metrics):
        calls.append(dict(optimizer=optimizer, loss=loss, config=config))
        return TrainResult(build(), {"val_dice": [0.5]}, 0, config.out_dir, None)

    monkeypatch.setattr(arl_table6, "fit", fake_fit)
    folder = arl_table6.train_segmenter(ctx, tmp_path / "segmenter")
    expected = zoo.get_model("sanet_deeplab").recipe.with_overrides(
        optimizer=constant(keras.optimizers.Adam),
        learning_rate=1e-3,
        loss=DiceLoss,
        batch_size=4,
        epochs=1,
        monitor="val_dice",
    )
    _assert_trains_with(calls[0], expected, steps=1)  # a constant rate
    run = zoo.load_run(folder)
    from zoo.sanet import build_deeplab  # Sec. V-D: "deeplabV3+"; the table must not train another segmenter

    assert run.entry.name == "sanet_deeplab" and run.entry.builder is build_deeplab
    assert run.card.builder_args["classes"] == 1 and run.model.name == "lesion_deeplabv3plus"
    assert run.card.overrides["loss"] == "DiceLoss" and run.card.overrides["learning_rate"] == 1e-3
    assert run.card.overrides["optimizer"].startswith("Adam") and run.card.overrides["monitor"] == "val_dice"
    assert arl_table6.train_segmenter(ctx, tmp_path / "segmenter") == folder and len(calls) == 1  # reused
    data = arl_common.Splits(splits["train"][:1], splits["validation"][:1], splits["test"][:1])
    cropped, empty = arl_table6.crop_rois(ctx, folder, data, tmp_path / "roi")
    assert all(r.image_path.is_file() for r in (*cropped.train, *cropped.validation, *cropped.test))
    assert 0 <= empty <= 3


def test_every_arl_table_says_what_it_runs_for_the_optimiser_the_paper_leaves_open():
    """Issue 25.5: Sec. IV-B names plain mini-batch SGD, no momentum, no weight decay: the
    recipe runs exactly that, and every trained table says so in its notes."""
    from reproduce import arl_common, arl_table3, arl_table4, arl_table5, arl_table6, arl_table7
    from zoo.arl_cnn.recipe import ARL_RECIPE

    optimizer = ARL_RECIPE.make_optimizer(10)
    assert type(optimizer).__name__ == "SGD" and optimizer.momentum == 0.0 and not optimizer.weight_decay
    for table in (arl_table3, arl_table4, arl_table5, arl_table6, arl_table7):
        assert arl_common.OPTIMISER_NOTE in table.TABLE.notes, table.TABLE.key


def test_table4_names_colour_constancy_in_its_title_and_notes():
    """Issue 25.11: Sec. V-F's gray-world variant of Table IV says so where it is printed."""
    import argparse

    from reproduce import arl_common, arl_table4

    assert any("--colour-constancy" in note for note in arl_table4.TABLE.notes)
    assert arl_common.colour_constancy_variant(argparse.Namespace(colour_constancy=None)) is None
    variant = arl_common.colour_constancy_variant(argparse.Namespace(colour_constancy="gray_world"))
    assert "gray_world colour constancy" in variant
    assert arl_common.extras_variant(argparse.Namespace(extra_images="x.csv", colour_constancy="gray_world")) == variant
