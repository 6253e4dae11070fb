"""What every ``mus-lab`` command shares: the error exit, option parsers and option types.

A :class:`~mus_lab.errors.MusLabError` (or a bad option) is printed as one red line
``Error: <message>`` on stderr and the command exits with code 2, never with a traceback.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Callable, Iterator
from typing import Annotated, NoReturn, TypeVar

import typer

from mus_lab.errors import MusLabError, MusLabWarning

__all__ = [
    "BboxOpt",
    "CatalogArg",
    "DatetimeOpt",
    "OverwriteOpt",
    "bbox_option",
    "command_doc",
    "csv_list",
    "fail",
    "reporting_errors",
]

_F = TypeVar("_F", bound=Callable[..., object])

CatalogArg = Annotated[str, typer.Argument(help="Local catalog (folder or catalog.json).")]
BboxOpt = Annotated[str | None, typer.Option(help="min_lon,min_lat,max_lon,max_lat in degrees.")]
DatetimeOpt = Annotated[str | None, typer.Option(help="Interval, e.g. 2022-03-01/2022-08-31.")]
OverwriteOpt = Annotated[bool, typer.Option(help="Replace an existing output.")]


def fail(error: MusLabError | str) -> NoReturn:
    """Print ``Error: <message>`` on one line (stderr) and exit with code 2.

    Parameters
    ----------
    error
        The error raised by the package, or a message about a bad option.

    Raises
    ------
    typer.Exit
        Always, with code 2.
    """
    message = " ".join(str(error).split())
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@contextlib.contextmanager
def reporting_errors(*, show_warnings: bool = False) -> Iterator[None]:
    """Turn a :class:`MusLabError` raised in the block into :func:`fail`'s one-line message.

    Parameters
    ----------
    show_warnings
        Also print every :class:`MusLabWarning` issued in the block as ``Warning: ...``.

    Raises
    ------
    typer.Exit
        With code 2 when the block raised a :class:`MusLabError`.
    """
    with contextlib.ExitStack() as stack:
        caught: list[warnings.WarningMessage] = []
        if show_warnings:
            caught = stack.enter_context(warnings.catch_warnings(record=True))
            warnings.simplefilter("always", MusLabWarning)
        try:
            yield
        except MusLabError as exc:
            _print_warnings(caught)
            fail(exc)
        _print_warnings(caught)


def _print_warnings(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        if issubclass(w.category, MusLabWarning):
            typer.secho(f"Warning: {w.message}", fg=typer.colors.YELLOW, err=True)


def csv_list(value: str | None) -> list[str]:
    """Split a comma-separated option into its non-empty, stripped parts.

    Parameters
    ----------
    value
        ``"a, b,c"`` or ``None``.

    Returns
    -------
    list of str
        ``["a", "b", "c"]``; empty for ``None`` or ``""``.
    """
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def bbox_option(value: str | None) -> tuple[float, float, float, float] | None:
    """Parse a ``--bbox w,s,e,n`` option with :func:`mus_lab.catalog.parse_bbox`.

    Parameters
    ----------
    value
        The option's text, or ``None`` when it was not given.

    Returns
    -------
    tuple of float or None
        ``(min_lon, min_lat, max_lon, max_lat)``, or ``None``.

    Raises
    ------
    typer.Exit
        With code 2 and the parser's message when the box is malformed.
    """
    if not value:
        return None
    from mus_lab.catalog import parse_bbox

    try:
        return parse_bbox(value)
    except MusLabError as exc:
        fail(exc)


def command_doc(params: str, *, exit_1: str | None = None) -> Callable[[_F], _F]:
    """Append numpydoc Parameters and Raises sections to a command's docstring.

    They follow a ``\\f`` line, so that ``--help`` shows only the summary above it.

    Parameters
    ----------
    params
        The command's parameter names, comma-separated (their help is in their options).
    exit_1
        When the command also exits with code 1: on what.

    Returns
    -------
    callable
        A decorator that returns the command itself, its docstring completed.
    """
    also = f"; code 1 when {exit_1}" if exit_1 else ""
    sections = (
        f"\n\n\f\nParameters\n----------\n{params}\n"
        "    The arguments and options described by the command's ``--help``.\n\n"
        "Raises\n------\ntyper.Exit\n"
        f"    Code 2, with a one-line ``Error:`` message, on a bad option or a MusLabError{also}.\n"
    )

    def decorate(command: _F) -> _F:
        command.__doc__ = inspect.cleandoc(command.__doc__ or "") + sections
        return command

    return decorate
