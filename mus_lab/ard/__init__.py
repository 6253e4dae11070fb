"""Analysis-ready data: SAR calibration, noise removal and speckle filtering (Sentinel-1, RCM).

The SAR names live in :mod:`mus_lab.ard.sar` and are re-exported here.
"""

from mus_lab.ard.sar import (
    AzimuthNoiseBlock,
    DataMask,
    S1Calibration,
    S1ImageInfo,
    S1Noise,
    SafeFiles,
    SafeProduct,
    VectorLut,
    calibrate,
    data_mask,
    from_db,
    lut_on_grid,
    open_safe,
    open_tiff_lazy,
    read_annotation,
    read_calibration,
    read_noise,
    to_db,
)

__all__ = [
    "AzimuthNoiseBlock",
    "DataMask",
    "S1Calibration",
    "S1ImageInfo",
    "S1Noise",
    "SafeFiles",
    "SafeProduct",
    "VectorLut",
    "calibrate",
    "data_mask",
    "from_db",
    "lut_on_grid",
    "open_safe",
    "open_tiff_lazy",
    "read_annotation",
    "read_calibration",
    "read_noise",
    "to_db",
]
