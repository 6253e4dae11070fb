"""The kernel of a batch run and the HTML copy of its notebook, readable offline and quiet.

* The kernel (:func:`kernel_options`) runs :data:`~mus_lab.production._figures.KERNEL_SETUP`
  first (a static picture for every figure), and writes what it prints itself, outside any
  cell, to ``<name>.kernel.log`` in the run folder instead of the terminal: its
  "running over TCP without encryption" notice (the kernel listens on 127.0.0.1 only and
  signs every message) and the C++ start-up lines of TensorFlow and GDAL, which ipykernel
  would otherwise copy into the cells' outputs.
* The HTML copy (:func:`export_html`) uses nbconvert's ``lab`` template without the lines that
  load require.js, MathJax, Mermaid and the widget manager from CDNs: a report opened offline
  makes no request at all. Formulas in Markdown therefore show as their LaTeX source.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mus_lab._io import atomic_path
from mus_lab.production._figures import KERNEL_SETUP, tidy_notebook

__all__ = ["OFFLINE_TEMPLATE", "export_html", "kernel_options", "tidy_executed"]

#: nbconvert template: the ``lab`` HTML template with every CDN script left out, and pictures
#: described by their figure's text summary (nbconvert warns about images without ``alt``).
OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block data_png scoped -%}
<div class="jp-RenderedImage jp-OutputArea-output {{ extra_class }}">
<img alt="{{ ((output | get_metadata('alt', 'image/png'))
              or output.data.get('text/plain', 'A figure')) | escape_html }}"
     src="data:image/png;base64,{{ output.data['image/png'] | escape_html }}">
</div>
{%- endblock data_png -%}
"""
_TEMPLATE_NAME = "mus_lab_offline.html.j2"


def _kernel_manager_class(log: Path) -> type:
    from jupyter_client.manager import AsyncKernelManager

    class BatchKernelManager(AsyncKernelManager):  # type: ignore[misc]
        """Starts the kernel with its own stdout/stderr in ``log``."""

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            with open(log, "ab") as stream:  # the child keeps its own copy of the descriptor
                kw.setdefault("stdout", stream)
                kw.setdefault("stderr", stream)
                await super()._async_launch_kernel(kernel_cmd, **kw)

    return BatchKernelManager


def kernel_options(log: str | os.PathLike[str]) -> dict[str, Any]:
    """Keyword arguments for ``papermill.execute_notebook``: the quiet, figure-making kernel.

    Parameters
    ----------
    log
        File that receives what the kernel process prints outside the cells.

    Returns
    -------
    dict
        ``kernel_manager_class`` and ``extra_arguments`` for nbclient.

    Example
    -------
    >>> options = kernel_options("run/01_search_and_load.kernel.log")
    >>> sorted(options)
    ['extra_arguments', 'kernel_manager_class']
    """
    return {
        "kernel_manager_class": _kernel_manager_class(Path(log).resolve()),  # papermill chdirs
        "extra_arguments": [
            f"--IPKernelApp.exec_lines={[KERNEL_SETUP]!r}",
            # C-level output (TensorFlow, GDAL) to the log, not into the cells
            "--IPKernelApp.capture_fd_output=False",
        ],
    }


def tidy_executed(executed: str | os.PathLike[str]) -> Path:
    """Rewrite an executed notebook with only what shows offline (:func:`tidy_notebook`).

    Parameters
    ----------
    executed
        The notebook written by papermill.

    Returns
    -------
    Path
        The same path.
    """
    import nbformat

    path = Path(executed)
    nb = tidy_notebook(nbformat.read(path, as_version=4))
    with atomic_path(path, ".ipynb") as tmp:
        nbformat.write(nb, tmp)
    return path


def export_html(executed: str | os.PathLike[str], html: str | os.PathLike[str]) -> Path:
    """Write the HTML copy of an executed notebook that loads nothing from the network.

    Parameters
    ----------
    executed
        The executed notebook (tidied by :func:`tidy_executed`).
    html
        The HTML file to write (replaced atomically).

    Returns
    -------
    Path
        ``html``.

    Example
    -------
    >>> import nbformat, pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A report")])
    >>> nbformat.write(nb, folder / "report.ipynb")
    >>> text = export_html(folder / "report.ipynb", folder / "report.html").read_text()
    >>> "A report" in text, "https://cdn" in text, "<script src=" in text
    (True, False, False)
    """
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        extra_loaders=[jinja2.DictLoader({_TEMPLATE_NAME: OFFLINE_TEMPLATE})],
        template_file=_TEMPLATE_NAME,
    )
    body, _ = exporter.from_filename(str(executed))
    out = Path(html)
    with atomic_path(out, ".html") as tmp:
        tmp.write_text(body, encoding="utf-8")
    return out
