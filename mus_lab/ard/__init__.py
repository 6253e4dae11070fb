"""Analysis-ready data: Sentinel-2 L2A masks and reflectance, gap-filling and features, SAR.

Functions return lazy, dask-backed xarray objects on the grid they were given.
"""

from mus_lab.ard._gapfill import gapfill, gapfill_array, regular_dates

__all__ = ["gapfill", "gapfill_array", "regular_dates"]
