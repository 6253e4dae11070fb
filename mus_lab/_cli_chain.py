"""``mus-lab chain``: run a production chain over tiles, follow it, retry or cancel it.

Every command takes the chain file first; the job registry is ``<output>/registry.sqlite``.
``prune`` removes the intermediates whose lifetime (``intermediates.keep``) is over.
Exit codes: 0 every task done; 1 some task failed or was skipped (``status`` shows which,
``retry`` re-runs them); 2 nothing ran (bad chain file, tile without input, unknown run);
130 interrupted.
A chain file's ``registry`` (a ``postgresql://`` URL or a file), or the setting
``MUS_LAB_REGISTRY``, puts the job registry elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

import typer

from mus_lab._cli_common import reporting_errors

__all__ = ["chain_app"]

chain_app = typer.Typer(
    help="Production chains: steps x tiles on the Dask cluster, with a job registry.",
    no_args_is_help=True,
)

ChainArg = Annotated[str, typer.Argument(help="The chain file (YAML).")]
RunOpt = Annotated[str | None, typer.Option("--run", help="Run id (default: the latest run).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final table.")]


def _finish(report: object, quiet: bool) -> None:
    from mus_lab.production import RunReport

    assert isinstance(report, RunReport)
    typer.echo(report.table() if not quiet else report.table().splitlines()[0])
    raise typer.Exit(code=0 if report.ok else 1)


def _log(quiet: bool) -> Callable[[str], None]:
    return (lambda line: None) if quiet else typer.echo


@chain_app.command("run")
def run_cmd(chain: ChainArg, quiet: QuietOpt = False) -> None:
    """Check the chain, then run every step on every tile (local cluster or Dask Gateway)."""
    from mus_lab import production

    with reporting_errors():
        report = production.run_tiles(chain, log=_log(quiet))
    _finish(report, quiet)


@chain_app.command("retry")
def retry_cmd(chain: ChainArg, run: RunOpt = None, quiet: QuietOpt = False) -> None:
    """Re-run what failed, was skipped or cancelled, or whose inputs changed, in a run."""
    from mus_lab import production

    with reporting_errors():
        report = production.retry(chain, run, log=_log(quiet))
    _finish(report, quiet)


@chain_app.command("status")
def status_cmd(
    chain: ChainArg,
    run: RunOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a run's state and its tasks (step, tile, state, attempts, time, error)."""
    from mus_lab import production

    with reporting_errors():
        report = production.status(chain, run)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "run_id": report.run_id,
                    "state": report.state,
                    "counts": report.counts(),
                    "tasks": [t.__dict__ for t in report.tasks],
                },
                indent=1,
                default=str,
            )
        )
        return
    typer.echo(report.table())


@chain_app.command("cancel")
def cancel_cmd(chain: ChainArg, run: RunOpt = None) -> None:
    """Ask a run to stop (its driver cancels the tasks not finished yet)."""
    from mus_lab import production

    with reporting_errors():
        report = production.cancel(chain, run)
    typer.echo(report.table().splitlines()[0])


@chain_app.command("history")
def history_cmd(
    chain: ChainArg,
    product: Annotated[str, typer.Argument(help="A file the chain wrote.")],
) -> None:
    """Print where a product comes from: run, step, tile, inputs, parameters (JSON)."""
    from mus_lab import production

    with reporting_errors():
        info = production.history(product, chain)
    typer.echo(json.dumps(info, indent=1, default=str))


@chain_app.command("view")
def view_cmd(
    chain: ChainArg,
    run: RunOpt = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: a free one).")] = 0,
    refresh: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 2.0,
) -> None:
    """Serve a live view of a run on 127.0.0.1: tiles coloured by state, failures (Ctrl-C stops)."""
    from mus_lab import production, ui

    with reporting_errors():
        production.run_view(chain, run, refresh_s=None)  # a bad chain or run fails here, clearly
    import panel as pn

    ui.offline_extension()
    port = port or ui.free_port()
    typer.echo(f"Run view: http://127.0.0.1:{port}/ (Ctrl-C stops it)")
    pn.serve(
        {"/": lambda: production.run_view(chain, run, refresh_s=refresh)},
        address="127.0.0.1",
        port=port,
        show=False,
        title="mus_lab chain run",
        websocket_origin=[f"127.0.0.1:{port}", f"localhost:{port}"],
        print=False,
    )


@chain_app.command("prune")
def prune_cmd(
    chain: ChainArg,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list the files.")] = False,
) -> None:
    """Remove the chain's expired intermediates (lifetimes in its file) and refresh its catalog."""
    from mus_lab import production

    with reporting_errors():
        removed = production.prune(chain, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    typer.echo(f"{verb} {len(removed)} expired intermediate(s)")
    for path in removed:
        typer.echo(f"  {path}")
