"""AER-Net's training recipe (Lima & Braz Junior, AER-Net, sections 3.1-3.3).

Adam, learning rate 1e-3, batch 16, 100 epochs, the Dice loss of eq. 1
(:class:`zoo.losses.DiceLoss`, squared denominators), binary lesion masks. The paper
names no augmentation, so there is none. It has no validation split: the best epoch
is the one with the lowest training loss.
"""

import keras

from zoo.losses import DiceLoss
from zoo.recipe import TrainingRecipe, constant

AERNET_RECIPE = TrainingRecipe(
    source="Lima & Braz Junior, AER-Net sections 3.1-3.3: Adam lr 1e-3, batch 16, 100 epochs, Dice loss (eq. 1)",
    loss=DiceLoss,
    optimizer=constant(keras.optimizers.Adam),
    learning_rate=1e-3,
    batch_size=16,
    epochs=100,
    targets="binary",
    augmentation=None,
    monitor="loss",
)
