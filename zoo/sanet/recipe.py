"""SANet's training recipe ("SANet: Superpixel Attention Network for Skin Lesion Attributes
Detection", "Experiment setting" and "Data augmentation").

"The ADSGrad, a variant of Adam optimizer (mini-batch size = 5, weight decay =
0.0001, and momentum = 0.9)", "implemented on Pytorch": read as AMSGrad (no optimiser
is called ADSGrad; AMSGrad is the Adam variant PyTorch offers, ``amsgrad=True``) with
``beta_1 = 0.9`` and PyTorch's weight decay, added to the gradient
(:class:`zoo.optimizers.L2Adam`; Keras' decoupled ``weight_decay`` at lr 1e-4 would
remove 1e-8 of a weight per step, effectively none). Learning rate 1e-4 with
polynomial ("power") decay 0.9 to 0 over the run, batch 5, 100 epochs, the global
balancing loss (eq. 9); the paper's augmentation list. The recipe monitors the
validation Jaccard; the paper names no epoch selection, so the tables
(:mod:`reproduce.sanet_recipe`) score the final epoch and keep the best validation
Jaccard only on request (``--keep best-val``).
"""

import dataclasses

from data_tools.augment import Augmentation
from zoo.losses import GlobalBalancingLoss
from zoo.optimizers import L2Adam
from zoo.recipe import TrainingRecipe, polynomial_decay

WEIGHT_DECAY = 1e-4
BETA_1 = 0.9  # "momentum = 0.9"
LR_POWER = 0.9

SANET_AUGMENTATION = Augmentation(
    contrast=(0.8, 1.2),
    noise_std=(0.0, 0.03),
    noise_types=("additive", "additive_grey", "multiplicative"),
    blur_sigma=(0.5, 1.5),
    clahe_clip_limit=(1.0, 4.0),
    clahe_probability=0.25,
    emboss_alpha=(0.0, 1.0),
    emboss_strength=(0.25, 1.0),
    emboss_probability=0.25,
)
"""SANet's augmentation (the SANet paper, "Data augmentation"): exactly the paper's list,
"adding Gaussian noises from different random distributions and types, randomly
contrast adjustment and random sharpness adjustment (blurring using the Gaussian
filter of different sizes and sharpening by employing CLAHE and embossment)". No flips
or rotations: the paper names none (:data:`SANET_GEOMETRIC_AUGMENTATION` adds them).
"Different random distributions and types" of Gaussian noise: the standard deviation
drawn per image, and one of three kinds per image (additive per channel, additive
grey, multiplicative; :data:`data_tools.augment.NOISE_TYPES`). The paper gives no
ranges or probabilities; these are ours: contrast 0.8-1.2,
noise std up to 0.03, blur sigma 0.5-1.5 with probability 0.5, and the two
sharpenings each with probability 0.25 (blur and sharpening act on a quarter to a
half of the images, not on most): CLAHE with clip limit 1-4 on an 8x8 grid
(imgaug's ``CLAHE`` draws 0.1-8 and 3-12 tiles), emboss with imgaug's default alpha
0-1 and strength 0.25-1."""


def sanet_optimizer(weight_decay: float = WEIGHT_DECAY, power: float = LR_POWER):
    """AMSGrad (beta_1 0.9) with PyTorch-style weight decay, the rate decaying
    polynomially with ``power`` to 0 over the run (see the module docstring)."""
    return polynomial_decay(L2Adam, power=power, amsgrad=True, beta_1=BETA_1, l2_weight_decay=weight_decay)


SANET_GEOMETRIC_AUGMENTATION = dataclasses.replace(
    SANET_AUGMENTATION, horizontal_flip=True, vertical_flip=True, rotate90=True
)
"""The option: :data:`SANET_AUGMENTATION` plus flips and 90-degree rotations, which the
paper does not name (common for dermoscopy, which has no up or down)."""

SANET_RECIPE = TrainingRecipe(
    source="SANet: Superpixel Attention Network for Skin Lesion Attributes Detection, Experiment setting: "
    "'ADSGrad' (AMSGrad, PyTorch weight decay 1e-4, beta_1 0.9), lr 1e-4 "
    "poly 0.9, batch 5, 100 epochs, global balancing loss (eq. 9)",
    loss=GlobalBalancingLoss,
    optimizer=sanet_optimizer(),
    learning_rate=1e-4,
    batch_size=5,
    epochs=100,
    targets="binary",
    augmentation=SANET_AUGMENTATION,
    monitor="val_jaccard",
)
