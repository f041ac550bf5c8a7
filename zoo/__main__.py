"""The zoo's command line: ``python -m zoo list [--paper P] [--tag T] [--format md|text] [--count]``.

``list`` prints every registered model (:func:`zoo.list_models`): its name, paper,
parameter count at the paper's size, input (size, colour and scale of its
:class:`~data_tools.preprocess.InputSpec`, and any extra input) and outputs (the main
output and, for attention models, the maps ``return_attention=True`` adds). The counts
and outputs are those recorded with the registry entries (``ModelEntry.parameters`` and
``attention_maps``; tests/test_registry.py checks them against builds), so the listing
builds nothing and answers in seconds; ``--count`` builds each model (randomly
initialised, one at a time, about a minute for the whole zoo on a CPU) and counts
instead, as does the listing for an entry that records neither. The README's model
table is ``--format md``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import keras

from zoo.registry import PAPERS, TAGS, ModelEntry, list_models

COLUMNS: tuple[str, ...] = ("model", "paper", "parameters", "input", "outputs")
FORMATS: tuple[str, ...] = ("md", "text")
MAX_MAP_NAMES = 2
"""Attention maps beyond this many are counted, not named."""


def describe_input(entry: ModelEntry) -> str:
    """``"256x256 lab unit"``: the spec's size, colour and scale, then any extra input."""
    spec = entry.input_spec
    text = f"{spec.image_size[0]}x{spec.image_size[1]} {spec.colour} {spec.scale}"
    return " + ".join([text, *entry.extra_inputs])


def describe_outputs(entry: ModelEntry, output_names: Sequence[str]) -> str:
    """``"mask"``, ``"probabilities + attention_pool3, attention_pool4"`` or
    ``"probabilities + 16 attention maps"``: the main output and the others."""
    maps = [name for name in output_names if name != entry.output]
    if not maps:
        return entry.output
    if len(maps) > MAX_MAP_NAMES:
        return f"{entry.output} + {len(maps)} attention maps"
    return f"{entry.output} + {', '.join(maps)}"


def output_names(model: keras.Model) -> list[str]:
    """A dict output's keys, else the model's output names."""
    return list(model.output) if isinstance(model.output, dict) else list(model.output_names)


def recorded(entry: ModelEntry) -> dict[str, str]:
    """One row from what the entry records (no build): its paper-size parameter count
    and outputs."""
    return {
        "model": entry.name,
        "paper": entry.paper,
        "parameters": f"{entry.parameters:,}",
        "input": describe_input(entry),
        "outputs": describe_outputs(entry, entry.output_names),
    }


def describe(entry: ModelEntry, *, small: bool = False) -> dict[str, str]:
    """One row: the entry's model built (at the paper's size, or ``small``) with its
    attention maps, counted, and released."""
    model = entry.build(small=small, **({"return_attention": True} if entry.attention else {}))
    row = {
        "model": entry.name,
        "paper": entry.paper,
        "parameters": f"{model.count_params():,}",
        "input": describe_input(entry),
        "outputs": describe_outputs(entry, output_names(model)),
    }
    del model
    keras.backend.clear_session()
    return row


def render(rows: Sequence[dict[str, str]], fmt: str) -> str:
    """``md``: a markdown table (names in backticks); ``text``: aligned columns."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}.")
    if fmt == "md":
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(f"`{row[c]}`" if c == "model" else row[c] for c in COLUMNS) + " |" for row in rows]
        return "\n".join(lines) + "\n"
    widths = [max(len(column), *(len(row[column]) for row in rows)) for column in COLUMNS]
    lines = [
        "  ".join(text.ljust(width) for text, width in zip(values, widths, strict=True)).rstrip()
        for values in [COLUMNS, *([row[c] for c in COLUMNS] for row in rows)]
    ]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m zoo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="the registered models, with parameters, inputs and outputs")
    listing.add_argument("--paper", choices=tuple(PAPERS), help="only this paper's models")
    listing.add_argument("--tag", choices=TAGS, help="only models with this tag")
    listing.add_argument("--format", choices=FORMATS, default="text", help="md: the README's table (default: text)")
    listing.add_argument(
        "--count",
        action="store_true",
        help="build every model at the paper's size and count its parameters and outputs "
        "(about a minute on a CPU) instead of printing the recorded ones",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    entries = list_models(paper=args.paper, tag=args.tag)
    if not entries:
        print(f"no registered model with paper={args.paper!r} and tag={args.tag!r}", file=sys.stderr)
        return 1
    rows = [describe(entry) if args.count or not entry.recorded else recorded(entry) for entry in entries]
    sys.stdout.write(render(rows, args.format))
    return 0


if __name__ == "__main__":  # ``python -m zoo`` has imported the package, so every model is registered
    sys.exit(main())
