"""HoloViews figures of the dashboards: colourbars, legends and class names, never bare arrays."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import xarray as xr

__all__ = [
    "categorical_image",
    "continuous_image",
    "grouped_bars",
    "legend_html",
    "ramp_html",
    "series_curves",
    "tiled_map",
]


def _hv() -> Any:
    """HoloViews with its Bokeh backend loaded (no notebook output, unlike hv.extension)."""
    import holoviews as hv

    if "bokeh" not in hv.Store.renderers:
        hv.renderer("bokeh")
    if hv.Store.current_backend != "bokeh":
        hv.Store.set_current_backend("bokeh")
    return hv


#: Width of a map's frame in screen pixels; the height follows the image's aspect.
MAP_WIDTH = 320


def _frame(da: xr.DataArray, width: int = MAP_WIDTH) -> dict[str, int]:
    """Fixed frame size with square pixels (a fixed layout re-renders cleanly)."""
    ny, nx = da.sizes["y"], da.sizes["x"]
    return {"frame_width": width, "frame_height": max(60, round(width * ny / nx))}


_MAP_OPTS: dict[str, Any] = {
    "xaxis": None,
    "yaxis": None,
    "tools": ["hover", "tap"],
    "active_tools": ["pan", "wheel_zoom", "tap"],
    "toolbar": "above",
}


def categorical_image(
    da: xr.DataArray,
    classes: Mapping[int, str],
    colours: Sequence[str],
    *,
    label: str,
    colorbar: bool = True,
    hover: bool = True,
) -> Any:
    """An image of class codes with a colour bar that names each class.

    ``classes`` maps consecutive codes (e.g. 1 ... 5) to names; ``colours`` has one colour
    per code, in the same order. ``colorbar=False`` when the legend is drawn apart (HTML).
    The hover tool (``hover=True``) names the class under the mouse.
    """
    from bokeh.models import CustomJSHover, FixedTicker, HoverTool

    hv = _hv()

    codes = sorted(classes)
    bar = (
        {
            "colorbar": True,
            "colorbar_opts": {
                "ticker": FixedTicker(ticks=codes),
                "major_label_overrides": {c: classes[c] for c in codes},
            },
        }
        if colorbar
        else {}
    )
    names = CustomJSHover(
        code=f"const n = {json.dumps({str(c): classes[c] for c in codes})};"
        " return Number.isFinite(value) ? (n[String(Math.round(value))] || '') : '';"
    )
    tools: list[Any] = ["tap"]
    if hover:
        tools.append(HoverTool(tooltips=[(label, "@image{custom}")], formatters={"@image": names}))
    return hv.Image(da, kdims=["x", "y"], vdims=[hv.Dimension(da.name or "v", label=label)]).opts(
        cmap=list(colours),
        clim=(codes[0] - 0.5, codes[-1] + 0.5),
        color_levels=len(codes),
        **bar,
        clipping_colors={"NaN": "#00000000"},
        **_frame(da),
        **{**_MAP_OPTS, "tools": tools},
    )


def continuous_image(
    da: xr.DataArray,
    *,
    label: str,
    cmap: str,
    clim: tuple[float, float],
    alpha: float = 1.0,
    clabel: str | None = None,
) -> Any:
    """An image of a continuous variable with a colour bar (labelled ``clabel``, else ``label``)."""
    hv = _hv()
    return hv.Image(da, kdims=["x", "y"], vdims=[hv.Dimension(da.name or "v", label=label)]).opts(
        cmap=cmap,
        clim=clim,
        colorbar=True,
        clabel=label if clabel is None else clabel,
        alpha=alpha,
        clipping_colors={"NaN": "#00000000"},
        **_frame(da),
        **_MAP_OPTS,
    )


#: Name of the Bokeh label that shows the coordinates under the mouse on a tiled map.
COORDS_LABEL = "mus-coords"
_EARTH = 6378137.0


def _lonlat_text(lon: float, lat: float) -> str:
    return f"{abs(lat):.5f}° {'N' if lat >= 0 else 'S'}, {abs(lon):.5f}° {'E' if lon >= 0 else 'W'}"


def _scale_and_coordinates(lat: float, lon: float) -> Any:
    """A HoloViews hook: a scale bar in ground metres and a coordinate readout under the mouse."""
    import math

    from bokeh.models import CustomJS, Range1d
    from bokeh.models.annotations import Label, ScaleBar
    from bokeh.models.annotations.dimensional import MetricLength

    # A Web Mercator metre is cos(latitude) metres on the ground: the scale bar measures a
    # range of ground metres that follows the map's x range.
    k = math.cos(math.radians(lat))

    def hook(plot: Any, _element: Any) -> None:
        fig = plot.state
        if any(getattr(r, "name", None) == COORDS_LABEL for r in fig.center):
            return
        xr_ = fig.x_range
        start = xr_.start if isinstance(xr_.start, int | float) else 0.0
        end = xr_.end if isinstance(xr_.end, int | float) else 1.0
        ground = Range1d(start=start * k, end=end * k)
        follow = CustomJS(
            args={"ground": ground, "r": xr_, "k": k},
            code="ground.setv({start: r.start * k, end: r.end * k});",
        )
        xr_.js_on_change("start", follow)
        xr_.js_on_change("end", follow)
        fig.add_layout(
            ScaleBar(
                range=ground,
                unit="m",
                dimensional=MetricLength(),
                location="bottom_left",
                bar_length=0.3,
                background_fill_alpha=0.75,
                name="mus-scalebar",
            )
        )
        label = Label(
            x=5,
            y=5,
            x_units="screen",
            y_units="screen",
            text=_lonlat_text(lon, lat),
            text_font_size="11px",
            background_fill_color="white",
            background_fill_alpha=0.75,
            name=COORDS_LABEL,
        )
        label.x = plot.state.frame_width - 5 if plot.state.frame_width else 5
        label.text_align = "right"
        fig.add_layout(label)
        fig.js_on_event(
            "mousemove",
            CustomJS(
                args={"label": label},
                code=f"""
                const R = {_EARTH};
                const lon = cb_obj.x / R * 180 / Math.PI;
                const lat = (2 * Math.atan(Math.exp(cb_obj.y / R)) - Math.PI / 2) * 180 / Math.PI;
                label.text = Math.abs(lat).toFixed(5) + '° ' + (lat >= 0 ? 'N' : 'S') + ', '
                    + Math.abs(lon).toFixed(5) + '° ' + (lon >= 0 ? 'E' : 'W');
                """,
            ),
        )

    return hook


def tiled_map(
    layer: str,
    bounds: tuple[float, float, float, float],
    *,
    background: str | None = None,
    label: str = "",
    alpha: float = 0.7,
    pad: float = 0.08,
    width: int = MAP_WIDTH,
) -> Any:
    """A map drawn from tiles: ``layer`` over a ``background`` mosaic, with scale bar and coordinates.

    Parameters
    ----------
    layer
        Tile URL template (``{Z}/{X}/{Y}``) of the product layer.
    bounds
        ``(xmin, ymin, xmax, ymax)`` shown at first, in Web Mercator metres.
    background
        Tile URL template of the background (a true-colour mosaic), or None.
    label
        Name of the layer (the overlay's title).
    alpha
        Opacity of the layer over the background.
    pad
        Margin around ``bounds`` shown at first, as a share of their size (the background
        around the product).
    width
        Frame width in screen pixels (the height follows the area's aspect).

    Returns
    -------
    holoviews.Overlay
        Pan and zoom; a scale bar in metres (corrected for the Web Mercator scale at the
        area's latitude) and the longitude/latitude under the mouse (bottom right).
    """
    import math

    hv = _hv()
    x0, y0, x1, y1 = bounds
    dx, dy = (x1 - x0) * pad, (y1 - y0) * pad
    x0, y0, x1, y1 = x0 - dx, y0 - dy, x1 + dx, y1 + dy
    lon = (x0 + x1) / 2 / _EARTH * 180 / math.pi
    lat = (2 * math.atan(math.exp((y0 + y1) / 2 / _EARTH)) - math.pi / 2) * 180 / math.pi
    layers = [hv.Tiles(background, name="background")] if background else []
    layers.append(hv.Tiles(layer, name="layer").opts(alpha=alpha, tools=["tap"]))
    height = max(60, round(width * (y1 - y0) / max(x1 - x0, 1e-9)))
    return hv.Overlay(layers).opts(
        xlim=(x0, x1),
        ylim=(y0, y1),
        title=label,
        frame_width=width,
        frame_height=height,
        xaxis=None,
        yaxis=None,
        active_tools=["pan", "wheel_zoom", "tap"],
        toolbar="above",
        hooks=[_scale_and_coordinates(lat, lon)],
    )


def legend_html(entries: Sequence[tuple[str, str]]) -> str:
    """An HTML legend: a colour swatch and a name per entry.

    Parameters
    ----------
    entries
        ``(colour, name)`` pairs, in order.

    Returns
    -------
    str

    Examples
    --------
    >>> "background:#d7191c" in legend_html([("#d7191c", "very high")])
    True
    """
    items = [
        f"<span style='white-space:nowrap;margin-right:10px'><span style='display:inline-block;"
        f"width:12px;height:12px;background:{colour};margin-right:4px'></span>{name}</span>"
        for colour, name in entries
    ]
    return "<div style='max-width:380px;font-size:12px'>" + " ".join(items) + "</div>"


def ramp_html(cmap: str, low: float, high: float, unit: str = "") -> str:
    """An HTML colour bar of a Matplotlib colour map from ``low`` to ``high``.

    Parameters
    ----------
    cmap
        A Matplotlib colour map name (case-insensitive: titiler's are lower case).
    low, high
        The values at the ends.
    unit
        Shown after the values.

    Returns
    -------
    str

    Examples
    --------
    >>> "linear-gradient" in ramp_html("viridis", 0, 100, "%")
    True
    """
    import matplotlib
    from matplotlib.colors import to_hex

    names = {n.lower(): n for n in matplotlib.colormaps}
    ramp = matplotlib.colormaps[names.get(cmap.lower(), "viridis")]
    stops = ", ".join(to_hex(ramp(i / 8)) for i in range(9))
    return (
        "<div style='font-size:12px;display:flex;align-items:center;gap:6px'>"
        f"<span>{low:g}</span><span style='display:inline-block;width:200px;height:12px;"
        f"background:linear-gradient(to right, {stops})'></span><span>{high:g} {unit}</span></div>"
    )


def series_curves(
    frame: pd.DataFrame,
    *,
    title: str,
    ylabel: str,
    xlabel: str = "date",
    legend: str = "series",
) -> Any:
    """One curve with markers per ``series`` of a long table (``time``, ``series``, ``value``).

    The legend sits right of the frame (never over a curve) and the toolbar above it.
    """
    hv = _hv()
    x = hv.Dimension("time", label=xlabel)
    curves = {
        name: hv.Curve(group, x, ("value", ylabel)).opts(tools=["hover"])
        * hv.Scatter(group, x, ("value", ylabel)).opts(size=5)
        for name, group in frame.groupby("series")
    }
    return hv.NdOverlay(curves, kdims=hv.Dimension("series", label=legend)).opts(
        title=title,
        legend_position="right",
        frame_width=380,
        frame_height=180,
        xticks=5,
        padding=0.05,
        toolbar="above",
    )


def grouped_bars(
    frame: pd.DataFrame, *, kdims: list[str], vdim: str, title: str, ylim: tuple[float, float]
) -> Any:
    """Bars of ``vdim`` grouped by ``kdims`` (e.g. class and source), with a legend."""
    hv = _hv()
    colour: dict[str, Any] = (
        {"color": kdims[-1], "cmap": "Category10", "show_legend": True}
        if len(kdims) > 1
        else {"color": "#4c72b0"}
    )
    hooks = []
    if len(kdims) > 1:

        def _group_labels_only(plot: Any, _element: Any) -> None:
            # The inner factor (e.g. the source) is in the legend; naming it under every bar
            # crowds the axis: show only the groups (classes), slanted.
            axis = plot.state.xaxis[0]
            axis.major_label_text_font_size = "0pt"
            axis.group_label_orientation = 0.5
            axis.group_text_font_size = "11px"
            axis.separator_line_alpha = 0.0

        hooks.append(_group_labels_only)
    return hv.Bars(frame, kdims=kdims, vdims=[vdim]).opts(
        title=title,
        ylim=ylim,
        frame_width=420,
        frame_height=180,
        xrotation=30 if len(kdims) == 1 else 0,
        tools=["hover"],
        toolbar="above",
        hooks=hooks,
        **colour,
    )
