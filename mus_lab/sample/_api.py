"""The public entry point :func:`generate`."""

from __future__ import annotations

import os
from pathlib import Path

from mus_lab.sample import _generate, _io
from mus_lab.sample._params import Realism, make_params
from mus_lab.sample._scenario import Scenario

__all__ = ["generate"]

_VERSION = "0.1.0"


def generate(
    out_dir: str | os.PathLike[str],
    *,
    size: int = 256,
    seed: int = 42,
    start: str = "2021-11-01",
    end: str = "2022-10-31",
    s2_every_days: int = 10,
    s1_every_days: int = 12,
    rcm_every_days: int = 16,
    sensors: tuple[str, ...] = ("s2", "s1", "rcm"),
    realism: Realism | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> Scenario:
    """Generate the sample scenario into ``out_dir``.

    The folder is built under a temporary sibling name and renamed at the end, so
    ``out_dir`` either holds a complete scenario or does not exist.

    Parameters
    ----------
    out_dir : str or path
        Folder to create.
    size : int
        Width and height in 10 m Sentinel-2 pixels; even, 64 to 10980.
    seed : int
        Random seed; the same seed gives identical pixels.
    start, end : str
        First and last day (ISO dates) of the time series.
    s2_every_days, s1_every_days, rcm_every_days : int
        Revisit interval of each sensor in days.
    sensors : tuple of str
        Any of ``"s2"``, ``"s1"``, ``"rcm"``; DEM and truth are always written.
    realism : Realism, optional
        How confusable the land-cover classes are (mixed pixels at edges, within-class
        variability, classes one sensor family confuses, a cloudy spell, label noise);
        ``None``: the calibrated defaults, ``Realism()``. ``Realism.off()`` gives easily
        separable classes (docs/design/0015-scenario-realism.md).
    overwrite : bool
        Replace an existing ``out_dir`` (the old one is removed only on success).
    progress : bool
        Show a progress bar over the rasters written.

    Returns
    -------
    Scenario
        Paths, dates, grid and legend of what was written.

    Raises
    ------
    SampleError
        If an argument is impossible or ``out_dir`` exists without ``overwrite``.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from mus_lab.sample import generate
    >>> folder = tempfile.TemporaryDirectory()
    >>> scn = generate(Path(folder.name) / "scenario", size=64, end="2021-11-30")
    >>> scn.dates["s2"][:2]
    ('2021-11-01', '2021-11-11')
    >>> print(scn.summary())  # doctest: +ELLIPSIS
    mus_lab sample scenario at ...
    >>> folder.cleanup()
    """
    params = make_params(
        size=size,
        seed=seed,
        start=start,
        end=end,
        s2_every_days=s2_every_days,
        s1_every_days=s1_every_days,
        rcm_every_days=rcm_every_days,
        sensors=sensors,
        realism=realism,
    )
    out = Path(out_dir).absolute()
    with _io.atomic_folder(out, overwrite=overwrite) as tmp:
        _generate.build(tmp, out, params, progress=progress, version=_VERSION)
    return Scenario.open(out)
