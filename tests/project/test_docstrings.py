"""Every public function of mus_lab has a numpydoc docstring: a Parameters section when it takes
parameters, Returns (or Yields) when it returns something, Raises when it raises a MusLabError
on purpose; and no docstring example is skipped unless it needs the network."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mus_lab
from mus_lab import errors

ROOT = Path(mus_lab.__file__).parent
OURS = {
    n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, errors.MusLabError)
}
SECTION = re.compile(r"^\s*(Parameters|Returns|Yields|Raises)\s*\n\s*-{3,}", re.M)


def _modules() -> Iterator[Any]:
    for info in pkgutil.walk_packages([str(ROOT)], "mus_lab."):
        if info.name.split(".")[-1].startswith("__"):
            continue
        yield importlib.import_module(info.name)


def _public() -> Iterator[tuple[str, Any]]:
    seen: set[int] = set()
    for module in [mus_lab, *_modules()]:
        names = getattr(module, "__all__", None)
        if names is None or module.__name__.rsplit(".", 1)[-1].startswith("_"):
            continue  # private modules are reached through their package's __all__
        for name in names:
            obj = getattr(module, name, None)
            if inspect.isfunction(obj) and obj.__module__.startswith("mus_lab"):
                if id(obj) not in seen:
                    seen.add(id(obj))
                    yield f"{obj.__module__}.{obj.__qualname__}", obj
            elif inspect.isclass(obj) and obj.__module__.startswith("mus_lab"):
                if id(obj) in seen or issubclass(obj, BaseException):
                    continue
                seen.add(id(obj))
                for attr, member in vars(obj).items():
                    if isinstance(member, classmethod | staticmethod):
                        member = member.__func__
                    if attr.startswith("_") or not inspect.isfunction(member):
                        continue
                    yield f"{obj.__module__}.{obj.__qualname__}.{attr}", member


def _raises_ours(func: Any) -> bool:
    try:
        tree = ast.parse(inspect.getsource(func).lstrip())
    except (OSError, TypeError, SyntaxError, IndentationError):
        return False
    body = tree.body[0]
    for node in ast.walk(body):
        if node is not body and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(target, ast.Name) and target.id in OURS:
                return True
    return False


def _problems(name: str, func: Any) -> list[str]:
    doc = inspect.getdoc(func) or ""
    if not doc:
        return [f"{name}: no docstring"]
    sections = set(SECTION.findall(doc))
    out = []
    sig = inspect.signature(func)
    params = [p for p in sig.parameters.values() if p.name not in ("self", "cls")]
    if params and "Parameters" not in sections:
        out.append(f"{name}: no Parameters section")
    ret = sig.return_annotation
    returns_something = ret not in (inspect.Signature.empty, None, "None", "NoReturn")
    if returns_something and not sections & {"Returns", "Yields"}:
        out.append(f"{name}: no Returns section")
    if _raises_ours(func) and "Raises" not in sections:
        out.append(f"{name}: raises a MusLabError but has no Raises section")
    return out


def test_every_public_function_has_numpydoc_sections() -> None:
    problems = [p for name, func in _public() for p in _problems(name, func)]
    assert not problems, f"{len(problems)} docstring problems:\n" + "\n".join(problems)


def test_no_docstring_example_is_skipped_unless_it_needs_the_network() -> None:
    skipped = []
    for path in ROOT.rglob("*.py"):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if "doctest: +SKIP" in line and not re.search(r"https?://|network", line):
                skipped.append(f"{path.relative_to(ROOT.parent)}:{i}: {line.strip()}")
    assert not skipped, "\n".join(skipped)


def test_the_check_can_fail() -> None:
    def bad(x: int) -> int:
        """Summary only."""
        return x

    assert _problems("bad", bad) == ["bad: no Parameters section", "bad: no Returns section"]
