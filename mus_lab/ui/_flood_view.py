"""The flood-risk dashboard's view (Voila): ipywidgets controls over a Panel body.

Thin: every number and label comes from :class:`~mus_lab.ui.FloodRiskState`. The controls are
ipywidgets (what a Voila page is made of); maps, table and downloads are Panel objects shown
through ``jupyter_bokeh`` (``pn.extension(comms="ipywidgets")``, see :mod:`._offline`).
"""

from __future__ import annotations

import io
from typing import Any

from mus_lab.ui._flood_state import RISK_COLOURS, FloodRiskState
from mus_lab.ui._i18n import LANGUAGES, risk_name
from mus_lab.ui._plots import (
    categorical_image,
    continuous_image,
    legend_html,
    ramp_html,
    tiled_map,
)

__all__ = ["FloodRiskDashboard"]

_EXTENT_COLOURS = ("#f2efe9", "#d7301f", "#2166ac")


class FloodRiskDashboard:
    """Controls and body of the flood-risk dashboard over a :class:`FloodRiskState`.

    ``apps/flood_risk/app.ipynb`` shows ``FloodRiskDashboard(FloodRiskState(catalog=...))
    .widget()`` in Voila, after :func:`~mus_lab.ui.offline_extension` with
    ``comms="ipywidgets"``.

    Parameters
    ----------
    state : FloodRiskState
        What to show; the view follows its changes (language, date, catalog).

    Raises
    ------
    None
        Nothing on purpose (an empty catalog shows how to make the products).

    Examples
    --------
    >>> from mus_lab.ui import FloodRiskState
    >>> view = FloodRiskDashboard(FloodRiskState(catalog="", language="fr"))
    >>> controls = view.controls()  # the language switch only, until products are found
    >>> [type(w).__name__ for w in controls.children[1].children]
    ['ToggleButtons']
    >>> controls.children[1].children[0].description
    'Langue'
    """

    def __init__(self, state: FloodRiskState) -> None:
        import panel as pn

        self.state = state
        self._csv = pn.widgets.FileDownload(
            callback=lambda: io.StringIO(state.zones_csv()),
            filename="flood_zones.csv",
        )
        self._png = pn.widgets.FileDownload(
            callback=lambda: io.BytesIO(state.map_png()),
            filename="flood_risk.png",
        )
        self._controls: dict[str, Any] = {}
        state.param.watch(self._relabel, ["language", "ready"])
        self._relabel()

    # --- ipywidgets controls ---------------------------------------------------------------
    def controls(self) -> Any:
        """Language switch, date and likelihood toggle as ipywidgets, bound to the state.

        Returns
        -------
        ipywidgets.VBox
            The title and subtitle (HTML) over a row of the controls; the date and the
            likelihood toggle only when the state is ready. Labels follow the language.
        """
        import ipywidgets as w

        s = self.state
        inline = {"description_width": "initial"}
        language = w.ToggleButtons(
            options=[(name, code) for code, name in LANGUAGES.items()],
            value=s.language,
            style={**inline, "button_width": "90px"},
        )
        date = w.Dropdown(options=s.dates, value=s.date, style=inline)
        likelihood = w.Checkbox(value=s.show_likelihood, indent=False, style=inline)
        likelihood.layout.width = "auto"
        language.observe(lambda ch: setattr(s, "language", ch["new"]), "value")
        date.observe(lambda ch: setattr(s, "date", ch["new"]), "value")
        likelihood.observe(lambda ch: setattr(s, "show_likelihood", ch["new"]), "value")
        title = w.HTML()
        self._controls = {
            "title": title,
            "language": language,
            "date": date,
            "likelihood": likelihood,
        }
        self._relabel()
        row = [language] + ([date, likelihood] if s.ready else [])
        spaced = w.Layout(align_items="center", flex_flow="row wrap", grid_gap="24px")
        return w.VBox([title, w.HBox(row, layout=spaced)], layout=w.Layout(padding="0 0 0 10px"))

    def _relabel(self, *_: Any) -> None:
        s = self.state
        self._csv.label = s.label("export_csv")
        self._png.label = s.label("export_png")
        if self._controls:
            heading = f"<h1>{s.label('flood_title')}</h1><p>{s.label('flood_subtitle')}</p>"
            self._controls["title"].value = heading
            self._controls["language"].description = s.label("language")
            self._controls["date"].description = s.label("date")
            self._controls["likelihood"].description = s.label("show_likelihood")

    # --- Panel body --------------------------------------------------------------------------
    def body(self) -> Any:
        """The Panel part: how-to message, or maps, summary, zone table and exports.

        Returns
        -------
        panel.Column
            Bound to the state's ``ready`` and ``message``: a warning with the how-to
            message, or the risk (or likelihood) and extent maps, the zone table with its
            summary and the CSV / PNG downloads.
        """
        import panel as pn

        s = self.state
        return pn.Column(
            pn.bind(self._content, s.param.ready, s.param.message), sizing_mode="stretch_width"
        )

    def _content(self, ready: bool, message: str) -> Any:
        import panel as pn

        s = self.state
        if not ready:
            return pn.pane.Alert(message, alert_type="warning", css_classes=["mus-howto"])
        maps = pn.bind(self._maps, s.param.date, s.param.show_likelihood, s.param.language)
        texts = pn.bind(self._texts, s.param.language)
        return pn.Column(maps, texts, pn.Row(self._csv, self._png))

    def _maps(self, date: str | None, show_likelihood: bool, language: str) -> Any:
        import panel as pn

        s = self.state
        if s.tiles:
            return self._tiled_maps(date, show_likelihood, language)
        likelihood = s.likelihood() if show_likelihood else None
        if likelihood is not None:  # the toggled layer: the chosen date's flood likelihood
            caption = f"### {s.label('likelihood')}: {date}"
            image = continuous_image(
                likelihood, label=s.label("likelihood"), cmap="Blues", clim=(0, 100)
            )
        else:
            caption = f"### {s.label('risk_map')}"
            names = {i: risk_name(i, language) for i in range(1, 6)}
            image = categorical_image(
                s.risk_class(), names, RISK_COLOURS, label=s.label("risk_map")
            )
        note = "" if likelihood is not None else s.label("risk_nodata")
        left = pn.Column(
            pn.pane.Markdown(caption),
            pn.pane.HoloViews(image),
            pn.pane.Markdown(note, styles={"font-size": "12px"}, margin=(0, 10)),
        )
        extent = s.extent()
        if extent is None:
            return pn.Row(left)
        classes = {
            0: s.label("extent_dry"),
            1: s.label("extent_flood"),
            2: s.label("extent_permanent"),
        }
        image = categorical_image(extent, classes, _EXTENT_COLOURS, label=s.label("extent_legend"))
        right = pn.Column(
            pn.pane.Markdown(f"### {s.label('extent_map', date=date)}", css_classes=["mus-extent"]),
            pn.pane.HoloViews(image),
        )
        return pn.Row(left, right)

    def _tiled_maps(self, date: str | None, show_likelihood: bool, language: str) -> Any:
        """The maps drawn by the tile service over the true-colour background."""
        import panel as pn

        s = self.state
        summary = s._summary_item()
        extent = s.extent_item()
        background = s.background_layer(summary)
        bounds = s.web_bounds(summary)
        if show_likelihood and extent is not None:
            caption = f"### {s.label('likelihood')}: {date}"
            layer = s.tile_layer(extent, "likelihood")
            legend = ramp_html("blues", 0, 100, "%")
        else:
            caption = f"### {s.label('risk_map')}"
            layer = s.tile_layer(summary, "risk_class")
            legend = legend_html(
                [(c, risk_name(i, language)) for i, c in enumerate(RISK_COLOURS, start=1)]
            )
        left = pn.Column(
            pn.pane.Markdown(caption),
            pn.pane.HoloViews(tiled_map(layer, bounds, background=background)),
            pn.pane.HTML(legend, margin=(0, 10)),
        )
        if extent is None:
            return pn.Row(left)
        right = pn.Column(
            pn.pane.Markdown(f"### {s.label('extent_map', date=date)}", css_classes=["mus-extent"]),
            pn.pane.HoloViews(
                tiled_map(s.tile_layer(extent, "flood"), bounds, background=background)
            ),
            pn.pane.HTML(
                legend_html([(_EXTENT_COLOURS[1], s.label("extent_flood"))]), margin=(0, 10)
            ),
        )
        return pn.Row(left, right)

    def _texts(self, language: str) -> Any:
        import panel as pn

        s = self.state
        return pn.Column(
            pn.pane.Markdown(f"### {s.label('zone_table')}\n\n{s.summary()}"),
            pn.pane.DataFrame(s.zone_table(), index=False, sizing_mode="stretch_width"),
        )

    # --- the whole page ------------------------------------------------------------------------
    def widget(self) -> Any:
        """Controls over the body, as one ipywidget for a Voila notebook.

        Returns
        -------
        ipywidgets.VBox
            :meth:`controls` over :meth:`body` (wrapped by ``panel.ipywidget``).
        """
        import ipywidgets as w
        import panel as pn

        return w.VBox([self.controls(), pn.ipywidget(self.body())])
