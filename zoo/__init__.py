"""Keras 3 builders, layers, losses and metrics for five medical attention networks.

One package per paper (:mod:`zoo.aernet`, :mod:`zoo.arl_cnn`, :mod:`zoo.attnmel`,
:mod:`zoo.sanet`, :mod:`zoo.apspnet`) holds its builders, layers, input spec and
recipe, and registers its models (:mod:`zoo.registry`): ``zoo.list_models()``,
``zoo.get_model(name)``, ``python -m zoo list``. Shared blocks live in
:mod:`zoo.common`.

``import zoo`` registers every custom layer, loss and metric, so ``.keras`` files
saved from this package load with plain ``keras.models.load_model``. It needs no
TensorFlow: models, training on arrays and prediction run on JAX and PyTorch too;
the tf.data pipelines, SavedModel and LiteRT export import TensorFlow when used
(:mod:`data_tools.lazy_tensorflow`).
"""

import data_tools.command_start  # noqa: F401  (first: a command starts without TensorFlow's C++ start-up log)

# isort: split
import data_tools.colour  # noqa: F401  (registers the RGBToLab layer used inside models)
from zoo import layers, losses, metrics, submission
from zoo.aernet import *  # noqa: F401,F403
from zoo.apspnet import *  # noqa: F401,F403
from zoo.arl_cnn import *  # noqa: F401,F403
from zoo.attnmel import *  # noqa: F401,F403
from zoo.cam import class_activation_map, plot_class_activation_maps
from zoo.losses import (
    AttentionDiceRegulariser,
    ComboLoss,
    CrossEntropyJaccardLoss,
    DiceLoss,
    GlobalBalancingLoss,
    SoftJaccardLoss,
    attnmel_losses,
    focal_loss,
)
from zoo.metrics import DiceCoefficient, JaccardIndex
from zoo.optimizers import L2SGD, L2Adam
from zoo.recipe import TrainingRecipe
from zoo.registry import PAPERS, ModelEntry, get_model, list_models, register_model
from zoo.run import Run, load_run, save_run
from zoo.runtime import describe_runtime, make_strategy
from zoo.sanet import *  # noqa: F401,F403
from zoo.train import TrainConfig, TrainResult, fit

__version__ = "0.1.0"

#: Attributes imported on first use: the SavedModel export and the FLOP count are
#: TensorFlow's (``import zoo`` needs no TensorFlow), and ``python -m zoo.export``
#: must find the module not yet imported (runpy warns otherwise).
_LAZY = {"count_flops": "zoo.flops", "export_saved_model": "zoo.export", "load_input_spec": "zoo.serving"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
