"""Compact-polarimetric (RCM CTLR) products of the covariance: Stokes, m-chi, RH/RV synthesis.

RCM compact-pol transmits right-circular and receives two orthogonal polarisations. Its
CEOS-ARD product (``rcm-ard``, EODMS) gives the circular-basis covariance: ``rr`` =
<|RR|^2>, ``rl`` = <|RL|^2> (gamma0 intensities) and ``rrrl`` = <RR RL*> (complex, its real
and imaginary parts as two bands). Level-1 products give the linear receive pair RH, RV.

Conventions (written once here, tested against the executed EODMS notebook)
----------------------------------------------------------------------------
The receive basis is ``R = (H + iV)/sqrt(2)``, ``L = (H - iV)/sqrt(2)``, so the linear
receive pair synthesised from the circular one is::

    <|RH|^2> = (rr + rl)/2 + Re<RR RL*>      <|RV|^2> = (rr + rl)/2 - Re<RR RL*>
    Re<RH RV*> = Im<RR RL*>                 Im<RH RV*> = (rr - rl)/2

and the Stokes vector (Raney's compact-pol definition, 0-based) is::

    S0 = <|RH|^2> + <|RV|^2> = rr + rl
    S1 = <|RH|^2> - <|RV|^2> = 2 Re<RR RL*>
    S2 = 2 Re<RH RV*>         = 2 Im<RR RL*>
    S3 = -2 Im<RH RV*>        = rl - rr

The degree of polarisation ``m = sqrt(S1^2 + S2^2 + S3^2) / S0``, the relative phase
``delta = atan2(S3, S2)`` (degrees) and ``sin 2chi = S3 / (m S0)``. The m-chi decomposition
is the one of EODMS' ``mchi_decomposition.ipynb`` (eodms-sgdot/rcm-ard-stac-examples)::

    surface (odd bounce)   = S0 m (1 + sin 2chi) / 2
    double bounce (even)   = S0 m (1 - sin 2chi) / 2
    volume (random)        = S0 (1 - m)

(powers, not Raney's square-root amplitudes). The notebook names ``2 Im<RR RL*>`` S1 and
``2 Re<RR RL*>`` S2, the other way round from the synthesis above; ``m``, ``chi`` and the
m-chi powers depend on ``S1^2 + S2^2`` only and are the same either way (tested). Nothing is
clipped: where speckle makes ``m > 1`` the volume power is negative, as in the notebook.
Where ``S0 <= 0`` or a term is NaN every product is NaN.

Everything is elementwise and runs as one ``map_blocks`` per call on dask-backed inputs.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import xarray as xr

from mus_lab.errors import ARDError

__all__ = ["COMPACT_POL_PRODUCTS", "CompactPolError", "compact_pol", "mchi", "stokes"]


class CompactPolError(ARDError, ValueError):
    """Compact-pol inputs that cannot give the products asked for (a covariance term missing,
    an unknown product name)."""


#: What :func:`compact_pol` can compute, in this order.
COMPACT_POL_PRODUCTS: tuple[str, ...] = (
    "s0",
    "s1",
    "s2",
    "s3",
    "dop",
    "delta",
    "sin2chi",
    "mchi_surface",
    "mchi_double",
    "mchi_volume",
    "rh",
    "rv",
    "rhrv_re",
    "rhrv_im",
)
_ATTRS: dict[str, dict[str, str]] = {
    "s0": {"long_name": "Stokes S0 (total power)", "units": "linear power"},
    "s1": {"long_name": "Stokes S1 (<|RH|^2> - <|RV|^2>)", "units": "linear power"},
    "s2": {"long_name": "Stokes S2 (2 Re<RH RV*>)", "units": "linear power"},
    "s3": {"long_name": "Stokes S3 (-2 Im<RH RV*> = rl - rr)", "units": "linear power"},
    "dop": {"long_name": "degree of polarisation m", "units": "1"},
    "delta": {"long_name": "relative phase atan2(S3, S2)", "units": "degree"},
    "sin2chi": {"long_name": "sin(2 chi) = S3 / (m S0)", "units": "1"},
    "mchi_surface": {"long_name": "m-chi surface (odd-bounce) power", "units": "linear power"},
    "mchi_double": {"long_name": "m-chi double-bounce (even) power", "units": "linear power"},
    "mchi_volume": {"long_name": "m-chi volume (random) power", "units": "linear power"},
    "rh": {"long_name": "synthesised <|RH|^2>", "units": "linear power"},
    "rv": {"long_name": "synthesised <|RV|^2>", "units": "linear power"},
    "rhrv_re": {"long_name": "synthesised Re<RH RV*>", "units": "linear power"},
    "rhrv_im": {"long_name": "synthesised Im<RH RV*>", "units": "linear power"},
}


def _kernel(
    a: np.ndarray, b: np.ndarray, re: np.ndarray, im: np.ndarray, *, linear: bool = False
) -> np.ndarray:
    """All products stacked on a last axis, float32 (NaN where ``S0 <= 0``).

    ``(a, b, re, im)`` is ``(rr, rl, Re<RR RL*>, Im<RR RL*>)``, or with ``linear``
    ``(rh, rv, Re<RH RV*>, Im<RH RV*>)``.
    """
    a, b, re, im = (np.asarray(x, dtype=np.float64) for x in (a, b, re, im))
    if linear:
        s0, s1, s2, s3 = a + b, a - b, 2.0 * re, -2.0 * im
    else:
        s0, s1, s2, s3 = a + b, 2.0 * re, 2.0 * im, b - a
    with np.errstate(divide="ignore", invalid="ignore"):
        pol = np.sqrt(s1 * s1 + s2 * s2 + s3 * s3)
        m = np.where(s0 > 0, pol / s0, np.nan)
        sin2chi = s3 / (m * s0)
        delta = np.degrees(np.arctan2(s3, s2))
    bad = ~(s0 > 0)
    delta = np.where(bad, np.nan, delta)
    surface = s0 * m * (1.0 + sin2chi) / 2.0
    double = s0 * m * (1.0 - sin2chi) / 2.0
    volume = s0 * (1.0 - m)
    rh = (s0 + s1) / 2.0
    rv = (s0 - s1) / 2.0
    rhrv_re = s2 / 2.0
    rhrv_im = -s3 / 2.0
    out = np.stack(
        [s0, s1, s2, s3, m, delta, sin2chi, surface, double, volume, rh, rv, rhrv_re, rhrv_im],
        axis=-1,
    )
    out[bad] = np.nan
    return out.astype(np.float32)


def _check_products(products: Sequence[str] | str | None) -> tuple[str, ...]:
    if products is None:
        return COMPACT_POL_PRODUCTS
    wanted = (products,) if isinstance(products, str) else tuple(products)
    unknown = sorted(set(wanted) - set(COMPACT_POL_PRODUCTS))
    if unknown or not wanted:
        raise CompactPolError(
            f"Unknown compact-pol product(s) {unknown or wanted}: choose among "
            f"{list(COMPACT_POL_PRODUCTS)}."
        )
    return wanted


def compact_pol(
    ds: xr.Dataset,
    products: Sequence[str] | str | None = None,
    *,
    basis: Literal["circular", "linear"] = "circular",
    rr: str = "rr",
    rl: str = "rl",
    rrrl: tuple[str, str] = ("rrrl_re", "rrrl_im"),
) -> xr.Dataset:
    """Stokes parameters, m-chi decomposition and RH/RV synthesis of a compact-pol cube.

    Parameters
    ----------
    ds : xarray.Dataset
        Linear circular-basis covariance: ``rr``, ``rl`` (<|RR|^2>, <|RL|^2>) and the real
        and imaginary parts of <RR RL*>, e.g. what :func:`prepare_rcm_ard` returns with
        ``covariance=True`` (not in dB).
    products : sequence of str, optional
        Which of :data:`COMPACT_POL_PRODUCTS` to return (default all).
    basis : {"circular", "linear"}, optional
        ``"circular"`` (default): ``rr``, ``rl``, ``rrrl`` name <|RR|^2>, <|RL|^2>, <RR RL*>.
        ``"linear"``: the same keywords name <|RH|^2>, <|RV|^2>, <RH RV*> (defaults
        ``"rh"``, ``"rv"``, ``("rhrv_re", "rhrv_im")`` then), e.g. from an SLC or MLC product.
    rr, rl : str, optional
        Variable names of the two intensities.
    rrrl : (str, str), optional
        Variable names of the real and imaginary parts of the cross term.

    Returns
    -------
    xarray.Dataset
        One float32 variable per product on ``ds``'s grid (``valid`` and ``quality`` kept
        when ``ds`` has them); lazy when ``ds`` is, computed in one ``map_blocks``.

    Raises
    ------
    CompactPolError
        A covariance term is missing (a detected GRD pair without cross term included), the
        intensities are in dB, an unknown basis or product.

    Examples
    --------
    >>> ds = xr.Dataset({"rr": ("x", [0.1]), "rl": ("x", [0.3]),
    ...                  "rrrl_re": ("x", [0.02]), "rrrl_im": ("x", [0.05])})
    >>> out = compact_pol(ds, ["s0", "dop", "mchi_surface", "mchi_volume"])
    >>> [round(float(out[k][0]), 4) for k in out.data_vars]
    [0.4, 0.5679, 0.2136, 0.1728]
    """
    wanted = _check_products(products)
    if basis not in ("circular", "linear"):
        raise CompactPolError(f"basis={basis!r}: choose 'circular' (RR/RL) or 'linear' (RH/RV).")
    linear = basis == "linear"
    if linear and (rr, rl, rrrl) == ("rr", "rl", ("rrrl_re", "rrrl_im")):
        rr, rl, rrrl = "rh", "rv", ("rhrv_re", "rhrv_im")
    names = (rr, rl, *rrrl)
    missing = [n for n in names if n not in ds.data_vars]
    if missing and {rr, rl} <= set(ds.data_vars):
        raise CompactPolError(
            f"The cube has the intensities {rr!r} and {rl!r} but not the cross term {missing}: "
            "detected (GRD) compact-pol products hold only the two intensities, and Stokes "
            "S1..S3, the relative phase and m-chi need <RH RV*> (or <RR RL*>). Use an SLC/MLC "
            "product or the rcm-ard covariance: prepare_rcm_ard(items, covariance=True)."
        )
    if missing:
        raise CompactPolError(
            f"The compact-pol covariance lacks {missing} (has {sorted(map(str, ds.data_vars))}): "
            "load the RR, RL intensities and both parts of <RR RL*>, e.g. "
            "prepare_rcm_ard(items, covariance=True), or name the variables with rr=, rl=, "
            "rrrl=."
        )
    if int(ds.attrs.get("db", 0)) or any(ds[n].attrs.get("units") == "dB" for n in (rr, rl)):
        raise CompactPolError(
            "The RR/RL intensities are in dB: the covariance must be linear power; prepare it "
            "with db=False (or convert with mus_lab.ard.from_db)."
        )
    stacked = xr.apply_ufunc(
        functools.partial(_kernel, linear=linear),
        *(ds[n] for n in names),
        output_core_dims=[["product"]],
        dask="parallelized",
        output_dtypes=[np.float32],
        dask_gufunc_kwargs={"output_sizes": {"product": len(COMPACT_POL_PRODUCTS)}},
    )
    out = xr.Dataset(
        {
            p: stacked.isel(product=COMPACT_POL_PRODUCTS.index(p), drop=True).assign_attrs(
                _ATTRS[p]
            )
            for p in wanted
        }
    )
    for keep in ("valid", "quality"):
        if keep in ds.data_vars:
            out[keep] = ds[keep]
    out.attrs = {k: v for k, v in ds.attrs.items() if k != "db"} | {
        "compact_pol": f"{basis} basis; Stokes, m-chi (EODMS mchi_decomposition.ipynb), "
        "R=(H+iV)/sqrt(2)"
    }
    return out


def stokes(rr: Any, rl: Any, rrrl_re: Any, rrrl_im: Any) -> tuple[Any, Any, Any, Any]:
    """Stokes parameters S0..S3 from the circular-basis covariance (module conventions).

    Parameters
    ----------
    rr, rl : array-like
        <|RR|^2> and <|RL|^2>, linear power (numpy, dask or xarray).
    rrrl_re, rrrl_im : array-like
        Real and imaginary parts of <RR RL*>.

    Returns
    -------
    tuple of array-like
        ``(S0, S1, S2, S3)`` = ``(rr + rl, 2 Re, 2 Im, rl - rr)``, same type as the inputs.

    Raises
    ------
    None
        Nothing on purpose (elementwise arithmetic).

    Examples
    --------
    >>> [float(v) for v in stokes(0.1, 0.3, 0.02, 0.05)]
    [0.4, 0.04, 0.1, 0.19999999999999998]
    """
    return rr + rl, 2 * rrrl_re, 2 * rrrl_im, rl - rr


def mchi(s0: Any, s1: Any, s2: Any, s3: Any) -> tuple[Any, Any, Any]:
    """The m-chi decomposition of a Stokes vector: surface, double-bounce and volume power.

    Parameters
    ----------
    s0, s1, s2, s3 : array-like
        Stokes parameters (:func:`stokes`), linear power.

    Returns
    -------
    tuple of array-like
        ``(surface, double, volume)`` = ``S0 m (1 + sin2chi)/2``, ``S0 m (1 - sin2chi)/2``,
        ``S0 (1 - m)``, the formula of EODMS' ``mchi_decomposition.ipynb``.

    Raises
    ------
    None
        Nothing on purpose (elementwise arithmetic; ``S0 = 0`` gives NaN or inf).

    Examples
    --------
    >>> [round(float(v), 4) for v in mchi(*stokes(0.1, 0.3, 0.02, 0.05))]
    [0.2136, 0.0136, 0.1728]
    """
    m = (s1**2 + s2**2 + s3**2) ** 0.5 / s0
    sin2chi = s3 / (m * s0)
    return s0 * m * (1 + sin2chi) / 2, s0 * m * (1 - sin2chi) / 2, s0 * (1 - m)
