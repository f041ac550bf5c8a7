"""zoo.registry (lookup, registration, filters, what every entry declares), the
``python -m zoo list`` command and the README's model table it generates."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import time
from pathlib import Path

import keras
import pytest

import zoo
from data_tools.preprocess import InputSpec
from zoo import __main__ as cli
from zoo import registry
from zoo.recipe import TrainingRecipe
from zoo.registry import MAIN_OUTPUTS, PAPERS, TAGS, ModelEntry, get_model, list_models, register_model

ENTRIES = list_models()
README = Path(__file__).resolve().parents[1] / "README.md"
TABLE_START, TABLE_END = "<!-- python -m zoo list --format md -->", "<!-- /python -m zoo list -->"


def _toy_builder(input_shape=(8, 8, 3), classes=2, weights=None, *, return_attention=False):
    inputs = keras.Input(input_shape)
    features = keras.layers.Conv2D(2, 1, name="attention")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    probabilities = keras.layers.Dense(classes, activation="softmax", name="probabilities")(pooled)
    outputs = {"probabilities": probabilities, "attention": features} if return_attention else probabilities
    return keras.Model(inputs, outputs, name="toy")


def _toy_entry(name="toy_net", **changes) -> ModelEntry:
    unet = get_model("unet")
    fields = dict(
        name=name,
        paper="arl_cnn",
        builder=_toy_builder,
        input_spec=InputSpec((8, 8)),
        recipe=unet.recipe,
        output="probabilities",
        attention=True,
        kwargs={"classes": 4},
        test_kwargs={"input_shape": (4, 4, 3)},
    )
    return ModelEntry(**{**fields, **changes})


@pytest.fixture
def scratch_registry(monkeypatch):
    """A copy of the registry that the test may add to."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


# --------------------------------------------------------------------------- lookup and registration


def test_unknown_name_is_a_key_error_listing_the_names():
    with pytest.raises(KeyError, match="no model named 'arl_cnn15'") as error:
        get_model("arl_cnn15")
    for entry in ENTRIES:
        assert repr(entry.name) in str(error.value)


def test_a_second_entry_of_a_name_is_refused_and_the_first_kept(scratch_registry):
    with pytest.raises(ValueError, match="a model named 'unet' is registered already"):
        register_model(_toy_entry("unet"))
    assert get_model("unet").builder is zoo.build_unet


def test_a_registered_entry_is_listed_after_its_papers_models(scratch_registry):
    entry = register_model(_toy_entry())
    assert get_model("toy_net") is entry
    arl = list_models(paper="arl_cnn")
    assert arl[-1] is entry and len(arl) == 9
    assert list_models().index(entry) == len(list_models(paper="aernet")) + 8


def test_build_merges_paper_then_small_then_override_arguments():
    entry = _toy_entry()
    assert entry.build().output.shape == (None, 4)  # kwargs
    assert entry.build().input.shape == (None, 8, 8, 3)  # the builder's default
    small = entry.build(small=True)
    assert small.input.shape == (None, 4, 4, 3) and small.output.shape == (None, 4)
    assert entry.build(small=True, classes=7).output.shape == (None, 7)
    assert set(entry.build(small=True, return_attention=True).output) == {"probabilities", "attention"}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"name": "ARL"}, "model name must be lower case without spaces, got 'ARL'"),
        ({"name": "arl net"}, "model name must be lower case without spaces"),
        ({"paper": "isic"}, "toy_net: paper must be one of .*got 'isic'"),
        ({"output": "logits"}, r"toy_net: output must be one of \('mask', 'probabilities'\), got 'logits'"),
        ({"tags": {"huge"}}, r"toy_net: unknown tags \['huge'\]"),
    ],
)
def test_bad_entries_name_the_field_and_value(changes, message):
    with pytest.raises(ValueError, match=message):
        _toy_entry(**changes)


# --------------------------------------------------------------------------- filters


def test_list_models_goes_paper_by_paper_in_the_order_of_papers():
    papers = [entry.paper for entry in ENTRIES]
    assert sorted(papers, key=list(PAPERS).index) == papers
    assert set(papers) == set(PAPERS)  # every paper has models
    assert len({entry.name for entry in ENTRIES}) == len(ENTRIES)


@pytest.mark.parametrize("paper", PAPERS)
def test_list_models_by_paper(paper):
    assert list_models(paper=paper) == [entry for entry in ENTRIES if entry.paper == paper]


def test_list_models_by_paper_and_tag():
    assert [entry.name for entry in list_models(paper="arl_cnn", tag="large")] == [
        "ran14",
        "resnet50",
        "arl_cnn50",
        "senet50",
        "ran50",
    ]
    for tag in TAGS:
        tagged = list_models(tag=tag)
        assert tagged and all(tag in entry.tags for entry in tagged)
        assert {entry.name for entry in ENTRIES if tag in entry.tags} == {entry.name for entry in tagged}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"paper": "AER-Net"}, "paper must be one of .*got 'AER-Net'"),
        ({"tag": "small"}, r"tag must be one of \('large', 'attention', 'baseline'\), got 'small'"),
    ],
)
def test_list_models_rejects_unknown_papers_and_tags(kwargs, message):
    with pytest.raises(ValueError, match=message):
        list_models(**kwargs)


# --------------------------------------------------------------------------- what every entry declares


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.name)
def test_entry_declares_its_spec_recipe_and_output(entry):
    assert isinstance(entry.input_spec, InputSpec)
    assert isinstance(entry.recipe, TrainingRecipe)
    assert entry.output in MAIN_OUTPUTS and callable(entry.builder)
    assert entry.family in ("resnet", "efficientnet", "vgg", "unet")
    assert getattr(zoo, entry.builder.__name__) is entry.builder, f"{entry.builder_name} is not exported by zoo"


@pytest.mark.parametrize("entry", [entry for entry in ENTRIES if entry.baseline], ids=lambda entry: entry.name)
def test_baseline_is_another_registered_model_of_the_same_paper(entry):
    baseline = get_model(entry.baseline)
    assert baseline.paper == entry.paper and baseline.name != entry.name


# --------------------------------------------------------------------------- python -m zoo list


def test_describe_input_and_outputs():
    assert cli.describe_input(get_model("aernet")) == "256x256 lab unit"
    assert cli.describe_input(get_model("sanet")) == "256x256 rgb unit + superpixels"
    assert cli.describe_input(get_model("pspnet")) == "473x473 rgb caffe"
    entry = get_model("attnmel_cnn")
    assert cli.describe_outputs(entry, ["attention_pool3", "probabilities"]) == "probabilities + attention_pool3"
    assert cli.describe_outputs(entry, ["probabilities"]) == "probabilities"
    assert cli.describe_outputs(entry, ["probabilities", *"abcd"]) == "probabilities + 4 attention maps"


def test_render_md_and_text():
    rows = [
        {"model": "a", "paper": "aernet", "parameters": "1,234", "input": "8x8 rgb unit", "outputs": "mask"},
        {"model": "bb", "paper": "sanet", "parameters": "5", "input": "8x8 rgb unit", "outputs": "mask + m"},
    ]
    assert cli.render(rows, "md") == (
        "| model | paper | parameters | input | outputs |\n|---|---|---|---|---|\n"
        "| `a` | aernet | 1,234 | 8x8 rgb unit | mask |\n| `bb` | sanet | 5 | 8x8 rgb unit | mask + m |\n"
    )
    assert cli.render(rows, "text").splitlines() == [
        "model  paper   parameters  input         outputs",
        "a      aernet  1,234       8x8 rgb unit  mask",
        "bb     sanet   5           8x8 rgb unit  mask + m",
    ]
    with pytest.raises(ValueError, match="format must be one of \\('md', 'text'\\), got 'csv'"):
        cli.render(rows, "csv")


def test_describe_counts_the_built_models_parameters(scratch_registry):
    row = cli.describe(_toy_entry())
    expected = _toy_builder(classes=4).count_params()  # the paper-size kwargs: 4 classes
    assert row == {
        "model": "toy_net",
        "paper": "arl_cnn",
        "parameters": f"{expected:,}",
        "input": "8x8 rgb unit",
        "outputs": "probabilities + attention",
    }


def test_cli_rejects_unknown_papers_and_tags(capsys):
    for argv in (["list", "--paper", "isic"], ["list", "--tag", "huge"], ["list", "--format", "csv"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
        assert "invalid choice" in capsys.readouterr().err


def test_cli_lists_one_papers_models_as_text(monkeypatch, capsys):
    monkeypatch.setattr(
        cli,
        "describe",
        lambda entry: {
            "model": entry.name,
            "paper": entry.paper,
            "parameters": "0",
            "input": cli.describe_input(entry),
            "outputs": entry.output,
        },
    )
    assert cli.main(["list", "--paper", "apspnet", "--tag", "baseline"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == list(cli.COLUMNS)
    assert [line.split()[0] for line in lines[1:]] == ["pspnet", "deeplabv3"]
    assert lines[1].split()[2] == "46,670,723"  # recorded, not built


def test_every_entry_records_its_paper_size_parameters_and_outputs():
    for entry in ENTRIES:
        assert entry.recorded, f"{entry.name}: record parameters= and attention_maps= in its registration"
        assert bool(entry.attention_maps) == entry.attention, entry.name


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.name)
def test_recorded_parameters_and_outputs_are_the_paper_size_builds(entry):
    """What ``python -m zoo list`` prints without building, against a build at the paper's
    size (about 40 s for the whole zoo on 2 CPU cores)."""
    model = entry.build(**({"return_attention": True} if entry.attention else {}))
    try:
        built = (model.count_params(), tuple(cli.output_names(model)))
    finally:
        del model
        keras.backend.clear_session()
    assert (entry.parameters, entry.output_names) == built, (
        f"{entry.name}: recorded (parameters, outputs) differ from the build; update its registration "
        "and the README's table (python -m zoo list --count --format md)"
    )


def test_entry_records_are_validated():
    with pytest.raises(ValueError, match="toy_net: parameters must be a positive int or None, got 0"):
        _toy_entry(parameters=0)
    with pytest.raises(ValueError, match="attention_maps \\('a',\\) given for a model without attention"):
        _toy_entry(attention=False, attention_maps=("a",))
    with pytest.raises(ValueError, match="must not name the main output 'probabilities'"):
        _toy_entry(attention_maps=("probabilities",))
    assert not _toy_entry().recorded and not _toy_entry(parameters=5).recorded
    assert _toy_entry(parameters=5, attention_maps=["attention"]).output_names == ("probabilities", "attention")


def test_list_builds_no_model(monkeypatch, capsys):
    def no_build(*args, **kwargs):
        raise AssertionError("python -m zoo list built a model")

    monkeypatch.setattr(ModelEntry, "build", no_build)
    monkeypatch.setattr(keras.Model, "count_params", no_build)
    assert cli.main(["list", "--format", "md"]) == 0
    listing = capsys.readouterr().out
    text = README.read_text(encoding="utf-8")
    assert text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip() == listing.strip()


def test_list_builds_unrecorded_entries_and_everything_with_count(scratch_registry, monkeypatch, capsys):
    register_model(_toy_entry())  # records neither parameters nor maps
    built = []

    def describe(entry):
        built.append(entry.name)
        return cli.recorded(
            dataclasses.replace(
                entry, parameters=entry.parameters or 1, attention_maps=entry.attention_maps or ("m",) * entry.attention
            )
        )

    monkeypatch.setattr(cli, "describe", describe)
    assert cli.main(["list", "--paper", "arl_cnn"]) == 0
    assert built == ["toy_net"]
    assert capsys.readouterr().out.splitlines()[-1].split() == [
        "toy_net",
        "arl_cnn",
        "1",
        "8x8",
        "rgb",
        "unit",
        "probabilities",
        "+",
        "m",
    ]
    built.clear()
    assert cli.main(["list", "--paper", "attnmel", "--count"]) == 0
    assert built == ["vgg16", "vgg16_gap", "mel_cnn", "attnmel_cnn"]


def test_python_m_zoo_list_answers_in_seconds():
    """Under 5 s, or, on a machine where importing the zoo alone takes longer (a busy
    CPU), within 2 s of that import: the listing itself builds nothing."""

    def seconds(*args: str) -> float:
        started = time.monotonic()
        subprocess.run([sys.executable, *args], capture_output=True, timeout=120, cwd=README.parent, check=True)
        return time.monotonic() - started

    listing = seconds("-m", "zoo", "list")
    if listing >= 5.0:
        importing = seconds("-c", "import zoo")
        assert listing < importing + 2.0, f"python -m zoo list took {listing:.1f} s, import zoo {importing:.1f} s"


# --------------------------------------------------------------------------- the README's table


def readme_rows() -> dict[str, dict[str, str]]:
    """The README's model table (``python -m zoo list --format md``), row by model name."""
    text = README.read_text(encoding="utf-8")
    assert TABLE_START in text and TABLE_END in text, f"README.md lacks the {TABLE_START} ... {TABLE_END} table"
    table = text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip().splitlines()
    assert [cell.strip() for cell in table[0].strip("|").split("|")] == list(cli.COLUMNS)
    rows = {}
    for line in table[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = dict(zip(cli.COLUMNS, cells, strict=True)) | {"model": cells[0].strip("`")}
    return rows


def test_readme_table_is_the_registry():
    """Names, papers, inputs, and the outputs of models without attention maps; the whole
    table is the listing of the recorded counts and maps (test_list_builds_no_model), which
    test_recorded_parameters_and_outputs_are_the_paper_size_builds checks against builds."""
    rows = readme_rows()
    assert list(rows) == [entry.name for entry in ENTRIES]
    for entry in ENTRIES:
        row = rows[entry.name]
        assert (row["paper"], row["input"]) == (entry.paper, cli.describe_input(entry)), f"README row {entry.name}"
        assert entry.attention or row["outputs"] == entry.output, f"README row {entry.name}: outputs"
        assert re.fullmatch(r"\d{1,3}(,\d{3})*", row["parameters"]), row["parameters"]


@pytest.mark.slow  # a subprocess (~6 s): test_list_builds_no_model checks the same in-process
def test_readme_table_is_python_m_zoo_list():
    listing = subprocess.run(
        [sys.executable, "-m", "zoo", "list", "--format", "md"],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=README.parent,
        check=True,
    ).stdout
    text = README.read_text(encoding="utf-8")
    assert text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip() == listing.strip()
