"""The ``mus-lab`` command line: thin wrappers over the package's stages.

Every :class:`~mus_lab.errors.MusLabError` is shown as a one-line message with exit code 2,
never as a traceback (:mod:`mus_lab._cli_common`). Each command's docstring is its ``--help``;
the numpydoc sections after ``\\f`` are left out of the help.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from mus_lab import contracts
from mus_lab._cli_common import (
    BboxOpt,
    CatalogArg,
    DatetimeOpt,
    OverwriteOpt,
    bbox_option,
    command_doc,
    csv_list,
    fail,
    reporting_errors,
)
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


@app.command("sample")
@command_doc("out, size, seed, start, end, sensors, overwrite")
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

    with reporting_errors():
        scenario = sample.generate(
            out,
            size=size,
            sensors=tuple(csv_list(sensors)),
            seed=seed,
            start=start,
            end=end,
            overwrite=overwrite,
            progress=True,
        )
    typer.echo(scenario.summary())


@app.command("search")
@command_doc("catalog, collections, bbox, datetime, max_cloud, filter, max_items, output")
def search_cmd(
    catalog: Annotated[
        str, typer.Argument(help="STAC API URL or local catalog path (folder or catalog.json).")
    ],
    collections: Annotated[
        str, typer.Option("--collections", "-c", help="Comma-separated collection ids.")
    ],
    bbox: BboxOpt = None,
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

    box = bbox_option(bbox)
    with reporting_errors():
        result = cat.search(
            catalog,
            collections=csv_list(collections),
            bbox=box,
            datetime=datetime,
            max_cloud=max_cloud,
            filter=filter,
            max_items=max_items,
        )
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

    box = bbox_option(bbox)
    if speckle not in (None, "lee", "refined_lee", "lee_sigma"):
        fail(f"--speckle {speckle!r}: choose lee, refined_lee or lee_sigma.")
    options = {"invalid": invalid, "every": every, "speckle": speckle}
    with reporting_errors():
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
    n = len(list(coll.get_items()))
    typer.echo(
        f"Wrote {n} item(s) of '{out_collection}' ({', '.join(map(str, ds.data_vars))}) into {catalog}"
    )


SpeckleOpt = Annotated[str | None, typer.Option(help="lee, refined_lee or lee_sigma.")]


@ard_app.command("s2")
@command_doc("catalog, collection, out_collection, bbox, datetime, invalid, every, overwrite")
def ard_s2(
    catalog: CatalogArg,
    collection: Annotated[str, typer.Option(help="Sentinel-2 L2A collection.")] = "sentinel-2-l2a",
    out_collection: Annotated[
        str | None,
        typer.Option(
            help="Collection id to write (default s2-l2a-ard, or s2-l2a-series with --every)."
        ),
    ] = None,
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
        fail(f"--invalid {invalid!r} must be SCL class numbers separated by commas.")
    default = contracts.S2_SERIES.collection if every else contracts.S2_ARD.collection
    _ard_run(
        "s2",
        catalog,
        collection,
        out_collection or default,
        bbox,
        datetime,
        overwrite,
        invalid=classes,
        every=every,
    )


def _sar_command(sensor: str, source: str, target: str, summary: str) -> Any:
    """An ``ard <sensor>`` command reading ``source`` and writing ``target`` by default."""

    def command(
        catalog: CatalogArg,
        collection: Annotated[str, typer.Option(help="SAR collection to read.")] = source,
        out_collection: Annotated[str, typer.Option(help="Collection id to write.")] = target,
        bbox: BboxOpt = None,
        datetime: DatetimeOpt = None,
        speckle: SpeckleOpt = None,
        overwrite: OverwriteOpt = False,
    ) -> None:
        _ard_run(
            sensor, catalog, collection, out_collection, bbox, datetime, overwrite, speckle=speckle
        )

    command.__name__ = f"ard_{sensor}"
    command.__doc__ = summary
    params = "catalog, collection, out_collection, bbox, datetime, speckle, overwrite"
    return command_doc(params)(command)


ard_s1 = ard_app.command("s1")(
    _sar_command(
        "s1",
        contracts.COLLECTIONS["s1"],
        contracts.S1_ARD.collection,
        "Sentinel-1: backscatter (linear) on the S2 grid, validity and quality bits, optional "
        "speckle filter.",
    )
)
ard_rcm = ard_app.command("rcm")(
    _sar_command(
        "rcm",
        contracts.COLLECTIONS["rcm"],
        contracts.RCM_ARD.collection,
        "RCM: sigma0 calibrated from product.xml LUTs in native geometry, then onto the S2 grid.",
    )
)


@app.command("demo")
@command_doc("out, size, seed, workers", exit_1="a step of the chain failed")
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

    with reporting_errors():
        report = run_demo(
            out,
            size=size,
            seed=seed,
            n_workers=workers,
            log=typer.echo,
            progress=True,
            quick=not full,
        )
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
from mus_lab._cli_harvest import harvest_cmd  # noqa: E402

app.command("harvest")(harvest_cmd)
from mus_lab._cli_classify import landcover_app  # noqa: E402

app.add_typer(landcover_app, name="landcover")
from mus_lab._cli_flood import flood_app  # noqa: E402

app.add_typer(flood_app, name="flood")
from mus_lab._cli_holdings import holdings_app  # noqa: E402

app.add_typer(holdings_app, name="holdings")
from mus_lab._cli_chain import chain_app  # noqa: E402

app.add_typer(chain_app, name="chain")
from mus_lab._cli_notices import notices_app  # noqa: E402

app.add_typer(notices_app, name="notices")
from mus_lab._cli_serve import serve_cmd  # noqa: E402

app.command("serve")(serve_cmd)


def main() -> None:
    """Entry point of the ``mus-lab`` script: run the command named on the command line.

    Raises
    ------
    SystemExit
        Always, with the command's exit code (2 for a bad option or a MusLabError).
    """
    app(prog_name="mus-lab")


if __name__ == "__main__":  # pragma: no cover
    main()
