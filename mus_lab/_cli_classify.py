"""``mus-lab landcover train | predict | assess``: the land-cover stage on the command line.

``train`` builds features from a catalog (optical, radar or stacked), extracts samples from
reference polygons, trains and saves a model (its recipe included); ``predict`` rebuilds the
same features with the model's recipe, maps them and writes a ``landcover-<sensors>``
collection into the catalog; ``assess`` measures a written map against polygons and saves the
IOTA²-layout confusion matrix, per-class and area-adjusted tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, cast

import typer

from mus_lab._cli_common import (
    BboxOpt,
    CatalogArg,
    DatetimeOpt,
    bbox_option,
    fail,
    reporting_errors,
)

landcover_app = typer.Typer(
    help="Land-cover maps from S1/S2/RCM time series (IOTA²-style): train, predict, assess.",
    no_args_is_help=True,
)

PolygonsOpt = Annotated[
    Path, typer.Option("--polygons", "-p", help="Reference polygons (GeoPackage, Shapefile...).")
]
LayerOpt = Annotated[str | None, typer.Option(help="Layer of the polygon file.")]
LabelOpt = Annotated[str, typer.Option(help="Field with the integer class code.")]


@landcover_app.command("train")
def train_cmd(
    catalog: CatalogArg,
    polygons: PolygonsOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to save the model in.")],
    sensors: Annotated[str, typer.Option(help="optical, radar or stacked.")] = "optical",
    model: Annotated[
        str, typer.Option(help="rf, tempcnn, ltae or ensemble (soft vote of the three).")
    ] = "rf",
    layer: LayerOpt = None,
    label: LabelOpt = "code",
    name_field: Annotated[str, typer.Option(help="Field with class names.")] = "class_name",
    id_field: Annotated[str, typer.Option(help="Field identifying polygons.")] = "poly_id",
    ratio: Annotated[float, typer.Option(help="Share of each class's polygons that trains.")] = 0.5,
    seed: Annotated[int, typer.Option(help="Seed of the split and the model.")] = 0,
    trees: Annotated[int, typer.Option(help="Random forest: number of trees.")] = 100,
    epochs: Annotated[int, typer.Option(help="TempCNN and L-TAE: maximum epochs.")] = 40,
    max_per_class: Annotated[
        int | None, typer.Option(help="At most this many training pixels per class.")
    ] = None,
    every_days: Annotated[int, typer.Option(help="Date grid spacing in days.")] = 10,
    datetime: DatetimeOpt = None,
    bbox: BboxOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model folder.")] = False,
) -> None:
    """Train a model on polygons (split by polygon) and save it with its validation report."""
    from mus_lab import classify, recipes

    if model not in ("rf", "tempcnn", "ltae", "ensemble"):
        fail(f"--model {model!r}: choose rf, tempcnn, ltae or ensemble.")
    if sensors not in classify.SENSOR_SETS:
        fail(f"--sensors {sensors!r}: choose optical, radar or stacked.")
    nets: dict[str, Any] = {"epochs": epochs}
    choices: dict[str, dict[str, Any]] = {
        "rf": {"n_estimators": trees},
        "ensemble": {
            "member_params": {"rf": {"n_estimators": trees}, "tempcnn": nets, "ltae": nets}
        },
    }
    params = choices.get(model, nets)
    with reporting_errors():
        feats, _, _ = recipes.features_from_catalog(
            catalog,
            classify.FeatureOptions(sensors=cast(Any, sensors), every_days=every_days),
            bbox=bbox_option(bbox),
            datetime=datetime,
        )
        typer.echo(
            f"{feats.sizes['feature']} features ({sensors}) on {feats.sizes['y']} x {feats.sizes['x']} px"
        )
        smp = classify.extract_samples(
            feats, polygons, label=label, layer=layer, name_field=name_field, id_field=id_field
        )
        lcm = classify.train(
            smp, model, params=params, train_ratio=ratio, seed=seed, max_per_class=max_per_class
        )
        lcm.save(out, overwrite=overwrite)
    val = lcm.metadata.report.get("validation", {})
    typer.echo(
        f"Trained {model} on {len(smp)} pixels of {len(set(smp.polygon.tolist()))} polygons; "
        f"validation on other polygons: OA {val.get('overall_accuracy', float('nan')):.3f}, "
        f"kappa {val.get('kappa', float('nan')):.3f}, macro-F1 {val.get('macro_f1', float('nan')):.3f}"
    )
    typer.echo(f"Model saved to {out}")


@landcover_app.command("predict")
def predict_cmd(
    catalog: CatalogArg,
    model: Annotated[Path, typer.Option("--model", "-m", help="Model folder (from train).")],
    collection: Annotated[
        str | None, typer.Option(help="Collection id (default landcover-<sensors>).")
    ] = None,
    mmu: Annotated[int, typer.Option(help="Minimum mapping unit in pixels (0 = no sieve).")] = 0,
    assess_polygons: Annotated[
        bool, typer.Option(help="Assess on the model's validation polygons and attach the report.")
    ] = True,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing collection.")] = False,
) -> None:
    """Map a catalog with a saved model (features rebuilt with the model's recipe) and write it.

    The model may come from 'mus-lab landcover train', from recipes.features_from_catalog in
    Python, or from the stage functions called one by one: each records its recipe.
    """
    from mus_lab import classify, recipes

    if mmu < 0:
        fail(f"--mmu must be >= 0, got {mmu}.")
    with reporting_errors():
        lcm = classify.load_model(model)
        recipe = dict(lcm.metadata.recipe)
        sensors = recipe.get("sensors")
        if sensors not in classify.SENSOR_SETS:
            fail(
                f"The model at {model} records no feature recipe (it was trained on features "
                "built outside mus_lab's stages): build the same features in Python and call "
                "classify.predict(features, model)."
            )
        feats, _, items = recipes.replay_features(recipe, catalog=catalog)
        result = classify.predict(feats, lcm, min_pixels=mmu or None)
        accuracy = None
        if assess_polygons and recipe.get("polygons"):
            accuracy = classify.assess(
                result.classification,
                recipe["polygons"],
                label=recipe.get("label", "code"),
                layer=recipe.get("layer"),
                polygon_ids=lcm.metadata.report.get("validation_polygons"),
            )
        cid = collection or classify.LANDCOVER_COLLECTIONS[str(sensors)]
        classify.write_landcover(
            result, catalog, cid, model=lcm, accuracy=accuracy, sources=items, overwrite=overwrite
        )
    typer.echo(
        f"Wrote '{cid}' (classification, confidence, margin, entropy, probability) into {catalog}"
    )
    if accuracy is not None:
        typer.echo(accuracy.summary())


@landcover_app.command("assess")
def assess_cmd(
    catalog: CatalogArg,
    polygons: PolygonsOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the CSV/JSON reports.")],
    model: Annotated[
        Path | None, typer.Option(help="Keep only this model's validation polygons.")
    ] = None,
    collection: Annotated[str, typer.Option(help="Land-cover collection.")] = "landcover-optical",
    layer: LayerOpt = None,
    label: LabelOpt = "code",
    id_field: Annotated[str, typer.Option(help="Field identifying polygons.")] = "poly_id",
) -> None:
    """Accuracy of a written map: OA, kappa, per-class F1, confusion CSV, area-adjusted areas."""
    from mus_lab import catalog as cat
    from mus_lab import classify, cube

    with reporting_errors():
        items = cat.search(catalog, collections=collection)
        cmap = cube.load(items, ("classification",)).classification.isel(time=0)
        ids = None
        if model is not None:
            ids = classify.load_model(model).metadata.report.get("validation_polygons")
        report = classify.assess(
            cmap, polygons, label=label, layer=layer, id_field=id_field, polygon_ids=ids
        )
        paths = report.save(out)
    typer.echo(report.summary())
    typer.echo(f"Reports: {', '.join(str(p) for p in paths.values())}")
