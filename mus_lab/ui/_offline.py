"""Make Panel and HoloViews work without any CDN (an offline hub, a laptop in the field).

Panel and HoloViews load their JavaScript and stylesheets from ``cdn.holoviz.org`` unless told
otherwise. :func:`offline_extension` loads BokehJS, Panel and HoloViews JS inline and turns every
stylesheet that would be fetched from the CDN (or from Panel's ``static/`` server path, which a
notebook server does not serve) into an inline stylesheet read from Panel's installed ``dist``
folder. The browser tests check that no request leaves 127.0.0.1.

Choice: Panel offers ``inline=True`` but, in the ipywidgets (Voila) path and on updates, still
creates some ``ImportedStyleSheet`` models pointing at the CDN (Panel 1.9); the two hooks
below are the smallest patch that covers both, and the browser test fails if a new Panel
version brings a new path.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

__all__ = ["offline_extension"]

_PATCHED = False


@functools.lru_cache(maxsize=256)
def _local_css(path: str) -> str | None:
    file = Path(path)
    return file.read_text(encoding="utf-8") if file.is_file() else None


def _inline(stylesheet: Any) -> Any:
    """An ``InlineStyleSheet`` for a CDN or ``static/extensions/panel`` stylesheet, else as is."""
    from bokeh.models import ImportedStyleSheet, InlineStyleSheet
    from panel.io.resources import CDN_DIST, DIST_DIR, LOCAL_DIST

    if not isinstance(stylesheet, ImportedStyleSheet):
        return stylesheet
    url = str(stylesheet.url).split("?")[0]
    for prefix in (CDN_DIST, LOCAL_DIST, f"/{LOCAL_DIST}"):
        if url.startswith(prefix):
            css = _local_css(str(Path(DIST_DIR) / url[len(prefix) :]))
            return InlineStyleSheet(css=css) if css is not None else stylesheet
    return stylesheet


def _patch_panel() -> None:
    global _PATCHED
    if _PATCHED:
        return
    from bokeh.models.ui import UIElement
    from panel.reactive import Syncable
    from panel.viewable import Viewable

    original = Syncable._process_param_change

    def process_param_change(self: Any, params: dict[str, Any]) -> dict[str, Any]:
        props = original(self, params)
        if props.get("stylesheets"):
            props["stylesheets"] = [_inline(s) for s in props["stylesheets"]]
        return props

    def inline_models(viewable: Any, root: Any, changed: Any = None, old: Any = None) -> None:
        for model in root.select({"type": UIElement}):
            sheets = [_inline(s) for s in model.stylesheets]
            if sheets != list(model.stylesheets):
                model.stylesheets = sheets

    Syncable._process_param_change = process_param_change  # type: ignore[method-assign]
    Viewable._preprocessing_hooks.append(inline_models)
    _PATCHED = True


def offline_extension(comms: Literal["default", "ipywidgets"] = "default", **kwargs: Any) -> None:
    """``pn.extension`` with every resource local: call it first in a dashboard.

    Parameters
    ----------
    comms
        ``"ipywidgets"`` in a Voila notebook (Panel objects become ipywidgets through
        ``jupyter_bokeh``), ``"default"`` under ``panel serve`` or JupyterLab.
    kwargs
        Passed to ``pn.extension`` (e.g. ``sizing_mode``).
    """
    import holoviews as hv
    import panel as pn

    hv.extension.inline = True  # a later hv.extension(...) (hvplot import) stays inline too
    _patch_panel()
    pn.extension(comms=comms, inline=True, **kwargs)
    hv.renderer("bokeh")  # HoloViews' bokeh backend without a second (CDN) notebook load
    hv.Store.set_current_backend("bokeh")
