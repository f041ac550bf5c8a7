"""One script per paper table (python reproduce/<table>.py); the shared frame in reproduce.frame."""

import data_tools.command_start  # noqa: F401  (first: a script starts without TensorFlow's C++ start-up log)
