"""A-PSPNet table scripts: Table II's counts against the paper, Tables I and III smoke runs,
Table I's row folder as a run folder (reloaded, it scores the table's numbers)."""

import argparse
import json

import numpy as np
import pytest

import zoo
from data_tools.folders import read_labelme
from data_tools.records import BadInputPolicy, DatasetError, Record
from data_tools.synthetic import ULTRASOUND_LABEL_MAP, make_ultrasound_labelme
from reproduce import apspnet_recipe, apspnet_table1, apspnet_table2, apspnet_table3
from reproduce.frame import RowContext

PAPER_CBAM_PARAMETERS = 26.08203 - 25.55703  # Table II, in millions
TORCHVISION_RESNET50 = 25_557_032  # Table II's ResNet50 row, to the parameter
KERAS_CONV_BIASES = 26_560  # keras.applications ResNet50 conv biases


def test_table2_cbam_parameters_and_macs_match_the_paper(tmp_path):
    results = apspnet_table2.main(["--smoke", "--rows", "ResNet50", "A-PSPNet", "--out", str(tmp_path)])
    resnet, apspnet = results["ResNet50"], results["A-PSPNet"]
    gap = apspnet.values["Params"] - resnet.values["Params"]
    assert abs(gap - PAPER_CBAM_PARAMETERS) <= 0.05 * PAPER_CBAM_PARAMETERS
    # The footnote's explanation of the ResNet50 row: torchvision's count + conv biases.
    assert resnet.extra["trainable_params"] == TORCHVISION_RESNET50 + KERAS_CONV_BIASES
    # MACs come from the profiler's counts: conv and matmul FLOPs / 2 ...
    for result in results.values():
        flops = result.extra["flops_by_op"]
        assert result.extra["macs"] == (flops["Conv2D"] + flops["MatMul"]) // 2
        assert result.values["MACs"] == pytest.approx(result.extra["macs"] / 1e9)
    # ... and the CBAM's MACs at 64x64 are the hand count: two MLP passes per CBAM,
    # the 7x7 convolution on the 32x32 conv1 map and on the 2x2 conv5 map.
    cbam_macs = 2 * (2 * 64 * 4) + 98 * 32**2 + 2 * (2 * 2048 * 128) + 98 * 2**2
    assert apspnet.extra["macs"] - resnet.extra["macs"] == cbam_macs
    table = (tmp_path / "table.md").read_text()
    assert "Counted at 64x64" in table and "26.08203" in table
    assert json.loads((tmp_path / "table.json").read_text())


def test_table2_rejects_a_size_below_the_smoke_size(capsys):
    with pytest.raises(SystemExit):
        apspnet_table2.main(["--image-size", "32"])
    assert "--image-size must be at least 64" in capsys.readouterr().err


def _records(ids):
    return [Record(i, f"{i}.png", {"classes": f"{i}_mask.png"}, {}, {}) for i in ids]


def test_split_is_nine_to_one_written_once_and_checked(tmp_path):
    path = tmp_path / "split.json"
    records = _records([f"us_{i:02d}" for i in range(20)])
    train, test = apspnet_recipe.split_records(records, path, 0.1, seed=3)
    assert len(train) == 18 and len(test) == 2
    assert not {r.image_id for r in train} & {r.image_id for r in test}
    again = apspnet_recipe.split_records(list(reversed(records)), path, 0.1, seed=99)
    assert {r.image_id for r in again[1]} == {r.image_id for r in test}  # read, not redrawn
    with pytest.raises(DatasetError, match="not in the split"):
        apspnet_recipe.split_records(records + _records(["new"]), path, 0.1, seed=3)
    with pytest.raises(DatasetError, match="split.json.*not in the data"):
        apspnet_recipe.split_records(records[1:], path, 0.1, seed=3)


def test_split_of_a_labelme_folder_is_reused_by_the_next_row(tmp_path):
    data = make_ultrasound_labelme(tmp_path / "data", n=10, image_size=(32, 40))
    args = argparse.Namespace(
        data_format="labelme", label_map=dict(ULTRASOUND_LABEL_MAP), split_file=None, test_fraction=0.1, seed=0
    )
    ctx = RowContext(args, apspnet_table1.TABLE.rows[0], data, tmp_path / "row", True, BadInputPolicy(False))
    first = apspnet_recipe.train_test_records(ctx)
    second = apspnet_recipe.train_test_records(ctx)  # the split file must not be read as data
    assert [len(part) for part in first] == [9, 1]
    assert [[r.image_id for r in part] for part in first] == [[r.image_id for r in part] for part in second]
    assert [r.mask_paths["classes"] for r in second[0]][0].is_file()


def test_label_map_flag():
    assert apspnet_recipe.parse_label_map("kidney=1, hydrops=2") == {"kidney": 1, "hydrops": 2}
    for bad in ("kidney", "kidney=0", "kidney=x", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="label-map"):
            apspnet_recipe.parse_label_map(bad)


TABLE1_ROW = "ResNet50 + Channel&Spatial attention units"


@pytest.fixture(scope="module")
def table1_smoke(tmp_path_factory):
    """One ``--smoke`` run of Table I's A-PSPNet row, shared by the tests."""
    out = tmp_path_factory.mktemp("apspnet_table1") / "out"
    return apspnet_table1.main(["--smoke", "--rows", TABLE1_ROW, "--out", str(out)]), out


def _check_smoke_row(outcome, out, row):
    result = outcome.results[row]
    assert outcome.synthetic and set(result.values) == {column.name for column in apspnet_recipe.MIOU_MPA}
    for value in result.values.values():
        assert 0.0 <= value <= 100.0
    assert result.extra["train_images"] == 9 and result.extra["test_images"] == 1
    assert (out / "synthetic_data" / ".apspnet" / "split-seed0.json").is_file()
    assert "SYNTHETIC" in (out / "table.md").read_text()


def test_table1_runs_with_smoke(table1_smoke):
    _check_smoke_row(*table1_smoke, TABLE1_ROW)


@pytest.mark.slow
def test_table3_runs_with_smoke(tmp_path):
    # Table III shares Table I's recipe; its own part is the rows' registered models.
    _check_smoke_row(apspnet_table3.main(["--smoke", "--rows", "DANet", "--out", str(tmp_path)]), tmp_path, "DANet")


def test_table1_row_folder_is_a_run_folder_that_scores_the_tables_numbers(table1_smoke):
    """The row folder reloads (zoo.load_run) into the model the table scored: the test
    images score the table's MIoU and both MPA readings again, to 1e-6."""
    outcome, out = table1_smoke
    row = next(r for r in apspnet_table1.TABLE.rows if r.name == TABLE1_ROW)
    run = zoo.load_run(out / "rows" / row.slug)
    assert run.card.model == "apspnet" and run.card.builder_args["cbam_order"] == "channel_spatial"
    assert run.card.overrides == {"epochs": 1, "batch_size": 2}  # --smoke's over the row's 50 epochs
    data = out / "synthetic_data"
    split = json.loads((data / ".apspnet" / "split-seed0.json").read_text())
    records = {r.image_id: r for r in read_labelme(data, ULTRASOUND_LABEL_MAP)}
    test = [records[i] for i in split["test"]]
    scores = apspnet_recipe.score_original_images(run.model, test, run.input_spec, 3, batch_size=1)
    again = apspnet_recipe.table_values(scores)
    for column, value in outcome.results[TABLE1_ROW].values.items():
        assert again[column] == pytest.approx(value, abs=1e-6), column
    for key in ("miou", "mean_pixel_accuracy", "mpa_eq8"):
        assert run.card.scores[key] == pytest.approx(scores[key], abs=1e-6), key


def test_both_mpa_columns_carry_the_papers_mpa():
    for table in (apspnet_table1.TABLE, apspnet_table3.TABLE):
        for row in table.rows:
            assert row.values[apspnet_recipe.MPA_PIXEL_ACCURACY.name] == row.values[apspnet_recipe.MPA_EQ8.name]
            # The fact the notes rest on: MPA > MIoU in every row of the paper.
            assert row.values[apspnet_recipe.MPA_EQ8.name] > row.values[apspnet_recipe.MIOU.name]


def test_predictions_are_scored_on_the_original_pixels_without_the_padding():
    """A label map of 6x10 padded to a square and resized (as the pipeline does) comes
    back exactly by restore_geometry; the grey border rows are not part of it."""
    import tensorflow as tf

    from data_tools.preprocess import InputSpec, resize_masks, restore_geometry

    labels = np.random.default_rng(0).integers(1, 3, (6, 10, 1)).astype(np.int32)
    spec = InputSpec(image_size=(20, 20), fit="pad")
    model_side = resize_masks(labels, spec)  # [20, 20, 1], padding = class 0
    assert np.asarray(model_side).min() == 0  # the padding is there at the model's size
    one_hot = tf.one_hot(model_side[..., 0], 3)
    back = restore_geometry(one_hot, (6, 10), spec, method="nearest")
    np.testing.assert_array_equal(np.argmax(back, -1), labels[..., 0])
    with pytest.raises(ValueError, match="cannot be mapped|only fit='stretch' or 'pad'"):
        restore_geometry(one_hot, (6, 10), InputSpec(image_size=(20, 20), fit="crop"))
