"""A command's start without TensorFlow's C++ start-up log (issue 26).

``import tensorflow`` (what ``import keras`` does on Keras' default backend) writes,
on every command, before a line of the command's own::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:... port.cc:153] oneDNN custom operations are on. You may see ...
    I0000 00:00:... cpu_feature_guard.cc:227] This TensorFlow binary is optimized ...

and the first two lines once more: TensorFlow's profiler plugin
(``tensorflow.python.profiler.internal._pywrap_profiler_plugin``, loaded by
``import tensorflow`` itself) links its own copy of the runtime and its logging.
``TF_CPP_MIN_LOG_LEVEL=1`` silences the CPU-feature line, which goes through
TensorFlow's logging; the oneDNN line is Abseil's ``LOG(INFO)`` written before
``absl::InitializeLog()``, which no environment variable filters (measured on
TensorFlow 2.21), and ``TF_ENABLE_ONEDNN_OPTS=0`` would silence it only by turning
the oneDNN kernels off. So while a command imports Keras, its standard error runs
through a small filter process that drops Abseil's preamble and INFO lines and
passes everything else (warnings, errors, a fatal message before an abort:
the filter is a separate process, so nothing written is lost if the import
crashes). ``TF_CPP_MIN_LOG_LEVEL`` defaults to 1 for the whole command: INFO off,
TensorFlow's warnings and errors on. A user who sets ``TF_CPP_MIN_LOG_LEVEL=0``
gets the log unfiltered.

Only a command's start is changed, never a library import: ``import zoo`` from a
notebook, a script or the tests leaves the environment and standard error alone.
A command is ``python -m zoo.<module>`` (or any ``python -m`` package import:
``sys.argv[0]`` is ``"-m"`` while Python imports the module's package, its
documented behaviour) or a script of ``reproduce/``. ``zoo/__init__.py`` and
``reproduce/__init__.py`` import this module first; importing it applies
:func:`import_keras_quietly`.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
#: INFO off, TensorFlow's warnings and errors on.
COMMAND_LOG_LEVEL = "1"
ABSL_PREAMBLE = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
#: An Abseil INFO record: ``I<mmdd> <hh:mm:ss.micros> <thread> <file>:<line>] <message>`` (before
#: ``absl::InitializeLog()`` the clock reads ``00:00:<seconds since 1970>``).
ABSL_INFO = re.compile(rb"I\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] ")
_REPRODUCE = Path(__file__).resolve().parents[1] / "reproduce"


def is_startup_noise(line: bytes) -> bool:
    """Abseil's pre-initialisation preamble or one of its INFO records."""
    return line.rstrip(b"\r\n") == ABSL_PREAMBLE or ABSL_INFO.match(line) is not None


def filter_lines(source: Iterable[bytes], sink: BinaryIO) -> None:
    """Every line of ``source`` but :func:`is_startup_noise` ones, to ``sink`` as it comes."""
    for line in source:
        if not is_startup_noise(line):
            sink.write(line)
            sink.flush()


def starting_command(argv: Sequence[str] | None = None) -> bool:
    """True while a command starts: ``python -m <package>.<module>`` importing its
    package (``sys.argv[0] == "-m"``) or a script in ``reproduce/`` running."""
    argv = sys.argv if argv is None else argv
    if not argv or not argv[0]:
        return False
    if argv[0] == "-m":
        return True
    script = Path(argv[0]).resolve()
    return script.suffix == ".py" and script.parent == _REPRODUCE


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """File descriptor 2 through :func:`filter_lines` in a child process, then back."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        child = subprocess.Popen([sys.executable, "-I", "-S", __file__], stdin=subprocess.PIPE, stdout=saved)
    except OSError:  # no interpreter to start (a frozen program): the log stays
        os.close(saved)
        yield
        return
    os.dup2(child.stdin.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        child.stdin.close()
        child.wait()


def import_keras_quietly() -> None:
    """At a command's start (:func:`starting_command`), Keras (and so TensorFlow)
    imported with its start-up log filtered; otherwise nothing."""
    if "keras" in sys.modules or "tensorflow" in sys.modules or not starting_command():
        return
    level = os.environ.setdefault(LOG_LEVEL_VARIABLE, COMMAND_LOG_LEVEL)
    context = contextlib.nullcontext() if level == "0" else filtered_stderr()
    with context:
        try:
            import keras  # noqa: F401
        except ImportError:  # the command's own import says what is missing
            pass


if __name__ == "__main__":  # the filter process of filtered_stderr
    filter_lines(sys.stdin.buffer, sys.stdout.buffer)
else:
    import_keras_quietly()
