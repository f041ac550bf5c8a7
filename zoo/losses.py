"""The papers' training losses, as Keras loss functions and registered ``Loss`` classes.

Every loss takes ``(y_true, y_pred)`` like the Keras ones: channels-last tensors,
``y_pred`` probabilities (after sigmoid or softmax) unless ``from_logits=True``.
Each function has a :class:`keras.losses.Loss` twin registered under the ``"zoo"``
package, so models compiled with them save to and load from ``.keras`` files.

==========================================  ==========================================
paper, equation                             function / ``Loss`` class
==========================================  ==========================================
AER-Net eq. 1                               :func:`dice_loss` / :class:`DiceLoss`
SANet eq. 3 and 10 (JAL)                    :func:`soft_jaccard_loss` / :class:`SoftJaccardLoss`
SANet eq. 2 (CE+JAL baseline)               :func:`cross_entropy_jaccard_loss` /
                                            :class:`CrossEntropyJaccardLoss`
SANet eq. 4-6 (GBJAL)                       :func:`global_balancing_jaccard_loss` /
                                            :class:`GlobalBalancingJaccardLoss`
SANet eq. 7-8 (GBCE)                        :func:`global_balancing_cross_entropy` /
                                            :class:`GlobalBalancingCrossEntropy`
SANet eq. 9 (GBL = 0.5 GBCE + 0.5 GBJAL)    :func:`global_balancing_loss` /
                                            :class:`GlobalBalancingLoss`
A-PSPNet eq. 6 (Combo loss)                 :func:`combo_loss` / :class:`ComboLoss`
AttnMel eq. 4 (attention regulariser)       :func:`attention_dice_regulariser` /
                                            :class:`AttentionDiceRegulariser`
AttnMel eq. 5 (focal + regularisers)        :func:`attnmel_losses`, :func:`focal_loss`
==========================================  ==========================================

Per-image losses return one value per sample (Keras then averages over the batch);
batch-level ones (``over_batch=True`` and the AttnMel regulariser) return a scalar.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
from keras import ops

#: AttnMel eq. 5: weights of the pool-3 and pool-4 attention regularisers (Sec. 2.2).
ATTNMEL_LAMBDA1 = 0.001
ATTNMEL_LAMBDA2 = 0.01
#: SANet's truncation point (eq. 7's alpha, the text's theta; Fig. 3 plots 0.2) and
#: its best focusing parameter (Table 2: gamma = 1).
SANET_ALPHA = 0.2
SANET_GAMMA = 1.0


# --------------------------------------------------------------------------- checks


def _check_non_negative(name: str, value: float) -> float:
    if not value >= 0:
        raise ValueError(f"`{name}` must be >= 0, got {value!r}.")
    return float(value)


def _check_alpha(alpha: float) -> float:
    if not 0 <= alpha < 1:
        raise ValueError(f"`alpha` (the truncation point) must be in [0, 1), got {alpha!r}.")
    return float(alpha)


def _check_same_shape(y_true, y_pred, loss: str) -> None:
    """Fail at trace time, with the loss's name, when static shapes disagree."""
    true_shape, pred_shape = tuple(y_true.shape), tuple(y_pred.shape)
    if len(true_shape) != len(pred_shape) or any(
        t is not None and p is not None and t != p for t, p in zip(true_shape, pred_shape, strict=True)
    ):
        raise ValueError(
            f"{loss}: y_true has shape {true_shape} but y_pred has shape {pred_shape}; "
            "they must match (channels-last, one channel per class)."
        )
    if len(pred_shape) < 2:
        raise ValueError(f"{loss}: expected a batch of maps [batch, ..., channels], got {pred_shape}.")


def _prepare(y_true, y_pred, loss: str, from_logits: bool, activation: str = "sigmoid"):
    """Probabilities and float targets of the same dtype and shape."""
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    _check_same_shape(y_true, y_pred, loss)
    if from_logits:
        y_pred = ops.softmax(y_pred, axis=-1) if activation == "softmax" else ops.sigmoid(y_pred)
    return y_true, y_pred


def _sum_axes(rank: int, over_batch: bool, per_channel: bool) -> list[int]:
    """Axes to sum: the spatial ones, plus the batch and/or the channel axis."""
    first = 0 if over_batch else 1
    last = rank - 1 if per_channel else rank
    return list(range(first, last))


# --------------------------------------------------------------------------- overlap losses


def _soft_overlaps(y_true, y_pred, axes: list[int], squared: bool):
    """``(sum(y p), sum(y^2) + sum(p^2))``, or plain sums when ``squared=False``."""
    intersection = ops.sum(y_true * y_pred, axis=axes)
    if squared:
        total = ops.sum(ops.square(y_true), axis=axes) + ops.sum(ops.square(y_pred), axis=axes)
    else:
        total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return intersection, total


def dice_loss(
    y_true,
    y_pred,
    smooth: float = 1.0,
    squared: bool = True,
    over_batch: bool = False,
    from_logits: bool = False,
):
    """Soft Dice loss, AER-Net eq. 1: ``1 - 2 sum(p g) / (sum p^2 + sum g^2)``.

    Sums run over the pixels and channels of each image (``over_batch=True``: over
    the whole batch as one tensor, returning a scalar). ``smooth`` is added to the
    numerator and the denominator: with the default 1 a blank mask predicted blank
    gives loss 0 and every loss and gradient stays finite; it moves the loss by at most
    ``1 / (sum p^2 + sum g^2 + 1)``, under 2e-4 for a lesion of 5000 pixels.
    ``smooth=0`` is the bare equation, which is 0/0 (NaN) on a blank mask predicted
    blank.

    ``squared=False`` gives the authors' code (the public repository josegpl/AER-Net):
    plain sums in the denominator; with ``smooth=1, over_batch=True`` it is that
    code's loss exactly. The paper's squared form is the default.

    Returns:
        ``[batch]`` losses, or a scalar with ``over_batch=True``.
    """
    smooth = _check_non_negative("smooth", smooth)
    y_true, y_pred = _prepare(y_true, y_pred, "dice_loss", from_logits)
    axes = _sum_axes(len(y_pred.shape), over_batch, per_channel=False)
    intersection, total = _soft_overlaps(y_true, y_pred, axes, squared)
    return 1.0 - (2.0 * intersection + smooth) / (total + smooth)


def soft_jaccard_loss(
    y_true,
    y_pred,
    smooth: float = 1.0,
    per_channel: bool = False,
    from_logits: bool = False,
):
    """Soft Jaccard loss (SANet eq. 3 and 10, "JAL"; Yuan et al. 2017's Jaccard distance).

    ``1 - sum(p q) / (sum p^2 + sum q^2 - sum(p q))`` per image. The paper prints the
    denominator without ``- sum(p q)``; as printed the loss could never go below 0.5
    (p = q gives 1 - 1/2), so we use the form of the Jaccard loss it cites. ``smooth``
    as in :func:`dice_loss`.

    ``per_channel=False`` pools all channels into one Jaccard (SANet's "micro"
    JAL); ``per_channel=True`` computes one per channel and averages them (the
    "macro", multi-class JAL of eq. 5).

    Returns:
        ``[batch]`` losses.
    """
    smooth = _check_non_negative("smooth", smooth)
    y_true, y_pred = _prepare(y_true, y_pred, "soft_jaccard_loss", from_logits)
    axes = _sum_axes(len(y_pred.shape), over_batch=False, per_channel=per_channel)
    intersection, total = _soft_overlaps(y_true, y_pred, axes, squared=True)
    loss = 1.0 - (intersection + smooth) / (total - intersection + smooth)
    return ops.mean(loss, axis=-1) if per_channel else loss


def _mean_per_sample(values):
    """Mean over every axis but the batch axis."""
    return ops.mean(values, axis=list(range(1, len(values.shape))))


def cross_entropy_jaccard_loss(
    y_true,
    y_pred,
    smooth: float = 1.0,
    per_channel: bool = False,
    from_logits: bool = False,
):
    """SANet eq. 2, the "CE+JAL" baseline of Table 2: ``0.5 CE + 0.5 JAL``.

    CE is the pixel-wise binary cross-entropy averaged over pixels and channels
    (the five ISIC 2018 attributes overlap, so each channel is its own sigmoid);
    JAL is :func:`soft_jaccard_loss` with the same ``per_channel``. For Table 2's
    multi-attribute baseline use ``per_channel=True`` (the paper's "multi-class
    jaccard loss is just the average version").
    """
    y_true, y_pred = _prepare(y_true, y_pred, "cross_entropy_jaccard_loss", from_logits)
    cross_entropy = _mean_per_sample(keras.losses.binary_crossentropy(y_true, y_pred))
    jaccard = soft_jaccard_loss(y_true, y_pred, smooth=smooth, per_channel=per_channel)
    return 0.5 * cross_entropy + 0.5 * jaccard


def global_balancing_jaccard_loss(y_true, y_pred, smooth: float = 1.0, from_logits: bool = False):
    """SANet eq. 4-6, GBJAL = ``0.5 JAL_micro + 0.5 JAL_macro`` over the attribute channels.

    JAL_micro pools the positive pixels of all channels into one soft Jaccard;
    JAL_macro averages the per-channel soft Jaccard losses (eq. 5's printed
    denominator is a typesetting error: it is not a Jaccard otherwise). The micro term keeps the
    loss informative on the many images where an attribute is blank.
    """
    y_true, y_pred = _prepare(y_true, y_pred, "global_balancing_jaccard_loss", from_logits)
    micro = soft_jaccard_loss(y_true, y_pred, smooth=smooth, per_channel=False)
    macro = soft_jaccard_loss(y_true, y_pred, smooth=smooth, per_channel=True)
    return 0.5 * micro + 0.5 * macro


def _focal_term(p, gamma: float):
    """``F(p) = -(1 - p)^gamma log p``, SANet eq. 8 (Lin et al.'s focal loss)."""
    return -ops.power(1.0 - p, gamma) * ops.log(p)


def global_balancing_cross_entropy(
    y_true,
    y_pred,
    alpha: float = SANET_ALPHA,
    gamma: float = SANET_GAMMA,
    class_weights: Sequence[float] | None = None,
    from_logits: bool = False,
):
    """SANet eq. 7-8, GBCE: a smooth truncated focal loss per pixel and channel.

    With ``p_t = p`` where ``y = 1`` and ``1 - p`` where ``y = 0``::

        loss = F(alpha) + 0.5 (1 - p_t^2 / alpha^2)   if p_t < alpha
               F(p_t)                                 otherwise

    It is continuous at ``p_t = alpha`` and caps the gradient of confidently wrong
    pixels (likely label noise); ``alpha = 0`` is the plain focal loss. The text
    calls the truncation point theta (the extracted text of that passage is garbled; the equation is followed).
    ``class_weights`` (the paper's omega) weights each channel; the weighted values
    are averaged over pixels and channels.

    Returns:
        ``[batch]`` losses.
    """
    alpha = _check_alpha(alpha)
    gamma = _check_non_negative("gamma", gamma)
    y_true, y_pred = _prepare(y_true, y_pred, "global_balancing_cross_entropy", from_logits)
    epsilon = keras.config.epsilon()
    p = ops.clip(y_pred, epsilon, 1.0 - epsilon)
    p_t = y_true * p + (1.0 - y_true) * (1.0 - p)
    loss = _focal_term(p_t, gamma)
    if alpha > 0:
        truncated = _focal_term(ops.convert_to_tensor(alpha, p_t.dtype), gamma) + 0.5 * (
            1.0 - ops.square(p_t) / alpha**2
        )
        loss = ops.where(p_t < alpha, truncated, loss)
    if class_weights is not None:
        channels = y_pred.shape[-1]
        if channels is not None and len(class_weights) != channels:
            raise ValueError(
                f"`class_weights` has {len(class_weights)} values but y_pred has {channels} "
                "channels; give one weight per channel."
            )
        loss = loss * ops.convert_to_tensor(list(class_weights), loss.dtype)
    return _mean_per_sample(loss)


def global_balancing_loss(
    y_true,
    y_pred,
    alpha: float = SANET_ALPHA,
    gamma: float = SANET_GAMMA,
    class_weights: Sequence[float] | None = None,
    smooth: float = 1.0,
    from_logits: bool = False,
):
    """SANet eq. 9, the global balancing loss: ``0.5 GBCE + 0.5 GBJAL``.

    Defaults are the paper's: alpha = 0.2 (Fig. 3), gamma = 1 (best in Table 2),
    no class weights.
    """
    y_true, y_pred = _prepare(y_true, y_pred, "global_balancing_loss", from_logits)
    cross_entropy = global_balancing_cross_entropy(
        y_true, y_pred, alpha=alpha, gamma=gamma, class_weights=class_weights
    )
    jaccard = global_balancing_jaccard_loss(y_true, y_pred, smooth=smooth)
    return 0.5 * cross_entropy + 0.5 * jaccard


def combo_loss(
    y_true,
    y_pred,
    smooth: float = 1.0,
    sparse: bool = False,
    from_logits: bool = False,
):
    """A-PSPNet eq. 6, Combo loss: ``CE + (1 - Dice)`` for multi-class softmax output.

    CE is the categorical cross-entropy averaged over pixels; Dice is the squared
    soft Dice of eq. 6 summed over the pixels and all ``k + 1`` classes (background
    included) of each image, i.e. :func:`dice_loss` on the one-hot targets.

    Args:
        y_true: one-hot masks ``[batch, H, W, classes]``, or with ``sparse=True``
            class indices ``[batch, H, W]`` or ``[batch, H, W, 1]``.
        y_pred: softmax probabilities (logits with ``from_logits=True``).
    """
    y_pred = ops.convert_to_tensor(y_pred)
    if sparse:
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        y_true = ops.one_hot(ops.cast(y_true, "int32"), y_pred.shape[-1], dtype=y_pred.dtype)
    y_true, y_pred = _prepare(y_true, y_pred, "combo_loss", from_logits, activation="softmax")
    cross_entropy = _mean_per_sample(keras.losses.categorical_crossentropy(y_true, y_pred))
    return cross_entropy + dice_loss(y_true, y_pred, smooth=smooth)


# --------------------------------------------------------------------------- AttnMel


def resize_reference(mask, size: Sequence[int]):
    """Average-pool full-size ROI masks ``[batch, H, W, 1]`` to an attention map's size.

    AttnMel Sec. 2.2: the reference maps are downsampled to the size of pool-3 and
    pool-4; the authors' code average-pools, which turns a binary ROI into soft
    targets in [0, 1]. ``H`` and ``W`` must be integer multiples of ``size``.
    """
    mask = ops.convert_to_tensor(mask)
    if len(mask.shape) != 4:
        raise ValueError(f"resize_reference: expected masks [batch, H, W, C], got {tuple(mask.shape)}.")
    height, width = mask.shape[1], mask.shape[2]
    target_height, target_width = (int(s) for s in size)
    if (height, width) == (target_height, target_width):
        return mask
    if None in (height, width) or height % target_height or width % target_width:
        raise ValueError(
            f"resize_reference: the ROI size {(height, width)} must be an integer multiple of "
            f"the attention map size {(target_height, target_width)}."
        )
    pool = (height // target_height, width // target_width)
    return ops.average_pool(mask, pool_size=pool, strides=pool, padding="valid")


def attention_dice_regulariser(roi, attention):
    """AttnMel eq. 4, ``1 - 2 sum(a r) / sum(a + r)`` over the whole batch as one tensor.

    ``roi`` may be full size: it is average-pooled to the attention map's size
    (:func:`resize_reference`). The reference code has no smoothing term; the
    denominator is instead floored at ``keras.config.epsilon()``, which changes
    nothing while it is positive (always, for sigmoid attention maps) and keeps the
    loss (1) and its gradient (0) finite if a batch has no positive ROI pixel and an
    all-zero attention map. A batch without positive ROI pixels otherwise gives loss
    1 and gradient 0, so it simply does not regularise.

    Returns:
        A scalar.
    """
    attention = ops.convert_to_tensor(attention)
    roi = resize_reference(ops.cast(roi, attention.dtype), attention.shape[1:3])
    _check_same_shape(roi, attention, "attention_dice_regulariser")
    intersection, total = _soft_overlaps(roi, attention, axes=None, squared=False)
    return 1.0 - 2.0 * intersection / ops.maximum(total, keras.config.epsilon())


def focal_loss(
    gamma: float = 2.0,
    alpha: float | None = None,
    multi_label: bool = False,
    from_logits: bool = False,
) -> keras.losses.Loss:
    """Focal loss (Lin et al.) from Keras, configured as AttnMel uses it (eq. 5).

    Returns :class:`keras.losses.CategoricalFocalCrossentropy` for softmax outputs
    (the default: AttnMel's classifier has two softmax outputs, and the authors'
    loss is ``-(1 - p_t)^gamma log p_t`` averaged over the batch, which is exactly
    that class with ``alpha=1``; Keras's own default alpha = 0.25 would scale the
    loss by 1/4 and so change its balance with eq. 5's regularisers). With
    ``multi_label=True`` returns :class:`keras.losses.BinaryFocalCrossentropy` for
    sigmoid outputs, with class balancing only if ``alpha`` is given.

    Args:
        gamma: focusing parameter (AttnMel: 2).
        alpha: class balance; ``None`` means none.
    """
    gamma = _check_non_negative("gamma", gamma)
    if multi_label:
        if alpha is None:
            return keras.losses.BinaryFocalCrossentropy(gamma=gamma, from_logits=from_logits)
        return keras.losses.BinaryFocalCrossentropy(
            apply_class_balancing=True, alpha=alpha, gamma=gamma, from_logits=from_logits
        )
    return keras.losses.CategoricalFocalCrossentropy(
        alpha=1.0 if alpha is None else alpha, gamma=gamma, from_logits=from_logits
    )


def attnmel_losses(
    output_names: Sequence[str] = ("probabilities", "attention_pool3", "attention_pool4"),
    lambda1: float = ATTNMEL_LAMBDA1,
    lambda2: float = ATTNMEL_LAMBDA2,
    gamma: float = 2.0,
) -> tuple[dict[str, keras.losses.Loss], dict[str, float]]:
    """AttnMel eq. 5 for a three-output model: ``focal + l1 Dice(A3, R3) + l2 Dice(A4, R4)``.

    Returns ``(loss, loss_weights)`` for ``model.compile(loss=..., loss_weights=...)``
    where the model's outputs are named ``output_names`` (class probabilities, the
    pool-3 attention map, the pool-4 attention map). The targets are the labels and
    the ROI mask for each attention output; the ROI may be given at full input size,
    it is average-pooled inside the loss. Keras sums the weighted output losses,
    which is eq. 5.
    """
    if len(output_names) != 3:
        raise ValueError(
            "`output_names` must name three outputs (probabilities, pool-3 attention, "
            f"pool-4 attention), got {list(output_names)}."
        )
    probabilities, attention3, attention4 = output_names
    losses = {
        probabilities: focal_loss(gamma=gamma),
        attention3: AttentionDiceRegulariser(name=f"{attention3}_dice"),
        attention4: AttentionDiceRegulariser(name=f"{attention4}_dice"),
    }
    weights = {
        probabilities: 1.0,
        attention3: _check_non_negative("lambda1", lambda1),
        attention4: _check_non_negative("lambda2", lambda2),
    }
    return losses, weights


# --------------------------------------------------------------------------- Loss classes


class _FunctionLoss(keras.losses.Loss):
    """A ``Loss`` that calls one of the functions above with stored keyword arguments.

    ``get_config`` returns those arguments, so subclasses round-trip through
    ``.keras`` files without serialising the function itself.
    """

    def __init__(self, fn: Callable, name: str, reduction: str, dtype, **fn_kwargs):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self._fn = fn
        self._fn_kwargs = fn_kwargs

    def call(self, y_true, y_pred):
        return self._fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict:
        return {**super().get_config(), **self._fn_kwargs}


_REDUCTION = "sum_over_batch_size"


@keras.saving.register_keras_serializable(package="zoo")
class DiceLoss(_FunctionLoss):
    """:func:`dice_loss` (AER-Net eq. 1) as a ``Loss``."""

    def __init__(
        self,
        smooth: float = 1.0,
        squared: bool = True,
        over_batch: bool = False,
        from_logits: bool = False,
        reduction: str = _REDUCTION,
        name: str = "dice_loss",
        dtype=None,
    ):
        super().__init__(
            dice_loss,
            name,
            reduction,
            dtype,
            smooth=_check_non_negative("smooth", smooth),
            squared=squared,
            over_batch=over_batch,
            from_logits=from_logits,
        )


@keras.saving.register_keras_serializable(package="zoo")
class SoftJaccardLoss(_FunctionLoss):
    """:func:`soft_jaccard_loss` (SANet eq. 3/10) as a ``Loss``."""

    def __init__(
        self,
        smooth: float = 1.0,
        per_channel: bool = False,
        from_logits: bool = False,
        reduction: str = _REDUCTION,
        name: str = "soft_jaccard_loss",
        dtype=None,
    ):
        super().__init__(
            soft_jaccard_loss,
            name,
            reduction,
            dtype,
            smooth=_check_non_negative("smooth", smooth),
            per_channel=per_channel,
            from_logits=from_logits,
        )


@keras.saving.register_keras_serializable(package="zoo")
class CrossEntropyJaccardLoss(_FunctionLoss):
    """:func:`cross_entropy_jaccard_loss` (SANet eq. 2, "CE+JAL") as a ``Loss``."""

    def __init__(
        self,
        smooth: float = 1.0,
        per_channel: bool = False,
        from_logits: bool = False,
        reduction: str = _REDUCTION,
        name: str = "cross_entropy_jaccard_loss",
        dtype=None,
    ):
        super().__init__(
            cross_entropy_jaccard_loss,
            name,
            reduction,
            dtype,
            smooth=_check_non_negative("smooth", smooth),
            per_channel=per_channel,
            from_logits=from_logits,
        )


@keras.saving.register_keras_serializable(package="zoo")
class GlobalBalancingJaccardLoss(_FunctionLoss):
    """:func:`global_balancing_jaccard_loss` (SANet eq. 4-6, GBJAL) as a ``Loss``."""

    def __init__(
        self,
        smooth: float = 1.0,
        from_logits: bool = False,
        reduction: str = _REDUCTION,
        name: str = "global_balancing_jaccard_loss",
        dtype=None,
    ):
        super().__init__(
            global_balancing_jaccard_loss,
            name,
            reduction,
            dtype,
            smooth=_check_non_negative("smooth", smooth),
            from_logits=from_logits,
        )


def _class_weights_config(class_weights: Sequence[float] | None) -> list[float] | None:
    """``class_weights`` as a JSON-friendly list (or ``None``)."""
    return None if class_weights is None else [float(w) for w in class_weights]


@keras.saving.register_keras_serializable(package="zoo")
class GlobalBalancingCrossEntropy(_FunctionLoss):
    """:func:`global_balancing_cross_entropy` (SANet eq. 7-8, GBCE) as a ``Loss``."""

    def __init__(
        self,
        alpha: float = SANET_ALPHA,
        gamma: float = SANET_GAMMA,
        class_weights: Sequence[float] | None = None,
        from_logits: bool = False,
        reduction: str = _REDUCTION,
        name: str = "global_balancing_cross_entropy",
        dtype=None,
    ):
        super().__init__(
            global_balancing_cross_entropy,
            name,
            reduction,
            dtype,
            alpha=_check_alpha(alpha),
            gamma=_check_non_negative("gamma", gamma),
            class_weights=_class_weights_config(class_weights),
            from_logits=from_logits,
        )


@keras.saving.register_keras_serializable(package="zoo")
class GlobalBalancingLoss(_FunctionLoss):
    """:func:`global_balancing_loss` (SANet eq. 9, GBL) as a ``Loss``."""

    def __init__(
        self,
        alpha: float = SANET_ALPHA,
        gamma: float = SANET_GAMMA,
        class_weights: Sequence[float] | None = None,
        smooth: float = 1.0,
        from_logits: bool = False,
        reduction: str = _REDUCTION,
        name: str = "global_balancing_loss",
        dtype=None,
    ):
        super().__init__(
            global_balancing_loss,
            name,
            reduction,
            dtype,
            alpha=_check_alpha(alpha),
            gamma=_check_non_negative("gamma", gamma),
            class_weights=_class_weights_config(class_weights),
            smooth=_check_non_negative("smooth", smooth),
            from_logits=from_logits,
        )


@keras.saving.register_keras_serializable(package="zoo")
class ComboLoss(_FunctionLoss):
    """:func:`combo_loss` (A-PSPNet eq. 6) as a ``Loss``."""

    def __init__(
        self,
        smooth: float = 1.0,
        sparse: bool = False,
        from_logits: bool = False,
        reduction: str = _REDUCTION,
        name: str = "combo_loss",
        dtype=None,
    ):
        super().__init__(
            combo_loss,
            name,
            reduction,
            dtype,
            smooth=_check_non_negative("smooth", smooth),
            sparse=sparse,
            from_logits=from_logits,
        )


@keras.saving.register_keras_serializable(package="zoo")
class AttentionDiceRegulariser(_FunctionLoss):
    """:func:`attention_dice_regulariser` (AttnMel eq. 4) as a ``Loss``.

    ``y_true`` is the ROI mask (full size or the attention map's size), ``y_pred``
    the attention map ``[batch, h, w, 1]``.
    """

    def __init__(
        self,
        reduction: str = _REDUCTION,
        name: str = "attention_dice_regulariser",
        dtype=None,
    ):
        super().__init__(attention_dice_regulariser, name, reduction, dtype)
