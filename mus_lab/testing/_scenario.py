"""A tiny generated sample scenario, made once per folder and reused (doctests, tests)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mus_lab.sample import Scenario

__all__ = ["separable_scenario", "tiny_scenario"]

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


def separable_scenario(root: str | os.PathLike[str], *, size: int = 128, seed: int = 3) -> Scenario:
    """The tests' scenario: Dec 2021 - Jul 2022, S2 every 20 days, S1 12, RCM 24, no realism.

    Separable classes (``Realism.off()``): the calibrated realism of the demo needs the late
    summer to tell leys from crops, which this short series lacks. The test suite's shared
    ``scenario`` fixture and the benchmarks that mirror its chains generate it.

    Parameters
    ----------
    root
        Folder to generate into.
    size
        Side of the scene in pixels (10 m).
    seed
        Random seed of the generator.

    Returns
    -------
    mus_lab.sample.Scenario
        The generated scenario.
    """
    from mus_lab import sample

    return sample.generate(
        root,
        size=size,
        seed=seed,
        start="2021-12-01",
        end="2022-07-31",
        s2_every_days=20,
        s1_every_days=12,
        rcm_every_days=24,
        realism=sample.Realism.off(),
    )
