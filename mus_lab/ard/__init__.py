"""Analysis-ready data: Sentinel-2 L2A masks, reflectance, gap-filling and features; SAR
calibration, noise removal and speckle filtering (Sentinel-1, RCM).

Functions return lazy, dask-backed xarray objects on the grid they were given.
The SAR names live in :mod:`mus_lab.ard.sar` and are re-exported here.
"""

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
from mus_lab.ard._s2 import S2_BANDS, prepare_s2, reflectance
from mus_lab.ard._s2_metadata import S2L2AMetadata, read_l2a_metadata
from mus_lab.ard._sar_prepare import prepare_rcm, prepare_s1
from mus_lab.ard._timeseries import s2_time_series
from mus_lab.ard.sar import (
    AzimuthNoiseBlock,
    DataMask,
    RcmGcp,
    RcmLut,
    RcmNoiseLevels,
    RcmProduct,
    SafeFiles,
    SafeProduct,
    SpeckleFilterError,
    SpeckleMethod,
    VectorLut,
    calibrate,
    calibrate_rcm,
    data_mask,
    from_db,
    lee_sigma_range,
    lut_on_grid,
    open_rcm,
    open_safe,
    open_tiff_lazy,
    read_annotation,
    read_calibration,
    read_noise,
    read_rcm_lut,
    read_rcm_noise,
    speckle_filter,
    to_db,
    write_rcm_product,
)

__all__ = [
    "QUALITY_BITS",
    "S2CLOUDLESS_BANDS",
    "S2_BANDS",
    "SCL_CLASSES",
    "SCL_INVALID_DEFAULT",
    "SPYNDEX_BANDS",
    "AzimuthNoiseBlock",
    "DataMask",
    "RcmGcp",
    "RcmLut",
    "RcmNoiseLevels",
    "RcmProduct",
    "S2L2AMetadata",
    "SafeFiles",
    "SafeProduct",
    "SpeckleFilterError",
    "SpeckleMethod",
    "VectorLut",
    "calibrate",
    "calibrate_rcm",
    "cloud_probability",
    "data_mask",
    "detect_mask_format",
    "from_db",
    "gapfill",
    "gapfill_array",
    "iota2_features",
    "lee_sigma_range",
    "lut_on_grid",
    "maja_quality",
    "open_rcm",
    "open_safe",
    "open_tiff_lazy",
    "prepare_rcm",
    "prepare_s1",
    "prepare_s2",
    "read_annotation",
    "read_calibration",
    "read_l2a_metadata",
    "read_noise",
    "read_rcm_lut",
    "read_rcm_noise",
    "reflectance",
    "regular_dates",
    "s2_time_series",
    "sar_validity",
    "scl_quality",
    "speckle_filter",
    "spectral_indices",
    "to_db",
    "valid_from_maja",
    "valid_from_scl",
    "write",
    "write_rcm_product",
]
