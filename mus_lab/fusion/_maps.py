"""Classifier outputs from GeoTIFFs, and one entry point for any mix of label maps and cubes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from mus_lab.classify import ConfusionMatrix
from mus_lab.errors import FusionError
from mus_lab.fusion._fuse import _names, fuse
from mus_lab.fusion._labels import fuse_labels
from mus_lab.fusion._masses import masses_from_labels, masses_from_probabilities
from mus_lab.fusion._probabilities import fuse_probabilities, labels_of

__all__ = ["fuse_maps", "open_map"]


def open_map(path: str | os.PathLike[str], *, chunks: int = 1024) -> xr.DataArray:
    """Open a classifier output GeoTIFF lazily: a label map or a probability cube.

    One integer band = a label map (``y``, ``x``; 0 = no data). Several bands = a probability
    cube (``class``, ``y``, ``x``) whose band descriptions are the class codes (as the land-cover
    stage writes them); the file's nodata value becomes NaN.

    Raises
    ------
    FusionError
        The file cannot be read, or a multi-band file lacks integer band descriptions.
    """
    import rasterio
    import rioxarray

    p = Path(path)
    try:
        with rasterio.open(p) as src:
            count, dtype, descriptions, nodata = (
                src.count,
                src.dtypes[0],
                src.descriptions,
                src.nodata,
            )
        da = rioxarray.open_rasterio(p, chunks={"band": -1, "y": chunks, "x": chunks})
    except (OSError, rasterio.errors.RasterioError) as exc:
        raise FusionError(f"Cannot read {p} as a GeoTIFF ({exc}): check the path.") from exc
    assert isinstance(da, xr.DataArray)
    crs = da.rio.crs
    da = da.drop_vars([c for c in da.coords if c not in ("band", "y", "x")])
    da.attrs = {}
    da.encoding = {}
    if count == 1:
        if not np.issubdtype(np.dtype(dtype), np.integer):
            raise FusionError(
                f"{p} has one {dtype} band: a label map must hold integer class codes "
                "(a probability cube needs one band per class)."
            )
        out = da.squeeze("band", drop=True)
    else:
        try:
            codes = [int(str(d)) for d in descriptions]
        except (TypeError, ValueError) as exc:
            raise FusionError(
                f"{p} has {count} bands but their descriptions {list(descriptions)} are not class "
                "codes: a probability cube needs one band per class, described by its code."
            ) from exc
        out = da.rename(band="class").assign_coords({"class": codes}).astype("float32")
        if nodata is not None and not np.isnan(nodata):
            out = out.where(out != nodata)
    out.name = p.stem
    return out.odc.assign_crs(crs) if crs is not None else out


def _is_cube(source: xr.DataArray) -> bool:
    return "class" in source.dims


def fuse_maps(
    sources: Sequence[xr.DataArray],
    confusions: Sequence[ConfusionMatrix | None],
    *,
    rule: str = "dempster",
    decision: str | None = None,
    mob: str = "precision",
    reliability: Any = "precision",
    compound_threshold: float | None = 0.1,
    confidences: Sequence[xr.DataArray] | None = None,
    names: Sequence[str] | None = None,
    total_conflict: str | None = None,
) -> tuple[xr.Dataset, list[xr.DataArray]]:
    """Fuse label maps, probability cubes or a mix; returns the product and each source's labels.

    Label maps only -> :func:`fuse_labels` (IOTA²'s mode, ``decision`` ``"otb"`` by default);
    probability cubes only -> :func:`fuse_probabilities`; a mix -> mass cubes and :func:`fuse`
    (``decision`` ``"bel"`` by default). ``confidences`` (label maps only) adds IOTA²'s
    ``source_confidence``.
    """
    src_names = _names(len(sources), names)
    if len(confusions) != len(sources):
        raise FusionError(
            f"{len(confusions)} confusion matrices for {len(sources)} maps: give one per map "
            "(None for a probability cube fused with a numeric reliability)."
        )
    cubes = [_is_cube(s) for s in sources]
    for s, cm, name in zip(sources, confusions, src_names, strict=True):
        if cm is None and not _is_cube(s):
            raise FusionError(f"{name} is a label map: it needs its confusion matrix.")
    if confidences is not None and any(cubes):
        raise FusionError("Source confidence maps go with label maps only (IOTA²'s mode).")
    if not any(cubes):
        ds = fuse_labels(
            sources,
            [cm for cm in confusions if cm is not None],
            mob=mob,  # type: ignore[arg-type]
            rule=rule,
            decision=(decision or "otb"),  # type: ignore[arg-type]
            confidences=confidences,
            names=src_names,
            total_conflict=(total_conflict or "vacuous"),  # type: ignore[arg-type]
        )
        return ds, list(sources)
    if all(cubes):
        ds = fuse_probabilities(
            sources,
            confusions=confusions,
            reliability=reliability,
            compound_threshold=compound_threshold,
            rule=rule,
            decision=(decision or "bel"),  # type: ignore[arg-type]
            names=src_names,
            total_conflict=total_conflict,  # type: ignore[arg-type]
        )
        return ds, [labels_of(s) for s in sources]
    masses = [
        masses_from_probabilities(
            s, confusion=cm, reliability=reliability, compound_threshold=compound_threshold
        )
        if cube
        else masses_from_labels(s, cm, mob=mob)  # type: ignore[arg-type]
        for s, cm, cube in zip(sources, confusions, cubes, strict=True)
    ]
    own = [labels_of(s) if cube else s for s, cube in zip(sources, cubes, strict=True)]
    ds = fuse(
        masses,
        rule=rule,
        decision=(decision or "bel"),  # type: ignore[arg-type]
        labels=own,
        names=src_names,
        total_conflict=total_conflict,  # type: ignore[arg-type]
    )
    ds.attrs["masses"] = (
        f"mixed: labels (mass of belief = {mob}), probabilities (reliability={reliability})"
    )
    return ds, own
