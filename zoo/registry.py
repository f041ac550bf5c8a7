"""One registry of every model of the zoo (in the manner of timm's ``register_model``).

Each paper package (``zoo.aernet``, ``zoo.arl_cnn``, ``zoo.attnmel``, ``zoo.sanet``,
``zoo.apspnet``) registers its models when it is imported, which ``import zoo`` does.
An entry says what a user, the benchmark and the test harness need to know:

* the builder and the paper it belongs to;
* the paper's :class:`~data_tools.preprocess.InputSpec` (what the model eats);
* its main output (``"mask"`` or ``"probabilities"``) and whether it returns
  attention maps with ``return_attention=True``;
* the paper's :class:`~zoo.recipe.TrainingRecipe`;
* a small configuration for tests and CPU benchmarks (same architecture, small input);
* tags (``"large"``: 50+ layers, slow on a CPU), the network family the benchmark's
  speed targets group by, and the baseline an attention model is compared with;
* the paper-size model's parameter count and the names of its attention maps, recorded
  so that ``python -m zoo list`` answers without building anything (a test builds every
  model and checks them).

    >>> import zoo
    >>> [entry.name for entry in zoo.list_models(paper="apspnet")]
    ['pspnet', 'deeplabv3', 'danet', 'apspnet']
    >>> model = zoo.get_model("arl_cnn14").build()
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, Callable, Mapping

import keras

from data_tools.preprocess import InputSpec
from zoo.common.run_card import RunError, build_from_card, is_run_folder, read_card
from zoo.recipe import TrainingRecipe

PAPERS: Mapping[str, str] = MappingProxyType(
    {
        "aernet": "AER-Net (Lima & Braz Junior), ISIC 2018 Task 1",
        "arl_cnn": "ARL-CNN (Zhang et al., IEEE TMI 2019), ISIC 2017 Part 3",
        "attnmel": "AttnMel-CNN (Yan et al., IPMI 2019), ISIC 2016 / 2017",
        "sanet": "SANet (superpixel attention network), ISIC 2018 Task 2",
        "apspnet": "A-PSPNet (Wen et al.), renal ultrasound",
    }
)
"""The five papers, in the order of the README, keyed by their package name."""

TAGS: tuple[str, ...] = ("large", "attention", "baseline")
MAIN_OUTPUTS: tuple[str, ...] = ("mask", "probabilities")

_REGISTRY: dict[str, "ModelEntry"] = {}


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    Attributes:
        name: unique, lower case (``"arl_cnn50"``); ``--models`` of the benchmark.
        paper: a key of :data:`PAPERS`.
        builder: the public ``build_*`` function.
        input_spec: the paper's preprocessing of this model's input.
        recipe: the paper's training recipe.
        output: the main output: ``"mask"`` (segmentation) or ``"probabilities"``.
        attention: the builder takes ``return_attention=True`` and then returns a
            dict ``{output: ..., <map name>: ..., ...}`` with every attention map.
        kwargs: builder arguments of the paper's model beyond the builder's defaults
            (usually none: the defaults are the paper's).
        test_kwargs: builder arguments of a small version for tests and CPU
            benchmarks (same architecture, small input, few filters).
        tags: a subset of :data:`TAGS`.
        family: the network family (``"resnet"``, ``"efficientnet"``, ``"vgg"``,
            ``"unet"``) that the benchmark's speed targets group by.
        baseline: for an attention model, the registered model it adds attention to
            (the benchmark prints their step-time ratio).
        extra_inputs: input names beside ``"image"`` (SANet: ``("superpixels",)``).
        parameters: the parameter count of the paper's model (``build()``), recorded
            for ``python -m zoo list``; ``None``: not recorded (the listing builds it).
        attention_maps: the names of the maps ``return_attention=True`` adds beside
            ``output``, in the model's order; ``()`` for a model without attention, or
            not recorded (the listing builds it).
    """

    name: str
    paper: str
    builder: Callable[..., keras.Model]
    input_spec: InputSpec
    recipe: TrainingRecipe
    output: str
    attention: bool = False
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    test_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    family: str = ""
    baseline: str | None = None
    extra_inputs: tuple[str, ...] = ()
    parameters: int | None = None
    attention_maps: tuple[str, ...] = ()

    def __post_init__(self):
        if not self.name or self.name != self.name.lower() or " " in self.name:
            raise ValueError(f"model name must be lower case without spaces, got {self.name!r}.")
        if self.paper not in PAPERS:
            raise ValueError(f"{self.name}: paper must be one of {tuple(PAPERS)}, got {self.paper!r}.")
        if self.output not in MAIN_OUTPUTS:
            raise ValueError(f"{self.name}: output must be one of {MAIN_OUTPUTS}, got {self.output!r}.")
        unknown = set(self.tags) - set(TAGS)
        if unknown:
            raise ValueError(f"{self.name}: unknown tags {sorted(unknown)}; known: {TAGS}.")
        if self.parameters is not None and (
            isinstance(self.parameters, bool) or not isinstance(self.parameters, int) or self.parameters <= 0
        ):
            raise ValueError(f"{self.name}: parameters must be a positive int or None, got {self.parameters!r}.")
        if self.attention_maps and not self.attention:
            raise ValueError(
                f"{self.name}: attention_maps {tuple(self.attention_maps)} given for a model "
                "without attention (attention=False)."
            )
        if self.output in self.attention_maps:
            raise ValueError(f"{self.name}: attention_maps must not name the main output {self.output!r}.")
        object.__setattr__(self, "attention_maps", tuple(self.attention_maps))
        object.__setattr__(self, "tags", frozenset(self.tags))
        object.__setattr__(self, "kwargs", MappingProxyType(dict(self.kwargs)))
        object.__setattr__(self, "test_kwargs", MappingProxyType(dict(self.test_kwargs)))

    @property
    def recorded(self) -> bool:
        """Whether the paper-size parameter count and outputs are recorded (the listing
        then needs no build)."""
        return self.parameters is not None and (not self.attention or bool(self.attention_maps))

    @property
    def output_names(self) -> tuple[str, ...]:
        """The recorded outputs with ``return_attention=True``: the main one, then the maps."""
        return (self.output, *self.attention_maps)

    @property
    def builder_name(self) -> str:
        """``module:function`` of the builder, for reports."""
        return f"{self.builder.__module__}:{self.builder.__qualname__}"

    def build(self, *, small: bool = False, **overrides) -> keras.Model:
        """The model: the paper's (default) or the small test one, randomly initialised;
        or a trained run's, given its run folder as ``weights``.

        ``overrides`` go to the builder last (e.g. ``classes=3``, ``return_attention=True``,
        ``weights="model.weights.h5"``). With ``weights=<run folder>`` (:mod:`zoo.run`)
        the model is built with the run's builder arguments instead (``small`` and
        ``overrides`` may only agree with them, or ask for the attention outputs) and
        the run's weights are loaded.
        """
        if is_run_folder(overrides.get("weights")):
            return build_from_card(self.builder, overrides["weights"], self._run_request(small, overrides))
        kwargs = {**self.kwargs, **(self.test_kwargs if small else {}), **overrides}
        return self.builder(**kwargs)

    def _run_request(self, small: bool, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """The builder arguments a caller asked for beside a run folder."""
        card = read_card(overrides["weights"])
        if card.model != self.name:
            raise RunError(f"{overrides['weights']}: the run is of model {card.model!r}, not {self.name!r}.")
        return {
            **(self.test_kwargs if small else {}),
            **{key: value for key, value in overrides.items() if key != "weights"},
        }


def register_model(entry: ModelEntry) -> ModelEntry:
    """Adds ``entry``; a second entry of the same name is an error."""
    if entry.name in _REGISTRY:
        raise ValueError(f"a model named {entry.name!r} is registered already ({_REGISTRY[entry.name].builder_name}).")
    _REGISTRY[entry.name] = entry
    return entry


def list_models(paper: str | None = None, tag: str | None = None) -> list[ModelEntry]:
    """Registered models, paper by paper in the order of :data:`PAPERS`, each paper's
    in its registration order (its tables' rows); optionally one paper's (a key of
    :data:`PAPERS`) or those carrying ``tag``."""
    if paper is not None and paper not in PAPERS:
        raise ValueError(f"paper must be one of {tuple(PAPERS)}, got {paper!r}.")
    if tag is not None and tag not in TAGS:
        raise ValueError(f"tag must be one of {TAGS}, got {tag!r}.")
    order = list(PAPERS)
    entries = sorted(_REGISTRY.values(), key=lambda entry: order.index(entry.paper))
    return [
        entry for entry in entries if (paper is None or entry.paper == paper) and (tag is None or tag in entry.tags)
    ]


def get_model(name: str) -> ModelEntry:
    """The entry registered as ``name``; a KeyError lists the known names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no model named {name!r}; registered: {sorted(_REGISTRY)}") from None
