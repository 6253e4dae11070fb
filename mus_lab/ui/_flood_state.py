"""State of the flood-risk dashboard: GUI-free, driven by tests without a browser.

It reads the ``flood-risk`` summary item (``risk_class``, ``hazard``, ..., and the ``zones``
CSV table) and the ``flood-extent`` items (one per SAR date: ``water``, ``flood``,
``likelihood``), as the flood stage writes them.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import param
import pystac
import xarray as xr

from mus_lab.contracts import RISK_COLOURS, ZONE_COLUMNS
from mus_lab.ui._i18n import LANGUAGES, class_name, risk_name, translate
from mus_lab.ui._products import Products, find_products, latest, missing_message
from mus_lab.ui._rasters import read_for_display

__all__ = ["RISK_COLOURS", "ZONE_COLUMNS", "FloodRiskState"]


def _href(item: pystac.Item, key: str) -> str | None:
    asset = item.assets.get(key)
    return asset.get_absolute_href() if asset is not None else None


class FloodRiskState(param.Parameterized):
    """What the flood-risk dashboard shows, for one catalog, language, date and layer choice.

    Example
    -------
    >>> state = FloodRiskState(catalog="")
    >>> state.ready, "mus-lab demo" in state.message
    (False, True)
    """

    catalog = param.String(default="", doc="Catalog holding the flood products.")
    language: param.Selector = param.Selector(
        default="en", objects=list(LANGUAGES), doc="Label language."
    )
    date: param.Selector = param.Selector(
        default=None, objects=[], allow_None=True, doc="Flood-extent date."
    )
    show_likelihood = param.Boolean(default=False, doc="Overlay the date's flood likelihood.")
    ready = param.Boolean(default=False, constant=True, doc="The products were found.")
    message = param.String(default="", constant=True, doc="What is missing, how to make it.")
    max_size = param.Integer(default=800, bounds=(64, None), doc="Display size in pixels.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._products = Products("")
        self._extents: dict[str, pystac.Item] = {}
        self._cache: dict[tuple[str, str], xr.DataArray] = {}
        self.refresh()

    # --- finding the products --------------------------------------------------------------
    @param.depends("catalog", watch=True)
    def refresh(self) -> None:
        """Search the catalog again (e.g. after the flood notebook ran)."""
        self._products = find_products(self.catalog, ["flood-risk", "flood-extent"])
        self._cache.clear()
        self._extents = {
            f"{it.datetime:%Y-%m-%d}": it
            for it in sorted(self._products.items.get("flood-extent", ()), key=_when)
            if it.datetime is not None
        }
        dates = list(self._extents)
        self.param.date.objects = dates
        if self.date not in dates:
            self.date = self._peak_date() if dates else None
        with param.edit_constant(self):
            self.ready = self._products.has("flood-risk")
        self._update_message()

    @param.depends("language", watch=True)
    def _update_message(self) -> None:
        text = "" if self.ready else missing_message(self._products, "flood_what", self.language)
        with param.edit_constant(self):
            self.message = text

    def _peak_date(self) -> str:
        """The date with the largest flooded share (what a decision-maker looks at first)."""
        best, best_share = next(iter(self._extents)), -1.0
        for day in self._extents:
            flood = self._raster(self._extents[day], "flood", max_size=128)
            share = float(np.mean(flood.values == 1)) if flood.size else 0.0
            if share > best_share:
                best, best_share = day, share
        return best

    @property
    def dates(self) -> list[str]:
        return list(self._extents)

    def label(self, key: str, **values: Any) -> str:
        """A label in the current language."""
        return translate(key, self.language, **values)

    # --- rasters -----------------------------------------------------------------------------
    def _raster(self, item: pystac.Item, key: str, *, max_size: int | None = None) -> xr.DataArray:
        size = max_size or self.max_size
        cache_key = (f"{item.id}/{size}", key)
        if cache_key not in self._cache:
            href = _href(item, key)
            if href is None:
                raise KeyError(f"{item.id} has no asset {key!r}")
            self._cache[cache_key] = read_for_display(href, max_size=size)
        return self._cache[cache_key]

    def _summary_item(self) -> pystac.Item:
        return latest(self._products.items["flood-risk"])

    def risk_class(self) -> xr.DataArray:
        """Risk classes 1-5 as float, NaN where no data (class 0)."""
        da = self._raster(self._summary_item(), "risk_class")
        return da.where(da > 0).astype("float32").rename("risk_class")

    def likelihood(self) -> xr.DataArray | None:
        """Flood likelihood (0-100 %) of the chosen date, NaN where no data."""
        if self.date is None:
            return None
        da = self._raster(self._extents[self.date], "likelihood")
        return da.where(da <= 100).astype("float32").rename("likelihood")

    def extent(self) -> xr.DataArray | None:
        """The chosen date's water: 0 dry, 1 flooded, 2 permanent water, NaN no data."""
        if self.date is None:
            return None
        item = self._extents[self.date]
        water, flood = self._raster(item, "water"), self._raster(item, "flood")
        out = xr.where(flood == 1, 1.0, xr.where(water == 1, 2.0, 0.0))
        out = out.where((water != 255) & (flood != 255))
        return out.astype("float32").rename("extent")

    def flooded_share(self) -> float:
        """Share of valid pixels flooded on the chosen date (0 without a date)."""
        ext = self.extent()
        if ext is None or not np.isfinite(ext.values).any():
            return 0.0
        return float(np.nanmean(ext.values == 1) / np.mean(np.isfinite(ext.values)))

    # --- zone table -------------------------------------------------------------------------
    def zones(self) -> pd.DataFrame:
        """The product's zone table as written (contract columns), empty if absent."""
        href = _href(self._summary_item(), "zones") if self.ready else None
        if href is None:
            return pd.DataFrame(columns=list(ZONE_COLUMNS))
        return pd.read_csv(href)

    def zone_table(self) -> pd.DataFrame:
        """The zone table for people: translated headers and class names, rounded hectares."""
        z = self.zones()
        lang = self.language
        table = pd.DataFrame(
            {
                translate("col_zone", lang): z["zone"],
                translate("col_class", lang): [class_name(n, lang) for n in z["class_name"]],
                translate("col_flooded", lang): z["flooded_ha"].round(1),
                translate("col_range", lang): [
                    f"{lo:,.1f} – {hi:,.1f}"
                    for lo, hi in zip(z["flooded_ha_low"], z["flooded_ha_high"], strict=True)
                ],
                translate("col_at_risk", lang): z["at_risk_ha"].round(1),
            }
        )
        return table

    def totals(self) -> dict[str, float]:
        """Flooded hectares (with the uncertainty bounds) and hectares at risk, all zones."""
        z = self.zones()
        return {
            "flooded": float(z["flooded_ha"].sum()),
            "low": float(z["flooded_ha_low"].sum()),
            "high": float(z["flooded_ha_high"].sum()),
            "at_risk": float(z["at_risk_ha"].sum()),
            "n_zones": float(z["zone"].nunique()),
        }

    def summary(self) -> str:
        """One sentence with the totals, in the current language."""
        if not self.ready or self.zones().empty:
            return self.label("no_zones") if self.ready else ""
        t = self.totals()
        return self.label(
            "flood_summary",
            flooded=t["flooded"],
            low=t["low"],
            high=t["high"],
            at_risk=t["at_risk"],
            n_zones=int(t["n_zones"]),
        )

    # --- exports ----------------------------------------------------------------------------
    def zones_csv(self) -> str:
        """The zone table as CSV (contract columns, language-independent)."""
        return self.zones().to_csv(index=False)

    def map_png(self, *, dpi: int = 100) -> bytes:
        """The risk map (and the chosen date's extent) as a PNG with legends, in the language."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import BoundaryNorm, ListedColormap
        from matplotlib.patches import Patch

        extent = self.extent()
        panels = 2 if extent is not None else 1
        fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 5.5), constrained_layout=True)
        axes = np.atleast_1d(axes)
        risk = self.risk_class()
        cmap = ListedColormap(RISK_COLOURS)
        axes[0].imshow(risk.values, cmap=cmap, norm=BoundaryNorm(np.arange(0.5, 6), 5))
        axes[0].set_title(self.label("risk_map"))
        handles = [
            Patch(color=c, label=risk_name(i, self.language))
            for i, c in enumerate(RISK_COLOURS, start=1)
        ]
        handles.append(
            Patch(facecolor="white", edgecolor="grey", label=self.label("risk_nodata_short"))
        )
        axes[0].legend(handles=handles, loc="lower left", fontsize=8)
        if extent is not None:
            colours = ("#f2efe9", "#d7301f", "#2166ac")
            names = ("extent_dry", "extent_flood", "extent_permanent")
            axes[1].imshow(extent.values, cmap=ListedColormap(colours), vmin=-0.5, vmax=2.5)
            axes[1].set_title(self.label("extent_map", date=self.date))
            axes[1].legend(
                handles=[
                    Patch(color=c, label=self.label(n)) for c, n in zip(colours, names, strict=True)
                ],
                loc="lower left",
                fontsize=8,
            )
        for ax in axes:
            ax.set_axis_off()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        plt.close(fig)
        return buffer.getvalue()


def _when(item: pystac.Item) -> Any:
    return item.datetime
