"""The AER-Net table scripts: ``aernet_table2.py --smoke`` end to end, and the recipe's split."""
import json

import pytest

from reproduce import aernet_recipe, aernet_table2

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
        print(f"{name}: DC {row.values['DC']:.1f} % (untrained {untrained:.1f} %), "
              f"{row.extra['seconds_per_epoch']} s/epoch")
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
