"""The source itself: no function longer than about 100 lines."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "metaan"

#: At most this many lines a function, its signature and docstring included.
MAX_LINES = 100


def _long_functions(sources: Iterable[tuple[str, str]]) -> dict[str, int]:
    """``name: length`` of every function (methods and nested ones too) over MAX_LINES."""
    out = {}
    for name, text in sources:
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_LINES:
                    out[f"{name}:{node.name}"] = length
    return out


def _function(name: str, lines: int, indent: str = "") -> str:
    """Source of a function ``lines`` long, its ``def`` line included."""
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(lines - 2))
    return f"{indent}def {name}() -> None:\n{indent}    x = 0\n{body}"


def test_no_function_is_longer_than_100_lines() -> None:
    sources = (
        (path.relative_to(SRC).as_posix(), path.read_text(encoding="utf-8"))
        for path in sorted(SRC.rglob("*.py"))
    )
    assert _long_functions(sources) == {}


def test_a_function_of_101_lines_is_caught_and_one_of_100_is_not() -> None:
    assert _function("f", 101).count("\n") == 101
    text = _function("ok", 100) + _function("long", 101)
    assert _long_functions([("m.py", text)]) == {"m.py:long": 101}


def test_methods_and_nested_functions_are_measured_too() -> None:
    method = "class C:\n" + _function("method", 101, indent="    ")
    nested = "def outer() -> None:\n" + _function("inner", 101, indent="    ")
    found = _long_functions([("a.py", method), ("b.py", nested)])
    assert found == {"a.py:method": 101, "b.py:inner": 101, "b.py:outer": 102}
