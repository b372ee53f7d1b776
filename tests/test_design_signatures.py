"""docs/DESIGN.md's interface signatures are the code's: each documented `def` line of a
python block has the parameters (names, kinds, which have defaults) of the real function.
Annotations may be shortened in the doc; parameters may not be missing or extra."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

DESIGN = Path(__file__).resolve().parents[1] / "docs" / "DESIGN.md"

# name as DESIGN.md writes it -> where the code is ("module:qualified name")
DOCUMENTED = {
    "render_workflow": "workflows.render:render_workflow",
    "validate_graph": "workflows.validate:validate_graph",
    "with_installed_files": "workflows.object_info:with_installed_files",
    "GraphRunner.check": "backend.graph_runner:GraphRunner.check",
    "GraphRunner.run": "backend.graph_runner:GraphRunner.run",
    "create_app": "backend.api:create_app",
    "build_app": "backend.deploy.web:build_app",
    "RylaClient.__init__": "ui.client.http:RylaClient.__init__",
    "RylaClient.generate": "ui.client.http:RylaClient.generate",
    "follow_job": "ui.client.jobs:follow_job",
    "wait_for_ends": "ui.client.jobs:wait_for_ends",
}

Parameter = tuple[str, str, bool]  # name, kind, has a default


def _python_blocks(text: str) -> list[list[str]]:
    return [block.splitlines() for block in re.findall(r"```python\n(.*?)```", text, re.DOTALL)]


def _def_text(lines: list[str], start: int) -> str:
    """The `def` at lines[start] up to its closing parenthesis, comments dropped."""
    text, depth = "", 0
    for line in lines[start:]:
        code = line.split("#", 1)[0]
        for i, char in enumerate(code):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if char == ")" and depth == 0:
                return text + code[:i + 1]
        text += code + "\n"
    raise AssertionError(f"unbalanced parentheses in DESIGN.md from {lines[start]!r}")


def documented_signature(name: str, text: str) -> list[Parameter]:
    """The parameters DESIGN.md gives `name` ("function" or "Class.method")."""
    owner, _, function = name.rpartition(".")
    pattern = re.compile(rf"^\s*(async\s+)?def {re.escape(function)}\(")
    for lines in _python_blocks(text):
        begin = 0
        if owner:
            begin = next((i for i, line in enumerate(lines)
                          if re.match(rf"class {re.escape(owner)}\b", line)), len(lines))
        for i in range(begin, len(lines)):
            if pattern.match(lines[i]):
                header = _def_text(lines, i).strip().removeprefix("async").strip()
                tree = ast.parse(f"{header}: pass")
                return _from_ast(tree.body[0].args)  # type: ignore[attr-defined]
    raise AssertionError(f"DESIGN.md documents no `def {function}(` "
                         + (f"under `class {owner}`" if owner else "in a python block"))


def _from_ast(args: ast.arguments) -> list[Parameter]:
    positional = [*args.posonlyargs, *args.args]
    first_default = len(positional) - len(args.defaults)
    params = [(a.arg, "POSITIONAL_ONLY" if a in args.posonlyargs else "POSITIONAL_OR_KEYWORD",
               i >= first_default) for i, a in enumerate(positional)]
    if args.vararg:
        params.append((args.vararg.arg, "VAR_POSITIONAL", False))
    params += [(a.arg, "KEYWORD_ONLY", d is not None) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    if args.kwarg:
        params.append((args.kwarg.arg, "VAR_KEYWORD", False))
    return params


def code_signature(where: str) -> list[Parameter]:
    module, _, qualified = where.partition(":")
    obj: object = importlib.import_module(module)
    for part in qualified.split("."):
        obj = getattr(obj, part)
    return [(p.name, p.kind.name, p.default is not inspect.Parameter.empty)
            for p in inspect.signature(obj).parameters.values()]  # type: ignore[arg-type]


def _shown(params: list[Parameter]) -> str:
    return ", ".join(f"{name}{'=...' if default else ''}" + (" (keyword)" if kind == "KEYWORD_ONLY" else "")
                     for name, kind, default in params)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_design_md_signature_is_the_code_signature(name: str) -> None:
    documented = documented_signature(name, DESIGN.read_text(encoding="utf-8"))
    actual = code_signature(DOCUMENTED[name])
    assert documented == actual, (
        f"docs/DESIGN.md's {name}({_shown(documented)}) is not the code's "
        f"{name}({_shown(actual)}): update the doc")


def test_a_drifted_signature_is_found() -> None:
    doc = "```python\nclass RylaClient:\n    def __init__(self, base_url: str | None = None,\n" \
          "                 token=None)   # (no timeout)\n```\n"
    assert documented_signature("RylaClient.__init__", doc) == [
        ("self", "POSITIONAL_OR_KEYWORD", False), ("base_url", "POSITIONAL_OR_KEYWORD", True),
        ("token", "POSITIONAL_OR_KEYWORD", True)]
    assert documented_signature("RylaClient.__init__", doc) != code_signature(DOCUMENTED["RylaClient.__init__"])
