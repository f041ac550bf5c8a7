"""Optimisers with PyTorch-style (L2-coupled) weight decay.

PyTorch's ``SGD(weight_decay=wd)`` and ``Adam(weight_decay=wd)`` add ``wd * w`` to each
gradient *before* momentum or the moment estimates: an L2 penalty ``wd / 2 * ||w||^2``
in the loss. Keras' ``weight_decay`` argument is decoupled instead (``w -= lr * wd * w``
after the update, as AdamW). The two differ a lot where the papers' settings live:
with SGD momentum 0.9 the coupled form acts about 1 / (1 - 0.9) = 10 times more
strongly in steady state, and with Adam at lr 1e-4 the decoupled form removes 1e-8 of
a weight per step (PyTorch's ``weight_decay`` adds ``wd * w`` to the gradient; Keras' is decoupled).

The recipes that follow a PyTorch recipe use these classes: AttnMel-CNN (reference
code: ``SGD(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)``) and SANet
("ADSGrad, a variant of Adam optimizer (... weight decay = 0.0001, momentum = 0.9)",
implemented on PyTorch: AMSGrad with ``beta_1 = 0.9``).

The decay is added to the gradients after clipping and loss-scale unscaling, right
before the update step, which is where ``torch.optim`` adds it (``clip_grad_norm_``
runs before ``optimizer.step()``). Variables listed with
``exclude_from_weight_decay`` are left out, as with Keras' own weight decay.
"""

from __future__ import annotations

import keras
from keras import ops


class _L2CoupledWeightDecay:
    """Mixin: ``grad + l2_weight_decay * w`` for every decayed variable."""

    def __init__(self, *args, l2_weight_decay: float = 0.0, **kwargs):
        if kwargs.get("weight_decay"):
            raise ValueError(
                f"{type(self).__name__}: give l2_weight_decay (PyTorch-style, added to the "
                "gradient) or weight_decay (Keras' decoupled form), not both."
            )
        if (
            isinstance(l2_weight_decay, bool)
            or not isinstance(l2_weight_decay, (int, float))
            or not l2_weight_decay >= 0.0
        ):
            raise ValueError(f"l2_weight_decay must be a non-negative number, got {l2_weight_decay!r}.")
        super().__init__(*args, **kwargs)
        self.l2_weight_decay = float(l2_weight_decay)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if self.l2_weight_decay:
            grads = [
                grad
                if grad is None or not self._use_weight_decay(variable)
                else grad + ops.cast(self.l2_weight_decay, grad.dtype) * ops.cast(variable, grad.dtype)
                for grad, variable in zip(grads, trainable_variables, strict=True)
            ]
        super()._backend_update_step(grads, trainable_variables, learning_rate)

    def get_config(self):
        return {**super().get_config(), "l2_weight_decay": self.l2_weight_decay}


@keras.saving.register_keras_serializable(package="zoo")
class L2SGD(_L2CoupledWeightDecay, keras.optimizers.SGD):
    """``keras.optimizers.SGD`` with PyTorch's ``weight_decay`` (``l2_weight_decay``).

    With ``nesterov=True`` and a constant rate, each step equals
    ``torch.optim.SGD(lr, momentum, nesterov=True, weight_decay=l2_weight_decay)``.
    """


@keras.saving.register_keras_serializable(package="zoo")
class L2Adam(_L2CoupledWeightDecay, keras.optimizers.Adam):
    """``keras.optimizers.Adam`` with PyTorch's ``weight_decay`` (``l2_weight_decay``);
    ``amsgrad=True`` gives ``torch.optim.Adam(..., amsgrad=True)`` (up to where epsilon
    is added: Keras adds it to ``sqrt(v)``, PyTorch to the bias-corrected ``sqrt(v)``)."""
