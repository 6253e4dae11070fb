"""Record named outputs of a notebook so that batch runs and tests can read them back.

``record("overall_accuracy", 0.87)`` displays a JSON output with a dedicated mime type
(the scrapbook "glue" idea, without its dependency); :func:`read_records` reads every
record of an executed notebook.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RECORD_MIMETYPE", "read_records", "record"]

RECORD_MIMETYPE = "application/vnd.mus-lab.record+json"


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def record(name: str, value: Any) -> Any:
    """Record ``value`` under ``name`` in the running notebook's outputs and return it.

    The value must be JSON-serialisable after numpy scalars/arrays and paths are
    converted. Outside a notebook it is just returned.

    Parameters
    ----------
    name
        The record's name (a later record of the same name wins in :func:`read_records`).
    value
        A JSON-serialisable value; numpy scalars and arrays and paths are converted.

    Returns
    -------
    Any
        ``value`` itself, so that ``oa = record("oa", compute_oa())`` reads naturally.

    Raises
    ------
    TypeError
        The value cannot be written as JSON (raised before anything is displayed).

    Example
    -------
    >>> record("overall_accuracy", np.float32(0.5))  # outside a notebook: just returned
    np.float32(0.5)
    """
    plain = _plain(value)
    json.dumps(plain)  # fail early on what cannot be recorded
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover
        return value
    if get_ipython() is not None:
        text = json.dumps(plain)
        shown = text if len(text) <= 200 else text[:199] + "…"
        display(
            {RECORD_MIMETYPE: {"name": name, "value": plain}, "text/plain": f"{name} = {shown}"},
            raw=True,
        )
    return value


def read_records(notebook: str | os.PathLike[str]) -> dict[str, Any]:
    """Every value recorded with :func:`record` in an executed notebook, by name.

    Parameters
    ----------
    notebook
        An executed ``.ipynb`` (e.g. ``NotebookRun.executed``).

    Returns
    -------
    dict
        Name -> recorded value, in the order of the notebook; empty when nothing was recorded.

    Example
    -------
    >>> import nbformat, pathlib, tempfile
    >>> cell = nbformat.v4.new_code_cell("record('n_items', 3)")
    >>> cell.outputs = [nbformat.v4.new_output("display_data", data={
    ...     RECORD_MIMETYPE: {"name": "n_items", "value": 3}, "text/plain": "n_items = 3"})]
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.ipynb"
    >>> nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    >>> read_records(path)
    {'n_items': 3}
    """
    nb = json.loads(Path(notebook).read_text())
    out: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RECORD_MIMETYPE in data:
                rec = data[RECORD_MIMETYPE]
                out[rec["name"]] = rec["value"]
    return out
