"""SAR analysis-ready data: Sentinel-1 GRD and RCM calibration, noise removal, speckle filters.

The public SAR surface of :mod:`mus_lab.ard`; import from here or from ``mus_lab.ard``.
All functions accept numpy arrays, dask arrays or xarray objects and keep lazy inputs lazy.

Example
-------
>>> import numpy as np
>>> from mus_lab.ard.sar import to_db, from_db
>>> float(to_db(from_db(np.float32(-12.5))))
-12.5
"""

from mus_lab.ard._compact_pol import (
    COMPACT_POL_PRODUCTS,
    CompactPolError,
    compact_pol,
    mchi,
    stokes,
)
from mus_lab.ard._rcm import (
    RcmGcp,
    RcmGeolocationError,
    RcmLut,
    RcmNoiseLevels,
    RcmProduct,
    calibrate_rcm,
    open_rcm,
    read_rcm_lut,
    read_rcm_noise,
)
from mus_lab.ard._rcm_ard import (
    RCM_ARD_EXTRAS,
    RCM_ARD_MASK_BITS,
    RcmArdOptions,
    prepare_rcm_ard,
)
from mus_lab.ard._s1 import (
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
    lut_on_grid,
    open_safe,
    read_annotation,
    read_calibration,
    read_noise,
)
from mus_lab.ard._s1_geocode import S1Geocoding, geocode_s1
from mus_lab.ard._s1_geometry import S1Geometry, read_geometry
from mus_lab.ard._sar_checks import check_backscatter
from mus_lab.ard._sar_common import from_db, open_tiff_lazy, to_db
from mus_lab.ard._sar_prepare import SarOptions, prepare_rcm, prepare_s1
from mus_lab.ard._sar_product import SarProduct
from mus_lab.ard._speckle import (
    SpeckleFilterError,
    SpeckleMethod,
    lee_sigma_range,
    speckle_filter,
)

__all__ = [
    "COMPACT_POL_PRODUCTS",
    "RCM_ARD_EXTRAS",
    "RCM_ARD_MASK_BITS",
    "AzimuthNoiseBlock",
    "CompactPolError",
    "DataMask",
    "RcmArdOptions",
    "RcmGcp",
    "RcmGeolocationError",
    "RcmLut",
    "RcmNoiseLevels",
    "RcmProduct",
    "S1Calibration",
    "S1Geocoding",
    "S1Geometry",
    "S1ImageInfo",
    "S1Noise",
    "SafeFiles",
    "SafeProduct",
    "SarOptions",
    "SarProduct",
    "SpeckleFilterError",
    "SpeckleMethod",
    "VectorLut",
    "calibrate",
    "calibrate_rcm",
    "check_backscatter",
    "compact_pol",
    "data_mask",
    "from_db",
    "geocode_s1",
    "lee_sigma_range",
    "lut_on_grid",
    "mchi",
    "open_rcm",
    "open_safe",
    "open_tiff_lazy",
    "prepare_rcm",
    "prepare_rcm_ard",
    "prepare_s1",
    "read_annotation",
    "read_calibration",
    "read_geometry",
    "read_noise",
    "read_rcm_lut",
    "read_rcm_noise",
    "speckle_filter",
    "stokes",
    "to_db",
]
