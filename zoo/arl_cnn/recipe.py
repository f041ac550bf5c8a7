"""ARL-CNN's training recipe (Zhang, Xie, Xia and Shen, "Attention Residual Learning for
Skin Lesion Classification", IEEE TMI 2019, Sec. IV-B).

Mini-batch SGD, learning rate 0.01 from scratch (1e-4 when fine-tuning ImageNet
weights) halved every 30 epochs, batches of 32 patches, 100 epochs, cross-entropy on
the softmax; augmentation: rotation, zoom and flips. The best epoch by the validation
AUC.

The optimiser is plain SGD: momentum 0 and no weight decay. Sec. IV-B says only "The
mini-batch SGD algorithm with a batch size of 32 was adopted as the optimizer", and
the paper names neither a momentum nor a weight decay (nor any other L2 penalty)
anywhere, so its literal reading is the default; ``arl_sgd(momentum)`` and the table
scripts' ``--momentum`` give a momentum.
"""

import keras

from data_tools.augment import Augmentation
from zoo.recipe import TrainingRecipe, step_decay

SCRATCH_LEARNING_RATE = 0.01  # Sec. IV-B, training from scratch
FINE_TUNING_LEARNING_RATE = 1e-4  # Sec. IV-B, fine-tuning ImageNet weights
HALVING_EPOCHS = 30  # Sec. IV-B: "reduced by half every 30 epochs"

ARL_EXTRA_IMAGES = {"melanoma": 466, "nevus": 822, "seborrheic_keratosis": 32}
"""Sec. IV-A: the 1320 ISIC Archive images added to the 2000 training images (not
listed in the paper; ``reproduce/arl_extra_images.py`` draws a seeded sample)."""

ARL_AUGMENTATION = Augmentation(horizontal_flip=True, vertical_flip=True, rotation_degrees=10.0, zoom=(0.9, 1.1))
"""Sec. IV-B: random rotation (+-10 degrees), zoom (0.9-1.1) and flips."""


def arl_sgd(momentum: float = 0.0, halving_epochs: int = HALVING_EPOCHS):
    """Mini-batch SGD whose rate halves every ``halving_epochs`` epochs (Sec. IV-B)."""
    return step_decay(keras.optimizers.SGD, every_epochs=halving_epochs, factor=0.5, momentum=momentum)


def categorical_crossentropy() -> str:
    """The loss: cross-entropy on the network's softmax (Keras' name; the run cards
    record the loss by this function's name)."""
    return "categorical_crossentropy"


ARL_RECIPE = TrainingRecipe(
    source="Zhang et al., Attention Residual Learning for Skin Lesion Classification (IEEE TMI 2019), Sec. IV-B: "
    "SGD lr 0.01 halved every 30 epochs, batch 32, 100 epochs",
    loss=categorical_crossentropy,
    optimizer=arl_sgd(),
    learning_rate=SCRATCH_LEARNING_RATE,
    batch_size=32,
    epochs=100,
    targets="one_hot",
    augmentation=ARL_AUGMENTATION,
    monitor="val_auc",
)
