"""``mus-lab serve``: start, stop or list the lab's local services (:mod:`mus_lab.services.serve`).

It lives beside the ``mus_lab.cli`` package rather than in it: ``cli`` and ``services`` are
independent siblings of the top layer (import-linter), so the command that drives the
services sits outside both, as ``mus-lab notices`` does.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from mus_lab._cli_common import command_doc, reporting_errors

__all__ = ["serve_cmd"]


class Action(StrEnum):
    """What ``mus-lab serve`` does."""

    start = "start"
    stop = "stop"
    status = "status"


@command_doc("action, folder, catalog", exit_1="status finds PostgreSQL not running")
def serve_cmd(
    action: Annotated[
        Action, typer.Argument(help="start (default), stop, or status.", case_sensitive=False)
    ] = Action.start,
    folder: Annotated[
        Path,
        typer.Option("--dir", help="Folder of the services' data, logs and tokens."),
    ] = Path(".services"),
    catalog: Annotated[
        Path | None,
        typer.Option(help="Product catalog served by the WMS/WCS (start; skipped without)."),
    ] = None,
) -> None:
    """Start (stop, list) PostgreSQL + pgstac, the STAC API and the other services on 127.0.0.1.

    start prints each service's URL and where its token is kept (never the token);
    stop leaves no process running.
    """
    from mus_lab.services import serve

    with reporting_errors():
        if action is Action.start:
            done = serve.start_services(folder, catalog=catalog)
        elif action is Action.stop:
            done = serve.stop_services(folder)
        else:
            done = serve.status_services(folder)
    for status in done:
        typer.echo(status.line())
    if action is Action.status and done[0].state != "running":
        raise typer.Exit(code=1)
