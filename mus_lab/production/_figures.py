"""Static copies of the HoloViews figures of batch runs: reports that show their maps offline.

An hvplot/HoloViews figure is a Bokeh document that JavaScript draws in the browser. The executed
notebook of a batch run is opened later, as an HTML copy or in JupyterLab as an untrusted
notebook, and neither runs that JavaScript (nor can it fetch Bokeh from a CDN offline): every
figure was an empty ``Out[...]``. So the kernels of batch runs (:data:`KERNEL_SETUP`) give each
figure an ``image/png`` as well, rendered with HoloViews' matplotlib backend (no browser needed),
the Bokeh options carried over (colour maps, limits, colour-bar ticks and class names, titles,
sizes); :func:`tidy_notebook` then keeps that picture and drops the JavaScript that cannot run.

hvplot's option translation (``hvplot.backend_transforms._transfer_opts``) is private API: if it
moves, the figures fall back to HoloViews' matplotlib defaults and a warning says so.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from typing import Any

from mus_lab.errors import MusLabWarning

__all__ = ["KERNEL_SETUP", "enable_static_figures", "static_png", "tidy_notebook"]

#: Python run by the kernel of a batch run before the first cell (``IPKernelApp.exec_lines``):
#: static pictures for every HoloViews figure and no third-party noise in the report.
KERNEL_SETUP = "__import__('mus_lab.production._figures').production._figures._kernel_setup()"

#: Mimetypes of HoloViews/Panel outputs that only a live kernel and BokehJS can show.
_LIVE_MIMETYPES = (
    "application/vnd.holoviews_exec.v0+json",
    "application/vnd.holoviews_load.v0+json",
    "application/vnd.bokehjs_exec.v0+json",
    "application/vnd.bokehjs_load.v0+json",
    "application/javascript",
)
_PNG = "image/png"


def _bokeh_to_matplotlib(element: Any) -> Any:
    """One element with its Bokeh options translated to the matplotlib backend."""
    bokeh_opts = element.opts.get(backend="bokeh", defaults=False).kwargs
    if element.label and element.label in {d.name for d in element.dimensions()}:
        # HoloViews' matplotlib backend reads a label equal to a dimension's name as that
        # dimension's values (hvplot labels a series' curve with its name): keep the text,
        # not the match (a zero-width space).
        element = element.relabel(element.label + "\u200b")
    try:
        from hvplot.backend_transforms import _transfer_opts

        element = _transfer_opts(element, "matplotlib")
    except Exception as exc:  # private hvplot API: draw with the defaults rather than fail
        warnings.warn(
            f"Bokeh options of a {type(element).__name__} not carried over to its static copy "
            f"({exc}): the picture uses HoloViews' matplotlib defaults.",
            MusLabWarning,
            stacklevel=2,
        )
        return element
    extra: dict[str, Any] = {}
    colorbar = bokeh_opts.get("colorbar_opts")
    if colorbar is not None:  # Bokeh's ticker and labels mean nothing to matplotlib's colorbar
        extra["colorbar_opts"] = {}
        ticks = list(getattr(colorbar.get("ticker"), "ticks", None) or [])
        labels = colorbar.get("major_label_overrides") or {}
        if ticks:
            extra["cbar_ticks"] = [(t, str(labels.get(t, t))) for t in ticks]
    if _datetime_x(element):
        from matplotlib.dates import DateFormatter

        extra.update(xformatter=DateFormatter("%Y-%m-%d"), xrotation=30)
    if isinstance(element, _scatter_type()):  # Bokeh sizes are diameters, matplotlib's areas
        extra["s"] = float(bokeh_opts.get("size", 6)) ** 2
    if _is_map(element):  # map coordinates in full (600000, not 6.0 and "1e5" aside)
        extra.update(xformatter=_plain_numbers(), yformatter=_plain_numbers(), xrotation=20)
    return element.opts(backend="matplotlib", **extra) if extra else element


def _scatter_type() -> type:
    import holoviews as hv

    return hv.Scatter  # type: ignore[no-any-return]


def _is_map(element: Any) -> bool:
    import holoviews as hv

    return isinstance(element, hv.Raster | hv.QuadMesh)


def _plain_numbers() -> Any:
    from matplotlib.ticker import ScalarFormatter

    formatter = ScalarFormatter(useOffset=False)
    formatter.set_scientific(False)
    return formatter


def _datetime_x(element: Any) -> bool:
    try:
        kind = element.get_dimension_type(element.kdims[0]) if element.kdims else None
    except Exception:
        return False
    return kind is not None and getattr(kind, "__name__", "") in {"datetime64", "Timestamp"}


def static_png(obj: Any, *, dpi: int = 72) -> bytes:
    """A PNG picture of a HoloViews (hvplot) figure, drawn without a browser.

    The figure is rendered with HoloViews' matplotlib backend; the Bokeh options it was made
    with (colour map, limits, colour-bar ticks and labels, title, size) are carried over.

    Parameters
    ----------
    obj
        A HoloViews object: an element, an overlay (``a * b``), a layout (``a + b``).
    dpi
        Resolution of the picture (72: about the size of the Bokeh figure on screen).

    Returns
    -------
    bytes
        The PNG file's bytes.

    Example
    -------
    >>> import hvplot.pandas  # noqa: F401
    >>> import pandas as pd
    >>> figure = pd.Series([1, 3, 2], name="ndvi").hvplot.line(title="a curve", color="red")
    >>> png = static_png(figure)
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    import holoviews as hv

    renderer = hv.renderer("matplotlib")  # loads the backend; the current one stays Bokeh
    if isinstance(obj, hv.core.Dimensioned):
        obj = obj.map(_bokeh_to_matplotlib, [hv.Element])
    if isinstance(obj, hv.Layout | hv.NdLayout):  # no "A", "B" labels; room for colour bars
        obj = obj.opts(sublabel_format="", hspace=1.0, backend="matplotlib")
    data, _ = renderer(obj, fmt="png", dpi=dpi)
    return bytes(data)


def _png_formatter(obj: Any) -> bytes | None:
    """IPython ``image/png`` formatter: a static copy, or nothing (with a warning) if it fails."""
    import holoviews as hv

    if isinstance(obj, hv.DynamicMap):
        return None  # drawn on demand by a live kernel: nothing static to show
    try:
        return static_png(obj)
    except Exception as exc:
        warnings.warn(
            f"No static copy of this {type(obj).__name__} figure ({type(exc).__name__}: {exc}): "
            "the HTML copy and the executed notebook will show its text summary only.",
            MusLabWarning,
            stacklevel=2,
        )
        return None


def enable_static_figures(shell: Any = None) -> bool:
    """Give every HoloViews figure shown in this IPython kernel a static ``image/png`` too.

    Batch runs (:func:`mus_lab.production.run_notebook`) call it in their kernels, so that the
    HTML copy and the executed notebook show each figure offline; in an interactive session it
    only adds a picture beside each figure (and costs its rendering time).

    Parameters
    ----------
    shell
        The IPython shell (default: the running one).

    Returns
    -------
    bool
        False when no IPython shell is running (nothing was changed).

    Example
    -------
    >>> enable_static_figures()  # a plain Python session: nothing to do
    False
    """
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython ships with the kernel
            return False
        shell = get_ipython()
    if shell is None:
        return False
    formatter = shell.display_formatter.formatters[_PNG]
    formatter.for_type_by_name("holoviews.core.dimension", "Dimensioned", _png_formatter)
    return True


def _kernel_setup() -> None:
    """What :data:`KERNEL_SETUP` runs in a batch kernel (see the module docstring)."""
    enable_static_figures()
    from mus_lab.production import _chain

    _chain.BATCH_KERNEL = True  # no dask progress bars: nobody watches the cells of a batch run
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up lines
    # Rasterio warns when a dataset has no CRS/geotransform; the RCM products are read in their
    # radar geometry on purpose (their GCPs place them), so the warning only adds noise to reports.
    try:
        from rasterio.errors import NotGeoreferencedWarning
    except ImportError:  # pragma: no cover - rasterio is a core dependency
        return
    warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)


def _is_live_only(output: dict[str, Any]) -> bool:
    data = output.get("data", {})
    if output.get("output_type") not in ("display_data", "execute_result"):
        return False
    if not data:
        return True  # Panel's empty comm placeholders
    if _PNG in data:
        return False
    if any(m in data for m in _LIVE_MIMETYPES):
        return set(data) <= {*_LIVE_MIMETYPES, "text/html"}
    html = data.get("text/html", "")
    html = "".join(html) if isinstance(html, list) else html
    return set(data) == {"text/html"} and html.lstrip().startswith('<script type="esms-options">')


def _static_only(output: dict[str, Any]) -> dict[str, Any]:
    """A HoloViews output reduced to its picture and text: what shows without JavaScript."""
    data = output.get("data", {})
    if not any(m in data for m in _LIVE_MIMETYPES):
        return output
    keep = {_PNG, "text/plain"} if _PNG in data else {"text/plain"}
    output["data"] = {m: v for m, v in data.items() if m in keep}
    output["metadata"] = {m: v for m, v in output.get("metadata", {}).items() if m in keep}
    return output


def tidy_notebook(nb: Any) -> Any:
    """Keep what an executed notebook can show offline; drop what needs a live kernel.

    HoloViews figures keep their static picture (:func:`enable_static_figures`) and their text
    summary, and lose the Bokeh JavaScript; the outputs that only load BokehJS and Panel into
    a live page are removed. Other outputs (tables, text, errors) are untouched.

    Parameters
    ----------
    nb
        A notebook (``nbformat.NotebookNode``), changed in place.

    Returns
    -------
    nbformat.NotebookNode
        The same notebook.

    Example
    -------
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook()
    >>> cell = nbformat.v4.new_code_cell("fig")
    >>> cell.outputs = [nbformat.v4.new_output("display_data", data={
    ...     "application/javascript": "/* BokehJS */", "application/vnd.holoviews_load.v0+json": ""}),
    ...     nbformat.v4.new_output("execute_result", execution_count=1, data={
    ...     "text/html": "<div></div><script>...</script>", "image/png": "iVBORw0KGgo=",
    ...     "text/plain": ":Image [x,y]", "application/vnd.holoviews_exec.v0+json": ""})]
    >>> nb.cells = [cell]
    >>> [sorted(o.data) for o in tidy_notebook(nb).cells[0].outputs]
    [['image/png', 'text/plain']]
    """
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        outputs: Iterable[dict[str, Any]] = cell.get("outputs", [])
        cell["outputs"] = [_static_only(o) for o in outputs if not _is_live_only(o)]
    return nb
