"""SANet Tables 2-4: the kept epoch and the images an RSM row trains on per step (issue 25.7).

Every row is run under ``--smoke`` up to the moment it trains: :func:`reproduce.frame.fit`
is replaced by a recorder that stops the run.
"""

from __future__ import annotations

import numpy as np
import pytest

from reproduce import frame, sanet_recipe, sanet_table2, sanet_table3, sanet_table4


class _Captured(Exception):
    """Raised by the stand-in for reproduce.frame.fit: the row got as far as training."""


@pytest.fixture
def captured(monkeypatch):
    """What reproduce.frame.fit gets: ``[{"config", "train_data"}, ...]``."""
    calls: list[dict] = []

    def fake_fit(build_model, train_data, val_data, config, **kwargs):
        calls.append({"config": config, "train_data": train_data})
        raise _Captured

    monkeypatch.setattr(frame, "fit", fake_fit)
    return calls


def _run_until_fit(main, argv: list[str], captured: list[dict]) -> dict:
    with pytest.raises(_Captured):
        main(argv)
    return captured[-1]


@pytest.mark.parametrize(
    "table, row",
    [(sanet_table2, "GBL γ = 1"), (sanet_table3, "ResUNet"), (sanet_table4, "SANet")],
    ids=["table2", "table3", "table4"],
)
def test_sanet_rows_keep_the_final_model_unless_asked(table, row, tmp_path, captured):
    """The paper trains 100 epochs ("The total epoch is 100") with the rate decaying polynomially ("power decay
    schedule ... 0.9") to 0 and names no epoch selection: the final model is kept by
    default; --keep best-val keeps the epoch of best validation Jaccard."""
    argv = ["--smoke", "--rows", row, "--superpixel-cache", str(tmp_path / "superpixels")]
    call = _run_until_fit(table.main, [*argv, "--out", str(tmp_path / "a")], captured)
    assert call["config"].keep == "last"
    call = _run_until_fit(table.main, [*argv, "--out", str(tmp_path / "b"), "--keep", "best-val"], captured)
    assert (call["config"].keep, call["config"].monitor) == ("best", "val_jaccard")


def _images_per_step(train_data) -> int:
    inputs, masks = next(iter(train_data))
    image = inputs["image"] if isinstance(inputs, dict) else inputs
    assert image.shape[0] == masks.shape[0]
    return int(image.shape[0])


def test_rsm_rows_train_on_each_sample_and_its_destructed_copy(tmp_path, captured):
    """The paper's "mini-batch size = 5" with "the ratio of the destructed images in batch
    to 1:1" (no split of 5 is 1:1): --batch-size counts sampled images, and an RSM row's
    step holds each of them and its destructed copy, twice a plain row's images."""
    batch = sanet_recipe.SMOKE["batch_size"]
    plain = _run_until_fit(sanet_table3.main, ["--smoke", "--out", str(tmp_path / "p"), "--rows", "ResUNet"], captured)
    rsm = _run_until_fit(
        sanet_table3.main, ["--smoke", "--out", str(tmp_path / "r"), "--rows", "ResUNet+RSM"], captured
    )
    assert _images_per_step(plain["train_data"]) == batch
    assert _images_per_step(rsm["train_data"]) == 2 * batch
    assert rsm["config"].steps_per_epoch == plain["config"].steps_per_epoch  # each sample once an epoch
    inputs, _ = next(iter(rsm["train_data"]))
    intact, destructed = np.asarray(inputs[0::2]), np.asarray(inputs[1::2])
    assert np.allclose(np.sort(intact.reshape(batch, -1), axis=1), np.sort(destructed.reshape(batch, -1), axis=1))
