"""The ``mus-lab`` command line: thin wrappers over the package's stages.

Every :class:`~mus_lab.errors.MusLabError` is shown as a one-paragraph message with
exit code 2, never as a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from mus_lab._cli_fusion import fuse_cmd
from mus_lab._cli_production import production_app
from mus_lab.errors import MusLabError

app = typer.Typer(
    name="mus-lab",
    help="mus_lab: search, cube, ARD, land cover, fusion and flood risk for Sentinel-1/2 and RCM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(exc: MusLabError) -> None:
    typer.secho(f"Error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@app.command("sample")
def sample_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to create for the scenario.")],
    size: Annotated[
        int, typer.Option(help="Width/height in 10 m pixels (64 tiny ... 10980 full tile).")
    ] = 512,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives the same scenario.")
    ] = 42,
    start: Annotated[str, typer.Option(help="First date (YYYY-MM-DD).")] = "2021-11-01",
    end: Annotated[str, typer.Option(help="Last date (YYYY-MM-DD).")] = "2022-10-31",
    sensors: Annotated[str, typer.Option(help="Comma-separated among s2,s1,rcm.")] = "s2,s1,rcm",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing folder.")] = False,
) -> None:
    """Generate the sample scenario: COGs plus a STAC catalog, with land-cover and flood truth."""
    from mus_lab import sample

    try:
        scenario = sample.generate(
            out,
            size=size,
            seed=seed,
            start=start,
            end=end,
            sensors=tuple(_csv(sensors) or ()),
            overwrite=overwrite,
            progress=True,
        )
    except MusLabError as exc:
        _fail(exc)
    typer.echo(scenario.summary())


def _bbox(value: str | None) -> tuple[float, ...] | None:
    if not value:
        return None
    try:
        box = tuple(float(v) for v in value.split(","))
    except ValueError:
        typer.secho(
            f"Error: --bbox {value!r} must be four numbers separated by commas.", fg="red", err=True
        )
        raise typer.Exit(code=2) from None
    return box


@app.command("search")
def search_cmd(
    catalog: Annotated[
        str, typer.Argument(help="STAC API URL or local catalog path (folder or catalog.json).")
    ],
    collections: Annotated[
        str, typer.Option("--collections", "-c", help="Comma-separated collection ids.")
    ],
    bbox: Annotated[
        str | None, typer.Option(help="min_lon,min_lat,max_lon,max_lat in degrees.")
    ] = None,
    datetime: Annotated[
        str | None, typer.Option(help="Instant or interval, e.g. 2022-04-01/2022-06-30.")
    ] = None,
    max_cloud: Annotated[
        float | None, typer.Option(help="Maximum eo:cloud_cover in percent.")
    ] = None,
    filter: Annotated[str | None, typer.Option("--filter", help="CQL2 text filter.")] = None,
    max_items: Annotated[int | None, typer.Option(help="Stop after this many items.")] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the items as a GeoJSON ItemCollection."),
    ] = None,
) -> None:
    """Search a STAC API or a local catalog and print a summary per collection."""
    from mus_lab import catalog as cat
    from mus_lab._io import write_json

    box = _bbox(bbox)
    try:
        result = cat.search(
            catalog,
            collections=_csv(collections) or [],
            bbox=box,
            datetime=datetime,
            max_cloud=max_cloud,
            filter=filter,
            max_items=max_items,
        )
    except MusLabError as exc:
        _fail(exc)
    typer.echo(f"{len(result)} items from {result.source}")
    typer.echo(result.summary().to_string())
    if output is not None:
        write_json(result.item_collection().to_dict(), output)
        typer.echo(f"Items written to {output}")


ard_app = typer.Typer(
    help="Make analysis-ready data on the Sentinel-2 10 m grid and add it to a local catalog.",
    no_args_is_help=True,
)
app.add_typer(ard_app, name="ard")


def _ard_run(
    sensor: str,
    catalog: str,
    collection: str,
    out_collection: str,
    bbox: str | None,
    datetime: str | None,
    overwrite: bool,
    *,
    invalid: tuple[int, ...] = (0, 1, 3, 8, 9, 10),
    every: int | None = None,
    speckle: str | None = None,
) -> None:
    from mus_lab import ard, cube
    from mus_lab import catalog as cat
    from mus_lab.production import dask_progress

    box = _bbox(bbox)
    if speckle not in (None, "lee", "refined_lee", "lee_sigma"):
        typer.secho(
            f"Error: --speckle {speckle!r}: choose lee, refined_lee or lee_sigma.",
            fg="red",
            err=True,
        )
        raise typer.Exit(code=2)
    options = {"invalid": invalid, "every": every, "speckle": speckle}
    try:
        items = cat.search(catalog, collections=collection, bbox=box, datetime=datetime)
        typer.echo(f"{len(items)} {collection} items")
        if sensor == "s2":
            ds = ard.prepare_s2(
                items,
                bbox=box,
                invalid_classes=invalid,
                chunks={"time": -1, "x": 512, "y": 512},
            )
            if every:
                ds = ard.s2_time_series(ds, every_days=every)
        else:
            try:
                s2 = cat.search(
                    catalog, collections="sentinel-2-l2a", bbox=box, datetime=datetime, max_items=1
                )
                grid = cube.reference_geobox(s2, bbox=box)
            except MusLabError:
                grid = cube.reference_geobox(items, bbox=box)
            method = cast(Any, speckle)
            if sensor == "s1":
                ds = ard.prepare_s1(items, geobox=grid, speckle=method)
            else:
                ds = ard.prepare_rcm(items, geobox=grid, speckle=method)
        with dask_progress():  # writing computes the cube: show how far it is
            coll = ard.write(
                ds,
                catalog,
                out_collection,
                sources=list(items),
                parameters={k: str(v) for k, v in options.items()},
                overwrite=overwrite,
            )
    except MusLabError as exc:
        _fail(exc)
    n = len(list(coll.get_items()))
    typer.echo(
        f"Wrote {n} item(s) of '{out_collection}' ({', '.join(map(str, ds.data_vars))}) into {catalog}"
    )


CatalogArg = Annotated[str, typer.Argument(help="Local catalog (folder or catalog.json).")]
BboxOpt = Annotated[str | None, typer.Option(help="min_lon,min_lat,max_lon,max_lat")]
DatetimeOpt = Annotated[str | None, typer.Option(help="Interval, e.g. 2022-03-01/2022-08-31.")]
SpeckleOpt = Annotated[str | None, typer.Option(help="lee, refined_lee or lee_sigma.")]
OverwriteOpt = Annotated[bool, typer.Option(help="Replace an existing ARD collection.")]


@ard_app.command("s2")
def ard_s2(
    catalog: CatalogArg,
    collection: Annotated[str, typer.Option(help="Sentinel-2 L2A collection.")] = "sentinel-2-l2a",
    out_collection: Annotated[str, typer.Option(help="Collection id to write.")] = "s2-l2a-ard",
    bbox: BboxOpt = None,
    datetime: DatetimeOpt = None,
    invalid: Annotated[str, typer.Option(help="SCL classes treated as invalid.")] = "0,1,3,8,9,10",
    every: Annotated[
        int | None, typer.Option(help="Gap-fill onto a grid of this many days (and add indices).")
    ] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Sentinel-2 L2A: reflectance, quality bits and validity (optionally gap-filled with indices)."""
    try:
        classes = tuple(int(v) for v in invalid.split(","))
    except ValueError:
        typer.secho(
            f"Error: --invalid {invalid!r} must be SCL class numbers separated by commas.",
            fg="red",
            err=True,
        )
        raise typer.Exit(code=2) from None
    _ard_run(
        "s2",
        catalog,
        collection,
        out_collection,
        bbox,
        datetime,
        overwrite,
        invalid=classes,
        every=every,
    )


@ard_app.command("s1")
def ard_s1(
    catalog: CatalogArg,
    collection: Annotated[str, typer.Option(help="Sentinel-1 collection.")] = "sentinel-1-grd",
    out_collection: Annotated[str, typer.Option(help="Collection id to write.")] = "s1-ard",
    bbox: BboxOpt = None,
    datetime: DatetimeOpt = None,
    speckle: SpeckleOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Sentinel-1: backscatter (linear) on the S2 grid, data mask, optional speckle filter."""
    _ard_run("s1", catalog, collection, out_collection, bbox, datetime, overwrite, speckle=speckle)


@ard_app.command("rcm")
def ard_rcm(
    catalog: CatalogArg,
    collection: Annotated[str, typer.Option(help="RCM collection.")] = "rcm-grd",
    out_collection: Annotated[str, typer.Option(help="Collection id to write.")] = "rcm-ard",
    bbox: BboxOpt = None,
    datetime: DatetimeOpt = None,
    speckle: SpeckleOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """RCM: sigma0 calibrated from product.xml LUTs in native geometry, then onto the S2 grid."""
    _ard_run("rcm", catalog, collection, out_collection, bbox, datetime, overwrite, speckle=speckle)


@app.command("demo")
def demo_cmd(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the scenario and the products.")
    ] = Path("demo_output"),
    size: Annotated[int, typer.Option(help="Scene width/height in 10 m pixels.")] = 256,
    seed: Annotated[int, typer.Option(help="Random seed of the scenario.")] = 42,
    workers: Annotated[
        int | None, typer.Option(help="Local Dask workers (default: one per core).")
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Run the notebooks with their own defaults (more trees, epochs, seeds and "
            "the stacked map; about 15 min at 512 px on 2 cores) instead of the quick settings.",
        ),
    ] = False,
) -> None:
    """Run the main job on the embedded sample scenario, then the curated notebooks in batch."""
    from mus_lab.production._demo import run_demo

    try:
        report = run_demo(
            out,
            size=size,
            seed=seed,
            n_workers=workers,
            log=typer.echo,
            progress=True,
            quick=not full,
        )
    except MusLabError as exc:
        _fail(exc)
    typer.echo(report.summary())
    if report.chain is not None and not report.chain.ok:
        raise typer.Exit(code=1)


app.add_typer(production_app)  # mus-lab run, mus-lab dashboards


@app.command("version")
def version_cmd() -> None:
    """Print the versions of mus_lab and its main libraries."""
    import importlib.metadata as md

    names = ["mus_lab", "xarray", "dask", "odc-stac", "stackstac", "rasterio", "pystac-client"]
    versions = {}
    for n in names:
        try:
            versions[n] = md.version(n)
        except md.PackageNotFoundError:
            versions[n] = "not installed"
    typer.echo(json.dumps(versions, indent=2))


app.command("fuse")(fuse_cmd)
from mus_lab._cli_classify import landcover_app  # noqa: E402

app.add_typer(landcover_app, name="landcover")
from mus_lab._cli_flood import flood_app  # noqa: E402

app.add_typer(flood_app, name="flood")


def main() -> None:
    """Entry point of the ``mus-lab`` script."""
    app(prog_name="mus-lab")


if __name__ == "__main__":  # pragma: no cover
    main()
