"""Accuracy of flood maps against a truth: critical success index, IoU, precision, recall.

For the flood class the intersection over union *is* the critical success index
(``TP / (TP + FP + FN)``); :func:`flood_scores` also gives the mean IoU of the two classes
(flood and dry), which is what segmentation papers often call IoU. Pixels where the map
has no data or the truth is permanent water (2) or no data are left out; counts are pooled
over all dates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from mus_lab.errors import FloodInputError

__all__ = ["align_truth", "flood_scores", "method_scores"]


def align_truth(truth: xr.DataArray, times: xr.DataArray | np.ndarray) -> xr.DataArray:
    """Pick the truth date of each map date (same calendar day).

    Parameters
    ----------
    truth
        Flood truth with a ``time`` dimension (0 dry, 1 flood, 2 permanent water, 255 no
        data).
    times
        The map's dates.

    Returns
    -------
    xarray.DataArray
        The truth on the map's dates (its ``time`` coordinate set to ``times``).

    Raises
    ------
    FloodInputError
        A map date has no truth on its day.
    """
    t_days = pd.DatetimeIndex(truth["time"].values).normalize()
    m_days = pd.DatetimeIndex(np.asarray(times)).normalize()
    missing = m_days.difference(t_days)
    if len(missing):
        raise FloodInputError(
            f"No flood truth on {[str(d.date()) for d in missing]}: score only the dates the "
            "truth covers."
        )
    idx = [int(np.flatnonzero(t_days == d)[0]) for d in m_days]
    return truth.isel(time=idx).assign_coords(time=np.asarray(times))


def flood_scores(flood: xr.DataArray, truth: xr.DataArray) -> dict[str, float]:
    """Scores of a flood map (1 flood / 0 dry / 255 no data) against a truth.

    Parameters
    ----------
    flood
        Map, any shape (e.g. ``(time, y, x)``).
    truth
        Truth on the same coordinates: 0 dry, 1 flood, 2 permanent water, 255 no data.

    Returns
    -------
    dict
        ``csi`` (= IoU of the flood class), ``miou`` (mean IoU of flood and dry),
        ``precision``, ``recall``, ``f1``, the counts ``tp``, ``fp``, ``fn``, ``tn``, and
        ``coverage``: the share of the truth's dry and flood pixels the map scores (not
        255). A map that abstains somewhere is scored only where it speaks: compare maps
        by their scores only at equal coverage. Ratios without a denominator are NaN.

    Raises
    ------
    FloodInputError
        ``flood`` and ``truth`` differ in shape.

    Examples
    --------
    >>> s = flood_scores(np.array([1, 1, 0, 0, 255]), np.array([1, 0, 1, 0, 1]))
    >>> s["csi"], s["precision"], s["tn"], s["coverage"]
    (0.3333333333333333, 0.5, 1, 0.8)
    """
    f = np.asarray(flood)
    t = np.asarray(truth)
    if f.shape != t.shape:
        raise FloodInputError(f"flood {f.shape} and truth {t.shape} differ in shape.")
    known = (t == 0) | (t == 1)
    keep = (f != 255) & known
    fp_ = f[keep] == 1
    tp_ = t[keep] == 1
    tp = int(np.sum(fp_ & tp_))
    fp = int(np.sum(fp_ & ~tp_))
    fn = int(np.sum(~fp_ & tp_))
    tn = int(np.sum(~fp_ & ~tp_))

    def ratio(a: int, b: int) -> float:
        return a / b if b else float("nan")

    csi = ratio(tp, tp + fp + fn)
    dry_iou = ratio(tn, tn + fp + fn)
    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    return {
        "csi": csi,
        "miou": (csi + dry_iou) / 2,
        "precision": precision,
        "recall": recall,
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "coverage": ratio(int(np.sum(keep)), int(np.sum(known))),
    }


def method_scores(
    flood: xr.DataArray, by_source: xr.DataArray, truth: xr.DataArray
) -> pd.DataFrame:
    """One row per map (``consensus``, then each evidence source): CSI, mean IoU,
    precision, recall and the counts, pooled over all dates.

    Parameters
    ----------
    flood
        Consensus flood map (uint8 1/0/255).
    by_source
        Flood map of each source alone, ``(source, ...)`` (``RiskRun.by_source()``).
    truth
        Flood truth on the same coordinates (0 dry, 1 flood, 2 permanent water).

    Returns
    -------
    pandas.DataFrame
        Indexed by map name: the columns of :func:`flood_scores`. A source that abstains
        on some dates (``self_trained`` without enough confident pixels, ``change``
        without a reference, ``optical`` under clouds) is scored on its ``coverage`` only,
        so its CSI is not comparable with the consensus' (scored everywhere).

    Raises
    ------
    FloodInputError
        A map and the truth differ in shape.
    """
    import dask

    flood, by_source, truth = dask.compute(flood, by_source, truth)
    rows = {"consensus": flood_scores(flood, truth)}
    for s in by_source["source"].values:
        rows[str(s)] = flood_scores(by_source.sel(source=s), truth)
    return pd.DataFrame(rows).T
