"""The AER-Net and A-PSPNet tables train with their registered recipes and nothing else.

Every trained row of ``reproduce/aernet_table{2,3}.py`` and ``apspnet_table{1,3}.py``
(and one row of ``aernet_table1.py``, whose segmentation_models U-Nets are the named
unregistered exception) is run under ``--smoke`` up to the moment it trains:
:func:`reproduce.frame.fit` (the one function :meth:`reproduce.frame.RowContext.fit`
trains with) is replaced by one that records what it gets and stops. What it got must
be what the row's registered model's recipe with the row's named overrides
(``PaperRow.recipe_overrides``) and the command line's makes: the same optimiser
(class, learning rate, options), the same loss (class and settings), loss weights,
epochs and monitor, the row's registered model with its builder arguments, and for
A-PSPNet the one-hot targets the recipe's Combo loss is defined on. A table that
trains another way (its own optimiser, loss, learning rate or builder) fails here.
"""

from __future__ import annotations

import json
from typing import Any

import keras
import numpy as np
import pytest

from reproduce import aernet_recipe, aernet_table1, aernet_table2, aernet_table3, apspnet_table1, apspnet_table3, frame
from zoo.aernet.encoder_sweep import sm_backbones
from zoo.aernet.recipe import AERNET_RECIPE
from zoo.apspnet.recipe import APSPNET_RECIPE
from zoo.losses import ComboLoss, DiceLoss
from zoo.registry import ModelEntry, get_model


class _Captured(Exception):
    """Raised by the stand-in for reproduce.frame.fit: the row got as far as training."""


@pytest.fixture
def captured(monkeypatch):
    """Replaces ``reproduce.frame.fit`` by a recorder (and AER-Net's score of the
    untrained model, which only costs time here); returns the list of calls."""
    calls: list[dict[str, Any]] = []

    def fake_fit(
        build_model, train_data, val_data, config, *, optimizer, loss, metrics=None, loss_weights=None, callbacks=()
    ):
        calls.append(
            {
                "build": build_model,
                "train": train_data,
                "config": config,
                "optimizer": optimizer,
                "loss": loss,
                "loss_weights": loss_weights,
            }
        )
        raise _Captured

    def untrained_score(model, test, spec, *, batch_size, full_size=True):
        zeros = np.zeros(len(test))
        return aernet_recipe.Evaluation([r.image_id for r in test], zeros, zeros, None, None)

    monkeypatch.setattr(frame, "fit", fake_fit)
    monkeypatch.setattr(aernet_recipe, "evaluate_segmenter", untrained_score)
    return calls


def _run_until_fit(main, argv: list[str], calls: list) -> dict[str, Any]:
    before = len(calls)
    with pytest.raises(_Captured):
        main(argv)
    assert len(calls) == before + 1
    return calls[-1]


def _config(value: Any) -> Any:
    config = value.get_config()
    config.pop("name", None)
    return type(value).__name__, json.loads(json.dumps(config, default=str))


def _check(call: dict[str, Any], expected, *, steps: int) -> None:
    """``call`` (what frame.fit got) trains with ``expected``, the recipe and nothing else."""
    assert _config(call["optimizer"]()) == _config(expected.make_optimizer(steps))
    assert _config(call["loss"]()) == _config(expected.loss())
    assert call["loss_weights"] == (None if expected.loss_weights is None else dict(expected.loss_weights()))
    assert call["config"].epochs == expected.epochs
    assert call["config"].monitor == expected.monitor


def _check_model(call: dict[str, Any], row: frame.PaperRow, monkeypatch) -> dict[str, Any]:
    """The model ``call`` builds is ``row``'s registered one with the row's builder arguments."""
    with monkeypatch.context() as patch:
        patch.setattr(ModelEntry, "build", lambda self, **kwargs: (self.name, kwargs))
        name, kwargs = call["build"]()
    assert name == row.model
    assert {key: kwargs[key] for key in row.builder_args} == dict(row.builder_args)
    return kwargs


def _smoke(module) -> dict[str, Any]:
    return {key: value for key, value in module.SMOKE.items() if key in ("epochs", "batch_size")}


AERNET_STEPS = 32 // aernet_recipe.SMOKE["batch_size"]  # 32 of the 40 synthetic images train


@pytest.mark.parametrize("table", [aernet_table2, aernet_table3], ids=lambda t: t.TABLE.key)
def test_aernet_rows_train_with_their_registered_recipe(table, tmp_path, captured, monkeypatch):
    """Adam 1e-3 (constant), the Dice loss of eq. 1, the lowest training loss; only
    --smoke's epochs and batch size differ."""
    for row in table.TABLE.runnable_rows:
        call = _run_until_fit(table.main, ["--smoke", "--out", str(tmp_path), "--rows", row.name], captured)
        assert get_model(row.model).recipe is AERNET_RECIPE and not row.recipe_overrides
        _check(call, AERNET_RECIPE.with_overrides(**_smoke(aernet_recipe)), steps=AERNET_STEPS)
        assert isinstance(call["loss"](), DiceLoss) and isinstance(call["optimizer"](), keras.optimizers.Adam)
        assert float(call["optimizer"]().learning_rate) == pytest.approx(1e-3)
        kwargs = _check_model(call, row, monkeypatch)
        assert kwargs["input_shape"] == (64, 64, 3)


def test_aernet_recipe_flags_override_the_recipe_and_nothing_else(tmp_path, captured, monkeypatch):
    row = next(r for r in aernet_table2.TABLE.rows if r.model == "unet")
    call = _run_until_fit(
        aernet_table2.main,
        ["--smoke", "--out", str(tmp_path), "--rows", row.name, "--learning-rate", "3e-4", "--batch-size", "8"],
        captured,
    )
    expected = AERNET_RECIPE.with_overrides(epochs=aernet_recipe.SMOKE["epochs"], batch_size=8, learning_rate=3e-4)
    _check(call, expected, steps=32 // 8)
    assert float(call["optimizer"]().learning_rate) == pytest.approx(3e-4)
    assert expected.overrides_from(AERNET_RECIPE) == {"epochs": 10, "batch_size": 8, "learning_rate": 3e-4}


def test_aernet_table1_trains_its_unregistered_unets_with_the_aernet_recipe(tmp_path, captured):
    """Table 1's named exception: segmentation_models U-Nets (no registry entry), the
    registered AER-Net recipe all the same."""
    try:
        sm_backbones()  # imports segmentation_models the way the builder does
    except ImportError as error:
        pytest.skip(f"Table 1 needs the sweep extra: {error}")
    row = aernet_table1.TABLE.rows[-1]  # EfficientNetb0: the smallest encoder
    call = _run_until_fit(aernet_table1.main, ["--smoke", "--out", str(tmp_path), "--rows", row.name], captured)
    assert row.model is None and not row.recipe_overrides
    _check(call, AERNET_RECIPE.with_overrides(**_smoke(aernet_recipe)), steps=AERNET_STEPS)


@pytest.mark.parametrize("table", [apspnet_table1, apspnet_table3], ids=lambda t: t.TABLE.key)
def test_apspnet_rows_train_with_their_registered_recipe(table, tmp_path, captured, monkeypatch):
    """Adam 1e-3 (constant), the Combo loss of eq. 6 on one-hot targets, the lowest
    training loss; Table I's 50 epochs is every row's one named override."""
    for row in table.TABLE.runnable_rows:
        call = _run_until_fit(table.main, ["--smoke", "--out", str(tmp_path), "--rows", row.name], captured)
        entry = get_model(row.model)
        assert entry.recipe is APSPNET_RECIPE
        assert dict(row.recipe_overrides) == ({"epochs": 50} if table is apspnet_table1 else {})
        _check(
            call,
            APSPNET_RECIPE.with_overrides(**{**row.recipe_overrides, **_smoke(apspnet_table1)}),
            steps=9 // apspnet_table1.SMOKE["batch_size"],
        )  # 9 of the 10 synthetic images train
        loss = call["loss"]()
        assert isinstance(loss, ComboLoss) and loss.get_config() == ComboLoss().get_config()  # not sparse
        _, targets = call["train"].element_spec
        assert targets.shape[-1] == 3 and targets.dtype.name == "float32"  # one-hot, the recipe's targets
        kwargs = _check_model(call, row, monkeypatch)
        assert (kwargs["input_shape"], kwargs["classes"], kwargs["backbone"]) == ((64, 64, 3), 3, "resnet14")


def test_apspnet_table1_trains_its_rows_50_epochs(tmp_path, captured, monkeypatch):
    """Without --smoke's epochs, a Table I row trains the paper's 50 (the row's override
    of the recipe's 100), a Table III row the recipe's 100."""
    monkeypatch.setattr(apspnet_table1, "SMOKE", {k: v for k, v in apspnet_table1.SMOKE.items() if k != "epochs"})
    monkeypatch.setattr(apspnet_table3, "SMOKE", apspnet_table1.SMOKE)
    row = apspnet_table1.TABLE.rows[0]
    call = _run_until_fit(apspnet_table1.main, ["--smoke", "--out", str(tmp_path / "1"), "--rows", row.name], captured)
    assert call["config"].epochs == 50
    row = apspnet_table3.TABLE.rows[0]
    call = _run_until_fit(apspnet_table3.main, ["--smoke", "--out", str(tmp_path / "3"), "--rows", row.name], captured)
    assert call["config"].epochs == APSPNET_RECIPE.epochs == 100


@pytest.mark.parametrize("table", [apspnet_table1, apspnet_table3], ids=lambda t: t.TABLE.key)
def test_apspnet_rows_keep_the_final_model_unless_asked(table, tmp_path, captured):
    """Issue 25: Wen et al. score "the final model that was trained with 50 epochs"
    (section IV-C): the last epoch; --keep lowest-loss keeps the lowest training loss."""
    row = table.TABLE.rows[0]
    call = _run_until_fit(table.main, ["--smoke", "--out", str(tmp_path / "a"), "--rows", row.name], captured)
    assert call["config"].keep == "last"
    call = _run_until_fit(
        table.main, ["--smoke", "--out", str(tmp_path / "b"), "--rows", row.name, "--keep", "lowest-loss"], captured
    )
    assert (call["config"].keep, call["config"].monitor) == ("best", "loss")
