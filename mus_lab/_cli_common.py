"""What every ``mus-lab`` command shares: the error exit, option parsers and option types.

A :class:`~mus_lab.errors.MusLabError` (or a bad option) is printed as one red line
``Error: <message>`` on stderr and the command exits with code 2, never with a traceback.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Annotated, NoReturn

import typer

from mus_lab.errors import MusLabError, MusLabWarning

__all__ = [
    "BboxOpt",
    "CatalogArg",
    "DatetimeOpt",
    "OverwriteOpt",
    "bbox_option",
    "csv_list",
    "fail",
    "reporting_errors",
]

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
