"""SANet's training recipe (sanet.txt, "Experiments" and "Data augmentation").

"ADSGrad, a variant of Adam optimizer (weight decay = 0.0001, momentum = 0.9)",
learning rate 1e-4 with polynomial decay (power 0.9), batch 5, 100 epochs, the
global balancing loss (eq. 9); the paper's augmentation list. The best epoch by the
validation Jaccard.
"""
import keras

from data_tools.augment import Augmentation
from zoo.losses import GlobalBalancingLoss
from zoo.recipe import TrainingRecipe, polynomial_decay

WEIGHT_DECAY = 1e-4
BETA_1 = 0.9        # "momentum = 0.9"
LR_POWER = 0.9

SANET_AUGMENTATION = Augmentation(
    horizontal_flip=True,
    vertical_flip=True,
    rotate90=True,
    contrast=(0.8, 1.2),
    noise_std=(0.0, 0.03),
    blur_sigma=(0.5, 1.5),
    clahe_clip_limit=(1.0, 4.0),
    clahe_probability=0.25,
    emboss_alpha=(0.0, 1.0),
    emboss_strength=(0.25, 1.0),
    emboss_probability=0.25,
)
"""SANet's augmentation (sanet.txt, "Data augmentation"). The paper names the
transforms but gives no ranges or probabilities; these are ours: contrast 0.8-1.2,
noise std up to 0.03, blur sigma 0.5-1.5 with probability 0.5, and the two
sharpenings each with probability 0.25 (blur and sharpening act on a quarter to a
half of the images, not on most): CLAHE with clip limit 1-4 on an 8x8 grid
(imgaug's ``CLAHE`` draws 0.1-8 and 3-12 tiles), emboss with imgaug's default alpha
0-1 and strength 0.25-1."""

SANET_RECIPE = TrainingRecipe(
    source="sanet.txt Experiments: Adam variant (wd 1e-4, momentum 0.9), lr 1e-4 poly 0.9, batch 5, "
           "100 epochs, global balancing loss (eq. 9)",
    loss=GlobalBalancingLoss,
    optimizer=polynomial_decay(keras.optimizers.AdamW, power=LR_POWER, weight_decay=WEIGHT_DECAY,
                               beta_1=BETA_1),
    learning_rate=1e-4, batch_size=5, epochs=100, targets="binary",
    augmentation=SANET_AUGMENTATION, monitor="val_jaccard")
