"""A tiny generated sample scenario, made once per folder and reused (doctests, tests)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mus_lab.sample import Scenario

__all__ = ["tiny_scenario"]

_CACHE: dict[Path, Scenario] = {}


def tiny_scenario(root: str | os.PathLike[str] | None = None, *, size: int = 64) -> Scenario:
    """A small sample scenario (``size`` px, Dec 2021 - Jul 2022), generated once per folder.

    Parameters
    ----------
    root
        Folder to generate into (default: one temporary folder per process).
    size
        Side of the scene in pixels (10 m).

    Returns
    -------
    mus_lab.sample.Scenario
        The generated scenario (``catalog_path`` is its ``catalog.json``).

    Examples
    --------
    >>> sc = tiny_scenario()
    >>> sc.catalog_path.name
    'catalog.json'
    """
    from mus_lab import sample

    base = (
        Path(root) if root is not None else Path(tempfile.gettempdir()) / f"mus_lab-{os.getpid()}"
    )
    folder = base / f"tiny-{size}"
    if folder not in _CACHE:
        if (folder / "scenario.json").is_file():
            _CACHE[folder] = sample.Scenario.open(folder)
        else:
            _CACHE[folder] = sample.generate(
                folder, size=size, seed=3, start="2021-12-01", end="2022-07-31", s2_every_days=20
            )
    return _CACHE[folder]
