"""The AttnMel and SANet tables train with their registered recipes and nothing else.

Every trained row of ``reproduce/attnmel_table{1,2,3}.py`` and ``sanet_table{2,3,4}.py``
is run under ``--smoke`` up to the moment it trains: :func:`reproduce.frame.fit` (the
one function :meth:`reproduce.frame.RowContext.fit` trains with) is replaced by one that
records what it gets and stops. What it got must be what the row's registered model's
recipe, with the row's named overrides (``PaperRow.recipe_overrides``), the script
flags' and the command line's, makes: the same optimiser (class, coupled L2 weight
decay, momentum or AMSGrad, learning-rate schedule), the same loss (class and
settings, per output), the same loss weights and epochs, the same registered model,
and the data pipeline the recipe's augmentation. A table that trains another way
(its own optimiser, loss or builder) fails here.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import keras
import pytest

from reproduce import (
    attnmel_recipe,
    attnmel_table1,
    attnmel_table2,
    attnmel_table3,
    frame,
    sanet_recipe,
    sanet_table2,
    sanet_table3,
    sanet_table4,
)
from zoo.attnmel.recipe import ATTNMEL_RECIPE, ATTNMEL_REGULARISED_RECIPE
from zoo.losses import GlobalBalancingLoss
from zoo.optimizers import L2SGD, L2Adam
from zoo.registry import ModelEntry, get_model
from zoo.sanet.recipe import SANET_GEOMETRIC_AUGMENTATION, SANET_RECIPE, sanet_optimizer

SANET_STEPS = 10 // sanet_recipe.SMOKE["batch_size"]  # sanet_recipe.DATASET: 10 synthetic training images


class _Captured(Exception):
    """Raised by the stand-in for reproduce.frame.fit: the row got as far as training."""


@pytest.fixture
def captured(monkeypatch):
    """Replaces ``reproduce.frame.fit`` and the tables' data pipelines by recorders;
    returns ``{"fit": [...], "augmentation": [...]}``."""
    calls: dict[str, list] = {"fit": [], "augmentation": []}

    def fake_fit(
        build_model, train_data, val_data, config, *, optimizer, loss, metrics=None, loss_weights=None, callbacks=()
    ):
        calls["fit"].append(
            {"build": build_model, "config": config, "optimizer": optimizer, "loss": loss, "loss_weights": loss_weights}
        )
        raise _Captured

    monkeypatch.setattr(frame, "fit", fake_fit)
    for module in (attnmel_recipe, sanet_recipe):
        real = module.make_dataset

        def recording(*args, _real=real, **kwargs):
            if kwargs.get("training"):
                calls["augmentation"].append(kwargs.get("augmentation"))
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, "make_dataset", recording)
    return calls


def _run_until_fit(main, argv: list[str], captured: dict) -> dict[str, Any]:
    """Runs one row of a table script until it trains; what frame.fit got, with the
    training pipeline's augmentation."""
    before = len(captured["fit"])
    with pytest.raises(_Captured):
        main(argv)
    assert len(captured["fit"]) == before + 1
    return {**captured["fit"][-1], "augmentation": captured["augmentation"][-1]}


def _config(value: Any) -> Any:
    """A comparable description of an optimiser, a loss, or a dict of losses."""
    if isinstance(value, dict):
        return {key: _config(item) for key, item in value.items()}
    config = value.get_config()
    config.pop("name", None)
    return type(value).__name__, json.loads(json.dumps(config, default=str))


def _made(factory: Any) -> Any:
    """A recipe's loss factory (or a dict of them) called."""
    value = factory()
    return (
        {
            key: item() if callable(item) and not isinstance(item, keras.losses.Loss) else item
            for key, item in value.items()
        }
        if isinstance(value, dict)
        else value
    )


def _check(
    call: dict[str, Any], row: frame.PaperRow, expected, *, steps: int, monitor: str | None = None, monkeypatch
) -> None:
    """``call`` (what frame.fit got) trains ``row``'s registered model with ``expected``."""
    optimizer, want = call["optimizer"](), expected.make_optimizer(steps)
    assert _config(optimizer) == _config(want), row.name
    assert optimizer.l2_weight_decay == want.l2_weight_decay > 0.0, row.name
    assert _config(_made(call["loss"])) == _config(_made(expected.loss)), row.name
    assert call["loss_weights"] == (None if expected.loss_weights is None else dict(expected.loss_weights()))
    assert call["config"].epochs == expected.epochs
    assert call["config"].monitor == (monitor or expected.monitor)
    assert call["augmentation"] == expected.augmentation, row.name
    with monkeypatch.context() as patch:  # the model: the row's registered one, with the row's builder arguments
        patch.setattr(ModelEntry, "build", lambda self, **kwargs: (self.name, kwargs))
        name, kwargs = call["build"]()
    assert name == row.model
    assert {key: kwargs[key] for key in row.builder_args} == dict(row.builder_args)


def _smoke(module, **extra: Any) -> dict[str, Any]:
    return {**{key: value for key, value in module.SMOKE.items() if key in ("epochs", "batch_size")}, **extra}


@pytest.mark.parametrize("table", [attnmel_table1, attnmel_table2, attnmel_table3], ids=lambda t: t.TABLE.key)
def test_attnmel_rows_train_with_their_registered_recipe(table, tmp_path, captured, monkeypatch):
    """L2SGD (coupled weight decay 1e-4, Nesterov 0.9, x0.1 every 10 epochs), the focal
    loss or eq. 5 (AttnMel-CNN without ROI: its attention terms weighted 0, the row's
    named override), monitored by the validation AUC (Table 1: no validation set, the
    final epoch; the monitor the training loss, a named override)."""
    for row in table.TABLE.runnable_rows:
        call = _run_until_fit(table.main, ["--smoke", "--out", str(tmp_path), "--rows", row.name], captured)
        entry = get_model(row.model)
        assert entry.recipe is (ATTNMEL_REGULARISED_RECIPE if row.model == "attnmel_cnn" else ATTNMEL_RECIPE)
        no_validation = table is attnmel_table1
        expected = entry.recipe.with_overrides(
            **row.recipe_overrides, **_smoke(attnmel_recipe, **({"monitor": "loss"} if no_validation else {}))
        )
        attention = row.model == "attnmel_cnn"
        monitor = "loss" if no_validation else ("val_probabilities_auc" if attention else "val_auc")
        _check(call, row, expected, steps=call["config"].steps_per_epoch, monitor=monitor, monkeypatch=monkeypatch)
        optimizer = call["optimizer"]()  # the authors' code: PyTorch SGD, Nesterov 0.9, weight_decay 1e-4 (coupled)
        assert isinstance(optimizer, L2SGD) and optimizer.l2_weight_decay == 1e-4 and not optimizer.weight_decay
        assert optimizer.momentum == 0.9 and optimizer.nesterov
        weights = call["loss_weights"]
        if attention:  # eq. 5: lambda 0 without ROI, 0.001 and 0.01 with
            roi = attnmel_recipe.REGULARISED_ROWS.get(row.name)
            assert (weights["attention_pool3"], weights["attention_pool4"]) == ((0.001, 0.01) if roi else (0.0, 0.0))


@pytest.mark.parametrize("table", [sanet_table2, sanet_table3, sanet_table4], ids=lambda t: t.TABLE.key)
def test_sanet_rows_train_with_their_registered_recipe(table, tmp_path, captured, monkeypatch):
    """L2Adam (AMSGrad, beta_1 0.9, coupled weight decay 1e-4, polynomial decay 0.9), GBL
    (alpha 0.2, gamma 1) or the row's named loss (Table 2: other gammas, CE+JAL),
    monitored by the validation Jaccard."""
    for row in table.TABLE.runnable_rows:
        call = _run_until_fit(
            table.main,
            [
                "--smoke",
                "--out",
                str(tmp_path),
                "--rows",
                row.name,
                "--superpixel-cache",
                str(tmp_path / "superpixels"),
            ],
            captured,
        )
        assert get_model(row.model).recipe is SANET_RECIPE
        expected = SANET_RECIPE.with_overrides(**row.recipe_overrides, **_smoke(sanet_recipe))
        _check(call, row, expected, steps=SANET_STEPS, monkeypatch=monkeypatch)
        optimizer = call["optimizer"]()
        assert isinstance(optimizer, L2Adam) and optimizer.amsgrad and optimizer.l2_weight_decay == 1e-4
        loss = _made(call["loss"])
        if table is sanet_table2 and row.name != "CE+JAL":
            assert isinstance(loss, GlobalBalancingLoss)
            assert loss.get_config()["gamma"] == float(row.name.rsplit("= ", 1)[1])


def test_sanet_flags_are_recipe_overrides(tmp_path, captured, monkeypatch):
    """--weight-decay, --lr-power, --alpha and --geometric-augmentation change the
    registered recipe's optimiser, loss and augmentation, and nothing else."""
    row = next(r for r in sanet_table3.TABLE.rows if r.name == "ResUNet")
    call = _run_until_fit(
        sanet_table3.main,
        [
            "--smoke",
            "--out",
            str(tmp_path),
            "--rows",
            row.name,
            "--weight-decay",
            "3e-4",
            "--lr-power",
            "0.5",
            "--alpha",
            "0.3",
            "--geometric-augmentation",
        ],
        captured,
    )
    expected = SANET_RECIPE.with_overrides(
        optimizer=sanet_optimizer(3e-4, 0.5),
        loss=sanet_recipe.GBL(alpha=0.3),
        augmentation=SANET_GEOMETRIC_AUGMENTATION,
        **_smoke(sanet_recipe),
    )
    _check(call, row, expected, steps=SANET_STEPS, monkeypatch=monkeypatch)
    assert call["optimizer"]().l2_weight_decay == 3e-4
    assert _made(call["loss"]).get_config()["alpha"] == 0.3
    assert set(expected.overrides_from(SANET_RECIPE)) == {"optimizer", "loss", "augmentation", "epochs", "batch_size"}
    # Table 2's gamma rows keep their gamma under --alpha
    gamma_row = next(r for r in sanet_table2.TABLE.rows if r.name == "GBL γ = 2")
    call = _run_until_fit(
        sanet_table2.main,
        ["--smoke", "--out", str(tmp_path / "t2"), "--rows", gamma_row.name, "--alpha", "0.3"],
        captured,
    )
    assert dataclasses.astuple(call["loss"]) == (2.0, 0.3)
