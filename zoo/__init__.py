"""Keras 3 builders, layers, losses and metrics for five medical attention networks.

``import zoo`` registers every custom layer, loss and metric, so ``.keras`` files
saved from this package load with plain ``keras.models.load_model``.
"""
import data_tools.colour  # noqa: F401  (registers the RGBToLab layer used inside models)
from zoo import layers, losses, metrics, submission
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
from zoo.export import export_saved_model, load_input_spec
from zoo.flops import count_flops
from zoo.metrics import DiceCoefficient, JaccardIndex
from zoo.models import *  # noqa: F401,F403  (every build_* function)
from zoo.runtime import describe_runtime, make_strategy
from zoo.train import TrainConfig, TrainResult, fit

__version__ = "0.1.0"
