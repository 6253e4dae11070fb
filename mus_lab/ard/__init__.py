"""Analysis-ready data: Sentinel-2 L2A masks, reflectance, gap-filling and features; SAR
calibration, noise removal and speckle filtering (Sentinel-1, RCM).

Functions return lazy, dask-backed xarray objects on the grid they were given.
The SAR names live in :mod:`mus_lab.ard.sar` and are re-exported here.
"""

from mus_lab.ard import external
from mus_lab.ard._clouds import S2CLOUDLESS_BANDS, cloud_probability
from mus_lab.ard._features import SPYNDEX_BANDS, iota2_features, spectral_indices
from mus_lab.ard._gapfill import gapfill, gapfill_array, regular_dates
from mus_lab.ard._masks import (
    QUALITY_BITS,
    SCL_CLASSES,
    SCL_INVALID_DEFAULT,
    detect_mask_format,
    maja_quality,
    scl_quality,
    valid_from_maja,
    valid_from_scl,
)
from mus_lab.ard._publish import sar_validity, write
from mus_lab.ard._s2 import S2_BANDS, S2Options, prepare_s2, reflectance
from mus_lab.ard._s2_metadata import S2L2AMetadata, parse_l2a_metadata, read_l2a_metadata
from mus_lab.ard._s2_products import MAJA_MASKS, s2_product_item, s2_product_items
from mus_lab.ard._timeseries import s2_time_series
from mus_lab.ard.sar import *  # noqa: F403  (the SAR surface, listed once in sar.__all__)
from mus_lab.ard.sar import __all__ as _sar_all

__all__ = [
    "MAJA_MASKS",
    "QUALITY_BITS",
    "S2CLOUDLESS_BANDS",
    "S2_BANDS",
    "SCL_CLASSES",
    "SCL_INVALID_DEFAULT",
    "SPYNDEX_BANDS",
    "S2L2AMetadata",
    "S2Options",
    "cloud_probability",
    "detect_mask_format",
    "external",
    "gapfill",
    "gapfill_array",
    "iota2_features",
    "maja_quality",
    "parse_l2a_metadata",
    "prepare_s2",
    "read_l2a_metadata",
    "reflectance",
    "regular_dates",
    "s2_product_item",
    "s2_product_items",
    "s2_time_series",
    "sar_validity",
    "scl_quality",
    "spectral_indices",
    "valid_from_maja",
    "valid_from_scl",
    "write",
    *_sar_all,
]
