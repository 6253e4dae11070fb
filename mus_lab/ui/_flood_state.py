"""State of the flood-risk dashboard: GUI-free, driven by tests without a browser.

It reads the ``flood-risk`` summary item (``risk_class``, ``hazard``, ..., and the ``zones``
CSV table) and the ``flood-extent`` items (one per SAR date: ``water``, ``flood``,
``likelihood``), as the flood stage writes them (:data:`mus_lab.contracts.FLOOD_RISK`,
:data:`mus_lab.contracts.FLOOD_EXTENT`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import param
import pystac
import xarray as xr

from mus_lab.contracts import FLOOD_EXTENT, FLOOD_RISK, RISK_COLOURS, ZONE_COLUMNS
from mus_lab.ui._i18n import class_name, risk_name, translate
from mus_lab.ui._state import _ProductState, asset_href, png_bytes, subplots

__all__ = ["RISK_COLOURS", "ZONE_COLUMNS", "FloodRiskState"]

_RISK, _EXTENT = FLOOD_RISK.collection, FLOOD_EXTENT.collection


class FloodRiskState(_ProductState):
    """What the flood-risk dashboard shows, for one catalog, language, date and layer choice.

    Parameters
    ----------
    catalog : str, optional
        Local catalog (folder or ``catalog.json``) or STAC API URL holding the ``flood-risk``
        and ``flood-extent`` products; ``""`` (default) for none.
    language : {"en", "fr"}, optional
        Label language.
    date : str, optional
        Flood-extent date shown (``"YYYY-MM-DD"``); default the date with the largest flooded
        share.
    show_likelihood : bool, optional
        Show the date's flood likelihood instead of the risk classes.
    max_size : int, optional
        Largest side of the displayed maps in pixels (default 800).

    Raises
    ------
    None
        A missing catalog or product is not an error: ``ready`` is False and ``message`` says
        how to make the products.

    Examples
    --------
    >>> state = FloodRiskState(catalog="")
    >>> state.ready, "mus-lab demo" in state.message
    (False, True)
    >>> state = FloodRiskState(catalog=str(tiny.catalog_path))  # sources only: no product yet
    >>> state.ready, state.dates
    (False, [])
    >>> print(state.message.splitlines()[0])
    **No flood-risk products in ... yet.**
    >>> state.language = "fr"
    >>> state.message.startswith("**Pas encore de produits de risque d'inondation")
    True
    """

    _collections: ClassVar[tuple[str, ...]] = (_RISK, _EXTENT)
    _what_key: ClassVar[str] = "flood_what"

    date: param.Selector = param.Selector(
        default=None, objects=[], allow_None=True, doc="Flood-extent date."
    )
    show_likelihood = param.Boolean(default=False, doc="Overlay the date's flood likelihood.")

    def _found(self) -> bool:
        self._extents: dict[str, pystac.Item] = {
            f"{it.datetime:%Y-%m-%d}": it
            for it in sorted(self._products.items.get(_EXTENT, ()), key=_when)
            if it.datetime is not None
        }
        dates = list(self._extents)
        self.param.date.objects = dates
        if self.date not in dates:
            self.date = self._peak_date() if dates else None
        return self._products.has(_RISK)

    def _peak_date(self) -> str:
        """The date with the largest flooded share (what a decision-maker looks at first)."""
        best, best_share = next(iter(self._extents)), -1.0
        for day in self._extents:
            flood = self._display(self._extents[day], "flood", max_size=128)
            share = float(np.mean(flood.values == 1)) if flood.size else 0.0
            if share > best_share:
                best, best_share = day, share
        return best

    @property
    def dates(self) -> list[str]:
        """The flood-extent dates in the catalog, oldest first (``"YYYY-MM-DD"``)."""
        return list(self._extents)

    # --- rasters -----------------------------------------------------------------------------
    def _summary_item(self) -> pystac.Item:
        item = self._item(_RISK)
        if item is None:
            raise KeyError(f"no {_RISK} product in the catalog {self.catalog}")
        return item

    def risk_class(self) -> xr.DataArray:
        """Risk classes 1-5 as float, NaN where no data (class 0).

        Returns
        -------
        xarray.DataArray
            float32 ``(y, x)`` named ``risk_class``, decimated to :attr:`max_size` pixels a
            side, in the product's CRS.

        Raises
        ------
        KeyError
            The catalog holds no ``flood-risk`` product (check :attr:`ready` first).
        """
        da = self._display(self._summary_item(), "risk_class")
        return da.where(da > 0).astype("float32").rename("risk_class")

    def likelihood(self) -> xr.DataArray | None:
        """Flood likelihood (0-100 %) of the chosen date, NaN where no data.

        Returns
        -------
        xarray.DataArray or None
            float32 ``(y, x)`` named ``likelihood``; None when no date is chosen (no
            ``flood-extent`` product).
        """
        if self.date is None:
            return None
        da = self._display(self._extents[self.date], "likelihood")
        return da.where(da <= 100).astype("float32").rename("likelihood")

    def extent_item(self) -> pystac.Item | None:
        """The ``flood-extent`` item of the chosen date (None without a date).

        Returns
        -------
        pystac.Item or None

        Examples
        --------
        >>> FloodRiskState(catalog="").extent_item() is None
        True
        """
        return None if self.date is None else self._extents[self.date]

    def extent(self) -> xr.DataArray | None:
        """The chosen date's water: 0 dry, 1 flooded, 2 permanent water, NaN no data.

        Returns
        -------
        xarray.DataArray or None
            float32 ``(y, x)`` named ``extent``; None when no date is chosen.
        """
        if self.date is None:
            return None
        item = self._extents[self.date]
        water, flood = self._display(item, "water"), self._display(item, "flood")
        out = xr.where(flood == 1, 1.0, xr.where(water == 1, 2.0, 0.0))
        out = out.where((water != 255) & (flood != 255))
        return out.astype("float32").rename("extent")

    def flooded_share(self) -> float:
        """Share of valid pixels flooded on the chosen date (0 without a date).

        Returns
        -------
        float
            Flooded pixels over pixels with data, 0 to 1, on the displayed (decimated) map.

        Examples
        --------
        >>> FloodRiskState(catalog="").flooded_share()
        0.0
        """
        ext = self.extent()
        if ext is None or not np.isfinite(ext.values).any():
            return 0.0
        return float(np.nanmean(ext.values == 1) / np.mean(np.isfinite(ext.values)))

    # --- zone table -------------------------------------------------------------------------
    def zones(self) -> pd.DataFrame:
        """The product's zone table as written (contract columns), empty if absent.

        Returns
        -------
        pandas.DataFrame
            One row per zone and land-cover class, columns
            :data:`~mus_lab.contracts.ZONE_COLUMNS` (hectares as floats); empty with those
            columns when there is no product or no ``zones`` asset.

        Examples
        --------
        >>> list(FloodRiskState(catalog="").zones().columns) == list(ZONE_COLUMNS)
        True
        """
        href = asset_href(self._summary_item(), "zones") if self.ready else None
        if href is None:  # typed, so that the hectares round and sum like a real table's
            text = {"zone": "object", "class_code": "int64", "class_name": "object"}
            return pd.DataFrame({c: pd.Series(dtype=text.get(c, "float64")) for c in ZONE_COLUMNS})
        return pd.read_csv(href)

    def zone_table(self) -> pd.DataFrame:
        """The zone table for people: translated headers and class names, rounded hectares.

        Returns
        -------
        pandas.DataFrame
            Columns zone, land cover, flooded (ha, 0.1), uncertainty range (``"low – high"``)
            and at risk (ha, 0.1), headed in :attr:`language`.

        Examples
        --------
        >>> list(FloodRiskState(catalog="", language="fr").zone_table().columns)
        ['Zone', 'Occupation du sol', 'Inondé (ha)', "Intervalle d'incertitude (ha)", 'À risque (ha)']
        """
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
        """Flooded hectares (with the uncertainty bounds) and hectares at risk, all zones.

        Returns
        -------
        dict of str to float
            ``flooded``, ``low``, ``high``, ``at_risk`` (hectares summed over the zone table)
            and ``n_zones`` (distinct zones).

        Examples
        --------
        >>> FloodRiskState(catalog="").totals()
        {'flooded': 0.0, 'low': 0.0, 'high': 0.0, 'at_risk': 0.0, 'n_zones': 0.0}
        """
        z = self.zones()
        return {
            "flooded": float(z["flooded_ha"].sum()),
            "low": float(z["flooded_ha_low"].sum()),
            "high": float(z["flooded_ha_high"].sum()),
            "at_risk": float(z["at_risk_ha"].sum()),
            "n_zones": float(z["zone"].nunique()),
        }

    def summary(self) -> str:
        """One sentence with the totals, in the current language.

        Returns
        -------
        str
            The totals of :meth:`totals` in words; a "no zone table" note when the product
            has none; ``""`` when there is no product.
        """
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
        """The zone table as CSV (contract columns, language-independent).

        Returns
        -------
        str
            What the "download the table" button gives: :meth:`zones` with its header.

        Examples
        --------
        >>> FloodRiskState(catalog="").zones_csv().strip()
        'zone,class_code,class_name,flooded_ha,flooded_ha_low,flooded_ha_high,at_risk_ha'
        """
        return self.zones().to_csv(index=False)

    def map_png(self, *, dpi: int = 100) -> bytes:
        """The risk map (and the chosen date's extent) as a PNG with legends, in the language.

        Parameters
        ----------
        dpi : int, optional
            Resolution of the image (default 100: about 600 x 550 pixels a map).

        Returns
        -------
        bytes
            A PNG file: the risk classes with their legend, and beside it the chosen date's
            flood extent when there is one.

        Raises
        ------
        KeyError
            The catalog holds no ``flood-risk`` product (check :attr:`ready` first).
        """
        from matplotlib.colors import BoundaryNorm, ListedColormap
        from matplotlib.patches import Patch

        extent = self.extent()
        panels = 2 if extent is not None else 1
        fig, axes = subplots(1, panels, figsize=(6 * panels, 5.5))
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
        return png_bytes(fig, dpi)


def _when(item: pystac.Item) -> Any:
    return item.datetime
