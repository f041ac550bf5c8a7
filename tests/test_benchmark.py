"""Tests of the zoo benchmark (reproduce/benchmark.py) and what it reads from the
registry and the recipes (reproduce/bench_models.py).

The benchmark runs once per module on toy registry entries with their papers'
recipes and input specs: a classifier and a segmenter, and an "attention" model with
the classifier as its baseline whose layer calls ``tf.numpy_function`` (XLA cannot
compile it). The zoo's own models are never benchmarked here; their pipelines are
checked against their small models.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import resource
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from reproduce import bench_layers, benchmark, benchmark_report
from reproduce.bench_models import (
    MAX_GRID_SEGMENTS,
    build_model,
    pipeline_for,
    random_inputs,
    select_models,
    trains_with_attention,
)
from zoo.predict import spec_for_model
from zoo.registry import ModelEntry, get_model, list_models

TOY_SHAPE = (16, 16, 3)
NUMERIC = (
    "params",
    "train_batch",
    "train_step_ms",
    "train_img_s",
    "latency_batch",
    "latency_ms",
    "infer_batch",
    "infer_img_s",
    "peak_memory_mb",
)


def build_toy_classifier(input_shape=(32, 32, 3), classes=2):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x), name="toy_classifier")


def build_toy_segmenter(input_shape=(32, 32, 3), classes=1):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Conv2D(classes, 1, activation="sigmoid")(x), name="toy_segmenter")


class NumpySquare(keras.layers.Layer):
    """Squares its input through ``tf.numpy_function`` (gradient: straight through).

    Runs eagerly and in graphs, but XLA cannot compile it."""

    def call(self, x):
        y = tf.ensure_shape(tf.numpy_function(np.square, [x], tf.float32, stateful=False), x.shape)
        return x + tf.stop_gradient(y - x)


def build_toy_numpy(input_shape=(32, 32, 3), classes=2):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(NumpySquare()(x))
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x), name="toy_numpy")


def _toy(name, paper, builder, family="resnet", baseline=None):
    """A toy entry with ``paper``'s first registered model's spec, recipe and output."""
    model = list_models(paper=paper)[0]
    return ModelEntry(
        name,
        paper,
        builder,
        model.input_spec,
        model.recipe,
        model.output,
        test_kwargs={"input_shape": TOY_SHAPE},
        family=family,
        baseline=baseline,
    )


TOY_ENTRIES = (
    _toy("toy_classifier", "arl_cnn", build_toy_classifier),
    _toy("toy_segmenter", "aernet", build_toy_segmenter, family="unet"),
    _toy("toy_numpy", "arl_cnn", build_toy_numpy, baseline="toy_classifier"),
)
MEASURED = ("toy_classifier", "toy_segmenter")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One CLI run over the toy entries: (report, output folder, csv rows by (model, xla))."""
    out = tmp_path_factory.mktemp("benchmark")
    argv = [
        "--size",
        "small",
        "--batch-sizes",
        "1",
        "2",
        "--warmup-steps",
        "0",
        "--timed-steps",
        "2",
        "--pipeline-images",
        "2",
        "--no-layer-checks",
        "--out",
        str(out),
    ]
    report = benchmark.main(argv, entries=TOY_ENTRIES)
    with open(out / "benchmark.csv", newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    return report, out, {(row["model"], row["xla"]): row for row in rows}


def test_writes_markdown_csv_json_and_png(run):
    report, out, rows = run
    assert (out / "benchmark.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out / "benchmark.csv", newline="", encoding="utf-8") as stream:
        assert next(csv.reader(stream)) == list(benchmark.COLUMNS)
    saved = json.loads((out / "benchmark.json").read_text(encoding="utf-8"))
    assert len(saved["rows"]) == len(rows) == 2 * 3  # 3 models x XLA off/on
    markdown = (out / "benchmark.md").read_text(encoding="utf-8")
    for name in (*MEASURED, "toy_numpy", "## What attention costs"):
        assert name in markdown


@pytest.mark.parametrize("model", MEASURED)
@pytest.mark.parametrize("xla", ["False", "True"])
def test_measurements_are_positive_and_finite(run, model, xla):
    row = run[2][(model, xla)]
    assert row["status"] == benchmark.OK, row["error"]
    for column in NUMERIC:
        value = float(row[column])
        assert math.isfinite(value) and value > 0, (column, value)
    assert float(row["compile_s"]) >= 0 and float(row["infer_compile_s"]) >= 0
    assert row["input_shape"] == "16x16x3" and int(row["train_batch"]) == 2
    assert int(row["latency_batch"]) == 1 and int(row["infer_batch"]) == 2


@pytest.mark.parametrize("model", MEASURED)
def test_images_per_second_is_batch_over_step_time(run, model):
    row = run[2][(model, "False")]
    assert float(row["train_img_s"]) == pytest.approx(2 / (float(row["train_step_ms"]) / 1e3), rel=1e-9)


def test_params_are_the_models(run):
    assert int(run[2][("toy_classifier", "False")]["params"]) == build_toy_classifier(TOY_SHAPE).count_params()


def test_xla_failure_is_recorded_not_raised(run):
    rows = run[2]
    without, under_xla = rows[("toy_numpy", "False")], rows[("toy_numpy", "True")]
    assert without["status"] == benchmark.OK and not without["error"]
    assert under_xla["status"] == benchmark.XLA_FAILED
    assert "PyFunc" in under_xla["error"]
    assert under_xla["train_img_s"] == ""  # not measured


def test_attention_cost_is_the_step_time_ratio_to_the_baseline(run):
    report, _, rows = run
    costs = {cost["xla"]: cost for cost in report["attention_costs"]}
    assert set(costs) == {False, True} and all(cost["baseline"] == "toy_classifier" for cost in costs.values())
    step, baseline = (float(rows[(name, "False")]["train_step_ms"]) for name in ("toy_numpy", "toy_classifier"))
    assert costs[False]["step_ratio"] == pytest.approx(step / baseline)
    assert costs[True]["step_ratio"] is None  # toy_numpy has no XLA step to divide


def test_attention_costs_pair_equal_settings_only():
    def row(model, precision, xla, step):
        return {"model": model, "precision": precision, "xla": xla, "train_step_ms": step}

    rows = [
        row("net", "float32", False, 30.0),
        row("base", "float32", False, 20.0),
        row("net", "float32", True, 9.0),
        row("base", "mixed", True, 3.0),
        row("other", "float32", False, 5.0),
    ]
    costs = benchmark_report.attention_costs(rows, {"net": "base"})
    assert [(c["xla"], c["baseline_train_step_ms"], c["step_ratio"]) for c in costs] == [
        (False, 20.0, 1.5),
        (True, None, None),
    ]


def test_summary_ratios(run):
    report, _, rows = run
    summary = {row["model"]: row for row in report["summary"]}
    pipelines = {row["paper"]: row["img_s"] for row in report["pipelines"]}
    for model, paper in (("toy_classifier", "arl_cnn"), ("toy_segmenter", "aernet")):
        off, on = (float(rows[(model, xla)]["train_img_s"]) for xla in ("False", "True"))
        assert summary[model]["train_xla_ratio"] == pytest.approx(on / off)
        infer_off, infer_on = (float(rows[(model, xla)]["infer_img_s"]) for xla in ("False", "True"))
        assert summary[model]["infer_xla_ratio"] == pytest.approx(infer_on / infer_off)
        assert summary[model]["pipeline_model_ratio"] == pytest.approx(pipelines[paper] / max(off, on))
    assert summary["toy_numpy"]["train_xla_ratio"] is None  # no XLA number to divide


def test_pipelines_measured_per_paper(run):
    pipelines = {row["paper"]: row for row in run[0]["pipelines"]}
    assert set(pipelines) == {"arl_cnn", "aernet"}  # toy_numpy's paper is measured once
    for row in pipelines.values():
        assert row["error"] is None and row["img_s"] > 0 and row["image_size"] == "16x16"
    assert pipelines["arl_cnn"]["images_per_pass"] == 2 * 60  # 60 patches per image
    assert pipelines["aernet"]["images_per_pass"] == 2


def test_records_device_versions_and_memory_kind(run):
    report, _, rows = run
    saved = json.loads((run[1] / "benchmark.json").read_text(encoding="utf-8"))
    assert saved["environment"]["tensorflow"] == tf.__version__
    assert saved["environment"]["keras"] == keras.__version__
    assert {d["name"] for d in saved["environment"]["devices"]} == {d.name for d in tf.config.list_physical_devices()}
    assert datetime.datetime.fromisoformat(saved["date"]).tzinfo is not None
    assert saved["settings"]["precisions"] == ["float32"]
    if not tf.config.list_physical_devices("GPU"):
        assert report["memory_kind"] == "process peak RSS (cumulative)"
        peak_now = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        assert 0 < float(rows[("toy_classifier", "False")]["peak_memory_mb"]) <= peak_now


def test_mixed_precision_builds_under_the_policy_and_restores_it():
    settings = benchmark.Settings(
        size="small",
        batch_sizes=(2,),
        xla=(False,),
        precisions=("mixed",),
        warmup_steps=0,
        timed_steps=1,
        pipeline_images=1,
        source_size=(32, 32),
    )
    seen = []

    def build(input_shape, classes=2):
        seen.append(keras.mixed_precision.global_policy().name)
        return build_toy_classifier(input_shape, classes)

    with pytest.warns(UserWarning, match="mixed_precision"):
        rows, _ = benchmark.benchmark_model(_toy("toy", "arl_cnn", build), settings, benchmark.MemoryProbe())
    assert seen == ["mixed_float16"]
    assert keras.mixed_precision.global_policy().name == "float32"
    assert rows[0]["status"] == benchmark.OK and rows[0]["precision"] == "mixed" and rows[0]["train_img_s"] > 0


def test_time_calls_excludes_first_and_warmup_calls():
    calls = []

    def call():
        calls.append(None)
        time.sleep(0.05 if len(calls) == 1 else 0.01)

    first, times = benchmark.time_calls(call, warmup=2, steps=3)
    assert len(calls) == 1 + 2 + 3 and len(times) == 3
    assert first >= 0.05 and all(0.01 <= t < 0.05 for t in times)


def test_precision_both_is_float32_only_without_gpu():
    assert benchmark.resolve_precisions("both", gpu=False) == ("float32",)
    assert benchmark.resolve_precisions("both", gpu=True) == ("float32", "mixed")
    assert benchmark.resolve_precisions("mixed", gpu=False) == ("mixed",)


@pytest.mark.parametrize("argv", [["--models", "resnet14", "resnet15"], ["--papers", "isic"]])
def test_unknown_models_and_papers_are_clear_cli_errors(capsys, argv):
    with pytest.raises(SystemExit):
        benchmark.main(argv)  # the registry's models: a typo fails, nothing is skipped
    error = capsys.readouterr().err
    assert argv[-1] in error and "known:" in error


def test_select_models_by_name_and_paper():
    assert select_models() == list_models()
    assert [e.name for e in select_models(TOY_ENTRIES, ["toy_segmenter", "toy_classifier"])] == [
        "toy_segmenter",
        "toy_classifier",
    ]
    assert [e.name for e in select_models(TOY_ENTRIES, papers=["arl_cnn"])] == ["toy_classifier", "toy_numpy"]
    assert [e.name for e in select_models(names=["sanet", "unet"], papers=["sanet"])] == ["sanet"]
    with pytest.raises(ValueError, match="unknown paper"):
        select_models(TOY_ENTRIES, papers=["nope"])


def test_trained_models_return_the_maps_their_recipe_has_targets_for():
    assert [entry.name for entry in list_models() if trains_with_attention(entry)] == ["attnmel_cnn"]
    with pytest.raises(ValueError, match="size must be one of \\('paper', 'small'\\), got 'tiny'"):
        build_model(get_model("unet"), "tiny")


def test_targets_follow_the_recipe_kinds_and_the_outputs():
    inputs = keras.Input(TOY_SHAPE)
    features = keras.layers.Conv2D(3, 1)(inputs)
    model = keras.Model(
        inputs,
        {
            "probabilities": keras.layers.Dense(2, activation="softmax")(
                keras.layers.GlobalAveragePooling2D()(features)
            ),
            "attention_pool3": keras.layers.Conv2D(1, 1, activation="sigmoid")(features),
            "attention_pool4": keras.layers.Conv2D(1, 1, activation="sigmoid")(features),
        },
    )
    recipe = get_model("attnmel_cnn").recipe
    targets = recipe.random_targets(model, 5, np.random.default_rng(0))
    assert targets["probabilities"].shape == (5, 2)
    np.testing.assert_array_equal(targets["probabilities"].sum(axis=1), np.ones(5))
    assert targets["attention_pool3"].shape == (5, 16, 16, 1)
    assert set(np.unique(targets["attention_pool4"])) == {0.0, 1.0}
    with pytest.raises(ValueError, match="has a single output; build it with its attention maps"):
        recipe.random_targets(build_toy_classifier(TOY_SHAPE), 2, np.random.default_rng(0))
    extra = keras.Model(inputs, {**model.output, "extra": features})
    with pytest.raises(ValueError, match=r"no target kind for the outputs \['extra'\]"):
        recipe.random_targets(extra, 2, np.random.default_rng(0))


def test_integer_inputs_get_a_superpixel_grid():
    image = keras.Input((32, 48, 3))
    labels = keras.Input((32, 48), dtype="int32")
    model = keras.Model([image, labels], keras.layers.GlobalAveragePooling2D()(image))
    pixels, grid = random_inputs(model, 2, np.random.default_rng(0))
    assert pixels.dtype == np.float32 and 0 <= pixels.min() and pixels.max() < 1
    cells = math.isqrt(MAX_GRID_SEGMENTS)  # 16 x 16 cells of 2 x 3 pixels
    expected = (np.arange(32)[:, None] // 2) * cells + np.arange(48)[None, :] // 3
    np.testing.assert_array_equal(grid[0], expected)
    np.testing.assert_array_equal(grid[1], expected)
    assert grid.dtype == np.int32 and grid.max() == MAX_GRID_SEGMENTS - 1


def test_pipeline_description_says_what_the_recipe_does():
    arl = pipeline_for(get_model("resnet14"), build_toy_classifier((24, 24, 3)))
    assert arl.description == (
        "JPEG decode, resize 24x24, rgb unit; 60 multi-scale central patches per image "
        "(zoo.arl_cnn.patches); augmentation: horizontal_flip, vertical_flip, "
        "rotation_degrees=10.0, zoom=(0.9, 1.1)"
    )
    assert arl.samples_per_image == 60 and arl.masks == ()
    attnmel = pipeline_for(get_model("vgg16"), build_toy_classifier((64, 64, 3)))
    assert attnmel.description == (
        "JPEG decode, centre square of 0.8 x the shorter side, resize 73x73, crop 64x64, "
        "rgb unit; augmentation: horizontal_flip, vertical_flip, rotate90"
    )
    sanet = pipeline_for(get_model("sanet"), build_toy_segmenter((32, 32, 3), classes=5))
    assert sanet.masks == tuple(f"channel{index}" for index in range(5)) and sanet.mask_mode == "binary"
    assert sanet.description.endswith("5 binary mask(s); superpixels precomputed offline, not included")


@pytest.fixture(scope="module")
def paper_pipelines():
    """Each paper's pipeline for its first registered model (small), and that model's main output shape."""
    pipelines = {}
    for paper in zoo.PAPERS:
        entry = list_models(paper=paper)[0]
        model = entry.build(small=True)
        main = model.output[entry.output] if isinstance(model.output, dict) else model.output
        pipelines[paper] = pipeline_for(entry, model), tuple(model.inputs[0].shape), tuple(main.shape)
        keras.backend.clear_session()
    return pipelines


@pytest.mark.parametrize("paper", list(zoo.PAPERS))
def test_paper_pipelines_yield_model_batches(paper_pipelines, paper):
    pipeline, input_shape, output_shape = paper_pipelines[paper]
    entry = list_models(paper=paper)[0]
    assert pipeline.spec == spec_for_model(entry.input_spec, input_shape[1:3])
    assert pipeline.augment is entry.recipe.augmentation
    with tempfile.TemporaryDirectory() as folder:
        records = benchmark.write_pipeline_records(Path(folder), pipeline, 2, (48, 80))
        images, targets = next(iter(benchmark.pipeline_dataset(pipeline, records, 2)))
    assert images.shape == (2, *input_shape[1:]) and np.all(np.isfinite(images))
    if pipeline.mask_mode == "index":  # A-PSPNet: one class-index mask, classes from the softmax's channels
        assert targets.shape == (2, *output_shape[1:3], 1)
        assert set(np.unique(targets)) <= set(range(output_shape[-1])) and pipeline.classes == output_shape[-1]
    elif pipeline.masks:  # a binary mask per channel of the sigmoid map
        assert targets.shape == (2, *output_shape[1:])
        assert set(np.unique(targets)) <= {0.0, 1.0}
    else:
        assert targets.shape == (2, 1)


def test_no_layer_checks_runs_none(run):
    assert run[0]["layers"] == [] and run[0]["uncovered_layers"] == []
    assert "Custom layers" not in (run[1] / "benchmark.md").read_text(encoding="utf-8")


def _summary_row(model, precision, **values):
    row = dict.fromkeys(benchmark_report.SUMMARY_COLUMNS)
    row.update(model=model, precision=precision, **values)
    return row


def test_mixed_speedup_is_mixed_xla_over_float32_without_xla():
    def row(precision, xla, speed):
        return {
            "model": "net",
            "paper": "arl_cnn",
            "precision": precision,
            "xla": xla,
            "train_img_s": speed,
            "infer_img_s": 1.0,
        }

    rows = [
        row("float32", False, 10.0),
        row("float32", True, 12.0),
        row("mixed", False, 14.0),
        row("mixed", True, 30.0),
    ]
    summary = {r["precision"]: r for r in benchmark_report.summarise(rows, {})}
    assert summary["mixed"]["mixed_xla_speedup"] == pytest.approx(3.0)
    assert summary["float32"]["mixed_xla_speedup"] is None
    assert summary["float32"]["train_xla_ratio"] == pytest.approx(1.2)


def test_targets_met_and_missed():
    summary = [
        _summary_row("resnet50", "float32", train_xla_ratio=1.3, infer_xla_ratio=0.9, pipeline_model_ratio=2.5),
        _summary_row("resnet50", "mixed", train_xla_ratio=1.1, mixed_xla_speedup=1.4),
        _summary_row("unet", "mixed", mixed_xla_speedup=1.1),  # not a ResNet/EfficientNet: no mixed target
        _summary_row("aernet", "mixed", mixed_xla_speedup=2.0, pipeline_model_ratio=1.5),
        _summary_row("vgg16", "mixed", mixed_xla_speedup=1.2),  # VGG too (issue 23)
    ]
    checks = benchmark_report.check_targets(
        summary, {"resnet50": "resnet", "unet": "unet", "aernet": "efficientnet", "vgg16": "vgg"}
    )
    found = {(c["target"].split(" ")[0], c["model"], c["precision"]): c["met"] for c in checks}
    assert found == {
        ("XLA", "resnet50", "float32"): False,  # inference 0.9 < 1 (training 1.3 met)
        ("pipeline", "resnet50", "float32"): True,
        ("mixed", "resnet50", "mixed"): False,  # 1.4 < 1.5
        ("mixed", "aernet", "mixed"): True,
        ("mixed", "vgg16", "mixed"): False,  # 1.2 < 1.5
        ("pipeline", "aernet", "mixed"): False,
    } | {("XLA", "resnet50", "mixed"): True}
    xla = [
        c for c in checks if c["model"] == "resnet50" and c["precision"] == "float32" and c["target"].startswith("XLA")
    ]
    assert [(c["value"], c["met"]) for c in xla] == [(1.3, True), (0.9, False)]


def test_layer_checks_are_reported(tmp_path):
    settings = benchmark.Settings(
        size="small",
        batch_sizes=(1,),
        xla=(False,),
        precisions=("float32",),
        warmup_steps=0,
        timed_steps=1,
        pipeline_images=1,
        source_size=(32, 32),
    )
    cases = [case for case in bench_layers.LAYER_CASES if case.name == "squeeze_excitation"]
    report = benchmark.run_benchmark([], settings, pipelines={}, layer_cases=cases)
    assert [(row["case"], row["status"]) for row in report["layers"]] == [("squeeze_excitation", bench_layers.OK)]
    assert "AttentionGate" in report["uncovered_layers"]  # every layer but SE lacks a case in this subset
    markdown = benchmark_report.render_markdown(report)
    assert "## Custom layers under XLA" in markdown and "squeeze_excitation" in markdown
    assert "AttentionGate: a custom layer with no XLA check" in markdown
    assert "measured on a CPU they are informational" in markdown or tf.config.list_physical_devices("GPU")


# ------------------------------------------------------------ attention goals and backends
def test_arl_cnn50_goal_is_checked_in_the_run():
    def row(model, xla, step):
        return {"model": model, "precision": "float32", "xla": xla, "train_step_ms": step}

    rows = [
        row("arl_cnn50", False, 104.0),
        row("resnet50", False, 100.0),
        row("arl_cnn50", True, 120.0),
        row("resnet50", True, 100.0),
        row("arl_cnn14", False, 50.0),
        row("resnet14", False, 40.0),
    ]
    costs = {
        (c["model"], c["xla"]): c
        for c in benchmark_report.attention_costs(rows, {"arl_cnn50": "resnet50", "arl_cnn14": "resnet14"})
    }
    assert benchmark_report.ATTENTION_GOALS["arl_cnn50"] == pytest.approx(1.05)  # issue 23 (issue 18: 1.10)
    assert (costs[("arl_cnn50", False)]["goal"], costs[("arl_cnn50", False)]["met"]) == (1.05, True)
    assert costs[("arl_cnn50", True)]["met"] is False  # 1.20 > 1.05
    assert costs[("arl_cnn14", False)]["goal"] is None and costs[("arl_cnn14", False)]["met"] is None
    report = {"attention_costs": list(costs.values()), "targets": [], "environment": {"devices": [{"type": "CPU"}]}}
    section = "\n".join(benchmark_report._targets_section(report))
    assert "arl_cnn50 / resnet50 training step <= 1.05 (float32, XLA off): 1.04: met" in section
    assert "(float32, XLA on): 1.20: MISSED" in section


def test_attention_costs_table_shows_every_pair_and_the_goal(run):
    markdown = (run[1] / "benchmark.md").read_text(encoding="utf-8")
    table = markdown.split("## What attention costs")[1].split("##")[0]
    assert "| goal | met |" in table and "toy_numpy | toy_classifier" in table


def test_child_arguments_drop_backend_and_out():
    argv = ["--size", "small", "--backend", "jax", "torch", "--models", "resnet14", "--out", "x", "--xla=off"]
    assert benchmark.child_arguments(argv) == ["--size", "small", "--models", "resnet14", "--xla=off"]
    assert benchmark.child_arguments(["--backend=jax", "--out=y", "--no-pipelines"]) == ["--no-pipelines"]


def _backend_report(backend, rows):
    return {
        "date": "2026-12-02T00:00:00+00:00",
        "backend": backend,
        "environment": {"keras": keras.__version__, "devices": [{"name": "/physical_device:CPU:0"}]},
        "settings": {"size": "small", "batch_sizes": [1, 2], "timed_steps": 1},
        "rows": [
            {"model": model, "precision": "float32", "xla": xla, "train_img_s": speed, "status": status}
            for model, xla, speed, status in rows
        ],
    }


def test_backend_table_puts_backends_side_by_side(tmp_path):
    results = {
        "tensorflow": {
            "status": benchmark.OK,
            "error": None,
            "report": _backend_report(
                "tensorflow",
                [
                    ("resnet14", False, 10.0, benchmark.OK),
                    ("resnet14", True, None, benchmark.XLA_FAILED),
                    ("sanet", False, 3.0, benchmark.OK),
                    ("sanet", True, 4.0, benchmark.OK),
                ],
            ),
        },
        "jax": {
            "status": benchmark.OK,
            "error": None,
            "report": _backend_report("jax", [("resnet14", True, 12.0, benchmark.OK)]),
        },
        "torch": {"status": benchmark.NOT_INSTALLED, "error": "python package 'torch' not installed", "report": None},
    }
    columns, table = benchmark_report.backend_table(results)
    assert columns == ["model", "precision", "tensorflow, XLA off", "tensorflow, XLA on", "jax (jit)", "torch (eager)"]
    rows = {row["model"]: row for row in table}
    assert rows["resnet14"]["tensorflow, XLA off"] == 10.0 and rows["resnet14"]["jax (jit)"] == 12.0
    assert rows["resnet14"]["tensorflow, XLA on"] == benchmark.XLA_FAILED
    assert rows["sanet"]["jax (jit)"] is None  # not measured there
    assert rows["sanet"]["torch (eager)"] == rows["resnet14"]["torch (eager)"] == "not installed"
    written, markdown = benchmark_report.write_backends_report(results, tmp_path)
    assert [path.name for path in written] == ["backends.md", "backends.json"]
    assert "| resnet14 | float32 | 10.0 | xla failed | 12.0 | not installed |" in markdown
    assert "torch: not installed" in markdown
    saved = json.loads(written[1].read_text(encoding="utf-8"))
    assert saved["backends"]["torch"]["status"] == "not installed" and saved["columns"] == columns


def test_backend_option_runs_one_subprocess_per_backend(tmp_path):
    """The smallest real run: ResNet14 at 32x32, batch 1, one timed step, XLA off, on
    TensorFlow and JAX in their own processes; torch says "not installed" when it is."""
    argv = [
        "--backend",
        "tensorflow",
        "jax",
        "torch",
        "--models",
        "resnet14",
        "--size",
        "small",
        "--batch-sizes",
        "1",
        "--warmup-steps",
        "0",
        "--timed-steps",
        "1",
        "--xla",
        "off",
        "--no-layer-checks",
        "--no-pipelines",
        "--out",
        str(tmp_path),
    ]
    results = benchmark.main(argv)
    for backend in ("tensorflow", "jax"):
        assert results[backend]["status"] == benchmark.OK, results[backend]["error"]
        report = results[backend]["report"]
        assert report["backend"] == backend and report["pipelines"] == [] and report["layers"] == []
        (row,) = report["rows"]
        assert row["status"] == benchmark.OK and row["backend"] == backend and row["train_img_s"] > 0
        assert row["xla"] is (backend == "jax")  # JAX always compiles with XLA
        assert (tmp_path / backend / "benchmark.md").exists()
    torch_installed = benchmark.backend_installed("torch")
    assert results["torch"]["status"] == (benchmark.OK if torch_installed else benchmark.NOT_INSTALLED)
    markdown = (tmp_path / "backends.md").read_text(encoding="utf-8")
    assert "| model | precision | tensorflow, XLA off | jax (jit) | torch (eager) |" in markdown
    assert torch_installed or "not installed |" in markdown
