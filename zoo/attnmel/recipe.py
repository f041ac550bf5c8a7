"""AttnMel-CNN's training recipe (Yan, Kawahara and Hamarneh, "Melanoma Recognition via
Visual Attention", IPMI 2019, Sec. 3.1; the authors' code for the rest).

SGD with momentum (section 3.1; the reference code: Nesterov, 0.9, PyTorch weight
decay 1e-4, which adds ``1e-4 * w`` to the gradient: :class:`zoo.optimizers.L2SGD`, not
Keras' decoupled ``weight_decay``), learning rate 0.01 times 0.1 every 10 epochs, batch 32, 50
epochs; the focal loss (gamma 2) and, for AttnMel-CNN,
the attention Dice regularisers of eq. 5; augmentation: 90-degree rotations and
flips (after the centre crop of :data:`zoo.attnmel.ATTNMEL_INPUT`). The best epoch by
the validation AUC.
"""

from data_tools.augment import Augmentation
from zoo.losses import attnmel_losses, focal_loss
from zoo.optimizers import L2SGD
from zoo.recipe import TrainingRecipe, step_decay

WEIGHT_DECAY = 1e-4
ATTNMEL_AUGMENTATION = Augmentation(horizontal_flip=True, vertical_flip=True, rotate90=True)
"""Reference code: random 90-degree rotation and flips after the random 224 crop."""

_SGD = step_decay(L2SGD, every_epochs=10, factor=0.1, momentum=0.9, nesterov=True, l2_weight_decay=WEIGHT_DECAY)
_COMMON = dict(
    optimizer=_SGD, learning_rate=0.01, batch_size=32, epochs=50, augmentation=ATTNMEL_AUGMENTATION, monitor="val_auc"
)

ATTNMEL_RECIPE = TrainingRecipe(
    source="Yan et al., Melanoma Recognition via Visual Attention (IPMI 2019), Sec. 3.1: SGD lr 0.01 x0.1 "
    "every 10 epochs, batch 32, 50 epochs, focal loss",
    loss=focal_loss,
    targets="one_hot",
    **_COMMON,
)
"""The baselines (VGG-16, VGG-16-GAP, Mel-CNN): the focal loss on the probabilities."""

ATTNMEL_REGULARISED_RECIPE = TrainingRecipe(
    source="Yan et al., Melanoma Recognition via Visual Attention (IPMI 2019), Sec. 3.1 and eq. 5: focal loss "
    "+ 0.001 Dice(a1) + 0.01 Dice(a2)",
    loss=lambda: attnmel_losses()[0],
    loss_weights=lambda: attnmel_losses()[1],
    targets={"probabilities": "one_hot", "attention_pool3": "binary", "attention_pool4": "binary"},
    **_COMMON,
)
"""AttnMel-CNN with its attention maps regularised by reference ROI maps."""
