"""Land-cover classification from ARD time series (IOTA²-style): samples by polygon, models,
lazy prediction with confidence, and accuracy assessment.

Flow: features (:func:`optical_features`, :func:`radar_features`, :func:`stack_features`,
:func:`feature_cube`, or the recipe :func:`mus_lab.recipes.features_from_catalog`; a user's own
GeoTIFFs: :func:`mus_lab.cube.open_series` then :func:`feature_cube`) -> samples from reference
polygons (:func:`extract_samples`) -> :func:`train` (random forest, TempCNN or L-TAE, split by
polygon; :func:`ensemble` averages their probabilities) -> :func:`predict` (lazy; class map,
confidence, margin, entropy, probabilities) -> :func:`assess`
(OA, kappa, per-class F1, IOTA²-layout confusion CSV, Olofsson area estimates) ->
:func:`write_landcover` (COGs + STAC). Design notes: docs/design/0004-landcover.md.

Examples
--------
>>> from mus_lab import classify, recipes
>>> feats, recipe, items = recipes.features_from_catalog(tiny.catalog_path, every_days=30)
>>> smp = classify.extract_samples(feats, tiny.polygons, layer="reference")
>>> model = classify.train(smp, "rf", params={"n_estimators": 10})
>>> model.metadata.recipe["sensors"], model.metadata.recipe["every_days"]
('optical', 30)
>>> result = classify.predict(feats, model)
>>> result["classification"].dtype
dtype('uint8')
"""

from mus_lab.classify._accuracy import (
    AccuracyReport,
    AreaEstimate,
    area_adjusted,
    assess,
    map_class_pixels,
)
from mus_lab.classify._ensemble import Ensemble
from mus_lab.classify._features import (
    IOTA2_OPTICAL,
    feature_cube,
    feature_names,
    optical_features,
    parse_feature_names,
    radar_features,
    stack_features,
)
from mus_lab.classify._inputs import region_map
from mus_lab.classify._model import (
    LandCoverModel,
    ModelMetadata,
    ensemble,
    evaluate_seeds,
    load_model,
    train,
)
from mus_lab.classify._models import (
    CLASSIFIERS,
    Classifier,
    RandomForest,
    classifier_class,
    make_classifier,
)
from mus_lab.classify._options import RECIPE_ATTR, SENSOR_SETS, FeatureOptions, recipe_of
from mus_lab.classify._predict import NODATA_CLASS, NODATA_SCORE, normalised_entropy, predict
from mus_lab.classify._samples import (
    Samples,
    balance,
    extract_samples,
    read_polygons,
    split_by_polygon,
)
from mus_lab.classify._sieve import sieve
from mus_lab.classify._write import LANDCOVER_COLLECTIONS, write_landcover
from mus_lab.publish import ConfusionMatrix, class_colors, stac_classes


def __getattr__(name: str) -> object:
    # imported lazily: the modules are light, tensorflow loads on use
    if name == "TempCNN":
        from mus_lab.classify._tempcnn import TempCNN

        return TempCNN
    if name == "LTAE":
        from mus_lab.classify._ltae import LTAE

        return LTAE
    raise AttributeError(f"module 'mus_lab.classify' has no attribute {name!r}")


__all__ = [
    "CLASSIFIERS",
    "IOTA2_OPTICAL",
    "LANDCOVER_COLLECTIONS",
    "LTAE",
    "NODATA_CLASS",
    "NODATA_SCORE",
    "RECIPE_ATTR",
    "SENSOR_SETS",
    "AccuracyReport",
    "AreaEstimate",
    "Classifier",
    "ConfusionMatrix",
    "Ensemble",
    "FeatureOptions",
    "LandCoverModel",
    "ModelMetadata",
    "RandomForest",
    "Samples",
    "TempCNN",
    "area_adjusted",
    "assess",
    "balance",
    "class_colors",
    "classifier_class",
    "ensemble",
    "evaluate_seeds",
    "extract_samples",
    "feature_cube",
    "feature_names",
    "load_model",
    "make_classifier",
    "map_class_pixels",
    "normalised_entropy",
    "optical_features",
    "parse_feature_names",
    "predict",
    "radar_features",
    "read_polygons",
    "recipe_of",
    "region_map",
    "sieve",
    "split_by_polygon",
    "stac_classes",
    "stack_features",
    "train",
    "write_landcover",
]
