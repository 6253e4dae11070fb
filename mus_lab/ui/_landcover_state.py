"""State of the land-cover explorer: layers side by side and what is known about one pixel.

Layers come from the ``landcover-optical`` / ``landcover-radar`` products (``classification``,
``confidence``, ``entropy`` when written, ``probability``) and the ``landcover-fused`` product (``fused_class``,
``belief``, ``plausibility``, ``conflict``, ``ignorance``, ``confidence``). A clicked pixel
gets its optical series (NDVI from ``s2-l2a-ard``) and radar series (VV/VH in dB from
``sentinel-1-grd``), its class probabilities per source and its fusion masses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import param
import pystac
import xarray as xr

from mus_lab.contracts import (
    ARD_CONTRACTS,
    COLLECTIONS,
    FUSED,
    LANDCOVER_COLLECTIONS,
    SAMPLE_LEGEND,
    SAMPLE_LEGEND_COLOURS,
    UNDECIDED,
)
from mus_lab.ui._i18n import class_name
from mus_lab.ui._products import find_products
from mus_lab.ui._rasters import sample_pixel
from mus_lab.ui._state import _ProductState, asset_href, png_bytes, subplots

__all__ = ["LAYERS", "LEGEND", "LEGEND_COLOURS", "UNIT_CMAPS", "LandcoverState", "Layer"]

#: The sample scenario's land-cover legend and colours: used only when a product carries no
#: ``classification:classes`` (the land-cover and fusion stages always write it).
LEGEND: dict[int, str] = dict(SAMPLE_LEGEND)
LEGEND_COLOURS: dict[int, str] = dict(SAMPLE_LEGEND_COLOURS)

Kind = Literal["class", "percent", "unit"]


@dataclass(frozen=True)
class Layer:
    """One map layer: which collection and asset, and how to colour it.

    Parameters
    ----------
    collection : str
        Product collection id (``"landcover-optical"``, ``"landcover-fused"``...).
    asset : str
        Asset key of the layer in the product's item (``"classification"``, ``"belief"``...).
    kind : {"class", "percent", "unit"}
        Class codes (legend colours), a 0-100 score, or a 0-1 measure (colour bar).

    Raises
    ------
    None
        A record; :data:`LAYERS` lists the explorer's layers.

    Examples
    --------
    >>> LAYERS["belief"]
    Layer(collection='landcover-fused', asset='belief', kind='unit')
    """

    collection: str
    asset: str
    kind: Kind


_OPTICAL, _RADAR = LANDCOVER_COLLECTIONS["optical"], LANDCOVER_COLLECTIONS["radar"]
_SOURCES = {"optical": _OPTICAL, "radar": _RADAR}
#: Layers the explorer can show, by name (the label key is ``layer_<name>``).
LAYERS: dict[str, Layer] = {
    "optical_class": Layer(_OPTICAL, "classification", "class"),
    "optical_confidence": Layer(_OPTICAL, "confidence", "percent"),
    "optical_entropy": Layer(_OPTICAL, "entropy", "percent"),
    "radar_class": Layer(_RADAR, "classification", "class"),
    "radar_confidence": Layer(_RADAR, "confidence", "percent"),
    "radar_entropy": Layer(_RADAR, "entropy", "percent"),
    "fused_class": Layer(FUSED.collection, "fused_class", "class"),
    "belief": Layer(FUSED.collection, "belief", "unit"),
    "plausibility": Layer(FUSED.collection, "plausibility", "unit"),
    "conflict": Layer(FUSED.collection, "conflict", "unit"),
}
#: Layers shown at first (the others are one click away).
DEFAULT_LAYERS = (
    "optical_class",
    "optical_confidence",
    "fused_class",
    "belief",
    "plausibility",
    "conflict",
)
#: Colour maps of the 0-1 fusion measures.
UNIT_CMAPS = {"belief": "Greens", "plausibility": "Purples", "conflict": "Reds"}
_COLLECTIONS = (_OPTICAL, _RADAR, FUSED.collection)
#: Where the clicked pixel's series come from: optical ARD and the Sentinel-1 source.
_S2_ARD, _S1 = ARD_CONTRACTS["s2"].collection, COLLECTIONS["s1"]
_FUSION_MASSES = ("belief", "plausibility", "conflict", "ignorance", "confidence")


class LandcoverState(_ProductState):
    """What the land-cover explorer shows: available layers, chosen layers, a clicked pixel.

    Parameters
    ----------
    catalog : str, optional
        Local catalog (folder or ``catalog.json``) or STAC API URL holding the
        ``landcover-optical``, ``landcover-radar`` and ``landcover-fused`` products (any of
        them); ``""`` (default) for none.
    language : {"en", "fr"}, optional
        Label language.
    layers : list of str, optional
        Names of :data:`LAYERS` shown (default: the optical and fused ones available).
    pixel : (float, float), optional
        The clicked point ``(x, y)`` in the products' CRS (:meth:`crs`), or None.
    max_size : int, optional
        Largest side of the displayed maps in pixels (default 600).

    Raises
    ------
    None
        Nothing for an absent catalog or product: the explorer then shows :attr:`message`,
        the command that makes them.

    Examples
    --------
    >>> LandcoverState(catalog="").available
    []

    A land-cover product of two classes on a 4 x 8 grid, written into a new catalog:

    >>> import pystac, tempfile
    >>> from odc.geo.geobox import GeoBox
    >>> from odc.geo.xr import xr_zeros
    >>> from mus_lab.publish import LandCoverProduct
    >>> folder = tempfile.mkdtemp()
    >>> pystac.Catalog("demo", "demo").normalize_and_save(folder, "SELF_CONTAINED")
    >>> gbox = GeoBox.from_bbox((500000, 5000000, 500160, 5000080), "EPSG:32618", resolution=20)
    >>> codes = xr_zeros(gbox, "uint8") + np.repeat(np.array([1, 3], "uint8"), 4)
    >>> prob = xr.concat([(codes == c) * 0.8 + 0.1 for c in (1, 3)], "class")
    >>> score = (prob.max("class") * 100).astype("uint8")
    >>> data = xr.Dataset({"classification": codes, "confidence": score, "margin": score,
    ...                    "probability": prob.assign_coords({"class": [1, 3]}).astype("float32")})
    >>> _ = LandCoverProduct(data, legend={1: "crops", 3: "forest"}).write(folder)
    >>> state = LandcoverState(catalog=folder, language="fr")
    >>> state.ready, state.layers
    (True, ['optical_class', 'optical_confidence'])
    >>> state.legend()
    {1: 'cultures', 2: 'forêt', 3: 'indécis'}
    >>> state.pixel = (500150.0, 5000010.0)  # the east half: forest
    >>> state.pixel_classes()
    {'Occupation du sol optique': 'forêt'}
    """

    _collections: ClassVar[tuple[str, ...]] = _COLLECTIONS
    _what_key: ClassVar[str] = "landcover_what"

    layers = param.ListSelector(default=[], objects=list(LAYERS), doc="Layers shown.")
    pixel = param.Tuple(default=None, length=2, allow_None=True, doc="Clicked (x, y).")
    max_size = param.Integer(default=600)

    def _found(self) -> bool:
        available = self.available
        default = [n for n in DEFAULT_LAYERS if n in available] or available
        self.layers = [n for n in self.layers if n in available] or default
        return bool(available)

    @property
    def available(self) -> list[str]:
        """Layer names whose product and asset exist in the catalog."""
        out = []
        for name, layer in LAYERS.items():
            item = self._item(layer.collection)
            if item is not None and layer.asset in item.assets:
                out.append(name)
        return out

    def layer_title(self, name: str) -> str:
        """The title of a layer in the current language.

        Parameters
        ----------
        name : str
            A key of :data:`LAYERS` (``"fused_class"``...).

        Returns
        -------
        str
            The label ``layer_<name>`` in :attr:`language`.

        Examples
        --------
        >>> LandcoverState(language="fr").layer_title("radar_confidence")
        'Confiance radar (%)'
        """
        return self.label(f"layer_{name}")

    def classes(self) -> dict[int, tuple[str, str]]:
        """The products' legend: class code -> (English title, ``#rrggbb`` colour).

        Read from the ``classification:classes`` of the first class map found (optical,
        radar, fused), so any legend a user trained on is shown with its own names and
        colours; the sample scenario's :data:`LEGEND` when no product carries one.

        Returns
        -------
        dict of int to (str, str)
            Class codes in increasing order (no data and undecided left out).

        Examples
        --------
        >>> LandcoverState().classes()[3]  # no product: the sample legend
        ('forest', '#1f7a36')
        """
        for source in ("optical", "radar", "fused"):
            spec = LAYERS[f"{source}_class"]
            item = self._item(spec.collection)
            if item is None or spec.asset not in item.assets:
                continue
            entries: Any = item.assets[spec.asset].extra_fields.get(
                "classification:classes"
            ) or item.properties.get("classification:classes")
            found = {
                int(e["value"]): (
                    str(e.get("title") or e.get("name") or e["value"]),
                    "#" + str(e.get("color_hint") or "9e9e9e").lstrip("#"),
                )
                for e in entries or []
                if not e.get("nodata") and int(e["value"]) not in (0, UNDECIDED)
            }
            if found:
                return dict(sorted(found.items()))
        return {code: (name, LEGEND_COLOURS[code]) for code, name in LEGEND.items()}

    def _display_index(self) -> dict[int, int]:
        """Class code -> consecutive display index 1 ... n (undecided: n + 1)."""
        codes = list(self.classes())
        index = {code: i + 1 for i, code in enumerate(codes)}
        index[UNDECIDED] = len(codes) + 1
        return index

    def colours(self) -> list[str]:
        """One colour per display index (the classes, then grey for undecided).

        Returns
        -------
        list of str
            ``#rrggbb`` colours; entry ``i - 1`` colours display index ``i`` of :meth:`layer`.

        Examples
        --------
        >>> colours = LandcoverState().colours()
        >>> len(colours) == len(LEGEND) + 1, colours[-1]
        (True, '#9e9e9e')
        """
        return [colour for _, colour in self.classes().values()] + ["#9e9e9e"]

    def legend(self) -> dict[int, str]:
        """Display index -> class name in the current language (fused ``undecided`` last).

        Returns
        -------
        dict of int to str
            Display indices 1 ... n + 1 as :meth:`layer` gives them, with their names.

        Examples
        --------
        >>> legend = LandcoverState(language="fr").legend()
        >>> legend[1], legend[len(legend)]
        ('cultures', 'indécis')
        """
        names = {
            i + 1: class_name(title, self.language)
            for i, (title, _) in enumerate(self.classes().values())
        }
        names[len(names) + 1] = self.label("undecided")
        return names

    def class_title(self, code: int, language: str | None = None) -> str:
        """The name of a class code in ``language`` (default: the page's).

        Parameters
        ----------
        code : int
            A class code of the products' legend (:meth:`classes`).
        language : str, optional
            ``"en"`` or ``"fr"``; default :attr:`language`.

        Returns
        -------
        str
            The translated class name; the code as text when the legend lacks it.

        Examples
        --------
        >>> LandcoverState().class_title(4, "fr"), LandcoverState().class_title(42)
        ('eau', '42')
        """
        title = self.classes().get(code, (str(code), ""))[0]
        return class_name(title, language or self.language)

    # --- layers ------------------------------------------------------------------------------
    def layer(self, name: str) -> xr.DataArray:
        """A layer for display: class codes as float (undecided -> 8), percent/unit as float.

        Parameters
        ----------
        name : str
            A key of :data:`LAYERS` among :attr:`available`.

        Returns
        -------
        xarray.DataArray
            float32 ``(y, x)`` named ``name``, decimated to :attr:`max_size` pixels a side,
            NaN where no data. Class maps hold display indices 1 ... n + 1 (see
            :meth:`legend` and :meth:`colours`), scores 0-100, measures 0-1.

        Raises
        ------
        KeyError
            The layer's product or asset is not in the catalog.
        """
        spec = LAYERS[name]
        item = self._item(spec.collection)
        if item is None or spec.asset not in item.assets:
            raise KeyError(f"layer {name!r} is not in the catalog {self.catalog}")
        da = self._display(item, spec.asset)
        if spec.kind == "class":
            out = xr.full_like(da, np.nan, dtype="float32")
            for code, index in self._display_index().items():
                out = out.where(da != code, index)
        elif spec.kind == "percent":
            out = da.where(da <= 100)
        else:
            out = da.where(np.isfinite(da))
        return out.astype("float32").rename(name)

    def from_web(self, x: float, y: float) -> tuple[float, float]:
        """A point of a tiled map (Web Mercator metres) in the products' CRS (:attr:`pixel`'s).

        Parameters
        ----------
        x, y : float
            EPSG:3857 coordinates (a click on a map drawn from tiles).

        Returns
        -------
        tuple of float
            The point in :meth:`crs`, else in the CRS of the first layer's raster.

        Examples
        --------
        >>> LandcoverState().from_web(0.0, 0.0)  # no product: unchanged
        (0.0, 0.0)
        """
        from pyproj import Transformer

        crs = self.crs()
        if not crs:
            import rasterio

            for name in self.available:
                spec = LAYERS[name]
                item = self._item(spec.collection)
                href = asset_href(item, spec.asset) if item is not None else None
                if href:
                    with rasterio.open(href) as src:
                        crs = src.crs.to_string() if src.crs is not None else ""
                    break
        if not crs:
            return x, y
        px, py = Transformer.from_crs("EPSG:3857", crs, always_xy=True).transform(x, y)
        return float(px), float(py)

    def crs(self) -> str:
        """The CRS of the land-cover products, where clicked coordinates are given.

        Returns
        -------
        str
            ``"EPSG:<code>"`` from the first product's ``proj:epsg``; ``""`` without product.

        Examples
        --------
        >>> LandcoverState().crs()
        ''
        """
        for collection in _COLLECTIONS:
            item = self._item(collection)
            if item is not None:
                epsg = item.properties.get("proj:epsg")
                if epsg:
                    return f"EPSG:{epsg}"
        return ""

    # --- one pixel ---------------------------------------------------------------------------
    def pixel_series(self) -> pd.DataFrame:
        """Time series at the clicked pixel: columns ``time``, ``series``, ``value``.

        The optical series is the NDVI of the valid ``s2-l2a-ard`` dates; the radar series
        are VV and VH of ``sentinel-1-grd`` in dB (each raster sampled in its own CRS).

        Returns
        -------
        pandas.DataFrame
            One row per date and series (``"S2 NDVI"``, ``"S1 VV (dB)"``, ``"S1 VH (dB)"``),
            sorted by series then time (timezone-naive); empty without a pixel or product.

        Examples
        --------
        >>> LandcoverState().pixel_series().empty
        True
        """
        if self.pixel is None or not self.ready:
            return pd.DataFrame(columns=["time", "series", "value"])
        x, y = self.pixel
        rows: list[tuple[Any, str, float]] = []
        crs = self.crs()
        for item in _search(self.catalog, _S2_ARD):
            values = _sample(item, ("red", "nir", "valid"), x, y, crs)
            if values is not None and values["valid"] == 1:
                red, nir = values["red"], values["nir"]
                if red + nir > 0:
                    rows.append((item.datetime, "S2 NDVI", (nir - red) / (nir + red)))
        for item in _search(self.catalog, _S1):
            values = _sample(item, ("vv", "vh"), x, y, crs)
            for band in ("vv", "vh"):
                if values is not None and values[band] > 0:
                    rows.append(
                        (item.datetime, f"S1 {band.upper()} (dB)", 10 * np.log10(values[band]))
                    )
        frame = pd.DataFrame(rows, columns=["time", "series", "value"])
        if not frame.empty:
            frame["time"] = pd.to_datetime(frame["time"]).dt.tz_localize(None)
        return frame.sort_values(["series", "time"]).reset_index(drop=True)

    def pixel_probabilities(self) -> pd.DataFrame:
        """Class probabilities at the clicked pixel per source (``optical``, ``radar``).

        Returns
        -------
        pandas.DataFrame
            Columns ``source``, ``class`` (name in :attr:`language`) and ``probability``
            (0-1), one row per source and class; empty without a pixel or probabilities.

        Examples
        --------
        >>> list(LandcoverState().pixel_probabilities().columns)
        ['source', 'class', 'probability']
        """
        return self._probabilities(self.language)

    def _probabilities(self, language: str) -> pd.DataFrame:
        rows = []
        if self.pixel is not None:
            for source in ("optical", "radar"):
                item = self._item(_SOURCES[source])
                href = asset_href(item, "probability") if item is not None else None
                if item is None or href is None:
                    continue
                values = sample_pixel(href, *self.pixel, crs=self.crs())
                if values is None:
                    continue
                codes = _class_codes(item.assets["probability"], len(values))
                for code, p in zip(codes, values, strict=True):
                    name = self.class_title(code, language)
                    rows.append((source, name, float(p)))
        return pd.DataFrame(rows, columns=["source", "class", "probability"])

    def pixel_masses(self) -> dict[str, float]:
        """Fusion measures at the clicked pixel (belief, plausibility, conflict, ...).

        Returns
        -------
        dict of str to float
            ``belief``, ``plausibility``, ``conflict``, ``ignorance``, ``confidence`` (0-1)
            and ``fused_class`` (its code), those the fused product holds; empty without a
            pixel or fused product, or outside it.

        Examples
        --------
        >>> LandcoverState().pixel_masses()
        {}
        """
        item = self._item(FUSED.collection)
        if self.pixel is None or item is None:
            return {}
        out: dict[str, float] = {}
        for key in (*_FUSION_MASSES, "fused_class"):
            href = asset_href(item, key)
            v = sample_pixel(href, *self.pixel, crs=self.crs()) if href is not None else None
            if v is not None:
                out[key] = float(v[0])
        return out

    def pixel_classes(self) -> dict[str, str]:
        """The class of each classification layer at the clicked pixel, in the language.

        Returns
        -------
        dict of str to str
            Layer title -> class name (both in :attr:`language`), for the class maps that
            have data at the pixel; empty without a pixel.

        Examples
        --------
        >>> LandcoverState().pixel_classes()
        {}
        """
        out: dict[str, str] = {}
        if self.pixel is None:
            return out
        legend, index = self.legend(), self._display_index()
        for source in ("optical", "radar", "fused"):
            code = self._class_at_pixel(source)
            if code is not None:
                name = legend.get(index[code]) if code in index else None
                out[self.layer_title(f"{source}_class")] = name or str(code)
        return out

    def _class_at_pixel(self, source: str) -> int | None:
        """The class code of ``source``'s map at the clicked pixel (None: no data or no map)."""
        spec = LAYERS[f"{source}_class"]
        item = self._item(spec.collection)
        href = asset_href(item, spec.asset) if item is not None else None
        if self.pixel is None or href is None:
            return None
        v = sample_pixel(href, *self.pixel, crs=self.crs())
        if v is None or not np.isfinite(v[0]) or v[0] <= 0:
            return None
        return int(v[0])

    # --- exports ----------------------------------------------------------------------------
    def pixel_table(self) -> pd.DataFrame:
        """Everything known at the clicked pixel as one long table, language-independent.

        Columns ``x``, ``y`` (map coordinates), ``kind`` (``class``, ``series``,
        ``probability``, ``mass``), ``source`` (``optical``, ``radar``, ``fused``, ``S2``,
        ``S1``), ``name`` (English class name, series or measure), ``time`` (series only) and
        ``value`` (class code, series value, probability or mass). Empty without a pixel.

        Returns
        -------
        pandas.DataFrame
            The long table described above (those columns even when empty).

        Examples
        --------
        >>> list(LandcoverState().pixel_table().columns)
        ['x', 'y', 'kind', 'source', 'name', 'time', 'value']
        """
        columns = ["x", "y", "kind", "source", "name", "time", "value"]
        if self.pixel is None or not self.ready:
            return pd.DataFrame(columns=columns)
        rows: list[tuple[Any, ...]] = []
        for source in ("optical", "radar", "fused"):
            code = self._class_at_pixel(source)
            if code is not None:
                name = "undecided" if code == UNDECIDED else self.class_title(code, "en")
                rows.append(("class", source, name, None, code))
        for _, row in self.pixel_series().iterrows():
            sensor, name = str(row["series"]).split(" ", 1)
            rows.append(("series", sensor, name, row["time"], row["value"]))
        for _, row in self._probabilities("en").iterrows():
            rows.append(("probability", row["source"], row["class"], None, row["probability"]))
        for name, value in self.pixel_masses().items():
            if name != "fused_class":
                rows.append(("mass", "fused", name, None, value))
        x, y = self.pixel
        return pd.DataFrame([(x, y, *r) for r in rows], columns=columns)

    def pixel_csv(self) -> str:
        """:meth:`pixel_table` as CSV.

        Returns
        -------
        str
            CSV text with a header line, no index.

        Examples
        --------
        >>> LandcoverState().pixel_csv().strip()
        'x,y,kind,source,name,time,value'
        """
        return self.pixel_table().to_csv(index=False)

    def maps_png(self, *, dpi: int = 100) -> bytes:
        """The chosen layers as a PNG, with class legends or colour bars, in the language.

        The clicked pixel, if any, is marked with a cross on every map.

        Parameters
        ----------
        dpi : int, optional
            Dots per inch; at the default 100 each map is about 420 x 440 pixels.

        Returns
        -------
        bytes
            What the "download the maps" button gives: the chosen :attr:`layers` (every
            available one when none is chosen), three maps a row.

        Raises
        ------
        KeyError
            A chosen layer is not in the catalog.
        """
        from matplotlib.colors import ListedColormap
        from matplotlib.patches import Patch

        names = [n for n in self.layers if n in self.available] or self.available
        cols = min(3, len(names))
        rows = -(-len(names) // cols)
        fig, axes = subplots(rows, cols, figsize=(4.2 * cols, 4.4 * rows), squeeze=False)
        legend, colours = self.legend(), self.colours()
        for ax, name in zip(axes.flat, names, strict=False):
            da = self.layer(name)
            extent = (
                float(da.x[0]),
                float(da.x[-1]),
                float(da.y[-1]),
                float(da.y[0]),
            )
            kind = LAYERS[name].kind
            if kind == "class":
                ax.imshow(
                    da.values,
                    cmap=ListedColormap(colours),
                    vmin=0.5,
                    vmax=len(colours) + 0.5,
                    extent=extent,
                    interpolation="nearest",
                )
                shown = sorted(int(c) for c in np.unique(da.values[np.isfinite(da.values)]))
                ax.legend(
                    handles=[Patch(color=colours[c - 1], label=legend[c]) for c in shown],
                    loc="lower left",
                    fontsize=7,
                )
            else:
                clim = (0.0, 100.0) if kind == "percent" else (0.0, 1.0)
                image = ax.imshow(
                    da.values,
                    cmap="viridis" if kind == "percent" else UNIT_CMAPS.get(name, "viridis"),
                    vmin=clim[0],
                    vmax=clim[1],
                    extent=extent,
                    interpolation="nearest",
                )
                fig.colorbar(image, ax=ax, shrink=0.8, label="%" if kind == "percent" else "0-1")
            if self.pixel is not None:
                ax.plot(*self.pixel, marker="+", color="black", markersize=14, mew=2)
            ax.set_title(self.layer_title(name), fontsize=10)
            ax.set_axis_off()
        for ax in list(axes.flat)[len(names) :]:
            ax.set_axis_off()
        return png_bytes(fig, dpi)


def _search(catalog: str, collection: str) -> tuple[pystac.Item, ...]:
    return find_products(catalog, [collection]).items.get(collection, ())


def _sample(
    item: pystac.Item, bands: tuple[str, ...], x: float, y: float, crs: str
) -> dict[str, float] | None:
    out = {}
    for band in bands:
        href = asset_href(item, band)
        if href is None:
            return None
        v = sample_pixel(href, x, y, crs=crs)
        if v is None or not np.isfinite(v[0]):
            return None
        out[band] = float(v[0])
    return out


def _class_codes(asset: pystac.Asset, n: int) -> list[int]:
    """Class code of each band of a probability asset: ``mus_lab:class_codes`` as the
    land-cover stage writes it, else ``classification:classes``, else 1 ... n."""
    codes: Any = asset.extra_fields.get("mus_lab:class_codes")
    if isinstance(codes, list) and len(codes) == n:
        return [int(c) for c in codes]
    classes: Any = asset.extra_fields.get("classification:classes")
    if isinstance(classes, list) and len(classes) == n:
        return [int(c["value"]) if isinstance(c, Mapping) else int(c) for c in classes]
    return list(range(1, n + 1))
