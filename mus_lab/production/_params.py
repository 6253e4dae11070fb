"""Notebook parameters: parse command-line values and check them against the ``parameters`` cell.

Values are read like papermill's ``-p`` (as YAML: ``3`` is an int, ``[1, 2]`` a list, ``None``
is None, anything else a string; dates stay strings). The expected type of a parameter comes
from its annotation or ``# type:`` comment in the notebook's ``parameters`` cell
(``bbox = None  # type: list|None``), else from the type of its default value; a default of
``None`` without a type accepts anything. Checking happens before any kernel starts.
"""

from __future__ import annotations

import ast
import datetime as dt
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mus_lab.errors import NotebookNotFoundError, NotebookParameterError

__all__ = ["NotebookParameter", "check_parameters", "notebook_parameters", "parse_value"]

_TYPE_NAMES: dict[str, type] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "list": list,
    "tuple": tuple,
    "dict": dict,
    "None": type(None),
    "NoneType": type(None),
}


@dataclass(frozen=True)
class NotebookParameter:
    """One parameter of a notebook's ``parameters`` cell.

    Attributes
    ----------
    name, default, help
        As written in the cell (``default`` is the source text).
    types
        Accepted Python types, or ``None`` when any value is accepted.
    """

    name: str
    default: str
    help: str
    types: tuple[type, ...] | None

    def example(self) -> str:
        """A value to show in messages: the default, else one of the right type."""
        if self.default != "None" or self.types is None:
            return self.default
        examples: dict[type, str] = {
            list: '"[a, b, ...]"',
            tuple: '"[a, b, ...]"',
            dict: '"{key: value}"',
            int: "3",
            float: "0.5",
            bool: "True",
        }
        first = next(t for t in self.types if t is not type(None))
        return examples.get(first, "TEXT")

    def describe_type(self) -> str:
        if self.types is None:
            return "any value"
        return " or ".join("None" if t is type(None) else t.__name__ for t in self.types)

    def accepts(self, value: Any) -> bool:
        if self.types is None:
            return True
        for t in self.types:
            if t is float and isinstance(value, int | float) and not isinstance(value, bool):
                return True
            if t is int and isinstance(value, int) and not isinstance(value, bool):
                return True
            if t in (list, tuple) and isinstance(value, list | tuple):
                return True
            if t not in (int, float) and isinstance(value, t):
                return True
        return False


def _types_from_annotation(text: str) -> tuple[type, ...] | None:
    text = text.strip().strip("\"'")
    optional = re.fullmatch(r"Optional\[(.*)\]", text)
    if optional:
        text = f"{optional.group(1)}|None"
    out: list[type] = []
    for part in text.split("|"):
        base = re.sub(r"\[.*\]$", "", part.strip())
        if base not in _TYPE_NAMES:
            return None  # a type we do not check
        out.append(_TYPE_NAMES[base])
    return tuple(out)


def _types_from_default(default: str) -> tuple[type, ...] | None:
    try:
        value = ast.literal_eval(default)
    except (ValueError, SyntaxError):
        return None
    if value is None:
        return None
    return (type(value),)


def notebook_parameters(notebook: str | os.PathLike[str]) -> dict[str, NotebookParameter]:
    """The parameters declared in a notebook's cell tagged ``parameters``, by name.

    Parameters
    ----------
    notebook
        The ``.ipynb`` file.

    Returns
    -------
    dict of str to NotebookParameter
        In the order of the cell; empty when no cell is tagged ``parameters``.

    Raises
    ------
    NotebookNotFoundError
        The notebook does not exist.

    Example
    -------
    >>> from mus_lab.production import repository_path
    >>> params = notebook_parameters(repository_path("notebooks") / "01_search_and_load.ipynb")
    >>> params["bbox"].types, params["max_cloud"].default
    ((<class 'list'>, <class 'NoneType'>), '60.0')
    """
    import papermill as pm

    path = Path(notebook)
    if not path.is_file():
        raise NotebookNotFoundError(
            f"Notebook {path} not found: give the path of an .ipynb file "
            "(the curated ones are in the repository's notebooks/ folder)."
        )
    out: dict[str, NotebookParameter] = {}
    for name, spec in pm.inspect_notebook(str(path)).items():
        type_name = str(spec.get("inferred_type_name") or "None")
        default = str(spec.get("default") or "None")
        types = (
            _types_from_annotation(type_name)
            if type_name != "None"
            else _types_from_default(default)
        )
        out[name] = NotebookParameter(name, default, str(spec.get("help") or ""), types)
    return out


def parse_value(text: str) -> Any:
    """Read a command-line parameter value as papermill's ``-p`` does (YAML, dates as text).

    Parameters
    ----------
    text
        The value as typed after ``-p NAME``.

    Returns
    -------
    Any
        An int, float, bool, None, list or dict where YAML reads one, else the text itself.

    Examples
    --------
    >>> parse_value("3"), parse_value("0.5"), parse_value("[1, 2]"), parse_value("None")
    (3, 0.5, [1, 2], None)
    >>> parse_value("2022-03-01"), parse_value("2022-03-01/2022-08-31")
    ('2022-03-01', '2022-03-01/2022-08-31')
    """
    if text in ("None", "none", "null", "~"):
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if value is None:
        return text
    return _dates_as_text(value)


def _dates_as_text(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_dates_as_text(v) for v in value]
    if isinstance(value, dict):
        return {k: _dates_as_text(v) for k, v in value.items()}
    return value


def check_parameters(
    notebook: str | os.PathLike[str],
    parameters: Mapping[str, Any],
    *,
    declared: Mapping[str, NotebookParameter] | None = None,
) -> None:
    """Check names and types of ``parameters`` against the notebook's ``parameters`` cell.

    Parameters
    ----------
    notebook
        The ``.ipynb`` file (named in the messages).
    parameters
        The values to give it.
    declared
        Its parameters, when already read with :func:`notebook_parameters`.

    Returns
    -------
    None
        Nothing: the parameters are fine when no error is raised.

    Raises
    ------
    NotebookParameterError
        A name the notebook does not declare, a value of the wrong type, or a notebook
        without a cell tagged ``parameters`` that is given parameters.
    NotebookNotFoundError
        The notebook does not exist.

    Example
    -------
    >>> from mus_lab.production import repository_path
    >>> nb = repository_path("notebooks") / "01_search_and_load.ipynb"
    >>> check_parameters(nb, {"max_cloud": 30, "bbox": None})
    >>> check_parameters(nb, {"max_cloud": "low"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mus_lab.errors.NotebookParameterError: Parameter 'max_cloud' of 01_search_and_load.ipynb must be float ...
    """
    name = Path(notebook).name
    known = notebook_parameters(notebook) if declared is None else declared
    if parameters and not known:
        raise NotebookParameterError(
            f"{name} has no cell tagged 'parameters', so it takes no parameters: tag its first "
            "code cell 'parameters' (see docs/notebook-template.md) or run it without -p."
        )
    for key, value in parameters.items():
        if key not in known:
            raise NotebookParameterError(
                f"{name} has no parameter {key!r}: choose among {_names(known)} "
                f"(mus-lab run {name} --help-parameters lists them)."
            )
        spec = known[key]
        if not spec.accepts(value):
            hint = f" ({spec.help})" if spec.help else ""
            raise NotebookParameterError(
                f"Parameter {key!r} of {name} must be {spec.describe_type()}{hint}, "
                f"got {type(value).__name__} {value!r}: pass e.g. -p {key} {spec.example()}."
            )


def _names(params: Iterable[str]) -> str:
    return ", ".join(sorted(params))
