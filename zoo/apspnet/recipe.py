"""A-PSPNet's training recipe (Wen et al., A-PSPNet, section IV-B).

Adam, learning rate 1e-3, batch 8, 100 epochs (Table III; 50 in Table I), the Combo
loss of eq. 6 (cross-entropy + 1 - Dice) on one-hot class masks; no augmentation
named.
"""

import keras

from zoo.losses import ComboLoss
from zoo.recipe import TrainingRecipe, constant

APSPNET_RECIPE = TrainingRecipe(
    source="Wen et al., A-PSPNet section IV-B: Adam lr 1e-3, batch 8, 100 epochs, Combo loss (eq. 6)",
    loss=ComboLoss,
    optimizer=constant(keras.optimizers.Adam),
    learning_rate=1e-3,
    batch_size=8,
    epochs=100,
    targets="one_hot",
    augmentation=None,
    monitor="loss",
)
