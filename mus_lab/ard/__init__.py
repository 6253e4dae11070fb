"""Analysis-ready data: Sentinel-2 L2A masks and reflectance, gap-filling and features, SAR.

Functions return lazy, dask-backed xarray objects on the grid they were given.
"""

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
from mus_lab.ard._s2_metadata import S2L2AMetadata, read_l2a_metadata

__all__ = [
    "QUALITY_BITS",
    "SCL_CLASSES",
    "SCL_INVALID_DEFAULT",
    "SPYNDEX_BANDS",
    "S2L2AMetadata",
    "detect_mask_format",
    "gapfill",
    "gapfill_array",
    "iota2_features",
    "maja_quality",
    "read_l2a_metadata",
    "regular_dates",
    "scl_quality",
    "spectral_indices",
    "valid_from_maja",
    "valid_from_scl",
]
