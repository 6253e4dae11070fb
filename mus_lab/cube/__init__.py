"""Lazy, dask-chunked datacubes on one pixel grid (Sentinel-2's 10 m UTM grid by default).

Example
-------
>>> from mus_lab import catalog, cube, sample
>>> sc = sample.generate("/tmp/mus_lab_doc", size=64, overwrite=True)  # doctest: +SKIP
>>> s2 = catalog.search(sc.catalog_path, collections="sentinel-2-l2a")  # doctest: +SKIP
>>> ds = cube.load(s2, ("red", "nir"))  # doctest: +SKIP
"""

from mus_lab.cube._grid import check_same_grid, geobox_of, reference_geobox
from mus_lab.cube._load import DEFAULT_RESAMPLING, has_scaling, load, load_sensors, scaling

__all__ = [
    "DEFAULT_RESAMPLING",
    "check_same_grid",
    "geobox_of",
    "has_scaling",
    "load",
    "load_sensors",
    "reference_geobox",
    "scaling",
]
