"""The shape of the house: module and function sizes, and private reach-ins across modules.

    python tools/house_metrics.py [SRC_DIR]        (default: src/saddlescope)

Prints the largest module, the largest function, every function over 60 lines (docstring
excluded) and every use of another module's private name (``mod._x`` or ``obj._x`` on an
object that is not ``self``/``cls``, and ``from pkg.mod import _x``).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

LIMIT = 60


def function_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function without its docstring."""
    total = (node.end_lineno or node.lineno) - node.lineno + 1
    first = node.body[0] if node.body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return total - ((first.end_lineno or first.lineno) - first.lineno + 1)
    return total


def reach_ins(tree: ast.AST) -> list[tuple[int, str]]:
    """Private names of other modules or objects used here."""
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("saddlescope")
        ):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                continue
            if isinstance(base, ast.Name) and base.id in ("torch", "np", "sys", "os"):
                continue
            found.append((node.lineno, f"{ast.unparse(node)}"))
    return found


def main() -> None:
    """Print the figures for the source tree named on the command line."""
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "src/saddlescope")
    modules, functions, private = [], [], []
    for path in sorted(src.rglob("*.py")):
        text = path.read_text()
        tree = ast.parse(text)
        rel = path.relative_to(src.parent)
        modules.append((len(text.splitlines()), str(rel)))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append((function_lines(node), f"{rel}:{node.lineno} {node.name}"))
        private += [(f"{rel}:{line}", what) for line, what in reach_ins(tree)]
    modules.sort(reverse=True)
    functions.sort(reverse=True)
    long = [f for f in functions if f[0] > LIMIT]
    print(f"modules: {len(modules)}; largest: {modules[0][1]} ({modules[0][0]} lines)")
    print(f"  over 450 lines: {[f'{m} ({n})' for n, m in modules if n > 450]}")
    print(f"functions: {len(functions)}; largest: {functions[0][1]} ({functions[0][0]} lines)")
    print(f"  over {LIMIT} lines (docstring excluded): {len(long)}")
    for n, name in long:
        print(f"    {n:4d}  {name}")
    print(f"private reach-ins: {len(private)}")
    for where, what in private:
        print(f"    {where}  {what}")


if __name__ == "__main__":
    main()
