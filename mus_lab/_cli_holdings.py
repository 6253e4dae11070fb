"""``mus-lab holdings``: make, fill and search the holdings (a folder or PostgreSQL + pgstac).

Every command takes the holdings' location first: a folder (static STAC catalog, the
embedded default) or a ``postgresql://`` URL. A URL's password is never printed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import pystac
import typer

from mus_lab._cli_common import (
    BboxOpt,
    DatetimeOpt,
    bbox_option,
    command_doc,
    csv_list,
    fail,
    reporting_errors,
)
from mus_lab._cli_notices import NotifyOpt, notifying
from mus_lab.errors import CatalogUnreachableError

__all__ = ["holdings_app"]

holdings_app = typer.Typer(
    help="Holdings: what the lab holds, in a folder or in PostgreSQL + pgstac.",
    no_args_is_help=True,
)

LocationArg = Annotated[
    str, typer.Argument(help="Holdings folder, or postgresql://USER@HOST:PORT/DATABASE.")
]
CollectionOpt = Annotated[
    str | None, typer.Option("--collection", "-c", help="Comma-separated collection ids.")
]
_DB = ("postgresql://", "postgres://")


def _query(
    collections: list[str],
    *,
    bbox: Any = None,
    datetime: str | None = None,
    max_cloud: float | None = None,
    filter: str | None = None,
    max_items: int | None = None,
) -> Any:
    from mus_lab.catalog._query import build_query

    return build_query(
        collections=collections or None,
        bbox=bbox,
        intersects=None,
        datetime=datetime,
        max_cloud=max_cloud,
        filter=filter,
        filter_lang=None,
        max_items=max_items,
        limit=None,
    )


def _close(holdings: object) -> None:
    close = getattr(holdings, "close", None)
    if callable(close):
        close()


def _file_items(path: Path) -> list[pystac.Item]:
    """Items of an ItemCollection or Item JSON file, asset hrefs made absolute."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise CatalogUnreachableError(
            f"{path} cannot be read as JSON ({exc}): give a static catalog folder, a "
            "catalog.json, an ItemCollection or Item JSON file, or a postgresql:// URL."
        ) from exc
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "FeatureCollection":
        features = list(data.get("features") or [])
    elif kind == "Feature":
        features = [data]
    else:
        from mus_lab.catalog import open_local

        return open_local(path, refresh=True).find(_query([]))
    items = []
    for feature in features:
        item = pystac.Item.from_dict(feature)
        item.set_self_href(str(path.absolute()))
        item.make_asset_hrefs_absolute()
        item.set_self_href(None)
        items.append(item)
    return items


def _source_items(source: str, collections: list[str]) -> list[pystac.Item]:
    from mus_lab.catalog import open_holdings, open_local

    if source.startswith(_DB):
        holdings = open_holdings(source)
        try:
            return holdings.search(_query(collections))
        finally:
            _close(holdings)
    path = Path(source).expanduser()
    if path.is_dir() or path.name == "catalog.json":
        items = open_local(path, refresh=True).find(_query([]))
    elif path.is_file():
        items = _file_items(path)
    else:
        raise CatalogUnreachableError(
            f"Nothing to ingest at {source!r}: give a static catalog folder, a catalog.json, "
            "an ItemCollection JSON file, or a postgresql:// URL."
        )
    return [i for i in items if not collections or i.collection_id in collections]


@holdings_app.command("init")
@command_doc("location")
def init_cmd(location: LocationArg) -> None:
    """Prepare holdings: install or upgrade pgstac in a database, or start an empty folder."""
    from mus_lab.catalog import StaticHoldings

    with reporting_errors():
        if location.startswith(_DB):
            from mus_lab.catalog._pgstac import migrate_pgstac, redact_url

            version = migrate_pgstac(location)
            typer.echo(f"pgstac {version} ready in {redact_url(location)}")
        else:
            holdings = StaticHoldings(location)
            holdings.ingest([])
            typer.echo(f"Holdings catalog ready in {holdings.location}")


@holdings_app.command("ingest")
@command_doc("location, source, collection, notify")
def ingest_cmd(
    location: LocationArg,
    source: Annotated[
        str,
        typer.Argument(
            help="Static catalog (folder or catalog.json), ItemCollection JSON, or other holdings."
        ),
    ],
    collection: CollectionOpt = None,
    notify: NotifyOpt = None,
) -> None:
    """Add the items of SOURCE to the holdings (replacing items with the same id)."""
    from mus_lab.catalog import open_holdings

    with reporting_errors():
        items = _source_items(source, csv_list(collection))
        holdings = open_holdings(location)
        try:
            with notifying(notify):
                count = holdings.ingest(items)
        finally:
            _close(holdings)
    typer.echo(f"{count} items ingested into {holdings.location}")


@holdings_app.command("search")
@command_doc("location, collection, bbox, datetime, max_cloud, filter, max_items, output")
def search_cmd(
    location: LocationArg,
    collection: CollectionOpt = None,
    bbox: BboxOpt = None,
    datetime: DatetimeOpt = None,
    max_cloud: Annotated[
        float | None, typer.Option(help="Maximum eo:cloud_cover in percent.")
    ] = None,
    filter: Annotated[str | None, typer.Option("--filter", help="CQL2 text filter.")] = None,
    max_items: Annotated[int | None, typer.Option(help="Stop after this many items.")] = None,
    output: Annotated[
        str, typer.Option("--output", "-o", help="table (one line per item) or json.")
    ] = "table",
) -> None:
    """Search the holdings and print the items as a table or as a GeoJSON ItemCollection."""
    from mus_lab.catalog import open_holdings

    if output not in ("table", "json"):
        fail(f"--output {output!r} is not known: choose table or json.")
    box = bbox_option(bbox)
    with reporting_errors():
        query = _query(
            csv_list(collection),
            bbox=box,
            datetime=datetime,
            max_cloud=max_cloud,
            filter=filter,
            max_items=max_items,
        )
        holdings = open_holdings(location)
        try:
            items = holdings.search(query)
        finally:
            _close(holdings)
    if output == "json":
        typer.echo(json.dumps(pystac.ItemCollection(items).to_dict(), indent=1))
        return
    rows = [
        (
            i.id,
            i.collection_id or "",
            (i.datetime or i.common_metadata.start_datetime or "").__str__()[:19],
            ""
            if i.properties.get("eo:cloud_cover") is None
            else f"{i.properties['eo:cloud_cover']:g}",
        )
        for i in items
    ]
    header = ("id", "collection", "datetime", "cloud")
    widths = [max(len(str(r[k])) for r in [header, *rows]) for k in range(4)]
    for row in [header, *rows]:
        typer.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    typer.echo(f"{len(items)} items in {holdings.location}")
