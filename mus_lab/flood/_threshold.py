"""Bimodal thresholds of SAR backscatter: Otsu and HydroSAR's expectation-maximisation.

Both work on a histogram, so a whole scene never has to sit in memory: the tiled
thresholding of :mod:`mus_lab.flood._tiles` streams per-tile histograms and thresholds
the few tiles it selects.

:func:`em_threshold` reproduces HydroSAR's (ASF ``asf_tools.hydrosar.threshold``)
three-class Gaussian-mixture EM on integer-scaled tiles, quirks included, so that its
published test values come out exactly (METHODS.md section 7):

* each sample ``v`` (after shifting the tile so that its minimum is 1) adds to bin
  ``v - 1`` (split linearly between the two bins around it when not an integer), and the
  tile maximum is left out of the histogram;
* the histogram is smoothed with the kernel ``[1, 2, 3, 2, 1]``;
* EM starts from means ``(1, 2, 3) * max / 4``, variances ``max``, equal proportions, and
  stops when the log-likelihood gains less than 1e-6;
* the threshold is where the two darkest weighted Gaussians cross, searched on a 0.05
  step between their means, and shifted back by ``minimum - 1``, which puts it one bin
  below the crossing in the tile's units. :func:`em_threshold_histogram` (used by the
  scene pipeline) returns the crossing itself.

HydroSAR casts samples to uint8 while binning (values of 256 and more after the shift
would wrap); this implementation does not.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "BC_MIN",
    "ashman_d",
    "bimodality_coefficient",
    "em_threshold",
    "em_threshold_histogram",
    "hydrosar_tiles_threshold",
    "mixture_crossing",
    "otsu_threshold",
    "otsu_threshold_histogram",
    "two_modes",
]

F64 = NDArray[np.float64]
_SMOOTH = np.array([1.0, 2.0, 3.0, 2.0, 1.0])


def _gaussians(means: F64, variances: F64, weights: F64, x: F64) -> F64:
    """Weighted normal densities, one column per class (HydroSAR's ``_make_distribution``)."""
    out = np.zeros((x.size, means.size))
    for i in range(means.size):
        d = x - means[i]
        amp = weights[i] / np.sqrt(2 * np.pi * variances[i])
        out[:, i] = amp * np.exp(-0.5 * (d * d) / variances[i])
    return out


def _smoothed(hist: F64) -> F64:
    """Smooth with [1, 2, 3, 2, 1] keeping the bins aligned, and normalise to a sum of 1."""
    out = np.convolve(hist, _SMOOTH)[2 : hist.size + 2]
    total = out.sum()
    return out / total if total > 0 else out


def _em_fit(hist: F64, top: float, n_classes: int) -> tuple[F64, F64, F64]:
    """Fit ``n_classes`` Gaussians to a normalised histogram over bins 0, 1, ..."""
    x = np.nonzero(hist)[0].astype(np.float64)
    h = hist[x.astype(np.intp)]
    means = (np.arange(n_classes) + 1) * top / (n_classes + 1)
    variances = np.ones(n_classes) * top
    weights = np.ones(n_classes) / n_classes
    floor = np.mean(np.diff(x)) / 1000 if x.size > 1 else 1e-3
    eps = np.finfo(np.float64).eps
    for _ in range(10_000):
        lik = _gaussians(means, variances, weights, x)
        total = np.sum(lik, 1) + eps
        before = np.sum(h * np.log(total))
        for j in range(n_classes):
            post = h * lik[:, j] / total
            weights[j] = np.sum(post)
            means[j] = np.sum(x * post) / weights[j]
            dev = x - means[j]
            variances[j] = np.sum(dev * dev * post) / weights[j] + floor
        weights += 1e-3
        weights /= np.sum(weights)
        total = np.sum(_gaussians(means, variances, weights, x), 1) + eps
        if np.sum(h * np.log(total)) - before < 0.000001:
            break
    return means, variances, weights


def _crossing(means: F64, variances: F64, weights: F64) -> float:
    """Where the two darkest weighted Gaussians cross (0.05 steps between their means)."""
    order = np.argsort(means)
    a, b = order[0], order[1]
    xs = np.arange(means[a], means[b], step=0.05)
    if xs.size == 0:
        return float(means[a])
    ya = _gaussians(means[[a]], variances[[a]], weights[[a]], xs)[:, 0]
    yb = _gaussians(means[[b]], variances[[b]], weights[[b]], xs)[:, 0]
    return float(xs[np.argmin(np.abs(ya - yb))])


def em_threshold_histogram(counts: ArrayLike, *, n_classes: int = 3) -> float:
    """EM threshold of a histogram of integer bins ``0 .. len(counts) - 1``.

    Parameters
    ----------
    counts
        Sample counts (or weights) per unit bin.
    n_classes
        Gaussian classes fitted (3: water, average land, bright land).

    Returns
    -------
    float
        Threshold in bin units (where the two darkest classes cross); NaN when the
        histogram holds fewer than ``n_classes + 1`` non-empty bins.
    """
    hist = np.asarray(counts, dtype=np.float64)
    occupied = np.nonzero(hist > 0)[0]
    if occupied.size < n_classes + 1:
        return float("nan")
    lo, hi = int(occupied[0]), int(occupied[-1])
    smooth = _smoothed(hist[lo : hi + 1])
    means, variances, weights = _em_fit(smooth, float(hi - lo + 1), n_classes)
    return _crossing(means, variances, weights) + lo


def em_threshold(tile: ArrayLike, *, n_classes: int = 3) -> float:
    """HydroSAR's expectation-maximisation threshold of one tile (integer-scaled values).

    Parameters
    ----------
    tile
        Backscatter of a tile on a scale where water and land are Gaussian, e.g.
        ``round((log10(sigma0) + 30) * scaling)``; a masked array's masked samples and
        non-finite values are left out.
    n_classes
        Gaussian classes fitted (HydroSAR: 3).

    Returns
    -------
    float
        The threshold in the tile's units, exactly as HydroSAR computes it (see the
        module notes: one bin below the crossing of the two darkest classes).

    Raises
    ------
    ValueError
        The tile holds no valid sample.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> tile = np.r_[rng.normal(40, 3, 3000), rng.normal(70, 4, 5000), rng.normal(90, 3, 2000)]
    >>> 48 < em_threshold(np.round(tile)) < 58
    True
    """
    values = np.ma.compressed(np.ma.masked_invalid(np.ma.asarray(tile, dtype=np.float64)))
    if values.size == 0:
        raise ValueError("em_threshold got a tile without any valid sample.")
    minimum = float(values.min())
    shifted = values - minimum + 1
    size = int(np.ceil(shifted.max())) + 1
    low = np.floor(shifted)
    keep = (low > 0) & (low < size - 1)
    frac = shifted[keep] - low[keep]
    idx = low[keep].astype(np.intp)
    hist = np.zeros(size)
    np.add.at(hist, idx, frac)
    np.add.at(hist, idx - 1, 1 - frac)
    smooth = np.convolve(hist, _SMOOTH)[2 : hist.size + 1]
    smooth /= np.sum(smooth)
    means, variances, weights = _em_fit(smooth, float(shifted.max()), n_classes)
    return _crossing(means, variances, weights) + minimum - 1


def hydrosar_tiles_threshold(tiles: ArrayLike, scaling: float) -> float:
    """HydroSAR's scene threshold from its selected tiles (``determine_em_threshold``).

    Each tile is scaled and rounded to integers, thresholded with :func:`em_threshold`
    and scaled back; the result is the median of the four lowest tile thresholds.

    Parameters
    ----------
    tiles
        Selected tiles, shape ``(n, rows, cols)``, on the Gaussian scale
        ``log10(sigma0) + 30`` (masked arrays allowed).
    scaling
        HydroSAR's ``256 / (mean + 3 * std)`` of all tiles.

    Returns
    -------
    float
        Threshold on the tiles' scale (``10 * (t - 30)`` is dB).
    """
    stack: np.ma.MaskedArray = np.ma.asarray(tiles)
    found = [
        em_threshold(np.ma.round(stack[i] * scaling).astype(np.int64)) / scaling
        for i in range(stack.shape[0])
    ]
    return float(np.median(np.sort(found)[:4]))


def otsu_threshold_histogram(counts: ArrayLike) -> float:
    """Otsu's threshold of a histogram of unit bins ``0 .. len(counts) - 1``.

    Parameters
    ----------
    counts
        Sample count per bin (e.g. a tile's dB values in 0.25 dB bins).

    Returns
    -------
    float
        The bin edge (``k + 0.5`` for the split after bin ``k``) that maximises the
        between-class variance; NaN when fewer than two bins hold samples.

    Examples
    --------
    Two modes, bins 0-2 and 6-8: the split right after the dark one (the first of the
    equally good splits across the empty bins).

    >>> otsu_threshold_histogram([5, 9, 4, 0, 0, 0, 3, 8, 6])
    2.5
    """
    hist = np.asarray(counts, dtype=np.float64)
    if np.count_nonzero(hist) < 2:
        return float("nan")
    bins = np.arange(hist.size, dtype=np.float64)
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * bins)
    total = m0[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        between = (total * w0 / w0[-1] - m0) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1.0
    return float(np.argmax(between[:-1]) + 0.5)


def otsu_threshold(values: ArrayLike, *, bins: int = 256) -> float:
    """Otsu's threshold of samples (non-finite values are left out).

    Parameters
    ----------
    values
        Samples, e.g. backscatter in dB.
    bins
        Histogram bins between the smallest and largest sample.

    Returns
    -------
    float
        Threshold in the samples' units.

    Raises
    ------
    ValueError
        Fewer than two distinct valid samples.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> v = np.r_[rng.normal(-26, 1.5, 4000), rng.normal(-16, 2, 6000)]
    >>> -23 < otsu_threshold(v) < -19
    True
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size < 2 or v.min() == v.max():
        raise ValueError("otsu_threshold needs at least two distinct valid samples.")
    hist, edges = np.histogram(v, bins=bins)
    k = otsu_threshold_histogram(hist)
    width = edges[1] - edges[0]
    return float(edges[0] + k * width + 0.5 * width)


def ashman_d(counts: ArrayLike) -> tuple[float, float, float]:
    """Ashman's D of a two-Gaussian mixture fitted (EM) to a histogram of unit bins.

    Splitting one Gaussian in two halves would already give D = 2.7, so the modes come
    from a fitted mixture, not from a threshold split.

    Parameters
    ----------
    counts
        Sample count per bin (a tile's histogram).

    Returns
    -------
    (float, float, float)
        ``D = sqrt(2) |m1 - m2| / sqrt(s1**2 + s2**2)`` (D > 2: clearly separated
        modes), the weight of the smaller component, and the mean (bin units) of the
        darker one. ``(0, 0, nan)`` with fewer than three non-empty bins.
    """
    fit = two_modes(counts)
    if fit is None:
        return 0.0, 0.0, float("nan")
    means, variances, weights = fit
    spread = float(np.sqrt(variances.sum()))
    d = float(np.sqrt(2.0) * abs(means[1] - means[0]) / spread) if spread > 0 else 0.0
    return d, float(weights.min()), float(means.min())


#: Bimodality coefficient of a uniform distribution: above it a sample is taken as bimodal
#: (SAS Institute 1990; Pfister et al. 2013, Frontiers in Psychology 4:700).
BC_MIN = 5.0 / 9.0


def bimodality_coefficient(counts: ArrayLike) -> float:
    """Sarle's bimodality coefficient of a histogram of unit bins (sample-size corrected).

    ``BC = (G1**2 + 1) / (G2 + 3 (n - 1)**2 / ((n - 2) (n - 3)))`` with ``G1`` the sample
    skewness and ``G2`` the sample excess kurtosis (both bias-corrected, as SAS computes
    them; Pfister et al. 2013). A normal sample gives 1/3, a uniform one 5/9
    (:data:`BC_MIN`), two far-apart equal modes approach 1: above 5/9 the sample is taken as
    bimodal. Unlike Ashman's D it needs no fitted mixture (moments of the histogram only),
    so it is a cheap second opinion on a tile and on the other polarisation.

    Parameters
    ----------
    counts
        Sample count per bin (a tile's histogram); the bin width cancels out.

    Returns
    -------
    float
        The coefficient (0-1); NaN with fewer than four samples or no spread.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> one = np.histogram(rng.normal(0, 1, 20000), bins=100)[0]
    >>> two = np.histogram(np.r_[rng.normal(-3, 1, 5000), rng.normal(3, 1, 5000)], bins=100)[0]
    >>> round(bimodality_coefficient(one), 2), bimodality_coefficient(two) > BC_MIN
    (0.33, True)
    """
    hist = np.asarray(counts, dtype=np.float64)
    n = float(hist.sum())
    if n < 4:
        return float("nan")
    x = np.arange(hist.size, dtype=np.float64)
    mean = float((hist * x).sum() / n)
    d = x - mean
    m2 = float((hist * d**2).sum() / n)
    if m2 <= 0:
        return float("nan")
    m3 = float((hist * d**3).sum() / n)
    m4 = float((hist * d**4).sum() / n)
    g1 = m3 / m2**1.5
    g2 = m4 / m2**2 - 3.0
    skew = g1 * np.sqrt(n * (n - 1)) / (n - 2)
    kurt = ((n + 1) * g2 + 6) * (n - 1) / ((n - 2) * (n - 3))
    return float((skew**2 + 1) / (kurt + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))))


def two_modes(counts: ArrayLike) -> tuple[F64, F64, F64] | None:
    """A two-Gaussian mixture fitted (EM) to a histogram of unit bins, darker mode first.

    Returns
    -------
    (means, variances, weights) in bin units, or None with fewer than three non-empty bins.
    """
    hist = np.asarray(counts, dtype=np.float64)
    occupied = np.nonzero(hist > 0)[0]
    if occupied.size < 3:
        return None
    lo, hi = int(occupied[0]), int(occupied[-1])
    means, variances, weights = _em_fit(_smoothed(hist[lo : hi + 1]), float(hi - lo + 1), 2)
    order = np.argsort(means)
    return means[order] + lo, variances[order], weights[order]


def mixture_crossing(means: F64, variances: F64, weights: F64) -> float:
    """Where two weighted Gaussians (darker first) cross between their means."""
    return _crossing(np.asarray(means), np.asarray(variances), np.asarray(weights))
