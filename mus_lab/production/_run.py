"""Batch runs of the curated notebooks (papermill underneath) into a run folder.

For each notebook the run folder gets the executed notebook, an HTML copy (nbconvert) and a
JSON of the values it recorded with :func:`mus_lab.production.record`. Several notebooks run
as one chain, in order, with a ``summary.json``. Parameters are checked against every
notebook's ``parameters`` cell before the first kernel starts; a notebook that fails still
leaves its executed notebook (papermill puts the error at the top) and stops the chain.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mus_lab._io import write_json
from mus_lab.errors import NotebookParameterError
from mus_lab.production._offline import export_html, kernel_options, tidy_executed
from mus_lab.production._params import check_parameters, notebook_parameters
from mus_lab.production._records import read_records

__all__ = ["ChainReport", "NotebookRun", "run_chain", "run_notebook"]

Status = Literal["ok", "failed", "skipped"]


@dataclass
class NotebookRun:
    """What one notebook run made, and how it went.

    Attributes
    ----------
    notebook
        The source notebook.
    status
        ``"ok"``, ``"failed"`` (the executed notebook shows the error) or ``"skipped"``
        (an earlier notebook of the chain failed).
    seconds
        Wall time of the run.
    executed, html, records_json
        The executed notebook, its HTML copy and the JSON of its recorded values.
    kernel_log
        What the kernel process printed outside the cells (start-up notices, C-level
        messages of TensorFlow or GDAL).
    records
        The recorded values (:func:`mus_lab.production.read_records`).
    parameters
        The parameters given to papermill.
    error
        ``"ErrorName: message"`` of the exception that stopped the notebook.
    """

    notebook: Path
    status: Status
    seconds: float = 0.0
    executed: Path | None = None
    html: Path | None = None
    records_json: Path | None = None
    kernel_log: Path | None = None
    records: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the notebook ran to its end."""
        return self.status == "ok"

    def key_outputs(self, n: int = 4, width: int = 70) -> str:
        """The first ``n`` recorded values as ``name=value``, cut to ``width`` characters.

        Parameters
        ----------
        n
            How many records to show.
        width
            Longest text returned (an ellipsis marks the cut).

        Returns
        -------
        str
            ``"name=value, ..."``.

        Example
        -------
        >>> run = NotebookRun(Path("01.ipynb"), "ok", records={"oa": 0.91234, "n": 3})
        >>> run.key_outputs()
        'oa=0.9123, n=3'
        """
        parts = [f"{k}={_short(v)}" for k, v in list(self.records.items())[:n]]
        text = ", ".join(parts)
        return text if len(text) <= width else text[: width - 1] + "…"

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON-ready values (absolute paths), as in ``summary.json``."""
        return {
            "notebook": self.notebook.name,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "executed": _s(self.executed),
            "html": _s(self.html),
            "records_json": _s(self.records_json),
            "kernel_log": _s(self.kernel_log),
            "parameters": self.parameters,
            "error": self.error,
            "records": self.records,
        }


def _s(path: Path | None) -> str | None:
    return str(path.resolve()) if path is not None else None


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value[:4]) + (", …]" if len(value) > 4 else "]")
    return str(value)


@dataclass
class ChainReport:
    """The runs of a chain of notebooks and where their results are.

    Attributes
    ----------
    out
        The run folder.
    runs
        One :class:`NotebookRun` per notebook, in order.
    summary_json
        ``summary.json`` in ``out`` (:meth:`to_dict`).
    """

    out: Path
    runs: list[NotebookRun]
    summary_json: Path | None = None

    @property
    def ok(self) -> bool:
        """Whether every notebook ran to its end."""
        return all(r.ok for r in self.runs)

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(notebook, status, duration, key outputs) per run, as printed by :meth:`table`.

        Returns
        -------
        list of tuple of str
            One row per run.
        """
        return [
            (
                r.notebook.name,
                r.status if r.error is None else f"{r.status}: {r.error.splitlines()[0][:60]}",
                f"{r.seconds:.1f} s",
                r.key_outputs(),
            )
            for r in self.runs
        ]

    def table(self) -> str:
        """A plain-text table: notebook, status, duration, key outputs.

        Returns
        -------
        str
            The table, one line per run under a header.

        Example
        -------
        >>> report = ChainReport(Path("run"), [NotebookRun(Path("01_a.ipynb"), "ok", 2.0, records={"n": 3})])
        >>> print(report.table())
        notebook    status  duration  key outputs
        -----------------------------------------
        01_a.ipynb  ok      2.0 s     n=3
        """
        header = ("notebook", "status", "duration", "key outputs")
        rows = [header, *self.rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines = [
            "  ".join(row[i].ljust(widths[i]) for i in range(3)) + "  " + row[3] for row in rows
        ]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The chain as JSON-ready values, as written to ``summary.json``."""
        return {
            "out": str(self.out.resolve()),
            "ok": self.ok,
            "runs": [r.to_dict() for r in self.runs],
        }


def _shareable(path: Path) -> Path:
    """Give a file written through a temporary file (mode 600) the usual permissions."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)
    return path


def _export_html(executed: Path, html: Path) -> Path:
    _shareable(tidy_executed(executed))
    return _shareable(export_html(executed, html))


def _error_of(exc: BaseException) -> str:
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    return f"{ename}: {evalue}"


def run_notebook(
    notebook: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    parameters: Mapping[str, Any] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    kernel_name: str = "python3",
    progress: bool = False,
    timeout: float | None = None,
) -> NotebookRun:
    """Execute one notebook with papermill into the run folder ``out``.

    Parameters
    ----------
    notebook
        The ``.ipynb`` to run.
    out
        Run folder: receives ``<name>.ipynb`` (executed), ``<name>.html`` and
        ``<name>.records.json``. When the notebook has an ``output_dir`` parameter and it
        is not given, it is set to ``out/<name>``.
    parameters
        Values for the notebook's ``parameters`` cell (checked first).
    cwd
        Working directory of the kernel (default: the current directory, so relative
        paths in parameters mean what they mean on the command line).
    kernel_name
        Jupyter kernel (``python3`` is the package's kernel, see ``make lab``).
    progress
        Show papermill's progress bar over the cells.
    timeout
        Seconds allowed per cell (``None``: no limit).

    Returns
    -------
    NotebookRun
        Its ``status`` is ``"failed"`` (not an exception) when a cell raised; the executed
        notebook then shows the error at the top and in the failing cell.

    Raises
    ------
    NotebookNotFoundError
        The notebook does not exist.
    NotebookParameterError
        A parameter is unknown or of the wrong type; nothing was run.

    Example
    -------
    The template notebook on the tiny scenario (a kernel starts: some seconds):

    >>> import tempfile
    >>> from mus_lab.production import repository_path
    >>> run = run_notebook(repository_path("notebooks") / "_template.ipynb", tempfile.mkdtemp(),
    ...                    parameters={"catalog": str(tiny.catalog_path), "datetime": "2022-03-01/2022-07-31"})
    >>> run.status, run.records["n_items"] > 0, run.html.suffix
    ('ok', True, '.html')
    """
    source = Path(notebook)
    params = dict(parameters or {})
    declared = notebook_parameters(source)
    check_parameters(source, params, declared=declared)
    return _execute(source, Path(out), params, declared, cwd, kernel_name, progress, timeout)


def _execute(
    source: Path,
    out: Path,
    params: dict[str, Any],
    declared: Mapping[str, Any],
    cwd: str | os.PathLike[str] | None,
    kernel_name: str,
    progress: bool,
    timeout: float | None,
) -> NotebookRun:
    import papermill as pm

    stem = source.stem
    out.mkdir(parents=True, exist_ok=True)
    if "output_dir" in declared and "output_dir" not in params:
        params["output_dir"] = str((out / stem).resolve())
    run = NotebookRun(notebook=source, status="ok", parameters=params)
    run.executed = out / f"{stem}.ipynb"
    run.kernel_log = out / f"{stem}.kernel.log"
    run.kernel_log.unlink(missing_ok=True)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(source),
            str(run.executed),
            parameters=params,
            kernel_name=kernel_name,
            cwd=str(cwd) if cwd is not None else os.getcwd(),
            progress_bar=progress,
            execution_timeout=timeout,
            report_mode=False,
            **kernel_options(run.kernel_log),
        )
    except Exception as exc:  # papermill: the cell's error, with the notebook written
        run.status = "failed"
        run.error = _error_of(exc)
    run.seconds = time.perf_counter() - t0
    if run.executed.exists():
        run.records = read_records(run.executed)
        run.html = _export_html(run.executed, out / f"{stem}.html")
    run.records_json = _shareable(write_json(run.records, out / f"{stem}.records.json"))
    return run


def run_chain(
    notebooks: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    parameters: Mapping[str, Any] | None = None,
    per_notebook: Mapping[str, Mapping[str, Any]] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    kernel_name: str = "python3",
    progress: bool = False,
    keep_going: bool = False,
    timeout: float | None = None,
    log: Callable[[str], None] | None = None,
) -> ChainReport:
    """Run notebooks one after the other into one run folder, with a summary.

    Parameters
    ----------
    notebooks
        The notebooks, in order (e.g. :data:`mus_lab.production.DEMO_CHAIN`).
    out
        Run folder (see :func:`run_notebook`); ``summary.json`` is written there.
    parameters
        Shared values: each notebook gets those its ``parameters`` cell declares. A name
        that no notebook declares is an error.
    per_notebook
        Values for one notebook only, by file name or stem
        (``{"02_ard": {"speckle": "lee"}}``); they win over ``parameters``.
    keep_going
        Run the next notebooks after a failure (default: they are ``"skipped"``).
    log
        Called with one line before each notebook (e.g. ``print``).
    cwd, kernel_name, progress, timeout
        As in :func:`run_notebook`.

    Returns
    -------
    ChainReport
        ``report.ok`` is False when any notebook failed; ``report.table()`` prints it.

    Raises
    ------
    NotebookNotFoundError, NotebookParameterError
        Before any notebook runs.
    """
    root = Path(out)
    sources = [Path(nb) for nb in notebooks]
    shared = dict(parameters or {})
    own = {Path(k).stem: dict(v) for k, v in (per_notebook or {}).items()}
    unknown_targets = set(own) - {s.stem for s in sources}
    if unknown_targets:
        raise NotebookParameterError(
            f"Parameters given for {sorted(unknown_targets)}, which are not in the chain "
            f"{[s.name for s in sources]}: name a notebook of the chain."
        )
    plans: list[tuple[Path, dict[str, Any], dict[str, Any]]] = []
    used: set[str] = set()
    for source in sources:
        declared = notebook_parameters(source)
        params = {k: v for k, v in shared.items() if k in declared}
        params.update(own.get(source.stem, {}))
        check_parameters(source, params, declared=declared)
        used.update(params)
        plans.append((source, params, declared))
    unused = set(shared) - used
    if unused:
        raise NotebookParameterError(
            f"No notebook of the chain {[s.name for s in sources]} has the parameter(s) "
            f"{sorted(unused)}: check the spelling (the parameters cell of each notebook "
            "lists its names)."
        )
    runs: list[NotebookRun] = []
    failed = False
    for i, (source, params, declared) in enumerate(plans, start=1):
        if failed and not keep_going:
            runs.append(NotebookRun(notebook=source, status="skipped", parameters=params))
            continue
        if log is not None:
            log(f"[{i}/{len(plans)}] {source.name}")
        run = _execute(source, root, params, declared, cwd, kernel_name, progress, timeout)
        failed = failed or not run.ok
        runs.append(run)
    report = ChainReport(out=root, runs=runs)
    report.summary_json = _shareable(write_json(report.to_dict(), root / "summary.json"))
    return report
