"""The :class:`Scenario` manifest returned by ``generate`` and read from ``scenario.json``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mus_lab.errors import SampleError

__all__ = ["Scenario"]


@dataclass(frozen=True)
class Scenario:
    """A generated scenario on disk.

    Attributes
    ----------
    root : Path
        The scenario folder.
    catalog_path : Path
        ``catalog.json`` of the self-contained STAC catalog.
    legend : Mapping[int, str]
        Land-cover codes and names.
    dates : Mapping[str, tuple[str, ...]]
        ISO dates per sensor (``s2``, ``s1``, ``rcm``).
    crs, transform, shape
        The Sentinel-2 10 m grid: CRS string, affine as a 6-tuple, (rows, cols).
    bbox : tuple of float
        (west, south, east, north) in degrees.
    polygons, landcover : Path
        Reference polygons (GeoPackage, layer ``reference``) and land-cover COG.
    flood_dates : tuple of str
        SAR dates on which flood water is present.
    seed, size : int
        Generation parameters.

    Examples
    --------
    ``tiny`` is a 64 px scenario made by :func:`mus_lab.sample.generate`:

    >>> scn = Scenario.open(tiny.root)
    >>> scn.size, scn.shape, sorted(scn.dates)
    (64, (64, 64), ['rcm', 's1', 's2'])
    """

    root: Path
    catalog_path: Path
    legend: Mapping[int, str]
    dates: Mapping[str, tuple[str, ...]]
    crs: str
    transform: tuple[float, ...]
    shape: tuple[int, int]
    bbox: tuple[float, float, float, float]
    polygons: Path
    landcover: Path
    flood_dates: tuple[str, ...]
    seed: int
    size: int

    @classmethod
    def open(cls, path: str | Path) -> Scenario:
        """Read a scenario folder (or its ``scenario.json``).

        Parameters
        ----------
        path
            The folder made by :func:`mus_lab.sample.generate`, or its ``scenario.json``.

        Returns
        -------
        Scenario
            Its manifest, paths made absolute.

        Raises
        ------
        SampleError
            If no readable ``scenario.json`` is there.

        Examples
        --------
        >>> Scenario.open(tiny.root / "scenario.json").catalog_path.name
        'catalog.json'
        """
        path = Path(path)
        manifest = path / "scenario.json" if path.is_dir() else path
        try:
            doc = json.loads(manifest.read_text())
        except (OSError, ValueError) as exc:
            raise SampleError(
                f"cannot read {manifest}: point Scenario.open at a folder made by "
                "mus_lab.sample.generate"
            ) from exc
        root = manifest.parent.resolve()
        grid = doc["grid"]
        return cls(
            root=root,
            catalog_path=root / doc["paths"]["catalog"],
            legend={int(k): v for k, v in doc["legend"].items()},
            dates={k: tuple(v) for k, v in doc["dates"].items()},
            crs=grid["crs"],
            transform=tuple(grid["transform"]),
            shape=(int(grid["shape"][0]), int(grid["shape"][1])),
            bbox=(doc["bbox"][0], doc["bbox"][1], doc["bbox"][2], doc["bbox"][3]),
            polygons=root / doc["paths"]["polygons"],
            landcover=root / doc["paths"]["landcover"],
            flood_dates=tuple(doc["flood"]["dates"]),
            seed=int(doc["parameters"]["seed"]),
            size=int(doc["parameters"]["size"]),
        )

    def summary(self) -> str:
        """A short human description of what was made and where.

        Returns
        -------
        str
            Several lines: grid, dates per sensor, flood dates and paths.

        Examples
        --------
        >>> print(Scenario.open(tiny.root).summary())  # doctest: +ELLIPSIS
        mus_lab sample scenario at ...
          grid: 64 x 64 px of 10 m in EPSG:32618, ...
        """
        lines = [
            f"mus_lab sample scenario at {self.root}",
            f"  grid: {self.shape[1]} x {self.shape[0]} px of 10 m in {self.crs}, "
            f"bbox {tuple(round(v, 4) for v in self.bbox)}, seed {self.seed}",
        ]
        for sensor, days in self.dates.items():
            if days:
                lines.append(f"  {sensor}: {len(days)} dates {days[0]} .. {days[-1]}")
        flood = ", ".join(self.flood_dates) if self.flood_dates else "none"
        lines += [
            f"  flood on SAR dates: {flood}",
            f"  STAC catalog: {self.catalog_path}",
            f"  land cover: {self.landcover}",
            f"  reference polygons: {self.polygons}",
        ]
        return "\n".join(lines)
