"""``mus-lab flood``: water map of one SAR GeoTIFF, and the flood-risk product of a catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mus_lab._cli_common import (
    BboxOpt,
    CatalogArg,
    DatetimeOpt,
    bbox_option,
    csv_list,
    reporting_errors,
)

flood_app = typer.Typer(
    help="Flood mapping from SAR (Sentinel-1, RCM) and the flood-risk product.",
    no_args_is_help=True,
)

__all__ = ["flood_app"]


@flood_app.command("map")
def map_cmd(
    sar: Annotated[
        Path,
        typer.Option("--sar", help="GeoTIFF with bands described VV and/or VH, backscatter in dB."),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Output GeoTIFF: band 1 water (1/0/255), band 2 likelihood."
        ),
    ],
    reference: Annotated[
        Path | None,
        typer.Option(help="Pre-event GeoTIFF (same grid and bands) for change detection."),
    ] = None,
    dem: Annotated[
        Path | None,
        typer.Option(
            help="DEM GeoTIFF (any grid covering the SAR): HAND and slope; no water above "
            "15 m of HAND or 15 deg of slope."
        ),
    ] = None,
    optical: Annotated[
        Path | None,
        typer.Option(help="Sentinel-2 GeoTIFF on the SAR grid (bands green+swir16, or MNDWI)."),
    ] = None,
    tile: Annotated[int | None, typer.Option(help="Threshold tile side in pixels.")] = None,
    method: Annotated[str, typer.Option(help="Tile threshold: em or otsu.")] = "em",
    vv_threshold: Annotated[
        float | None, typer.Option(help="Fixed VV threshold (dB) instead of tiles.")
    ] = None,
    vh_threshold: Annotated[
        float | None, typer.Option(help="Fixed VH threshold (dB) instead of tiles.")
    ] = None,
    self_trained: Annotated[
        bool,
        typer.Option(
            "--self-trained",
            help="Add a per-scene classifier trained on the confident pixels as a voter.",
        ),
    ] = False,
) -> None:
    """Map open water in one SAR image (consensus of threshold, change, region growing).

    Values that are clearly linear power instead of dB are converted, with a warning.
    """
    from mus_lab import flood

    fixed = {k: v for k, v in (("vv", vv_threshold), ("vh", vh_threshold)) if v is not None}
    with reporting_errors(show_warnings=True):
        options = flood.MappingOptions(
            tile=tile,
            threshold_method=method,  # type: ignore[arg-type]
            thresholds=fixed or None,
        )
        if self_trained:
            options = options.with_(methods=(*options.methods, "self_trained"))
        path = flood.map_geotiff(
            sar, out, reference=reference, dem=dem, optical=optical, options=options
        )
    typer.echo(f"Water map written to {path} (band 1 water 1/0/255, band 2 likelihood 0-100)")


@flood_app.command("risk")
def risk_cmd(
    catalog: CatalogArg,
    landcover: Annotated[
        str | None,
        typer.Option(
            help="Land-cover collection id or COG on the Sentinel-2 grid (exposure); default: "
            "the catalog's fused, stacked, optical or radar land-cover product, in that order."
        ),
    ] = None,
    zones: Annotated[
        Path | None, typer.Option(help="Vector file of zones for the per-zone table.")
    ] = None,
    zone_field: Annotated[str | None, typer.Option(help="Field naming the zones.")] = None,
    population: Annotated[
        Path | None, typer.Option(help="Population or asset COG (per pixel) on the grid.")
    ] = None,
    bbox: BboxOpt = None,
    datetime: DatetimeOpt = None,
    sensors: Annotated[str, typer.Option(help="SAR sensors: s1, rcm or s1,rcm.")] = "s1,rcm",
    config: Annotated[
        Path | None, typer.Option(help="Risk YAML overriding the packaged defaults.")
    ] = None,
    no_optical: Annotated[
        bool, typer.Option("--no-optical", help="Leave out the Sentinel-2 vote.")
    ] = False,
    extent_collection: Annotated[str, typer.Option(help="Flood extent collection id.")] = (
        "flood-extent"
    ),
    risk_collection: Annotated[str, typer.Option(help="Flood risk collection id.")] = "flood-risk",
    overwrite: Annotated[bool, typer.Option(help="Replace existing collections.")] = False,
) -> None:
    """Flood extent per SAR date, time-series products and flood risk, into the catalog."""
    from mus_lab import recipes

    box = bbox_option(bbox)
    with reporting_errors(show_warnings=True):
        run = recipes.run_risk(
            catalog,
            landcover=landcover,
            zones=zones,
            sensors=csv_list(sensors),
            zone_field=zone_field,
            population=population,
            bbox=box,
            datetime=datetime,
            optical=None if no_optical else "sentinel-2-l2a",
            config=config,
            extent_collection=extent_collection,
            risk_collection=risk_collection,
            overwrite=overwrite,
        )
    try:
        n_dates = int(run.extent.sizes["time"])
        flooded = float((run.summary["max_extent"] == 1).sum()) * _pixel_ha(run)
        typer.echo(
            f"Wrote '{extent_collection}' ({n_dates} dates) and '{risk_collection}' into {catalog}: "
            f"maximum flood extent {flooded:.1f} ha."
        )
        if run.zones is not None:
            typer.echo(run.zones.to_string(index=False))
    finally:
        run.cleanup()


def _pixel_ha(run: object) -> float:
    from mus_lab.cube import pixel_area_m2

    return pixel_area_m2(run.summary) / 10_000.0  # type: ignore[attr-defined]
