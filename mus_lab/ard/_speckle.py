"""Speckle filters for SAR intensity: Lee, refined Lee and Lee sigma.

All filters work on *linear intensity* (power, not dB, not amplitude) and are NaN-aware:
NaN pixels (no data) stay NaN and are left out of every local statistic, and pixels
beyond the image edge count as missing. A NaN therefore affects no pixel farther than
half a window away.

Implementations are numba kernels with one fixed summation order per output pixel,
so the result does not depend on where the array is cut: on dask arrays the filters
run with ``map_overlap`` (depth ``window // 2``, NaN boundary) and any chunking gives
bit-identical values. numpy inputs use the multi-threaded kernels; dask blocks use
the single-threaded ones (dask already runs blocks in parallel).

Method notes
------------
lee
    Lee (1980) MMSE filter over a ``window x window`` box:
    ``out = m + k (z - m)``, ``k = clip((v - m^2 Cu^2) / (v (1 + Cu^2)), 0, 1)`` with the
    local mean ``m`` and variance ``v``, and speckle ``Cu^2 = 1 / ENL``.
refined_lee
    Lee (1981) / ESA SNAP "Refined Lee": the window is split into 3 x 3 sub-windows
    (3 x 3 pixels with stride 2 for the 7 x 7 default); the largest of the
    vertical, horizontal and two diagonal gradients of their means picks the edge
    direction, the sub-window nearer to the centre picks the side, and the Lee MMSE
    estimate uses only the pixels of that edge-aligned half window (one of 8,
    28 pixels each for 7 x 7).
lee_sigma
    Lee et al. (2009) improved sigma filter as described by SNAP (7 x 7 window,
    sigma 0.9, 3 x 3 target window): an a-priori MMSE estimate ``x`` on the 3 x 3
    target window, then MMSE over the pixels of the window inside the sigma range
    ``[A1 x, A2 x]``. ``A1, A2`` are computed (not tabulated) for the given ENL and
    sigma such that the interval holds probability ``sigma`` of unit-mean Gamma(ENL)
    speckle *and* the truncated speckle has mean 1 (the bias correction of Lee 2009);
    the truncated speckle variance gives the MMSE noise term. Point targets: when at
    least 5 of the 3 x 3 target pixels exceed the speckle's 98th percentile times the
    window mean, the centre pixel is kept unfiltered. (Lee 2009 uses the 98th
    percentile of the whole image; a local reference keeps the filter chunk-invariant.)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, lru_cache, partial
from typing import Any, Literal

import dask.array as da
import numba
import numpy as np
import xarray as xr
from dask.base import tokenize

from mus_lab.errors import ARDError

__all__ = ["SpeckleFilterError", "SpeckleMethod", "lee_sigma_range", "speckle_filter"]

SpeckleMethod = Literal["lee", "refined_lee", "lee_sigma"]


class SpeckleFilterError(ARDError, ValueError):
    """Invalid speckle filter settings (an :class:`~mus_lab.errors.ARDError` and a ValueError).

    Parameters
    ----------
    message : str
        What was wrong and how to fix it.

    Raises
    ------
    None
        It is raised, never raises.

    Examples
    --------
    >>> speckle_filter(np.ones((8, 8)), "lee", window=4)
    Traceback (most recent call last):
    ...
    mus_lab.ard._speckle.SpeckleFilterError: window=4: pass an odd size >= 3 for lee (e.g. 7).
    """


# --- kernels (plain Python, compiled twice below) -----------------------------------------------
@numba.njit(inline="always", cache=True, nogil=True)
def _mmse(z: float, s: float, q: float, c: float, noise2: float) -> float:  # pragma: no cover
    """Lee's MMSE estimate of ``z`` from the local sums ``s``, ``q`` (squares), count ``c``.

    ``noise2`` is the speckle's squared variation coefficient (``1 / ENL``, or the
    truncated ``eta2`` of the sigma filter). A flat window gives its mean.
    """
    m = s / c
    var = q / c - m * m
    if var <= 0.0:
        return m
    b = (var - m * m * noise2) / (var * (1.0 + noise2))
    b = min(max(b, 0.0), 1.0)
    return m + b * (z - m)


def _lee_impl(img: np.ndarray, r: int, cu2: float) -> np.ndarray:  # pragma: no cover - numba
    h, w = img.shape
    vs = np.zeros((h, w))
    vq = np.zeros((h, w))
    vc = np.zeros((h, w))
    for i in numba.prange(h):
        for j in range(w):
            s = 0.0
            q = 0.0
            c = 0.0
            for k in range(max(0, i - r), min(h, i + r + 1)):
                v = img[k, j]
                if v == v:
                    s += v
                    q += v * v
                    c += 1.0
            vs[i, j] = s
            vq[i, j] = q
            vc[i, j] = c
    out = np.empty((h, w))
    for i in numba.prange(h):
        for j in range(w):
            z = img[i, j]
            if z != z:
                out[i, j] = np.nan
                continue
            s = 0.0
            q = 0.0
            c = 0.0
            for k in range(max(0, j - r), min(w, j + r + 1)):
                s += vs[i, k]
                q += vq[i, k]
                c += vc[i, k]
            out[i, j] = _mmse(z, s, q, c, cu2)
    return out


def _refined_lee_impl(img: np.ndarray, r: int, cu2: float) -> np.ndarray:  # pragma: no cover
    h, w = img.shape
    sub = 2 * ((2 * r) // 4) + 1  # 3 for 5x5 and 7x7, 5 for 9x9 and 11x11
    sr = sub // 2
    t = r - sr  # distance between sub-window centres
    out = np.empty((h, w))
    for i in numba.prange(h):
        means = np.empty((3, 3))
        for j in range(w):
            z = img[i, j]
            if z != z:
                out[i, j] = np.nan
                continue
            # sub-window means
            for a in range(3):
                for b in range(3):
                    ci = i + (a - 1) * t
                    cj = j + (b - 1) * t
                    s = 0.0
                    c = 0.0
                    for k in range(ci - sr, ci + sr + 1):
                        if k < 0 or k >= h:
                            continue
                        for m_ in range(cj - sr, cj + sr + 1):
                            if m_ < 0 or m_ >= w:
                                continue
                            v = img[k, m_]
                            if v == v:
                                s += v
                                c += 1.0
                    means[a, b] = s / c if c > 0 else np.nan
            c11 = means[1, 1]
            for a in range(3):
                for b in range(3):
                    if means[a, b] != means[a, b]:
                        means[a, b] = c11
            g0 = abs(
                means[0, 2] + means[1, 2] + means[2, 2] - means[0, 0] - means[1, 0] - means[2, 0]
            )
            g1 = abs(
                means[2, 0] + means[2, 1] + means[2, 2] - means[0, 0] - means[0, 1] - means[0, 2]
            )
            g2 = abs(
                means[0, 1] + means[0, 2] + means[1, 2] - means[1, 0] - means[2, 0] - means[2, 1]
            )
            g3 = abs(
                means[0, 0] + means[0, 1] + means[1, 0] - means[1, 2] - means[2, 1] - means[2, 2]
            )
            direction = 0
            gmax = g0
            if g1 > gmax:
                direction = 1
                gmax = g1
            if g2 > gmax:
                direction = 2
                gmax = g2
            if g3 > gmax:
                direction = 3
            # side: the sub-window nearer (in value) to the centre one
            if direction == 0:  # vertical edge: left (dj <= 0) or right (dj >= 0)
                side = 0 if abs(c11 - means[1, 0]) <= abs(c11 - means[1, 2]) else 1
            elif direction == 1:  # horizontal edge: top (di <= 0) or bottom (di >= 0)
                side = 0 if abs(c11 - means[0, 1]) <= abs(c11 - means[2, 1]) else 1
            elif direction == 2:  # main diagonal edge: upper-right or lower-left
                side = 0 if abs(c11 - means[0, 2]) <= abs(c11 - means[2, 0]) else 1
            else:  # anti-diagonal edge: upper-left or lower-right
                side = 0 if abs(c11 - means[0, 0]) <= abs(c11 - means[2, 2]) else 1
            s = 0.0
            q = 0.0
            c = 0.0
            for di in range(-r, r + 1):
                k = i + di
                if k < 0 or k >= h:
                    continue
                for dj in range(-r, r + 1):
                    m_ = j + dj
                    if m_ < 0 or m_ >= w:
                        continue
                    if direction == 0:
                        inside = dj <= 0 if side == 0 else dj >= 0
                    elif direction == 1:
                        inside = di <= 0 if side == 0 else di >= 0
                    elif direction == 2:
                        inside = dj - di >= 0 if side == 0 else di - dj >= 0
                    else:
                        inside = di + dj <= 0 if side == 0 else di + dj >= 0
                    if not inside:
                        continue
                    v = img[k, m_]
                    if v == v:
                        s += v
                        q += v * v
                        c += 1.0
            out[i, j] = _mmse(z, s, q, c, cu2)
    return out


def _lee_sigma_impl(  # pragma: no cover - numba
    img: np.ndarray,
    r: int,
    rt: int,
    cu2: float,
    a1: float,
    a2: float,
    eta2: float,
    q98: float,
    k_points: int,
) -> np.ndarray:
    h, w = img.shape
    out = np.empty((h, w))
    for i in numba.prange(h):
        for j in range(w):
            z = img[i, j]
            if z != z:
                out[i, j] = np.nan
                continue
            # window mean (point-target reference)
            sw = 0.0
            cw = 0.0
            for k in range(max(0, i - r), min(h, i + r + 1)):
                for m_ in range(max(0, j - r), min(w, j + r + 1)):
                    v = img[k, m_]
                    if v == v:
                        sw += v
                        cw += 1.0
            mw = sw / cw
            # target window: statistics and point-target count
            s = 0.0
            q = 0.0
            c = 0.0
            bright = 0
            thr = q98 * mw
            for k in range(max(0, i - rt), min(h, i + rt + 1)):
                for m_ in range(max(0, j - rt), min(w, j + rt + 1)):
                    v = img[k, m_]
                    if v == v:
                        s += v
                        q += v * v
                        c += 1.0
                        if v > thr:
                            bright += 1
            if bright >= k_points:
                out[i, j] = z
                continue
            xhat = _mmse(z, s, q, c, cu2)
            lo = a1 * xhat
            hi = a2 * xhat
            s = 0.0
            q = 0.0
            c = 0.0
            for k in range(max(0, i - r), min(h, i + r + 1)):
                for m_ in range(max(0, j - r), min(w, j + r + 1)):
                    v = img[k, m_]
                    if v == v and v >= lo and v <= hi:
                        s += v
                        q += v * v
                        c += 1.0
            if c == 0.0:
                out[i, j] = xhat
                continue
            out[i, j] = _mmse(z, s, q, c, eta2)
    return out


@cache
def _kernel(name: str, parallel: bool) -> Callable[..., np.ndarray]:
    impl = {"lee": _lee_impl, "refined_lee": _refined_lee_impl, "lee_sigma": _lee_sigma_impl}[name]
    jit: Any = numba.njit(parallel=parallel, cache=True, nogil=True)
    return jit(impl)  # type: ignore[no-any-return]


# --- Lee sigma constants ---------------------------------------------------------------------------
@lru_cache(maxsize=64)
def lee_sigma_range(enl: float, sigma: float) -> tuple[float, float, float, float]:
    """Sigma range and speckle terms of the Lee (2009) sigma filter for unit-mean Gamma speckle.

    Parameters
    ----------
    enl : float
        Equivalent number of looks ``L`` of the intensity speckle (Gamma(L, 1/L)).
    sigma : float
        Probability mass of the sigma range (0.5 - 0.95 in practice).

    Returns
    -------
    (A1, A2, eta2, q98) : tuple of float
        The range ``[A1, A2]`` with ``P = sigma`` whose truncated mean is 1, the
        truncated speckle variance ``eta2``, and the 98th percentile ``q98``.

    Raises
    ------
    SpeckleFilterError
        ``sigma`` not in (0, 1) or ``enl`` not positive.

    Examples
    --------
    >>> a1, a2, eta2, q98 = lee_sigma_range(4.4, 0.9)
    >>> 0 < a1 < 1 < a2
    True
    """
    from scipy import optimize, stats

    if not (0 < sigma < 1) or enl <= 0:
        raise SpeckleFilterError(f"sigma={sigma}, enl={enl}: pass 0 < sigma < 1 and enl > 0.")
    g = stats.gamma(enl, scale=1 / enl)
    g1 = stats.gamma(enl + 1, scale=1 / enl)
    g2 = stats.gamma(enl + 2, scale=1 / enl)

    def a2_of(a1: float) -> float:
        return float(g.ppf(min(g.cdf(a1) + sigma, 1.0)))

    def f(a1: float) -> float:
        return float(g1.cdf(a2_of(a1)) - g1.cdf(a1) - sigma)

    hi = float(g.ppf(1 - sigma)) * (1 - 1e-12)
    a1 = float(optimize.brentq(f, 1e-12, hi, xtol=1e-14))
    a2 = a2_of(a1)
    eta2 = (enl + 1) / enl * float(g2.cdf(a2) - g2.cdf(a1)) / sigma - 1.0
    return a1, a2, eta2, float(g.ppf(0.98))


# --- public entry --------------------------------------------------------------------------------------
def check_speckle(method: str, window: int) -> None:
    """Raise :class:`SpeckleFilterError` unless ``method`` and ``window`` make a filter."""
    if method not in ("lee", "refined_lee", "lee_sigma"):
        raise SpeckleFilterError(
            f"Unknown speckle filter {method!r}: choose 'lee', 'refined_lee' or 'lee_sigma'."
        )
    min_window = 5 if method == "refined_lee" else 3
    if not isinstance(window, int) or window % 2 == 0 or window < min_window:
        raise SpeckleFilterError(
            f"window={window}: pass an odd size >= {min_window} for {method} (e.g. 7)."
        )


def _filter_2d(
    block: np.ndarray, method: str, r: int, args: tuple[float, ...], parallel: bool
) -> np.ndarray:
    img = np.ascontiguousarray(block, dtype=np.float64)
    kern = _kernel(method, parallel)
    if method == "lee_sigma":
        return kern(img, r, int(args[0]), *args[1:6], int(args[6]))
    return kern(img, r, args[0])


def _filter_nd(
    block: np.ndarray, method: str, r: int, args: tuple[float, ...], parallel: bool, dtype: Any
) -> np.ndarray:
    if block.ndim == 2:
        return _filter_2d(block, method, r, args, parallel).astype(dtype)
    out = np.empty(block.shape, dtype=dtype)
    for idx in np.ndindex(*block.shape[:-2]):
        out[idx] = _filter_2d(block[idx], method, r, args, parallel)
    return out


def speckle_filter(
    data: Any,
    method: SpeckleMethod = "lee",
    *,
    window: int = 7,
    enl: float = 4.4,
    sigma: float = 0.9,
    target_window: int = 3,
) -> Any:
    """Reduce speckle in SAR intensity with a Lee, refined Lee or Lee sigma filter.

    Parameters
    ----------
    data : numpy.ndarray, dask.array.Array or xarray.DataArray
        Linear intensity (sigma0, gamma0 ...), 2-D or more; the filter runs over the
        last two dimensions. NaN is no data.
    method : {"lee", "refined_lee", "lee_sigma"}, optional
        The filter (see the module notes).
    window : int, optional
        Odd window size (default 7; refined Lee needs >= 5).
    enl : float, optional
        Equivalent number of looks of the input speckle; ``Cu^2 = 1 / enl``.
        4.4 is the nominal ENL of Sentinel-1 IW GRDH; use the product's value otherwise.
    sigma : float, optional
        Lee sigma: probability of the sigma range (default 0.9).
    target_window : int, optional
        Lee sigma: odd size of the target window (default 3).

    Returns
    -------
    Same type as ``data``
        Filtered intensity, float32 (float64 stays float64). dask and xarray inputs stay
        lazy (``map_overlap`` with depth ``window // 2``); coordinates and attributes kept.

    Raises
    ------
    SpeckleFilterError
        Unknown method or an even / too small window.
    BackscatterInputError
        Digital numbers (integers) or dB (``units`` attribute, or negative numpy values):
        the filters work on linear power.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> img = rng.gamma(4.4, 0.1 / 4.4, size=(64, 64)).astype("float32")
    >>> out = speckle_filter(img, "refined_lee")
    >>> bool(out.std() < img.std())
    True
    """
    from mus_lab.ard._sar_checks import check_backscatter

    check_backscatter(data, expected="linear", where="speckle_filter")
    check_speckle(method, window)
    if enl <= 0:
        raise SpeckleFilterError(f"enl={enl}: pass a positive equivalent number of looks.")
    r = window // 2
    args: tuple[float, ...]
    if method == "lee_sigma":
        if target_window % 2 == 0 or not (1 <= target_window <= window):
            raise SpeckleFilterError(
                f"target_window={target_window}: pass an odd size <= window (e.g. 3)."
            )
        a1, a2, eta2, q98 = lee_sigma_range(float(enl), float(sigma))
        args = (target_window // 2, 1.0 / enl, a1, a2, eta2, q98, 5)
    else:
        args = (1.0 / enl,)

    if isinstance(data, xr.DataArray):
        out = speckle_filter(
            data.data, method, window=window, enl=enl, sigma=sigma, target_window=target_window
        )
        return xr.DataArray(
            out,
            coords=data.coords,
            dims=data.dims,
            name=data.name,
            attrs={**data.attrs, "speckle_filter": method, "speckle_window": window},
        )
    dtype = np.float64 if data.dtype == np.float64 else np.float32
    if isinstance(data, da.Array):
        if data.ndim < 2:
            raise SpeckleFilterError("speckle_filter needs at least 2 dimensions (y, x).")
        depth = {ax: (r if ax >= data.ndim - 2 else 0) for ax in range(data.ndim)}
        func = partial(_filter_nd, method=method, r=r, args=args, parallel=False, dtype=dtype)
        return da.map_overlap(
            func,
            data.astype(dtype),
            depth=depth,
            boundary=np.nan,
            dtype=dtype,
            meta=np.empty((0,) * data.ndim, dtype=dtype),
            name=f"speckle-{method}-{tokenize(data, method, window, args)}",
        )
    arr = np.asarray(data)
    if arr.ndim < 2:
        raise SpeckleFilterError("speckle_filter needs at least 2 dimensions (y, x).")
    return _filter_nd(arr, method, r, args, True, dtype)
