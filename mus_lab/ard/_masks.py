"""Per-pixel quality from Sen2Cor SCL or MAJA/THEIA masks, as one bit-coded layer.

Quality bits (``quality`` variable, uint8), CEOS-ARD style:

====  =======================================================
bit   meaning
====  =======================================================
0     no data (outside the swath, SCL 0, MAJA EDG)
1     saturated or defective (SCL 1, MAJA SAT)
2     cloud (SCL 8, 9; MAJA CLM cloud bits)
3     cloud shadow (SCL 3; MAJA CLM shadow bits / MG2 bit 3)
4     snow or ice (SCL 11; MAJA MG2 bit 2)
5     thin cirrus (SCL 10; MAJA CLM bit 4 / 7)
6     dark area or topographic shadow (SCL 2; MAJA MG2 bit 4)
7     water (SCL 6; MAJA MG2 bit 0), information only
====  =======================================================

A pixel-date is invalid when its SCL class is in the invalid set (default
``{0, 1, 3, 8, 9, 10}``, METHODS.md section 1) or, for MAJA, when CLM, SAT or EDG
is not zero (IOTA²'s rule).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import xarray as xr

from mus_lab.contracts import OPTICAL_QUALITY_BITS
from mus_lab.errors import ARDError

__all__ = [
    "QUALITY_BITS",
    "SCL_CLASSES",
    "SCL_INVALID_DEFAULT",
    "detect_mask_format",
    "maja_quality",
    "scl_quality",
    "valid_from_maja",
    "valid_from_scl",
]

SCL_CLASSES = {
    0: "no data",
    1: "saturated or defective",
    2: "dark area / topographic shadow",
    3: "cloud shadow",
    4: "vegetation",
    5: "not vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud medium probability",
    9: "cloud high probability",
    10: "thin cirrus",
    11: "snow",
}
SCL_INVALID_DEFAULT: tuple[int, ...] = (0, 1, 3, 8, 9, 10)
#: Quality bits of optical ARD: the contract's (:data:`mus_lab.contracts.OPTICAL_QUALITY_BITS`).
QUALITY_BITS = OPTICAL_QUALITY_BITS
_SCL_BITS = {
    0: "nodata",
    1: "saturated",
    2: "dark",
    3: "shadow",
    6: "water",
    8: "cloud",
    9: "cloud",
    10: "cirrus",
    11: "snow",
}

MaskFormat = Literal["scl", "maja"]


def detect_mask_format(ds: xr.Dataset) -> MaskFormat:
    """Which cloud mask a loaded cube carries: Sen2Cor ``scl`` or MAJA/THEIA ``clm``/``edg``.

    Parameters
    ----------
    ds : xarray.Dataset
        A Sentinel-2 cube loaded with its mask variables.

    Returns
    -------
    {"scl", "maja"}
        ``"scl"`` for Sen2Cor (an ``scl`` variable), ``"maja"`` for MAJA/THEIA.

    Raises
    ------
    ARDError
        Neither mask is in the cube.

    Examples
    --------
    >>> detect_mask_format(xr.Dataset({"red": 0, "scl": 4}))
    'scl'
    """
    names = {str(n).lower() for n in ds.data_vars}
    if "scl" in names:
        return "scl"
    if {"clm", "sat", "edg"} <= names or {"clm", "edg"} <= names:
        return "maja"
    raise ARDError(
        f"No cloud mask found among {sorted(names)}: load 'scl' (Sen2Cor) or 'clm', 'mg2', "
        "'sat', 'edg' (MAJA/THEIA) with the reflectance bands."
    )


def _check_classes(invalid: Iterable[int]) -> tuple[int, ...]:
    out = tuple(int(c) for c in invalid)
    unknown = [c for c in out if c not in SCL_CLASSES]
    if unknown:
        raise ARDError(f"Unknown SCL classes {unknown}: SCL classes are 0-11 ({SCL_CLASSES}).")
    return out


def valid_from_scl(scl: xr.DataArray, invalid: Iterable[int] = SCL_INVALID_DEFAULT) -> xr.DataArray:
    """True where the Sen2Cor scene classification is not in ``invalid`` (lazy).

    Parameters
    ----------
    scl : xarray.DataArray
        Sen2Cor SCL classes (0-11).
    invalid : iterable of int, optional
        Classes to reject, default :data:`SCL_INVALID_DEFAULT` (no data, saturated,
        cloud shadow, clouds, cirrus).

    Returns
    -------
    xarray.DataArray
        bool, same shape and laziness as ``scl``.

    Raises
    ------
    ARDError
        A class of ``invalid`` is not an SCL class.

    Examples
    --------
    >>> valid_from_scl(xr.DataArray([4, 8, 5])).values
    array([ True, False,  True])
    """
    return ~scl.isin(list(_check_classes(invalid)))


def scl_quality(scl: xr.DataArray) -> xr.DataArray:
    """The bit-coded quality layer from Sen2Cor SCL (bits: :data:`QUALITY_BITS`).

    Parameters
    ----------
    scl : xarray.DataArray
        Sen2Cor SCL classes (0-11).

    Returns
    -------
    xarray.DataArray
        uint8 ``quality``, same shape and laziness as ``scl``.

    Raises
    ------
    None
        Nothing on purpose: unknown classes set no bit.

    Examples
    --------
    >>> int(scl_quality(xr.DataArray([9])).values[0]) == 1 << QUALITY_BITS["cloud"]
    True
    """
    q = xr.zeros_like(scl, dtype="uint8")
    for cls, name in _SCL_BITS.items():
        q = q | xr.where(scl == cls, 1 << QUALITY_BITS[name], 0).astype("uint8")
    return q.rename("quality")


def _bit(a: xr.DataArray, bit: int) -> xr.DataArray:
    return (a.astype("uint8") >> bit) & 1


def maja_quality(
    clm: xr.DataArray,
    edg: xr.DataArray,
    sat: xr.DataArray | None = None,
    mg2: xr.DataArray | None = None,
) -> xr.DataArray:
    """Quality bits (:data:`QUALITY_BITS`) from the MAJA/THEIA masks (THEIA bit order).

    Parameters
    ----------
    clm : xarray.DataArray
        ``CLM`` cloud mask bits.
    edg : xarray.DataArray
        ``EDG`` edge (no data) mask.
    sat : xarray.DataArray, optional
        ``SAT`` saturation mask.
    mg2 : xarray.DataArray, optional
        ``MG2`` geophysical mask (water, snow, shadows, dark).

    Returns
    -------
    xarray.DataArray
        uint8 ``quality``, lazy when the inputs are.

    Raises
    ------
    None
        Nothing on purpose: absent optional masks set no bit.

    Examples
    --------
    >>> q = maja_quality(xr.DataArray([2, 0]), xr.DataArray([0, 1]))
    >>> [int(v) for v in q.values] == [1 << QUALITY_BITS["cloud"], 1 << QUALITY_BITS["nodata"]]
    True
    """
    q = xr.where(edg != 0, 1 << QUALITY_BITS["nodata"], 0)
    if sat is not None:
        q = q | xr.where(sat != 0, 1 << QUALITY_BITS["saturated"], 0)
    cloud = (_bit(clm, 1) | _bit(clm, 2) | _bit(clm, 3)) == 1
    shadow = (_bit(clm, 5) | _bit(clm, 6)) == 1
    cirrus = (_bit(clm, 4) | _bit(clm, 7)) == 1
    q = q | xr.where(cloud, 1 << QUALITY_BITS["cloud"], 0)
    q = q | xr.where(shadow, 1 << QUALITY_BITS["shadow"], 0)
    q = q | xr.where(cirrus, 1 << QUALITY_BITS["cirrus"], 0)
    if mg2 is not None:
        q = q | xr.where(_bit(mg2, 0) == 1, 1 << QUALITY_BITS["water"], 0)
        q = q | xr.where(_bit(mg2, 2) == 1, 1 << QUALITY_BITS["snow"], 0)
        q = q | xr.where(_bit(mg2, 3) == 1, 1 << QUALITY_BITS["shadow"], 0)
        q = q | xr.where(_bit(mg2, 4) == 1, 1 << QUALITY_BITS["dark"], 0)
    return q.astype("uint8").rename("quality")


def valid_from_maja(
    clm: xr.DataArray, edg: xr.DataArray, sat: xr.DataArray | None = None
) -> xr.DataArray:
    """IOTA²'s rule for MAJA/THEIA masks: valid where CLM, SAT and EDG are all zero.

    Parameters
    ----------
    clm, edg : xarray.DataArray
        ``CLM`` cloud and ``EDG`` edge masks.
    sat : xarray.DataArray, optional
        ``SAT`` saturation mask.

    Returns
    -------
    xarray.DataArray
        bool, lazy when the inputs are.

    Raises
    ------
    None
        Nothing on purpose: the masks only need to broadcast.

    Examples
    --------
    >>> valid_from_maja(xr.DataArray([0, 2]), xr.DataArray([0, 0])).values
    array([ True, False])
    """
    ok = (clm == 0) & (edg == 0)
    if sat is not None:
        ok = ok & (sat == 0)
    return ok
