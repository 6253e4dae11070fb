"""The land-cover explorer's view (``panel serve``): linked maps, and one pixel's story on click.

Thin: layers, labels and pixel values come from :class:`~mus_lab.ui.LandcoverState`.
"""

from __future__ import annotations

import io
from typing import Any

from mus_lab.ui._i18n import LANGUAGES
from mus_lab.ui._landcover_state import LAYERS, UNIT_CMAPS, LandcoverState
from mus_lab.ui._plots import (
    categorical_image,
    continuous_image,
    grouped_bars,
    ramp_html,
    series_curves,
    tiled_map,
)

__all__ = ["LandcoverExplorer"]


class LandcoverExplorer:
    """A Panel page over a :class:`LandcoverState`; ``.servable()`` under ``panel serve``.

    ``apps/landcover_explorer/app.py`` serves ``LandcoverExplorer(LandcoverState(catalog=...))``
    after :func:`~mus_lab.ui.offline_extension`.

    Parameters
    ----------
    state : LandcoverState
        What to show; clicks on a map set its ``pixel``, the widgets its ``language`` and
        ``layers``.

    Raises
    ------
    None
        Nothing on purpose: without products the page shows the state's how-to message.

    Examples
    --------
    >>> from mus_lab.ui import LandcoverState
    >>> explorer = LandcoverExplorer(LandcoverState(catalog="", language="fr"))
    >>> explorer.language.value, explorer._title.object.splitlines()[0]
    ('fr', "# Explorateur d'occupation du sol")
    """

    def __init__(self, state: LandcoverState) -> None:
        import panel as pn

        self.state = state
        self.language = pn.widgets.RadioButtonGroup(
            options={name: code for code, name in LANGUAGES.items()},
            value=state.language,
        )
        self.language.link(state, value="language")
        self.layers = pn.widgets.CheckButtonGroup(
            options=self._layer_options(), value=list(state.layers)
        )
        self.layers.param.watch(lambda e: setattr(state, "layers", list(e.new)), "value")
        self._title = pn.pane.Markdown("")
        self._csv = pn.widgets.FileDownload(
            callback=lambda: io.StringIO(state.pixel_csv()),
            filename="pixel.csv",
            disabled=state.pixel is None,
        )
        self._png = pn.widgets.FileDownload(
            callback=lambda: io.BytesIO(state.maps_png()), filename="landcover_maps.png"
        )
        state.param.watch(lambda e: setattr(self._csv, "disabled", e.new is None), ["pixel"])
        state.param.watch(self._relabel, ["language"])
        self._relabel()

    def _layer_options(self) -> dict[str, str]:
        return {self.state.layer_title(n): n for n in self.state.available}

    def _relabel(self, *_: Any) -> None:
        s = self.state
        self._title.object = f"# {s.label('landcover_title')}\n{s.label('landcover_subtitle')}"
        self.layers.options = self._layer_options()
        self._csv.label = s.label("export_pixel_csv")
        self._png.label = s.label("export_maps_png")

    def panel(self) -> Any:
        """The whole page: title and language switch over the maps and the pixel's story.

        Returns
        -------
        panel.Column
            Bound to the state's ``ready`` and ``message``: a warning with the how-to message,
            or the layer buttons, downloads, maps (three a row) and clicked-pixel details.
        """
        import panel as pn

        s = self.state
        return pn.Column(
            pn.Row(self._title, pn.Spacer(), self.language),
            pn.bind(self._content, s.param.ready, s.param.message),
            sizing_mode="stretch_width",
        )

    def servable(self) -> Any:
        """:meth:`panel` marked servable, titled "mus_lab land cover" (for ``panel serve``).

        Returns
        -------
        panel.Column
            The page, added to the current Bokeh document when served.
        """
        return self.panel().servable(title="mus_lab land cover")

    def _content(self, ready: bool, message: str) -> Any:
        import panel as pn

        s = self.state
        if not ready:
            return pn.pane.Alert(message, alert_type="warning", css_classes=["mus-howto"])
        # Every available layer is drawn once; choosing layers toggles their visibility and the
        # language changes captions and legends (HTML), so no figure is ever drawn again:
        # re-drawn figures came out blank after a tap (Panel 1.9 / Bokeh 3.9).
        self._cards = {name: self._card(name) for name in s.available}
        self._details_box = pn.Column(self._details(s.pixel))
        s.param.watch(self._show_layers, ["layers"])
        s.param.watch(self._relabel_cards, ["language"])
        s.param.watch(self._redraw_details, ["pixel", "language"])
        self._show_layers()
        cards = [card for card, _, _ in self._cards.values()]
        maps = pn.Column(*[pn.Row(*cards[i : i + 3]) for i in range(0, len(cards), 3)])
        return pn.Column(pn.Row(self.layers, self._png, self._csv), maps, self._details_box)

    def _card(self, name: str) -> tuple[Any, Any, Any]:
        import holoviews as hv
        import panel as pn

        image = self._image(name)
        tap = hv.streams.Tap(source=image, x=None, y=None)
        tap.add_subscriber(self._on_tap)
        caption = pn.pane.Markdown(f"### {self.state.layer_title(name)}", margin=(0, 10))
        legend = pn.pane.HTML(self._legend_html(name), margin=(0, 10))
        card = pn.Column(caption, pn.pane.HoloViews(image), legend, name=name)
        return card, caption, legend

    def _legend_html(self, name: str) -> str:
        if LAYERS[name].kind != "class":
            if not self.state.tiles:  # the figure has its colour bar
                return ""
            from mus_lab.publish import SCORE_COLORMAPS

            cmap, (low, high) = SCORE_COLORMAPS.get(LAYERS[name].asset, ("viridis", (0, 1)))
            return ramp_html(cmap, low, high, "%" if high == 100 else "")
        colours = self.state.colours()
        items = [
            f"<span style='white-space:nowrap;margin-right:10px'><span style='display:inline-block;"
            f"width:12px;height:12px;background:{colour};margin-right:4px'></span>{label}</span>"
            for colour, label in zip(colours, self.state.legend().values(), strict=True)
        ]
        return "<div style='max-width:380px;font-size:12px'>" + " ".join(items) + "</div>"

    def _show_layers(self, *_: Any) -> None:
        for name, (card, _, _) in self._cards.items():
            card.visible = name in self.state.layers

    def _relabel_cards(self, *_: Any) -> None:
        for name, (_, caption, legend) in self._cards.items():
            caption.object = f"### {self.state.layer_title(name)}"
            legend.object = self._legend_html(name)

    def _redraw_details(self, *_: Any) -> None:
        self._details_box.objects = [self._details(self.state.pixel)]

    def _image(self, name: str) -> Any:
        s = self.state
        kind = LAYERS[name].kind
        if s.tiles:  # drawn by the tile service, over the true-colour background
            spec = LAYERS[name]
            item = s._item(spec.collection)
            assert item is not None  # an available layer
            return tiled_map(
                s.tile_layer(item, spec.asset),
                s.web_bounds(item),
                background=s.background_layer(item),
            )
        if kind == "class":
            colours = s.colours()
            codes = dict.fromkeys(range(1, len(colours) + 1), "")
            # No hover: a class code means nothing; a click names the classes below the maps.
            return categorical_image(
                s.layer(name),
                codes,
                colours,
                label=s.layer_title(name),
                colorbar=False,
                hover=False,
            )
        clim = (0.0, 100.0) if kind == "percent" else (0.0, 1.0)
        cmap = "viridis" if kind == "percent" else UNIT_CMAPS.get(name, "viridis")
        unit = "%" if kind == "percent" else "0–1"
        return continuous_image(
            s.layer(name), label=s.layer_title(name), cmap=cmap, clim=clim, clabel=unit
        )

    def _on_tap(self, x: float | None, y: float | None) -> None:
        if x is not None and y is not None:
            if self.state.tiles:  # a tiled map's coordinates are Web Mercator metres
                x, y = self.state.from_web(float(x), float(y))
            self.state.pixel = (float(x), float(y))

    def _details(self, pixel: tuple[float, float] | None) -> Any:
        import panel as pn

        s = self.state
        if pixel is None:
            return pn.pane.Markdown(f"*{s.label('click_a_pixel')}*", css_classes=["mus-hint"])
        classes = s.pixel_classes()
        lines = [f"### {s.label('pixel_at', x=pixel[0], y=pixel[1])}"]
        lines += [f"- {layer}: **{name}**" for layer, name in classes.items()]
        parts: list[Any] = [pn.pane.Markdown("\n".join(lines), css_classes=["mus-pixel"])]
        series = s.pixel_series()
        if series.empty:
            parts.append(pn.pane.Markdown(s.label("no_series")))
        else:
            optical = series[series.series.str.startswith("S2")]
            radar = series[series.series.str.startswith("S1")]
            plots = []
            axes = {"xlabel": s.label("time"), "legend": s.label("series")}
            if not optical.empty:
                plots.append(
                    series_curves(optical, title=s.label("optical_series"), ylabel="NDVI", **axes)
                )
            if not radar.empty:
                plots.append(
                    series_curves(radar, title=s.label("radar_series"), ylabel="dB", **axes)
                )
            parts.append(pn.Row(*[pn.pane.HoloViews(p, linked_axes=False) for p in plots]))
        bars = []
        probs = s.pixel_probabilities()
        if not probs.empty:
            probs["source"] = [s.label(f"source_{v}") for v in probs["source"]]
            probs = probs.rename(
                columns={
                    "class": s.label("class"),
                    "source": s.label("source"),
                    "probability": s.label("probability"),
                }
            )
            bars.append(
                grouped_bars(
                    probs,
                    kdims=[s.label("class"), s.label("source")],
                    vdim=s.label("probability"),
                    title=s.label("probabilities"),
                    ylim=(0, 1),
                )
            )
        masses = s.pixel_masses()
        measures = {k: v for k, v in masses.items() if k != "fused_class"}
        if measures:
            import pandas as pd

            names = [s.label(f"mass_{k}") for k in measures]
            frame = pd.DataFrame(
                {s.label("value"): names, s.label("mass"): list(measures.values())}
            )
            bars.append(
                grouped_bars(
                    frame,
                    kdims=[s.label("value")],
                    vdim=s.label("mass"),
                    title=s.label("masses"),
                    ylim=(0, 1),
                )
            )
        if bars:
            parts.append(pn.Row(*[pn.pane.HoloViews(b, linked_axes=False) for b in bars]))
        return pn.Column(*parts)
