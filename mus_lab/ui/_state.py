"""What every dashboard state does the same way: find its products, say what is missing.

:class:`_ProductState` holds the parameters both dashboards share (catalog, language, ready,
message, display size), searches the catalog for the state's product collections, keeps the
how-to message in the page's language and reads product rasters for display once (cached by
item, asset and size). :class:`~mus_lab.ui.FloodRiskState` and
:class:`~mus_lab.ui.LandcoverState` add what they show.
"""

from __future__ import annotations

from typing import Any, ClassVar

import param
import pystac
import xarray as xr

from mus_lab.ui._i18n import LANGUAGES, translate
from mus_lab.ui._products import Products, find_products, missing_message
from mus_lab.ui._rasters import read_for_display


def _bokeh_template(url: str) -> str:
    """An XYZ template as Bokeh's tile sources want it: ``{Z}/{X}/{Y}``."""
    return url.replace("{z}", "{Z}").replace("{x}", "{X}").replace("{y}", "{Y}")


def subplots(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``matplotlib.pyplot.subplots`` on the Agg backend (no display needed), laid out tight."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, constrained_layout=True, **kwargs)  # type: ignore[no-any-return]


def png_bytes(fig: Any, dpi: int) -> bytes:
    """``fig`` saved as PNG at ``dpi``, then closed (its memory freed)."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def asset_href(item: pystac.Item, key: str) -> str | None:
    """The absolute href of asset ``key`` of ``item`` (None when the item has no such asset).

    An absolute local path stays a path even when the item came from a STAC API (pystac would
    read ``/data/x.tif`` as a path on the API's host): the lab's holdings serve local files.

    Examples
    --------
    >>> import datetime as dt
    >>> item = pystac.Item("i", None, None, dt.datetime(2024, 1, 1), {})
    >>> item.set_self_href("http://127.0.0.1:9/collections/c/items/i")
    >>> item.add_asset("a", pystac.Asset("/data/a.tif"))
    >>> asset_href(item, "a"), asset_href(item, "b")
    ('/data/a.tif', None)
    """
    asset = item.assets.get(key)
    if asset is None:
        return None
    if asset.href.startswith("/") and not asset.href.startswith("//"):
        return asset.href
    return str(asset.get_absolute_href())


class _ProductState(param.Parameterized):
    """A dashboard's products in one catalog, in one language (subclasses say which)."""

    #: Product collections the dashboard reads.
    _collections: ClassVar[tuple[str, ...]] = ()
    #: Label key naming the products in the how-to message (``"flood_what"``...).
    _what_key: ClassVar[str] = ""

    catalog = param.String(default="", doc="Catalog holding the dashboard's products.")
    language: param.Selector = param.Selector(
        default="en", objects=list(LANGUAGES), doc="Label language."
    )
    ready = param.Boolean(default=False, constant=True, doc="The products were found.")
    message = param.String(default="", constant=True, doc="What is missing, how to make it.")
    max_size = param.Integer(default=800, bounds=(64, None), doc="Display size in pixels.")
    tiles = param.String(
        default="",
        doc="Root URL of a tile service (mus_lab.services.tiles): maps are drawn from its "
        "tiles over a true-colour background; '' draws the product rasters themselves.",
    )
    background = param.String(
        default="sentinel-2-l2a",
        doc="Collection of the tile service's true-colour background mosaic ('' for none).",
    )
    background_cloud = param.Number(
        default=20.0, bounds=(0, 100), doc="Background: only scenes below this cloud cover (%)."
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._products = Products("")
        self._displayed: dict[tuple[str, str, int], xr.DataArray] = {}
        self.refresh()

    @param.depends("catalog", watch=True)
    def refresh(self) -> None:
        """Search the catalog again (e.g. after the notebook that makes the products ran).

        Called when the state is made and whenever ``catalog`` changes; updates ``ready``
        and ``message``.
        """
        self._products = find_products(self.catalog, self._collections)
        self._displayed.clear()
        ready = self._found()
        with param.edit_constant(self):
            self.ready = ready
        self._update_message()

    def _found(self) -> bool:
        """Update what depends on the products just found; whether the dashboard can show them."""
        raise NotImplementedError  # pragma: no cover - abstract

    @param.depends("language", watch=True)
    def _update_message(self) -> None:
        text = "" if self.ready else missing_message(self._products, self._what_key, self.language)
        with param.edit_constant(self):
            self.message = text

    def label(self, key: str, **values: Any) -> str:
        """A label in the current language (:func:`~mus_lab.ui.translate`).

        Parameters
        ----------
        key : str
            A key of :data:`~mus_lab.ui.TRANSLATIONS`.
        **values
            The label's ``str.format`` fields.

        Returns
        -------
        str
            The label in :attr:`language`.
        """
        return translate(key, self.language, **values)

    def _item(self, collection: str) -> pystac.Item | None:
        """The item to show of ``collection`` (its summary item, else the latest), or None."""
        from mus_lab.publish import latest_item

        items = self._products.items.get(collection)
        return latest_item(items) if items else None

    # --- tiles --------------------------------------------------------------------------------
    def tile_layer(self, item: pystac.Item, key: str) -> str:
        """The tile URL template (``{Z}/{X}/{Y}``, Bokeh's) of asset ``key`` of ``item``.

        Parameters
        ----------
        item : pystac.Item
            A product item of the catalog (the tile service reads it from the same holdings).
        key : str
            Asset key; its colours come from :func:`mus_lab.publish.asset_render`.

        Returns
        -------
        str
            A URL on :attr:`tiles`.

        Examples
        --------
        >>> import datetime as dt
        >>> from mus_lab.ui import FloodRiskState
        >>> item = pystac.Item("i", None, None, dt.datetime(2024, 1, 1), {}, collection="c")
        >>> FloodRiskState(tiles="http://127.0.0.1:9").tile_layer(item, "risk_class")
        'http://127.0.0.1:9/collections/c/items/i/tiles/WebMercatorQuad/{Z}/{X}/{Y}.png?assets=risk_class&colormap_name=mus-risk'
        """
        from mus_lab.publish import item_tile_url

        return _bokeh_template(item_tile_url(self.tiles, item, key))

    def background_layer(self, item: pystac.Item) -> str | None:
        """The true-colour mosaic of :attr:`background` over ``item``'s area (least cloudy on top).

        Parameters
        ----------
        item : pystac.Item
            The product drawn over it (its ``bbox`` limits the mosaic's scenes).

        Returns
        -------
        str or None
            A tile URL template on :attr:`tiles`; None without a background collection.
        """
        from mus_lab.publish import collection_tile_url, true_colour_render

        if not self.background:
            return None
        url = collection_tile_url(
            self.tiles,
            self.background,
            true_colour_render(),
            bbox=item.bbox,
            max_cloud=self.background_cloud,
        )
        return _bokeh_template(url)

    @staticmethod
    def web_bounds(item: pystac.Item) -> tuple[float, float, float, float]:
        """``item``'s bbox in Web Mercator metres (the tiled maps' coordinates).

        Parameters
        ----------
        item : pystac.Item
            An item with a lon/lat ``bbox``.

        Returns
        -------
        tuple of float
            ``(xmin, ymin, xmax, ymax)`` in EPSG:3857.
        """
        from pyproj import Transformer

        west, south, east, north = (item.bbox or [0, 0, 0, 0])[:4]
        to_web = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
        (x0, x1), (y0, y1) = to_web.transform([west, east], [south, north])
        return float(x0), float(y0), float(x1), float(y1)

    def _display(self, item: pystac.Item, key: str, *, max_size: int | None = None) -> xr.DataArray:
        """Asset ``key`` of ``item`` decimated for display (:func:`read_for_display`), cached."""
        size = max_size or self.max_size
        cache_key = (item.id, key, size)
        if cache_key not in self._displayed:
            href = asset_href(item, key)
            if href is None:
                raise KeyError(f"{item.id} has no asset {key!r}")
            self._displayed[cache_key] = read_for_display(href, max_size=size)
        return self._displayed[cache_key]
