"""Tests of the zoo benchmark (reproduce/benchmark.py) and its table (reproduce/bench_models.py).

The benchmark runs once per module on toy builders registered through the same
table mechanism as the zoo's: a classifier and a segmenter, a model whose layer
calls ``tf.numpy_function`` (XLA cannot compile it) and two builders that do not
exist. The zoo's own models are never run here.
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

from reproduce import bench_layers, benchmark, benchmark_report
from reproduce.bench_models import (
    AERNET_STEP,
    ARL_STEP,
    ATTNMEL_REGULARISED_STEP,
    MAX_GRID_SEGMENTS,
    PIPELINES,
    SANET_STEP,
    ZOO_MODELS,
    BenchModel,
    random_inputs,
    select_models,
)

TOY_SHAPE = (16, 16, 3)
NUMERIC = ("params", "train_batch", "train_step_ms", "train_img_s", "latency_batch", "latency_ms",
           "infer_batch", "infer_img_s", "peak_memory_mb")


def build_toy_classifier(input_shape=(32, 32, 3), classes=2, weights=None):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x), name="toy_classifier")


def build_toy_segmenter(input_shape=(32, 32, 3), classes=1, weights=None):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Conv2D(classes, 1, activation="sigmoid")(x), name="toy_segmenter")


class NumpySquare(keras.layers.Layer):
    """Squares its input through ``tf.numpy_function`` (gradient: straight through).

    Runs eagerly and in graphs, but XLA cannot compile it."""

    def call(self, x):
        y = tf.ensure_shape(tf.numpy_function(np.square, [x], tf.float32, stateful=False), x.shape)
        return x + tf.stop_gradient(y - x)


def build_toy_numpy(input_shape=(32, 32, 3), classes=2, weights=None):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(NumpySquare()(x))
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x), name="toy_numpy")


def _toy(name, paper, builder, step):
    return BenchModel(name, paper, builder, step, small_kwargs={"input_shape": TOY_SHAPE})


TOY_TABLE = (
    _toy("toy_classifier", "arl_cnn", build_toy_classifier, ARL_STEP),
    _toy("toy_segmenter", "aernet", build_toy_segmenter, AERNET_STEP),
    _toy("toy_numpy", "no_pipeline", build_toy_numpy, ARL_STEP),
    _toy("missing_module", "sanet", "zoo.models.no_such_module:build_model", SANET_STEP),
    _toy("missing_function", "aernet", "zoo.common.unet:build_no_such_model", AERNET_STEP),
)
MEASURED = ("toy_classifier", "toy_segmenter")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One CLI run over the toy table: (report, output folder, csv rows by (model, xla))."""
    out = tmp_path_factory.mktemp("benchmark")
    argv = ["--size", "small", "--batch-sizes", "1", "2", "--warmup-steps", "0", "--timed-steps", "2",
            "--pipeline-images", "2", "--no-layer-checks", "--out", str(out)]
    report = benchmark.main(argv, table=TOY_TABLE)
    with open(out / "benchmark.csv", newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    return report, out, {(row["model"], row["xla"]): row for row in rows}


def test_writes_markdown_csv_json_and_png(run):
    report, out, rows = run
    assert (out / "benchmark.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out / "benchmark.csv", newline="", encoding="utf-8") as stream:
        assert next(csv.reader(stream)) == list(benchmark.COLUMNS)
    saved = json.loads((out / "benchmark.json").read_text(encoding="utf-8"))
    assert len(saved["rows"]) == len(rows) == 2 * 3 + 2  # 3 built models x XLA off/on + 2 missing
    markdown = (out / "benchmark.md").read_text(encoding="utf-8")
    for name in (*MEASURED, "toy_numpy", "missing_module", "missing_function"):
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


def test_missing_builders_are_reported(run):
    report, out, rows = run
    for name in ("missing_module", "missing_function"):
        assert rows[(name, "")]["status"] == benchmark.MISSING == "not in the zoo yet"
    assert "zoo.models.no_such_module:build_model" in (out / "benchmark.md").read_text(encoding="utf-8")


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
    assert set(pipelines) == {"arl_cnn", "aernet"}  # toy_numpy's paper has no pipeline
    for row in pipelines.values():
        assert row["error"] is None and row["img_s"] > 0 and row["image_size"] == "16x16"
    assert pipelines["arl_cnn"]["images_per_pass"] == 2 * 60  # 60 patches per image
    assert pipelines["aernet"]["images_per_pass"] == 2


def test_records_device_versions_and_memory_kind(run):
    report, _, rows = run
    saved = json.loads((run[1] / "benchmark.json").read_text(encoding="utf-8"))
    assert saved["environment"]["tensorflow"] == tf.__version__
    assert saved["environment"]["keras"] == keras.__version__
    assert {d["name"] for d in saved["environment"]["devices"]} == {
        d.name for d in tf.config.list_physical_devices()}
    assert datetime.datetime.fromisoformat(saved["date"]).tzinfo is not None
    assert saved["settings"]["precisions"] == ["float32"]
    if not tf.config.list_physical_devices("GPU"):
        assert report["memory_kind"] == "process peak RSS (cumulative)"
        peak_now = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        assert 0 < float(rows[("toy_classifier", "False")]["peak_memory_mb"]) <= peak_now


def test_mixed_precision_builds_under_the_policy_and_restores_it():
    settings = benchmark.Settings(size="small", batch_sizes=(2,), xla=(False,), precisions=("mixed",),
                                  warmup_steps=0, timed_steps=1, pipeline_images=1, source_size=(32, 32))
    seen = []

    def build(input_shape, classes=2, weights=None):
        seen.append(keras.mixed_precision.global_policy().name)
        return build_toy_classifier(input_shape, classes)

    with pytest.warns(UserWarning, match="mixed_precision"):
        rows = benchmark.benchmark_model(_toy("toy", "arl_cnn", build, ARL_STEP), settings, benchmark.MemoryProbe())
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


def test_unknown_model_is_a_clear_cli_error(capsys):
    with pytest.raises(SystemExit):
        benchmark.main(["--models", "toy_classifier", "no_such_net"], table=TOY_TABLE)
    assert "no_such_net" in capsys.readouterr().err


def test_select_models_by_name_and_paper():
    assert [e.name for e in select_models(TOY_TABLE, ["toy_segmenter", "toy_classifier"])] == [
        "toy_segmenter", "toy_classifier"]
    assert [e.name for e in select_models(TOY_TABLE, papers=["aernet"])] == ["toy_segmenter", "missing_function"]
    with pytest.raises(ValueError, match="unknown paper"):
        select_models(TOY_TABLE, papers=["nope"])


def test_zoo_table_is_consistent():
    names = [entry.name for entry in ZOO_MODELS]
    assert len(names) == len(set(names))
    assert {entry.paper for entry in ZOO_MODELS} == set(PIPELINES)
    from zoo.common.unet import build_unet

    assert select_models(ZOO_MODELS, ["unet"])[0].resolve() is build_unet
    root = Path(__file__).resolve().parents[1]
    for entry in ZOO_MODELS:
        module = entry.builder.partition(":")[0]
        if (root / (module.replace(".", "/") + ".py")).exists():  # modules still being written are skipped
            builder = entry.resolve()
            assert builder is not None, f"{entry.builder} is not in its module: fix the table"
            assert builder.__module__ == module


def test_targets_follow_the_outputs():
    inputs = keras.Input(TOY_SHAPE)
    features = keras.layers.Conv2D(3, 1)(inputs)
    model = keras.Model(inputs, {
        "probabilities": keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(features)),
        "attention_pool3": keras.layers.Conv2D(1, 1, activation="sigmoid")(features),
        "attention_pool4": keras.layers.Conv2D(1, 1, activation="sigmoid")(features),
    })
    targets = ATTNMEL_REGULARISED_STEP.make_targets(model, 5, np.random.default_rng(0))
    assert targets["probabilities"].shape == (5, 2)
    np.testing.assert_array_equal(targets["probabilities"].sum(axis=1), np.ones(5))
    assert targets["attention_pool3"].shape == (5, 16, 16, 1)
    assert set(np.unique(targets["attention_pool4"])) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="single output"):
        ATTNMEL_REGULARISED_STEP.make_targets(build_toy_classifier(TOY_SHAPE), 2, np.random.default_rng(0))


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


@pytest.mark.parametrize("paper", sorted(PIPELINES))
def test_paper_pipelines_yield_model_batches(paper):
    recipe = PIPELINES[paper]
    with tempfile.TemporaryDirectory() as folder:
        records = benchmark.write_pipeline_records(Path(folder), recipe, 2, (24, 40))
        images, targets = next(iter(benchmark.pipeline_dataset(recipe, records, (16, 16), 2)))
    assert images.shape == (2, 16, 16, 3) and np.all(np.isfinite(images))
    if paper == "apspnet":  # one class-index mask; the generated ellipses use classes 1 and 2
        assert targets.shape == (2, 16, 16, 1) and set(np.unique(targets)) <= {0, 1, 2}
    elif recipe.masks:
        assert targets.shape == (2, 16, 16, len(recipe.masks))
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
        return {"model": "net", "paper": "arl_cnn", "precision": precision, "xla": xla, "train_img_s": speed,
                "infer_img_s": 1.0}

    rows = [row("float32", False, 10.0), row("float32", True, 12.0), row("mixed", False, 14.0), row("mixed", True, 30.0)]
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
    ]
    checks = benchmark_report.check_targets(summary, {"resnet50": "resnet", "unet": "unet", "aernet": "efficientnet"})
    found = {(c["target"].split(" ")[0], c["model"], c["precision"]): c["met"] for c in checks}
    assert found == {
        ("XLA", "resnet50", "float32"): False,  # inference 0.9 < 1 (training 1.3 met)
        ("pipeline", "resnet50", "float32"): True,
        ("mixed", "resnet50", "mixed"): False,  # 1.4 < 1.5
        ("mixed", "aernet", "mixed"): True,
        ("pipeline", "aernet", "mixed"): False,
    } | {("XLA", "resnet50", "mixed"): True}
    xla = [c for c in checks if c["model"] == "resnet50" and c["precision"] == "float32" and c["target"].startswith("XLA")]
    assert [(c["value"], c["met"]) for c in xla] == [(1.3, True), (0.9, False)]


def test_layer_checks_are_reported(tmp_path):
    settings = benchmark.Settings(size="small", batch_sizes=(1,), xla=(False,), precisions=("float32",),
                                  warmup_steps=0, timed_steps=1, pipeline_images=1, source_size=(32, 32))
    cases = [case for case in bench_layers.LAYER_CASES if case.name == "squeeze_excitation"]
    report = benchmark.run_benchmark([], settings, pipelines={}, layer_cases=cases)
    assert [(row["case"], row["status"]) for row in report["layers"]] == [("squeeze_excitation", bench_layers.OK)]
    assert "AttentionGate" in report["uncovered_layers"]  # every layer but SE lacks a case in this subset
    markdown = benchmark_report.render_markdown(report)
    assert "## Custom layers under XLA" in markdown and "squeeze_excitation" in markdown
    assert "AttentionGate: a custom layer with no XLA check" in markdown
    assert "measured on a CPU they are informational" in markdown or tf.config.list_physical_devices("GPU")
