"""``mus-lab run`` (notebooks in batch, papermill underneath) and ``mus-lab dashboards``.

Exit codes of ``mus-lab run``: 0 every notebook ran; 1 a notebook failed (its executed
notebook shows the error); 2 nothing ran (bad parameter, missing notebook).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from mus_lab._cli_common import fail, reporting_errors
from mus_lab.errors import MusLabError

production_app = typer.Typer()

_PARAM_FLAGS = ("-p", "--parameter")


def split_arguments(args: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Split ``NOTEBOOK... -p NAME VALUE ...`` into notebooks and parsed parameters."""
    from mus_lab.production import parse_value

    notebooks: list[str] = []
    params: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _PARAM_FLAGS:
            if i + 2 >= len(args):
                fail(f"{arg} needs a NAME and a VALUE, e.g. -p datetime 2022-04-01/2022-05-31.")
            params[args[i + 1]] = parse_value(args[i + 2])
            i += 3
        elif arg.startswith("-"):
            fail(f"Unknown option {arg!r}: see mus-lab run --help.")
        else:
            notebooks.append(arg)
            i += 1
    return notebooks, params


def _print_parameters(notebooks: list[str]) -> None:
    from mus_lab.production import notebook_parameters

    for nb in notebooks:
        typer.secho(f"{nb}:", bold=True)
        params = notebook_parameters(nb)
        if not params:
            typer.echo("  (no cell tagged 'parameters')")
        for p in params.values():
            typer.echo(f"  -p {p.name} {p.example():<28} {p.describe_type():<14} {p.help}")


def _print_report(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Run folder {report.out.resolve()}")
    for col in ("notebook", "status", "duration", "key outputs"):
        table.add_column(col, overflow="fold")
    colours = {"ok": "green", "failed": "red", "skipped": "yellow"}
    for run, (name, status, seconds, outputs) in zip(report.runs, report.rows(), strict=True):
        table.add_row(name, f"[{colours[run.status]}]{status}[/]", seconds, outputs)
    console = Console(width=max(100, Console().width))
    console.print(table)
    for run in report.runs:
        if run.executed is not None:
            typer.echo(f"  {run.notebook.name}: {run.executed.resolve()} (+ .html, .records.json)")
        if run.status == "failed":
            typer.secho(f"  {run.notebook.name} failed: {run.error}", fg=typer.colors.RED)
    typer.echo(f"  summary: {report.summary_json}")


@production_app.command(
    "run",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True},
)
def run_cmd(
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="NOTEBOOK... [-p NAME VALUE]...",
            help="Notebooks to run in order (one chain), then parameters: -p NAME VALUE, "
            "values read as YAML like papermill's -p ('3', '0.5', '[1, 2]', 'None', text).",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run folder (default: runs/<date-time>)."),
    ] = None,
    cwd: Annotated[
        Path | None, typer.Option(help="Working folder of the kernels (default: here).")
    ] = None,
    kernel: Annotated[str, typer.Option(help="Jupyter kernel name.")] = "python3",
    keep_going: Annotated[
        bool, typer.Option(help="Run the next notebooks after one fails.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar per notebook.")] = True,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds allowed per cell (default: no limit).")
    ] = None,
    help_parameters: Annotated[
        bool, typer.Option("--help-parameters", help="List each notebook's parameters and stop.")
    ] = False,
) -> None:
    """Run curated notebooks in batch: executed notebook, HTML and recorded values per notebook.

    Example: mus-lab run notebooks/01_search_and_load.ipynb notebooks/02_ard.ipynb
    -p catalog demo_output/scenario/catalog/catalog.json -p datetime 2022-03-01/2022-06-30
    """
    from mus_lab.production import run_chain

    notebooks, params = split_arguments(args)
    if not notebooks:
        fail("Give at least one notebook, e.g. mus-lab run notebooks/01_search_and_load.ipynb.")
    with reporting_errors():
        if help_parameters:
            _print_parameters(notebooks)
            return
        folder = out or Path("runs") / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        typer.echo(f"Running {len(notebooks)} notebook(s) into {folder.resolve()}")
        report = run_chain(
            notebooks,
            folder,
            parameters=params,
            cwd=cwd,
            kernel_name=kernel,
            progress=progress,
            keep_going=keep_going,
            timeout=timeout,
            log=typer.echo,
        )
    _print_report(report)
    if not report.ok:
        raise typer.Exit(code=1)


@production_app.command("dashboards")
def dashboards_cmd(
    catalog: Annotated[
        str | None,
        typer.Option(help="Catalog the dashboards show (default: MUS_LAB_CATALOG)."),
    ] = None,
    flood_port: Annotated[int, typer.Option(help="Port of the flood-risk dashboard.")] = 8866,
    landcover_port: Annotated[int, typer.Option(help="Port of the land-cover explorer.")] = 5006,
    only: Annotated[
        str | None, typer.Option(help="Serve only 'flood_risk' or 'landcover_explorer'.")
    ] = None,
) -> None:
    """Serve the flood-risk dashboard (Voila) and the land-cover explorer (Panel) on 127.0.0.1."""
    import signal

    from mus_lab.ui import APPS, serve

    def _terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # stop the servers below, as Ctrl+C does

    previous = signal.signal(signal.SIGTERM, _terminate)
    names = [only] if only else list(APPS)
    ports = {"flood_risk": flood_port, "landcover_explorer": landcover_port}
    servers = []
    try:
        for name in names:
            if name not in APPS:
                fail(f"--only {name!r}: choose among {list(APPS)}.")
            servers.append(serve(name, port=ports[name], catalog=catalog))
        for server in servers:
            server.wait_ready()
            typer.secho(f"{server.title}: {server.url}", fg=typer.colors.GREEN)
        typer.echo("Press Ctrl+C to stop.")
        while all(s.running for s in servers):
            time.sleep(1.0)
        typer.secho("A dashboard server stopped; see its messages above.", fg="red", err=True)
        raise typer.Exit(code=1)
    except MusLabError as exc:
        fail(exc)
    except KeyboardInterrupt:
        typer.echo("Stopping.")
    finally:
        for server in servers:
            server.stop()
        signal.signal(signal.SIGTERM, previous)
