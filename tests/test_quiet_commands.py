"""Issue 26.3: the commands print what the user needs and warnings that mean something:
no TensorFlow C++ start-up log, no Keras "Your input ran out of data", no
"tf.lite.Interpreter is deprecated" on the LiteRT path."""

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from data_tools import command_start

ROOT = Path(__file__).resolve().parents[1]
STARTUP_LOG = ("absl::InitializeLog", "oneDNN custom operations", "cpu_feature_guard")
RAN_OUT = "Your input ran out of data"
DEPRECATED_INTERPRETER = "tf.lite.Interpreter is deprecated"


def _run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _assert_quiet(result: subprocess.CompletedProcess, *noise: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    for line in noise:
        assert line not in output, output[:3000]


@pytest.mark.parametrize("command", [("-m", "zoo.predict", "--help"), ("reproduce/aernet_table2.py", "--help")])
def test_commands_start_without_tensorflows_startup_log(command):
    result = _run(*command)
    _assert_quiet(result, *STARTUP_LOG)
    assert "usage:" in result.stdout


def test_a_command_is_python_m_or_a_reproduce_script_and_nothing_else():
    assert command_start.starting_command(["-m"])
    assert command_start.starting_command([str(ROOT / "reproduce" / "aernet_table2.py")])
    assert not command_start.starting_command(["-c"])
    assert not command_start.starting_command([str(ROOT / "tests" / "test_quiet_commands.py")])
    assert not command_start.starting_command(["/usr/bin/pytest"])
    assert not command_start.starting_command([])


def test_the_filter_drops_abseils_info_and_keeps_warnings_and_a_fatal_message_before_a_crash():
    """The filter is its own process: what the importing process wrote before it
    aborted still comes out."""
    script = textwrap.dedent("""
        import os
        from data_tools.command_start import filtered_stderr
        with filtered_stderr():
            os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
            os.write(2, b"I0000 00:00:1796452433.709569   30908 port.cc:153] oneDNN custom operations are on.\\n")
            os.write(2, b"W0000 00:00:1796452433.709570   30908 gpu.cc:12] a warning that means something\\n")
            os.write(2, b"F0000 00:00:1796452433.709571   30908 cpu.cc:99] fatal: no AVX here\\n")
            os.abort()
    """)
    result = _run("-c", script)
    assert result.returncode != 0
    assert "a warning that means something" in result.stderr
    assert "fatal: no AVX here" in result.stderr
    assert "oneDNN" not in result.stderr and "absl::InitializeLog" not in result.stderr


def test_training_datasets_know_their_epoch_length(tmp_path):
    """Keras warned "Your input ran out of data" at the end of every first epoch of a
    finite training dataset: the per-epoch flat_map hid its length (cardinality -2)."""
    from data_tools.isic import read_isic2018
    from data_tools.pipeline import segmentation_dataset
    from data_tools.preprocess import InputSpec
    from data_tools.synthetic import make_isic2018

    records = read_isic2018(make_isic2018(tmp_path, n_train=10, n_val=0, n_test=0, image_size=(32, 32)))
    assert len(records) == 10
    data = segmentation_dataset(records, InputSpec((16, 16)), batch_size=4, training=True)
    assert int(data.cardinality()) == 2  # 10 // 4: training drops the remainder
    assert sum(1 for _ in data) == 2 and sum(1 for _ in data) == 2  # two epochs, each whole


@pytest.mark.slow
def test_a_smoke_table_run_prints_no_startup_log_and_never_runs_out_of_data(tmp_path):
    result = _run(
        "reproduce/aernet_table2.py", "--smoke", "--rows", "U-Net", "--epochs", "2", "--out", str(tmp_path / "table")
    )
    _assert_quiet(result, *STARTUP_LOG, RAN_OUT)
    assert "Epoch 2/2" in result.stdout


def test_int8_litert_export_and_run_do_not_warn_that_tf_lite_interpreter_is_deprecated(tmp_path):
    """TensorFlow's int8 calibrator reads the named calibration inputs with its own
    deprecated tf.lite.Interpreter (TensorFlow's internals; a list of inputs would
    avoid it, but the converted model's input order is not the signature's: SANet's
    map comes first); zoo.litert runs models with ai-edge-litert's interpreter."""
    pytest.importorskip("ai_edge_litert")
    import keras

    from data_tools.preprocess import InputSpec
    from zoo.litert import LiteRTModel, export_litert

    image = keras.Input((16, 16, 3), name="image")
    model = keras.Model(image, keras.layers.Conv2D(1, 1, activation="sigmoid", name="mask")(image))
    images = [np.random.default_rng(k).integers(0, 256, (16, 16, 3), dtype=np.uint8) for k in range(3)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = export_litert(
            model,
            tmp_path / "int8.tflite",
            input_spec=InputSpec((16, 16)),
            quantization="int8",
            representative_images=images,
        )
        LiteRTModel(path).predict(images[0])
    assert not [w for w in caught if DEPRECATED_INTERPRETER in str(w.message)]


def test_litert_without_ai_edge_litert_says_what_to_install(monkeypatch):
    """No fall-back to TensorFlow's deprecated copy: one sentence naming the extra."""
    import zoo.litert

    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with pytest.raises(ImportError, match=r"pip install ai-edge-litert"):
        zoo.litert._interpreter_class()
