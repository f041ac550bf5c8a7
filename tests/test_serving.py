"""zoo.serving and ``--run`` on every serving tool: a run folder is predicted and exported
with nothing retyped (model, builder arguments, input spec from run.json), a checkpoint
that does not fit is a typed error whose attributes the tools use, and misuse is a one-line
error."""

import numpy as np
import pytest
import tensorflow as tf

import zoo
from data_tools.synthetic import make_isic2018
from zoo.common.run_card import RunMismatchError
from zoo.common.weights import CheckpointMismatchError, load_checkpoint
from zoo.serving import ModelIO, load_model, load_serving_info, spec_for_model

SIZE = 64


@pytest.fixture(scope="module")
def unet_run(tmp_path_factory):
    """A run folder of the small U-Net trained (here: initialised) at 64x64, not the
    registry's 32x32 test size, so that only its run.json knows the size."""
    entry = zoo.get_model("unet")
    args = {**entry.test_kwargs, "input_shape": (SIZE, SIZE, 3)}
    model = entry.build(**args)
    folder = tmp_path_factory.mktemp("runs") / "unet"
    spec = spec_for_model(entry.input_spec, (SIZE, SIZE))
    zoo.save_run(folder, model, entry=entry, builder_args=args, input_spec=spec, recipe=entry.recipe)
    return folder, model, spec


@pytest.fixture(scope="module")
def sanet_run(tmp_path_factory):
    entry = zoo.get_model("sanet")
    model = entry.build(small=True)
    folder = tmp_path_factory.mktemp("runs") / "sanet"
    spec = spec_for_model(entry.input_spec, (32, 32))
    zoo.save_run(folder, model, entry=entry, builder_args=dict(entry.test_kwargs), input_spec=spec, recipe=entry.recipe)
    return folder, model, spec


@pytest.fixture(scope="module")
def isic2018(tmp_path_factory):
    root = make_isic2018(
        tmp_path_factory.mktemp("isic2018"), n_train=0, n_val=0, n_test=2, image_size=(48, 64), vary_size=True
    )
    return {
        "images": root / "ISIC2018_Task1-2_Test_Input",
        "task1": root / "ISIC2018_Task1_Test_GroundTruth",
        "task2": root / "ISIC2018_Task2_Test_GroundTruth",
    }


def _images(count=2, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (40 + 7 * k, 52, 3), dtype=np.uint8) for k in range(count)]


# --------------------------------------------------------------------------- typed errors, no text parsed


def test_a_checkpoint_mismatch_is_a_typed_error_with_the_file_model_and_detail(tmp_path):
    entry = zoo.get_model("unet")
    path = tmp_path / "unet3.weights.h5"
    entry.build(small=True, classes=3).save_weights(path)
    with pytest.raises(CheckpointMismatchError) as caught:
        load_checkpoint(entry.build(small=True), path)
    error = caught.value
    assert isinstance(error, ValueError) and error.path == path and error.model == "unet"
    assert error.detail.startswith("layer 'head_conv' (Conv2D) has weights of shapes") and error.parameters > 0
    assert str(error).startswith(f"weights={str(path)!r} is not a checkpoint of model 'unet'")  # the message kept
    noise = tmp_path / "noise.weights.h5"
    noise.write_bytes(b"not hdf5")
    with pytest.raises(CheckpointMismatchError) as caught:
        load_checkpoint(entry.build(small=True), noise)
    assert caught.value.detail.startswith("it is not a Keras checkpoint") and caught.value.parameters is None


def test_the_tools_rewrap_the_attributes_without_reading_the_text(tmp_path, monkeypatch):
    """zoo.serving.build_from_checkpoint words its message from the error's attributes: a
    message weights.py words otherwise does not change what the tools say."""
    import zoo.common.weights as weights

    original = weights.CheckpointMismatchError.__init__

    def reworded(self, path, model, detail, **kwargs):
        if str(kwargs.get("message", "")).startswith("weights="):  # weights.py's own wording
            kwargs["message"] = "something else entirely"
        original(self, path, model, detail, **kwargs)

    monkeypatch.setattr(weights.CheckpointMismatchError, "__init__", reworded)
    path = tmp_path / "unet3.weights.h5"
    zoo.get_model("unet").build(small=True, classes=3).save_weights(path)
    with pytest.raises(CheckpointMismatchError) as caught:
        load_model("unet", weights=path, small=True)
    assert str(caught.value).startswith(
        f"{path}: this checkpoint does not match model 'unet' built with {{'small': True}} ("
    )
    assert "layer 'head_conv' (Conv2D)" in caught.value.detail


# --------------------------------------------------------------------------- feeding


def test_model_io_reads_inputs_outputs_and_the_label_map_bound(sanet_run):
    _, model, _ = sanet_run
    io = ModelIO.of(model, main="mask")
    assert io.image_size == (32, 32) and io.label_map.name == "superpixels" and io.max_segments == 16
    assert io.main == "mask" and io.attention == ()
    with_maps = zoo.get_model("sanet").build(small=True, return_attention=True)
    assert ModelIO.of(with_maps, main="mask").attention  # the attention maps
    with pytest.raises(ValueError, match="max_segments=17 exceeds the model's bound 16"):
        ModelIO.of(model, max_segments=17)


# --------------------------------------------------------------------------- --run


def test_load_model_from_a_run_takes_model_arguments_and_spec_from_run_json(unet_run):
    folder, model, spec = unet_run
    served = load_model(run=folder)
    assert served.entry.name == "unet" and served.input_spec == spec and served.run is not None
    assert tuple(served.model.inputs[0].shape[1:3]) == (SIZE, SIZE)
    images = _images()
    from zoo.predict import load_predictor

    predictor = load_predictor(run=folder)
    expected = load_predictor("unet", keras_model=model, input_spec=spec).predict(images)
    for got, want in zip(predictor.predict(images), expected, strict=True):
        np.testing.assert_allclose(got["mask"], want["mask"], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match=r"come from the run folder's run.json; leave out --small, --builder-args"):
        load_model(run=folder, small=True, builder_args={"classes": 1})
    with pytest.raises(ValueError, match="is a run of model 'unet', not 'sanet'"):
        load_model("sanet", run=folder)


def test_predict_cli_with_run_and_the_runs_weights_in_another_build_is_one_named_line(
    tmp_path, unet_run, isic2018, capsys
):
    from zoo.evaluate import evaluate
    from zoo.predict import main

    folder, _, _ = unet_run
    out = tmp_path / "submission"
    assert (
        main(
            ["--run", str(folder), "--images", str(isic2018["images"]), "--out", str(out), "--format", "isic2018-task1"]
        )
        == 0
    )
    assert "unet: predicted 2 image(s)" in capsys.readouterr().out
    assert 0.0 <= evaluate("isic2018-task1", isic2018["task1"], out).score <= 1.0

    # the 64x64 run's weights as a bare file, built at 256x256: the run card stops it
    common = ["--images", str(isic2018["images"]), "--out", str(tmp_path / "x"), "--format", "isic2018-task1"]
    assert (
        main(
            [
                "--model",
                "unet",
                "--weights",
                str(folder / "model.weights.h5"),
                "--builder-args",
                '{"input_shape": [256, 256, 3], "base_filters": 4}',
                *common,
            ]
        )
        == 1
    )
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert error.startswith(f"zoo.predict: error: {folder / 'model.weights.h5'}: these weights are the run")
    assert "its inputs are 256x256x3, the run's model's are 64x64x3" in error and "--run" in error
    with pytest.raises(RunMismatchError):
        load_model(
            "unet", weights=folder / "model.weights.h5", builder_args={"input_shape": (256, 256, 3), "base_filters": 4}
        )

    for extra, message in (
        (["--small"], "leave out --small"),
        (["--builder-args", '{"classes": 2}'], "leave out --builder-args"),
        (["--model", "sanet"], "is a run of model 'unet', not 'sanet'"),
    ):
        assert main(["--run", str(folder), *extra, *common]) == 1
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and message in error, error
    assert main(["--weights", str(folder / "model.weights.h5"), *common]) == 1
    assert "--weights needs --model" in capsys.readouterr().err
    assert main(["--model", "unet", "--weights", str(folder), *common]) == 1
    assert f"{folder} is a run folder: load it as a run (--run {folder}" in capsys.readouterr().err


def test_isic2017_part3_from_two_runs(tmp_path, isic2018):
    """ARL-CNN trains one 2-class model per sub-task: --run melanoma, --sk-run keratosis."""
    import csv

    from zoo.predict import main

    entry = zoo.get_model("resnet14")
    spec = spec_for_model(entry.input_spec, (32, 32))
    runs = []
    for task in ("melanoma", "keratosis"):
        runs.append(
            zoo.save_run(
                tmp_path / task,
                entry.build(small=True),
                entry=entry,
                builder_args=dict(entry.test_kwargs),
                input_spec=spec,
                recipe=entry.recipe,
            )
        )
    args = [
        "--run",
        str(runs[0]),
        "--images",
        str(isic2018["images"]),
        "--out",
        str(tmp_path / "out"),
        "--format",
        "isic2017-part3",
    ]
    assert main([*args, "--sk-run", str(runs[1])]) == 0
    with (tmp_path / "out" / "predictions.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["image_id", "melanoma", "seborrheic_keratosis"] and len(rows) == 3
    assert main([*args, "--sk-weights", str(runs[1] / "model.weights.h5")]) == 1


def test_export_cli_with_run_writes_a_saved_model_and_a_litert_file(tmp_path, unet_run, sanet_run, capsys):
    from zoo.export import main
    from zoo.litert import LiteRTModel
    from zoo.predict import load_predictor

    folder, model, spec = unet_run
    assert main(["--run", str(folder), "--out", str(tmp_path / "served")]) == 0
    served = load_predictor("unet", saved_model=tmp_path / "served")
    assert served.spec == spec
    images = _images()
    expected = load_predictor("unet", keras_model=model, input_spec=spec).predict(images)
    for got, want in zip(served.predict(images), expected, strict=True):
        np.testing.assert_allclose(got["mask"], want["mask"], rtol=1e-5, atol=1e-5)

    assert main(["--run", str(folder), "--litert", "--out", str(tmp_path / "unet.tflite")]) == 0
    lite = LiteRTModel(tmp_path / "unet.tflite").predict(images[0])["mask"]
    np.testing.assert_allclose(lite, expected[0]["mask"], rtol=0, atol=1e-4)

    assert main(["--run", str(folder), "--small", "--out", str(tmp_path / "x")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "leave out --small" in error

    # SANet: the SavedModel says its map input and bound, which zoo.predict then uses
    folder, _, _ = sanet_run
    assert main(["--run", str(folder), "--out", str(tmp_path / "sanet")]) == 0
    assert load_serving_info(tmp_path / "sanet") == {"label_map": "superpixels", "max_segments": 16}
    predictor = load_predictor("sanet", saved_model=tmp_path / "sanet")
    assert predictor.max_segments == 16 and predictor.extra_input == "superpixels"
    local = load_predictor(run=folder)
    for got, want in zip(predictor.predict(images), local.predict(images), strict=True):
        np.testing.assert_allclose(got["mask"], want["mask"], rtol=1e-5, atol=1e-5)
    assert tf.saved_model.load(str(tmp_path / "sanet")).signatures["serving_default"] is not None


def test_a_model_whose_inputs_are_not_its_entrys_is_refused(sanet_run):
    """The label-map input is the extra input the registry entry declares (SANet's superpixels)."""
    from zoo.predict import load_predictor

    _, model, _ = sanet_run
    with pytest.raises(
        ValueError,
        match=r"model 'unet': its registry entry declares the extra inputs \(\), the "
        r"Keras model .* takes \('superpixels',\)",
    ):
        load_predictor("unet", keras_model=model)
