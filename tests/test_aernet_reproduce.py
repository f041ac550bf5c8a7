"""The AER-Net table scripts: ``aernet_table2.py --smoke`` end to end, the recipe's split,
and the row folders as run folders (reloaded, they score the table's numbers)."""

import json

import pytest

import zoo
from data_tools.isic import read_isic2018
from reproduce import aernet_recipe, aernet_table2
from zoo.common.run_card import RunMismatchError

# The first and last rows: the plain U-Net baseline and AER-Net itself. The two
# ablation rows between them share every block with these two (tests/test_aernet_models.py
# checks them); running all four would cost CI minutes for no extra path covered.
ROWS = [aernet_table2.UNET, aernet_table2.AERNET]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One ``--smoke`` run of the table's first and last rows, shared by the tests."""
    out = tmp_path_factory.mktemp("aernet_table2") / "out"
    return aernet_table2.main(["--smoke", "--out", str(out), "--rows", *ROWS]), out


def test_smoke_run_learns_the_synthetic_lesions(smoke_run):
    result, _ = smoke_run
    assert result.synthetic
    assert list(result.results) == ROWS
    for name, row in result.results.items():
        untrained = row.extra["untrained"]["DC"]
        print(
            f"{name}: DC {row.values['DC']:.1f} % (untrained {untrained:.1f} %), "
            f"{row.extra['seconds_per_epoch']} s/epoch"
        )
        assert row.values["DC"] >= untrained + 20.0, name
        assert row.values["DC"] >= 60.0, name
        assert 0.0 <= row.values["JSI"] <= row.values["DC"] <= 100.0, name


def test_smoke_run_writes_table_split_and_figures(smoke_run):
    result, out = smoke_run
    table = (out / "table.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in table and "77.2" in table  # the paper's AER-Net JSI beside ours
    split = json.loads((out / "split.json").read_text(encoding="utf-8"))
    assert (len(split["train"]), len(split["test"])) == (32, 8)  # round(40 * 2094 / 2594)
    assert not set(split["train"]) & set(split["test"])
    for row in aernet_table2.TABLE.rows:
        if row.name not in ROWS:
            continue
        folder = out / "rows" / row.slug
        assert (folder / "examples.png").stat().st_size > 10_000
        scores = (folder / "test_scores.csv").read_text(encoding="utf-8").splitlines()
        assert len(scores) == 1 + len(split["test"])
    assert json.loads((out / "config.json").read_text(encoding="utf-8"))["synthetic"] is True


def test_split_is_the_papers_2094_of_2594_and_stable():
    ids = [f"ISIC_{i:07d}" for i in range(2594)]
    split = aernet_recipe.make_split(ids)
    assert (len(split["train"]), len(split["test"])) == (2094, 500)
    assert sorted(split["train"] + split["test"]) == ids
    assert aernet_recipe.make_split(reversed(ids)) == split


def test_rerun_keeps_finished_rows_and_the_split(smoke_run, capsys):
    _, out = smoke_run
    split_before = (out / "split.json").read_text(encoding="utf-8")
    again = aernet_table2.main(["--smoke", "--out", str(out), "--rows", *ROWS])
    assert "finished earlier, kept" in capsys.readouterr().out
    assert list(again.results) == ROWS
    assert (out / "split.json").read_text(encoding="utf-8") == split_before


def _row(name):
    return next(row for row in aernet_table2.TABLE.rows if row.name == name)


def test_row_folders_are_run_folders_that_score_the_tables_numbers(smoke_run):
    """Each row folder reloads (zoo.load_run) into the model the table scored: the
    same test images score the table's JSI and DC again, to 1e-6. The smoke rows'
    batch norms were recalibrated before scoring, so the saved weights must be the
    recalibrated ones (the training checkpoint is not)."""
    result, out = smoke_run
    split = json.loads((out / "split.json").read_text(encoding="utf-8"))
    by_id = {r.image_id: r for r in read_isic2018(out / "synthetic_data", "train", tasks=(1,))}
    test = [by_id[i] for i in split["test"]]
    for name in ROWS:
        row, values = _row(name), result.results[name].values
        run = zoo.load_run(out / "rows" / row.slug)
        assert run.card.model == row.model and run.entry is zoo.get_model(row.model)
        assert run.card.training["batch_norm_recalibrated"]["layers"] > 0
        assert run.card.overrides == {"epochs": 10, "batch_size": 4}  # --smoke's, nothing else
        again = aernet_recipe.evaluate_segmenter(run.model, test, run.input_spec, batch_size=3).table_values()
        for column in ("JSI", "DC"):
            assert again[column] == pytest.approx(values[column], abs=1e-6), (name, column)
            assert run.card.scores[column] == pytest.approx(values[column], abs=1e-6), (name, column)


def test_a_64px_row_run_does_not_load_into_a_256px_model(smoke_run):
    _, out = smoke_run
    folder = out / "rows" / _row(aernet_table2.UNET).slug
    entry = zoo.get_model("unet")
    with pytest.raises(RunMismatchError, match="256"):
        entry.build(input_shape=(256, 256, 3), base_filters=8, weights=str(folder / "model.weights.h5"))


def test_table3_notes_flag_every_quoted_row_whose_jaccard_exceeds_its_dice():
    """Issue 25.13: Jaccard = Dice / (2 - Dice) <= Dice for any mask, so a row printing a
    larger Jaccard than Dice (Amin et al.: 85.0 against 82.0) is named in the notes."""
    from reproduce import aernet_table3

    impossible = [
        row.name
        for row in aernet_table3.TABLE.rows
        if {"JSI", "DC"} <= set(row.values) and float(row.values["JSI"]) > float(row.values["DC"])
    ]
    assert impossible == ["Amin et al. (VGG-16)"]
    for name in impossible:
        assert any(name.split(" (")[0] in note and "impossible" in note for note in aernet_table3.TABLE.notes)
