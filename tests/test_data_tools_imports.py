"""data_tools is generic data code: no module of it imports the zoo or the table scripts."""

import ast
from pathlib import Path

import pytest

DATA_TOOLS = Path(__file__).resolve().parents[1] / "data_tools"

FORBIDDEN = ("zoo", "reproduce")


def forbidden_imports(source: str) -> list[str]:
    """``line: module`` of every import of a FORBIDDEN package (at any depth of the code)."""
    found = []
    for node in sorted(ast.walk(ast.parse(source)), key=lambda node: getattr(node, "lineno", 0)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        found += [f"{node.lineno}: {module}" for module in modules if module.split(".")[0] in FORBIDDEN]
    return found


def test_the_check_finds_every_form_of_import():
    source = (
        "import os\nimport zoo\ndef f():\n    from reproduce.frame import run_table\n"
        "import zoo_like, reproduce.x as r\n"
    )
    assert forbidden_imports(source) == ["2: zoo", "4: reproduce.frame", "5: reproduce.x"]
    assert forbidden_imports("from . import pipeline\nfrom data_tools.zoo import x\n") == []


@pytest.mark.parametrize("path", sorted(DATA_TOOLS.glob("*.py")), ids=lambda path: path.name)
def test_data_tools_imports_nothing_from_zoo_or_reproduce(path):
    assert forbidden_imports(path.read_text(encoding="utf-8")) == [], f"{path} imports {FORBIDDEN}"
