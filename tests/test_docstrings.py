"""Every public parameter is described in its docstring (the house rule of DESIGN.md).

Functions and methods list each parameter in an ``Args:`` section (``name: what it is``);
classes list their ``__init__`` parameters the same way in the class docstring; dataclasses (the
result types) name each field in theirs. Public means: named in a module's ``__all__`` (and the
public methods of those classes).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re

import saddlescope

SKIP = {"self", "cls"}


def public_modules() -> list:
    mods = []
    for info in pkgutil.walk_packages(saddlescope.__path__, "saddlescope."):
        if not info.name.endswith(".__main__"):  # running it would run the CLI
            mods.append(importlib.import_module(info.name))
    return [saddlescope, *mods]


def public_objects() -> dict[str, object]:
    out: dict[str, object] = {}
    for mod in public_modules():
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__.startswith(
                "saddlescope"
            ):
                out[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return out


def described(doc: str, name: str) -> bool:
    """``name:`` starts a line of an Args-like section, or ``name`` is quoted in the text."""
    return bool(re.search(rf"^\s*\**{re.escape(name)}( \([^)]*\))?:", doc, re.M)) or (
        f"``{name}``" in doc
    )


def missing_parameters(func, doc: str | None) -> list[str]:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return []
    wanted = [
        p.name
        for p in params
        if p.name not in SKIP and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    return [name for name in wanted if not described(doc or "", name)]


def undocumented() -> list[str]:
    problems = []
    for qualname, obj in sorted(public_objects().items()):
        if inspect.isfunction(obj):
            problems += [f"{qualname}({p})" for p in missing_parameters(obj, obj.__doc__)]
            continue
        assert inspect.isclass(obj)
        if not obj.__doc__:
            problems.append(f"{qualname}: no docstring")
            continue
        if dataclasses.is_dataclass(obj):
            fields = [f.name for f in dataclasses.fields(obj) if not f.name.startswith("_")]
            problems += [f"{qualname}.{f}" for f in fields if f not in obj.__doc__]
        elif "__init__" in vars(obj):
            missing = missing_parameters(obj.__init__, obj.__doc__)
            problems += [f"{qualname}({p})" for p in missing]
        for name, member in vars(obj).items():
            if name.startswith("_") or not inspect.isfunction(member):
                continue
            if not member.__doc__:
                problems.append(f"{qualname}.{name}: no docstring")
                continue
            problems += [
                f"{qualname}.{name}({p})" for p in missing_parameters(member, member.__doc__)
            ]
    return problems


def test_every_public_parameter_is_described():
    problems = undocumented()
    assert not problems, f"{len(problems)} undescribed:\n" + "\n".join(problems)


def test_the_check_can_fail():
    def f(alpha, beta):
        """Do something.

        Args:
            alpha: the first.
        """

    assert missing_parameters(f, f.__doc__) == ["beta"]
