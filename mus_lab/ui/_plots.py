"""HoloViews figures of the dashboards: colourbars, legends and class names, never bare arrays."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import xarray as xr

__all__ = ["categorical_image", "continuous_image", "grouped_bars", "series_curves"]


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
