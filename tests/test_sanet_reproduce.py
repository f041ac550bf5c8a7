"""SANet table scripts end to end on synthetic data (reproduce/sanet_table1.py, sanet_table3.py):
a trained row's run folder reloads to the table's numbers."""

import argparse
import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from data_tools.isic import read_isic2018
from data_tools.layouts import ISIC2018_ATTRIBUTES, ISIC2018_LAYOUT
from data_tools.synthetic import make_isic2018
from reproduce import sanet_recipe, sanet_table1, sanet_table3, sanet_table4
from zoo.run import load_run
from zoo.sanet.superpixels import cache_superpixels


def _values(out_dir):
    """``{row: {column: ours}}`` from table.json."""
    table = json.loads((out_dir / "table.json").read_text())
    return {row["name"]: row["ours"] for row in table["rows"]}


def test_table1_equals_a_plain_numpy_count(tmp_path):
    result = sanet_table1.main(["--smoke", "--out", str(tmp_path)])
    assert result.synthetic
    folder = next((tmp_path / "synthetic_data").rglob(ISIC2018_LAYOUT["train"]["task2"]))
    for row, attribute in sanet_table1.ATTRIBUTE_OF_ROW.items():
        masks = [np.asarray(Image.open(path)) > 128 for path in sorted(folder.glob(f"*_attribute_{attribute}.png"))]
        assert len(masks) == 12
        blank = 100.0 * np.mean([not m.any() for m in masks])
        ratio = 100.0 * np.sum([m.sum() for m in masks]) / np.sum([m.size for m in masks])
        values = result.results[row].values
        assert values[sanet_table1.BLANK] == pytest.approx(blank)
        assert values[sanet_table1.RATIO] == pytest.approx(ratio)
    assert "SYNTHETIC" in (tmp_path / "table.md").read_text()


def test_table1_statistics_by_hand():
    masks = [np.zeros((2, 2), bool), np.array([[1, 0], [0, 0]], bool), np.ones((2, 2), bool)]
    stats = sanet_table1.attribute_statistics(masks)
    assert stats == {sanet_table1.BLANK: pytest.approx(100 / 3), sanet_table1.RATIO: pytest.approx(500 / 12)}


def test_table3_sanet_row_trains_scores_and_writes_task2_pngs(tmp_path):
    """The whole SANet path: SLIC cache, RSM, SAM model, GBL, AMSGrad with coupled weight
    decay, PNGs, scores; the row folder is a run folder whose model, reloaded with
    zoo.load_run, scores the table's numbers on the same test images."""
    out = tmp_path / "out"
    cache = tmp_path / "superpixels"
    result = sanet_table3.main(
        [
            "--smoke",
            "--out",
            str(out),
            "--rows",
            "ResUNet+RSM+SAM",
            "--epochs",
            "1",
            "--image-size",
            "32",
            "--superpixel-cache",
            str(cache),
        ]
    )
    row = result.results["ResUNet+RSM+SAM"]
    assert set(row.values) == {"Avg JA", "Avg Dice"}
    assert all(0.0 <= value <= 100.0 for value in row.values.values())
    scores = row.extra["task2_scores"]
    expected_ja = np.mean([scores[name]["jaccard"] for name in (*ISIC2018_ATTRIBUTES, "micro_average")])
    assert row.values["Avg JA"] == pytest.approx(100.0 * expected_ja)
    assert row.extra["model"] == "sanet" and row.extra["region_shuffle"] is True
    assert set(row.extra["recipe_overrides"]) == {"epochs", "batch_size"}  # the command line's only
    predictions = out / "rows" / "resunet-rsm-sam" / "predictions"
    test_images = row.extra["images"]["test"]
    assert len(list(predictions.glob("ISIC_*_attribute_*.png"))) == test_images * len(ISIC2018_ATTRIBUTES)
    png = Image.open(next(predictions.glob("*.png")))
    assert png.mode == "L" and png.size == (64, 48)  # original size of the synthetic images
    assert len(list(cache.rglob("*_superpixels.png"))) == sum(row.extra["images"].values())
    assert _values(out)["ResUNet+RSM+SAM"]["Avg JA"] == pytest.approx(row.values["Avg JA"])

    run = load_run(out / "rows" / "resunet-rsm-sam")
    assert run.card.model == "sanet" and run.card.builder_args["max_segments"] == 32
    assert run.card.training["region_shuffle"]["neighbourhood"] == sanet_recipe.RSM_NEIGHBOURHOOD
    assert run.card.overrides == {"epochs": 1, "batch_size": 2}
    test = cache_superpixels(
        read_isic2018(out / "synthetic_data", "test", tasks=(2,)),
        sanet_recipe.SlicParams(n_segments=16, max_segments=32),
        cache_dir=cache,
    )
    again = sanet_recipe.predict_and_score(
        run.model,
        test,
        run.input_spec,
        tmp_path / "again" / "predictions",
        batch_size=3,
        max_segments=run.card.builder_args["max_segments"],
    )
    assert sanet_recipe.average_values(again) == pytest.approx(row.values, abs=1e-6)
    assert again["sanet_average"] == pytest.approx(run.card.scores["task2"]["sanet_average"], abs=1e-12)


def test_table4_lists_quoted_rows_and_sanet_columns():
    names = [row.name for row in sanet_table4.TABLE.runnable_rows]
    assert names == ["SANet"]
    sanet = next(row for row in sanet_table4.TABLE.rows if row.name == "SANet")
    jaccards = [sanet.values[f"{group} Jaccard"] for group in list(sanet_table4.GROUPS)[:5]]
    assert np.mean(jaccards) == pytest.approx(sanet.values["Macro avg Jaccard"], abs=0.01)


def test_rsm_training_batches_pair_each_sample_with_its_destructed_copy(tmp_path):
    """--batch-size 5 (the paper's) gives 10 images: 5 intact, 5 destructed, superpixels bounded and connected."""
    parser = argparse.ArgumentParser()
    sanet_recipe.add_recipe_arguments(parser)
    args = parser.parse_args(["--image-size", "32", "--max-segments", "32", "--slic-segments", "16"])
    root = make_isic2018(tmp_path / "isic2018", n_train=5, n_val=0, n_test=0, image_size=(48, 64))
    records = cache_superpixels(
        read_isic2018(root, "train", tasks=(2,)), sanet_recipe.slic_params(args), cache_dir=tmp_path / "superpixels"
    )
    data = dict(
        spec=sanet_recipe.input_spec(args),
        batch_size=5,
        training=True,
        superpixels=True,
        max_segments=args.max_segments,
        seed=0,
    )
    plain, _ = next(iter(sanet_recipe.make_dataset(records, **data)))
    rsm = sanet_recipe.make_dataset(records, rsm=sanet_recipe.region_shuffle(args), **data)
    inputs, masks = next(iter(rsm))
    images, maps = inputs["image"].numpy(), inputs["superpixels"].numpy()[..., 0]
    assert images.shape[0] == maps.shape[0] == masks.shape[0] == 10
    np.testing.assert_array_equal(images[0::2], plain["image"].numpy())
    assert all(not np.array_equal(copy, intact) for copy, intact in zip(images[1::2], images[0::2], strict=True))
    assert maps.max() < args.max_segments
    for labels in maps[1::2]:
        assert all(ndimage.label(labels == label)[1] == 1 for label in np.unique(labels))
