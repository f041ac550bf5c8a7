"""Run folders (zoo.run, zoo.common.run_card): a trained model travels in one piece."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest

import zoo
from data_tools.atomic import atomic_path, atomic_write_text
from zoo.common.run_card import RUN_FILE, WEIGHTS_FILE, RunCard, RunError, RunMismatchError
from zoo.recipe import add_override_flags, overrides_from_flags


def _perturbed(model: keras.Model, seed: int = 1) -> keras.Model:
    """The model with every weight moved off its initial value (a "trained" model: a
    reload that silently kept fresh weights would not reproduce its outputs)."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = keras.ops.convert_to_numpy(variable)
        variable.assign(value + rng.normal(0, 0.01, value.shape).astype(value.dtype))
    return model


def _outputs(model: keras.Model, inputs) -> dict[str, np.ndarray]:
    outputs = model(inputs, training=False)
    outputs = outputs if isinstance(outputs, dict) else {"main": outputs}
    return {key: keras.ops.convert_to_numpy(value) for key, value in outputs.items()}


@pytest.fixture(scope="module")
def unet_run(tmp_path_factory):
    entry = zoo.get_model("unet")
    model = _perturbed(entry.build(small=True))
    folder = tmp_path_factory.mktemp("unet_run")
    recipe = entry.recipe.with_overrides(epochs=3, learning_rate=5e-4)
    zoo.save_run(
        folder,
        model,
        entry=entry,
        builder_args=dict(entry.test_kwargs),
        input_spec=entry.input_spec,
        recipe=recipe,
        data={"layout": "isic2018", "train": 8},
        scores={"dice": 0.5},
    )
    return entry, model, folder


def test_run_folder_holds_weights_and_card(unet_run):
    entry, model, folder = unet_run
    assert sorted(p.name for p in folder.iterdir()) == [WEIGHTS_FILE, RUN_FILE]
    card = json.loads((folder / RUN_FILE).read_text())
    assert card["model"] == "unet"
    # every builder argument, defaults included, tuples as lists
    assert card["builder_args"]["input_shape"] == list(entry.test_kwargs["input_shape"])
    assert card["builder_args"]["classes"] == 1 and "batch_norm" in card["builder_args"]
    assert "weights" not in card["builder_args"] and "return_attention" not in card["builder_args"]
    assert card["inputs"] == [[None, *entry.test_kwargs["input_shape"]]]
    assert card["overrides"] == {"epochs": 3, "learning_rate": 5e-4}
    assert card["recipe"]["epochs"] == 3 and card["recipe"]["optimizer"].startswith("Adam(")
    assert card["input_spec"] == entry.input_spec.to_config()
    assert card["scores"] == {"dice": 0.5} and card["data"]["train"] == 8
    assert card["software"]["keras"] == keras.__version__
    assert card["layers"]["Conv2D"] > 0


def test_load_run_gives_the_saved_model(unet_run):
    entry, model, folder = unet_run
    run = zoo.load_run(folder)
    assert run.entry is entry and run.input_spec == entry.input_spec
    x = np.random.default_rng(0).random((2, *entry.test_kwargs["input_shape"]), np.float32)
    np.testing.assert_array_equal(_outputs(run.model, x)["main"], _outputs(model, x)["main"])
    # and through the registry, with the run folder as the weights
    np.testing.assert_array_equal(_outputs(entry.build(weights=folder), x)["main"], _outputs(model, x)["main"])


def test_other_input_size_is_a_named_error(unet_run):
    """A fully convolutional model built at another size takes the weights without any
    shape error: the run's card refuses it, by folder and by bare file."""
    entry, _, folder = unet_run
    bigger = (64, 64, 3)
    with pytest.raises(RunError, match=r"input_shape=\(64, 64, 3\) \(the run was trained with \[32, 32, 3\]\)"):
        entry.build(weights=folder, input_shape=bigger)
    with pytest.raises(RunMismatchError, match=r"inputs are 64x64x3, the run's model's are 32x32x3"):
        entry.build(**{**entry.test_kwargs, "input_shape": bigger}, weights=folder / WEIGHTS_FILE)
    with pytest.raises(RunMismatchError, match="inputs are 64x64x3"):
        zoo.build_unet(bigger, base_filters=entry.test_kwargs["base_filters"], weights=folder / WEIGHTS_FILE)


def test_a_run_of_another_model_is_refused(unet_run):
    _, _, folder = unet_run
    with pytest.raises(RunError, match="the run is of model 'unet', not 'attention_unet'"):
        zoo.get_model("attention_unet").build(weights=folder)


def test_run_agreeing_arguments_and_small_are_accepted(unet_run):
    entry, _, folder = unet_run
    model = entry.build(small=True, weights=folder, classes=1)
    assert tuple(model.inputs[0].shape[1:]) == tuple(entry.test_kwargs["input_shape"])


def test_attention_models_reload_in_the_default_layer_order(tmp_path):
    """DANet's branches swap in model.layers when the maps are outputs: a run saved
    from the attention model must load into both forms with every output equal."""
    entry = zoo.get_model("danet")
    model = _perturbed(entry.build(small=True, return_attention=True))
    zoo.save_run(tmp_path, model, entry=entry, builder_args=dict(entry.test_kwargs), input_spec=entry.input_spec)
    x = np.random.default_rng(0).random((1, *entry.test_kwargs["input_shape"]), np.float32)
    expected = _outputs(model, x)
    with_maps = _outputs(zoo.load_run(tmp_path, attention=True).model, x)
    assert sorted(with_maps) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(with_maps[key], expected[key], atol=1e-6)
    np.testing.assert_allclose(_outputs(zoo.load_run(tmp_path).model, x)["main"], expected["mask"], atol=1e-6)


def test_a_finished_run_keeps_one_set_of_weights(tmp_path):
    """Training's checkpoint (the epoch before a batch-norm recalibration, say) goes
    once the scored weights are saved; an unfinished run (backup/) keeps it."""
    entry = zoo.get_model("unet")
    model = entry.build(small=True)
    for folder, unfinished in ((tmp_path / "finished", False), (tmp_path / "unfinished", True)):
        (folder / ("backup" if unfinished else "")).mkdir(parents=True, exist_ok=True)
        model.save_weights(folder / "best.weights.h5")
        zoo.save_run(folder, model, entry=entry, builder_args=dict(entry.test_kwargs), input_spec=entry.input_spec)
        assert (folder / "best.weights.h5").is_file() == unfinished
        assert (folder / WEIGHTS_FILE).is_file()


def test_non_finite_weights_are_not_saved(tmp_path):
    entry = zoo.get_model("unet")
    model = entry.build(small=True)
    model.weights[0].assign(np.full(model.weights[0].shape, np.nan, np.float32))
    with pytest.raises(ValueError, match="NaN or infinite"):
        zoo.save_run(tmp_path, model, entry=entry, builder_args=dict(entry.test_kwargs), input_spec=entry.input_spec)
    assert not any(tmp_path.iterdir())


def test_builder_arguments_the_builder_does_not_take(tmp_path):
    entry = zoo.get_model("unet")
    with pytest.raises(TypeError, match=r"takes no argument\(s\) \['colour'\]"):
        zoo.save_run(
            tmp_path,
            entry.build(small=True),
            entry=entry,
            builder_args={**entry.test_kwargs, "colour": "lab"},
            input_spec=entry.input_spec,
        )


def test_malformed_cards_name_the_file(tmp_path):
    (tmp_path / RUN_FILE).write_text("{not json")
    with pytest.raises(RunError, match=f"{RUN_FILE}: not JSON"):
        zoo.load_run(tmp_path)
    (tmp_path / RUN_FILE).write_text(json.dumps({"model": "unet"}))
    with pytest.raises(RunError, match="not a run card"):
        zoo.load_run(tmp_path)
    with pytest.raises(RunError, match="not a run folder"):
        zoo.load_run(tmp_path / "nothing")


def test_card_round_trip(unet_run):
    _, _, folder = unet_run
    text = (folder / RUN_FILE).read_text()
    assert json.loads(RunCard.from_json(text).to_json()) == json.loads(text)


def test_recipe_overrides_and_flags():
    import argparse

    recipe = zoo.get_model("arl_cnn14").recipe
    parser = argparse.ArgumentParser()
    add_override_flags(parser, recipe)
    args = parser.parse_args(["--epochs", "3", "--learning-rate", "1e-4"])
    assert overrides_from_flags(args) == {"epochs": 3, "learning_rate": 1e-4}
    changed = recipe.with_overrides(**overrides_from_flags(args))
    assert (changed.epochs, changed.learning_rate, changed.batch_size) == (3, 1e-4, recipe.batch_size)
    assert changed.overrides_from(recipe) == {"epochs": 3, "learning_rate": 1e-4}
    assert recipe.with_overrides(epochs=None) is recipe
    for bad in (["--epochs", "0"], ["--learning-rate", "nan"], ["--learning-rate", "-1"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    with pytest.raises(ValueError, match="learning_rate must be a positive finite number"):
        recipe.with_overrides(learning_rate=float("inf"))
    with pytest.raises(ValueError, match=r"no field\(s\) \['source'\]"):
        recipe.with_overrides(source="mine")


def test_atomic_writes_leave_the_old_file_on_failure(tmp_path):
    path = tmp_path / "scores.json"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as temporary:
            temporary.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.json"]
    mask = os.umask(0o022)
    try:
        atomic_write_text(path, "new")
    finally:
        os.umask(mask)
    assert path.read_text() == "new" and (path.stat().st_mode & 0o777) == 0o644
