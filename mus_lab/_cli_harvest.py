"""``mus-lab harvest``: search a source, then download the items' assets into a holdings folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mus_lab._cli_common import BboxOpt, bbox_option, command_doc, csv_list, fail, reporting_errors
from mus_lab._cli_notices import NotifyOpt, notifying

__all__ = ["harvest_cmd"]


@command_doc(
    "source, collection, bbox, datetime, max_cloud, assets, out, workers, max_items, retries, "
    "quiet, notify",
    exit_1="some assets could not be harvested (they are listed)",
)
def harvest_cmd(
    source: Annotated[
        str,
        typer.Argument(help="Where to search: STAC API URL, provider name or local catalog path."),
    ],
    collection: Annotated[
        str, typer.Option("--collection", "-c", help="Collection id(s), comma-separated.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Holdings folder (created; re-runs resume).")
    ],
    bbox: BboxOpt = None,
    datetime: Annotated[
        str | None, typer.Option(help="Instant or interval, e.g. 2024-06-01/2024-06-30.")
    ] = None,
    max_cloud: Annotated[
        float | None, typer.Option(help="Maximum eo:cloud_cover in percent.")
    ] = None,
    assets: Annotated[
        str | None,
        typer.Option(help="Asset keys to fetch, comma-separated (default: every data asset)."),
    ] = None,
    workers: Annotated[int, typer.Option(help="Downloads at the same time.")] = 4,
    max_items: Annotated[int | None, typer.Option(help="Stop after this many items.")] = None,
    retries: Annotated[int, typer.Option(help="Failed attempts allowed per file.")] = 5,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    notify: NotifyOpt = None,
) -> None:
    """Search SOURCE, then download the selected assets into OUT/<collection>/<item id>/.

    OUT becomes (or joins) a static STAC catalog of the holdings. Run the same command again to resume an interrupted or failed run: only missing or corrupt files are downloaded.
    """
    from mus_lab import catalog as cat

    box = bbox_option(bbox)
    if workers < 1:
        fail(f"--workers {workers}: give at least 1.")
    with reporting_errors(show_warnings=True):
        result = cat.search(
            source,
            collections=csv_list(collection),
            bbox=box,
            datetime=datetime,
            max_cloud=max_cloud,
            max_items=max_items,
        )
        typer.echo(f"{len(result)} items from {result.source}", err=quiet)
        try:
            with notifying(notify):
                report = cat.harvest(
                    result,
                    out,
                    assets=csv_list(assets) or None,
                    workers=workers,
                    progress=not quiet,
                    retries=retries,
                )
        except KeyboardInterrupt as exc:
            typer.secho(f"\n{exc}", fg=typer.colors.YELLOW, err=True)
            raise typer.Exit(code=130) from None
    typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(code=1)
