"""SAR (+ optical) to water and flood maps: the evidence, the consensus, the products."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from mus_lab.contracts import SAR_QUALITY_BITS
from mus_lab.cube import match_grid, standard_grid
from mus_lab.flood._consensus import (
    VoteRule,
    consensus,
    majority_rule,
    weighted_majority_rule,
    with_optical,
)
from mus_lab.flood._evidence import optical_evidence, sar_evidence, sar_polarisations
from mus_lab.flood._grid import keep_grid
from mus_lab.flood._options import MappingOptions
from mus_lab.flood._products import (
    exclusion_mask,
    flood_extent,
    flood_summary,
    reference_water,
)

__all__ = ["FloodMaps", "map_flood", "map_water", "source_floods"]


def map_water(
    sar: xr.Dataset,
    *,
    reference: xr.Dataset | None = None,
    hand: xr.DataArray | None = None,
    slope: xr.DataArray | None = None,
    optical: xr.Dataset | xr.DataArray | None = None,
    thresholds: xr.DataArray | None = None,
    options: MappingOptions | None = None,
    rule: VoteRule = majority_rule,
    strict: bool = True,
    self_trained: Sequence[Any] | None = None,
) -> xr.Dataset:
    """Water per date from SAR (and optical) evidence and their consensus, lazily.

    Parameters
    ----------
    sar
        dB backscatter (VV and/or VH) on the mapping grid, e.g.
        ``ard.prepare_s1(items, geobox=grid, speckle="refined_lee", db=True)``.
    reference
        Pre-event backscatter (dB) for change detection (default: per-orbit median).
    hand
        HAND (m) on the grid, for the threshold tiles.
    slope
        Slope (degrees) on the grid, for change detection.
    optical
        Sentinel-2 ARD (``ard.prepare_s2(...)``, per-date with ``valid``) or an already
        computed optical evidence ``(time, y, x)``: where cloud-free, fused with the SAR
        consensus by Dempster-Shafer (:func:`~mus_lab.flood.with_optical`).

    Every input may come from rioxarray, odc-stac, stackstac or the project. Grids that
    agree within 1e-6 of a pixel are the SAR grid; the reference, HAND, slope and optical
    inputs on another grid are reprojected lazily onto the SAR grid (bilinear; nearest for
    an optical ARD Dataset) with a :class:`~mus_lab.errors.GridReprojectedWarning`.
    thresholds
        Thresholds (dB, ``(time, pol)``) already drawn (see :func:`sar_evidence`).
    options
        :class:`MappingOptions`.
    rule
        Combination rule of the SAR methods' consensus (:func:`majority_rule` by default;
        with the ``self_trained`` voter, the default becomes
        :func:`weighted_majority_rule` with ``options.self_trained_weight``).
    strict
        Raise :class:`~mus_lab.errors.NoBimodalTileError` when no threshold can be drawn.
    self_trained
        Fitted classifiers of the ``self_trained`` voter (:func:`self_trained_models`,
        computed), when ``options.methods`` has it; else fitted inside the graph.

    Returns
    -------
    xarray.Dataset
        ``water`` (uint8 1/0/255), ``likelihood`` (uint8 0-100/255), ``evidence``
        (float32 ``(source, time, y, x)``), ``threshold`` (dB, ``(time, pol)``),
        ``invalid`` (bool: the SAR data mask says invalid, e.g. layover/shadow).

    Raises
    ------
    FloodInputError
        No VV/VH.
    GridMismatchError
        The SAR or another input has no pixel grid.
    """
    opts = options or MappingOptions()
    if rule is majority_rule and "self_trained" in opts.methods and opts.self_trained_weight != 1:
        rule = weighted_majority_rule({"self_trained": opts.self_trained_weight})
    sar = standard_grid(sar)
    ev = sar_evidence(
        sar,
        reference=reference,
        hand=hand,
        slope=slope,
        thresholds=thresholds,
        options=opts,
        strict=strict,
        self_trained=self_trained,
    )
    evidence = ev["evidence"]
    if optical is not None:
        optical = match_grid(
            optical,
            ev,
            names=("the optical input", "the SAR"),
            resampling="nearest" if isinstance(optical, xr.Dataset) else "bilinear",
        )
        if isinstance(optical, xr.Dataset):
            opt = optical_evidence(optical, ev["time"].values, options=opts)
        else:
            opt = optical.reindex(time=ev["time"].values)
        opt = opt.drop_vars([c for c in opt.coords if c not in ("time", "y", "x", "spatial_ref")])
        evidence = xr.concat(
            [evidence, opt.expand_dims(source=["optical"]).astype(np.float32)], "source"
        )
        # The SAR methods' consensus meets the optical vote through Dempster-Shafer fusion.
        rule = with_optical(
            rule,
            sar_reliability=opts.sar_reliability,
            optical_reliability=opts.optical_reliability,
            fusion_rule=opts.optical_fusion_rule,
        )
    out = consensus(evidence, rule=rule)
    out["evidence"] = evidence
    out["threshold"] = ev["threshold"]
    pols = sar_polarisations(sar)
    if "quality" in pols:  # measured but unusable (SAR quality bits, mus_lab.contracts)
        out["invalid"] = (pols["quality"] & (1 << SAR_QUALITY_BITS["unusable"])) > 0
    return keep_grid(out.assign_attrs(ev.attrs), sar)


def source_floods(
    water_map: xr.Dataset, reference: xr.DataArray, exclusion: xr.DataArray | None = None
) -> xr.DataArray:
    """The flood map each evidence source alone would give (uint8 1/0/255, ``source`` first).

    Each source's decision is its likelihood >= 0.5; then the same reference water and
    exclusion as the consensus apply. Used to score the methods one by one.

    Parameters
    ----------
    water_map
        :func:`map_water` output (needs ``evidence``, ``(source, time, y, x)``).
    reference
        Reference water (1/0) on the grid (:func:`reference_water`).
    exclusion
        Exclusion flags (:func:`exclusion_mask`), or None.

    Returns
    -------
    xarray.DataArray
        uint8 flood (1/0/255), ``(source, time, y, x)``, lazy.
    """
    ev = water_map["evidence"]
    parts = []
    for s in ev["source"].values:
        e = ev.sel(source=s, drop=True)
        single = xr.Dataset(
            {
                "water": xr.where(e.notnull(), e >= 0.5, 255).astype(np.uint8),
                "likelihood": xr.where(e.notnull(), (100 * e).round(), 255).astype(np.uint8),
            }
        )
        parts.append(flood_extent(single, reference, exclusion)["flood"])
    return keep_grid(xr.concat(parts, pd.Index(ev["source"].values, name="source")), ev)


@dataclass(frozen=True)
class FloodMaps:
    """What :func:`map_flood` returns.

    Attributes
    ----------
    extent
        Per date: ``water``, ``flood``, ``likelihood`` (uint8), the contract of the
        ``flood-extent`` collection.
    summary
        ``max_extent``, ``frequency``, ``n_valid``, ``hazard``, ``reference_water``,
        ``exclusion``, ``max_extent_low`` / ``max_extent_high``.
    water
        The :func:`map_water` output (evidence per source, thresholds).
    """

    extent: xr.Dataset
    summary: xr.Dataset
    water: xr.Dataset

    def by_source(self) -> xr.DataArray:
        """Flood per evidence source alone (:func:`source_floods`).

        Returns
        -------
        xarray.DataArray
            uint8 1/0/255 ``(source, time, y, x)``: each source's likelihood >= 0.5, with
            the same reference water and exclusion as the consensus (for
            :func:`method_scores`).
        """
        return source_floods(self.water, self.summary["reference_water"], self.summary["exclusion"])


def map_flood(
    water: xr.Dataset,
    *,
    hand: xr.DataArray | None = None,
    slope: xr.DataArray | None = None,
    independent_water: xr.DataArray | None = None,
    optical: xr.DataArray | None = None,
    options: MappingOptions | None = None,
    likelihood_bounds: tuple[int, int] = (75, 25),
) -> FloodMaps:
    """Flood extent per date and time-series products from a water series, lazily.

    Parameters
    ----------
    water
        :func:`map_water` output (or several combined with
        :func:`~mus_lab.flood.combine_series`).
    hand, slope
        HAND (m) and slope (degrees) on the grid, for the exclusion mask.
    independent_water
        Independent reference water (1/0 or bool), e.g. ``landcover == 4``; on another grid
        than ``water`` it is reprojected (nearest) with a
        :class:`~mus_lab.errors.GridReprojectedWarning`, as HAND and slope are (bilinear).
    optical
        Optical evidence ``(time, y, x)`` (``water.evidence.sel(source="optical")``):
        pixels Sentinel-2 sees as water are never look-alikes.
    options
        :class:`MappingOptions` (exclusion and reference-water settings).
    likelihood_bounds
        ``(low, high)`` likelihoods of the uncertainty bounds (see :func:`flood_summary`).

    Returns
    -------
    FloodMaps

    Raises
    ------
    GridMismatchError
        The water, reference water, HAND or slope has no pixel grid.

    Examples
    --------
    Two VH dates of a 32 x 32 px scene, the second with a flooded strip 8 px wide, mapped
    with a fixed threshold:

    >>> from odc.geo.geobox import GeoBox
    >>> from odc.geo.xr import xr_coords
    >>> grid = GeoBox.from_bbox((0, 0, 320, 320), "EPSG:32633", resolution=10)
    >>> vh = np.full((2, 32, 32), -15.0, "float32")
    >>> vh[1, :, :8] = -25.0
    >>> times = np.array(["2022-03-01", "2022-03-13"], "datetime64[ns]")
    >>> sar = xr.Dataset({"vh": (("time", "y", "x"), vh)}, coords={"time": times, **xr_coords(grid)})
    >>> opts = MappingOptions(methods=("threshold",), thresholds={"vh": -22.0})
    >>> maps = map_flood(map_water(sar, options=opts), options=opts)
    >>> int(maps.extent["flood"].isel(time=1).sum()), maps.summary["max_extent"].dtype
    (256, dtype('uint8'))
    """
    opts = options or MappingOptions()
    water = keep_grid(water, water)
    w = water["water"]
    independent = None
    if independent_water is not None:
        independent = match_grid(
            independent_water.astype(np.uint8),
            w,
            names=("the reference water", "the water map"),
            resampling="nearest",
        )
    excl = exclusion_mask(
        w,
        hand=hand,
        slope=slope,
        invalid=water["invalid"] if "invalid" in water else None,
        independent_water=independent,
        optical=optical,
        options=opts,
    )
    look = (excl & 8) > 0
    ref = reference_water(w, independent=independent, lookalike=look, options=opts)
    extent = keep_grid(flood_extent(water, ref, excl), water)
    summary = flood_summary(extent, ref, excl, likelihood_bounds=likelihood_bounds)
    return FloodMaps(extent=extent, summary=keep_grid(summary, water), water=water)
