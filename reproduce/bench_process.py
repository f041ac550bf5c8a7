"""A child process with a hard time limit, stopped with everything it started.

The benchmark's workers run as children (:mod:`reproduce.jax_benchmark`): a compilation
that outlasts its time is stopped, and the parent still writes its report. A child runs in
its own process group, so that ``torch.compile``'s compile workers and XLA's threads end
with it.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
from typing import Mapping, Sequence


def run_child(command: Sequence[str], timeout_s: float, env: Mapping[str, str] | None = None) -> tuple[int | None, str]:
    """Runs ``command`` for at most ``timeout_s`` seconds; returns its exit status (None
    when it was stopped at the limit) and the end of its stderr."""
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=None if env is None else dict(env),
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate(timeout=max(0.0, timeout_s) if math.isfinite(timeout_s) else None)
        return process.returncode, stderr[-4000:]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        return None, stderr[-4000:]
