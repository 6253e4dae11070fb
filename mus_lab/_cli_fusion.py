"""``mus-lab fuse``: Dempster-Shafer fusion of two or more land-cover maps (GeoTIFFs)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from mus_lab._cli_common import fail, reporting_errors

if TYPE_CHECKING:
    from mus_lab.fusion._masses import MassOf
    from mus_lab.fusion._rules import TotalConflict

__all__ = ["fuse_cmd"]


def _reliability(value: str) -> Any:
    if value in ("precision", "accuracy"):
        return value
    if value == "none":
        return None
    try:
        return float(value)
    except ValueError:
        fail(f"--reliability {value!r}: choose precision, accuracy, none or a number in [0, 1].")


def _write_folder(ds: Any, out: Path, overwrite: bool, provenance: dict[str, Any]) -> list[str]:
    """Every variable as a COG plus fusion.json, built in a temporary folder then renamed."""
    import numpy as np

    from mus_lab._io import atomic_folder, write_cog, write_json

    if out.exists() and not overwrite:
        fail(f"{out} exists: pass --overwrite or choose another --out folder.")
    with atomic_folder(out) as tmp:
        names = []
        for name, da in ds.data_vars.items():
            nodata = (
                float("nan") if np.issubdtype(da.dtype, np.floating) else da.attrs.get("nodata")
            )
            write_cog(
                da,
                tmp / f"{name}.tif",
                nodata=nodata,
                tags={"description": da.attrs.get("description", "")},
            )
            names.append(str(name))
        write_json(provenance, tmp / "fusion.json")
    return names


def fuse_cmd(
    maps: Annotated[
        list[Path],
        typer.Argument(
            help="Two or more GeoTIFFs on one grid, first source first: label maps (one integer "
            "band, 0 = no data) or probability cubes (one band per class, band descriptions = "
            "class codes).",
            exists=True,
            dir_okay=False,
        ),
    ],
    confusion: Annotated[
        list[Path] | None,
        typer.Option(
            "--confusion",
            "-m",
            help="OTB/IOTA² confusion-matrix CSV, once per map in the same order (needed for "
            "label maps; for probability cubes with --reliability precision/accuracy).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    rule: Annotated[
        str, typer.Option(help="dempster, conjunctive, yager, disjunctive, pcr5 or pcr6.")
    ] = "dempster",
    decision: Annotated[
        str | None,
        typer.Option(help="otb (label maps only, the default there), bel (default), pl or betp."),
    ] = None,
    mob: Annotated[
        str, typer.Option(help="Label maps: mass of belief precision, recall, accuracy or kappa.")
    ] = "precision",
    reliability: Annotated[
        str,
        typer.Option(help="Probability cubes: precision, accuracy, none or a number in [0, 1]."),
    ] = "precision",
    compound_threshold: Annotated[
        float, typer.Option(help="Probability cubes: confusion rate making a compound set.")
    ] = 0.1,
    name: Annotated[
        list[str] | None, typer.Option("--name", help="Source name, once per map.")
    ] = None,
    total_conflict: Annotated[
        str, typer.Option(help="Dempster at K = 1: vacuous (undecided) or raise.")
    ] = "vacuous",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for the COGs and fusion.json.")
    ] = None,
    catalog: Annotated[
        Path | None,
        typer.Option(help="Local STAC catalog to add the product to (instead of --out)."),
    ] = None,
    collection: Annotated[
        str, typer.Option(help="Collection id in --catalog.")
    ] = "landcover-fused",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """Fuse land-cover maps by Dempster-Shafer evidence theory: fused class, belief,
    plausibility, conflict, ignorance, confidence and source agreement, written atomically."""
    from mus_lab import fusion
    from mus_lab.classify import ConfusionMatrix

    if (out is None) == (catalog is None):
        fail("give exactly one of --out FOLDER or --catalog CATALOG.")
    if len(maps) < 2:
        fail(f"fusion needs two or more maps, got {len(maps)}.")
    if total_conflict not in ("vacuous", "raise"):
        fail(f"--total-conflict {total_conflict!r}: choose vacuous or raise.")
    csvs = list(confusion or [])
    if csvs and len(csvs) != len(maps):
        fail(f"{len(csvs)} --confusion files for {len(maps)} maps: give one per map, in order.")
    rel = _reliability(reliability)
    names = list(name) if name else [p.stem for p in maps]
    if len(set(names)) != len(names):
        if name:
            fail(f"--name {names}: give distinct names, once per map.")
        names = [f"{n} ({i + 1})" for i, n in enumerate(names)]  # same file names
    with reporting_errors():
        sources = {n: fusion.open_map(p) for n, p in zip(names, maps, strict=True)}
        cms = [ConfusionMatrix.from_csv(c) for c in csvs] if csvs else None
        options = fusion.FusionOptions(  # checks the words given on the command line
            rule=rule,
            decision=cast("fusion.LabelDecision | None", decision),
            mob=cast("MassOf", mob),
            reliability=rel,
            compound_threshold=compound_threshold,
            total_conflict=cast("TotalConflict", total_conflict),
        )
        ds = fusion.fuse(sources, options=options, confusions=cms)
        provenance = {
            **{k: str(v) for k, v in ds.attrs.items()},
            "inputs": [str(p.resolve()) for p in maps],
            "confusion_matrices": [str(c.resolve()) for c in csvs],
        }
        if catalog is not None:
            coll = fusion.write_fused(
                ds,
                catalog,
                collection=collection,
                overwrite=overwrite,
                parameters={"inputs": provenance["inputs"]},
            )
            typer.echo(
                f"Wrote collection '{coll.id}' ({', '.join(map(str, ds.data_vars))}) into {catalog}"
            )
        else:
            assert out is not None
            written = _write_folder(ds, out, overwrite, provenance)
            typer.echo(f"Wrote {', '.join(written)} and fusion.json into {out}")
    typer.echo(
        f"Rule {ds.attrs['rule']}, decision {ds.attrs['decision']}, sources {ds.attrs['sources']}. "
        f"{fusion.CONFIDENCE_DEFINITION}"
    )
