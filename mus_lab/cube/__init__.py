"""Lazy, dask-chunked datacubes on one pixel grid (Sentinel-2's 10 m UTM grid by default).

Example (``tiny`` is a small generated scenario, :func:`mus_lab.testing.tiny_scenario`)
-------
>>> from mus_lab import catalog, cube
>>> s2 = catalog.search(tiny.catalog_path, collections="sentinel-2-l2a")
>>> ds = cube.load(s2, ("red", "nir"))
>>> sorted(ds.data_vars), ds.odc.geobox.crs.epsg
(['nir', 'red'], 32618)
"""

from mus_lab.cube._grid import reference_geobox
from mus_lab.cube._load import DEFAULT_RESAMPLING, has_scaling, load, load_sensors, scaling
from mus_lab.cube._same import (
    GRID_TOLERANCE,
    as_yx,
    check_same_grid,
    describe_grid,
    geobox_of,
    match_grid,
    pixel_area_m2,
    pixel_size_m,
    same_crs,
    same_grid,
    standard_grid,
)
from mus_lab.cube._series import DATE_PATTERN, date_from_name, open_series

__all__ = [
    "DATE_PATTERN",
    "DEFAULT_RESAMPLING",
    "GRID_TOLERANCE",
    "as_yx",
    "check_same_grid",
    "date_from_name",
    "describe_grid",
    "geobox_of",
    "has_scaling",
    "load",
    "load_sensors",
    "match_grid",
    "open_series",
    "pixel_area_m2",
    "pixel_size_m",
    "reference_geobox",
    "same_crs",
    "same_grid",
    "scaling",
    "standard_grid",
]
