"""The explicit stage path and the recipe path give the same land-cover map, and
``mus-lab landcover predict`` replays a model trained either way."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mus_lab import ard, classify, recipes
from mus_lab import catalog as cat
from mus_lab.cli import app
from mus_lab.errors import FeatureMismatchError

PERIOD = "2022-01-01/2022-06-30"
RF = {"n_estimators": 15}


@pytest.fixture(scope="module")
def workspace(scenario, tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("recipes") / "sc"
    shutil.copytree(scenario.root, root)
    return root / scenario.catalog_path.relative_to(
        scenario.root
    ), root / scenario.polygons.relative_to(scenario.root)


@pytest.fixture(scope="module")
def two_paths(workspace):  # type: ignore[no-untyped-def]
    catalog, polygons = workspace
    # 1. the stages, one by one, as a researcher writes them in a notebook
    found = cat.search(catalog, collections="sentinel-2-l2a", datetime=PERIOD)
    s2 = ard.prepare_s2(found)
    ts = ard.s2_time_series(s2, every_days=20)
    explicit = classify.feature_cube(classify.optical_features(ts))
    # 2. the recipe
    recipe_feats, recipe, _ = recipes.features_from_catalog(catalog, every_days=20, datetime=PERIOD)
    models = {}
    for name, feats in (("explicit", explicit), ("recipe", recipe_feats)):
        smp = classify.extract_samples(feats, polygons, layer="reference")
        models[name] = classify.train(smp, "rf", params=RF, seed=3)
    return catalog, explicit, recipe_feats, recipe, models


def test_both_paths_record_a_replayable_recipe(two_paths) -> None:  # type: ignore[no-untyped-def]
    catalog, explicit, recipe_feats, recipe, models = two_paths
    for model in models.values():
        r = model.metadata.recipe
        assert r["sensors"] == "optical" and r["every_days"] == 20
        assert r["optical_source"] == "sentinel-2-l2a"
        assert Path(r["catalog"]) == Path(catalog)
        assert r["grid"] == recipe["grid"]
        assert r["polygons"].endswith(".gpkg") and r["layer"] == "reference"
    assert list(explicit["feature"].values) == list(recipe_feats["feature"].values)
    np.testing.assert_allclose(explicit.values, recipe_feats.values, equal_nan=True)


def test_explicit_and_recipe_paths_give_the_same_map(two_paths) -> None:  # type: ignore[no-untyped-def]
    _, explicit, recipe_feats, _, models = two_paths
    a = classify.predict(explicit, models["explicit"]).classification.values
    b = classify.predict(recipe_feats, models["recipe"]).classification.values
    replayed, _, _ = recipes.replay_features(models["explicit"].metadata.recipe)
    c = classify.predict(replayed, models["explicit"]).classification.values
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert (a > 0).mean() > 0.9


def test_cli_predict_accepts_a_model_from_either_path(two_paths, tmp_path) -> None:  # type: ignore[no-untyped-def]
    catalog, explicit, _, _, models = two_paths
    expected = classify.predict(explicit, models["explicit"]).classification.values
    runner = CliRunner()
    for name, model in models.items():
        folder = tmp_path / name
        model.save(folder)
        coll = f"landcover-{name}"
        result = runner.invoke(
            app, ["landcover", "predict", str(catalog), "-m", str(folder), "--collection", coll]
        )
        assert result.exit_code == 0, result.output
        from mus_lab.publish import LandCoverProduct

        product = LandCoverProduct.from_catalog(catalog, coll)
        np.testing.assert_array_equal(product.classification.values, expected)
        assert product.model["recipe"]["grid"] == models[name].metadata.recipe["grid"]


def test_a_model_without_recipe_is_refused_with_a_way_out(two_paths, tmp_path) -> None:  # type: ignore[no-untyped-def]
    catalog = two_paths[0]
    with pytest.raises(FeatureMismatchError, match=r"classify\.predict"):
        recipes.replay_features({})
    result = CliRunner().invoke(
        app, ["landcover", "predict", str(catalog), "-m", str(tmp_path / "nope")]
    )
    assert result.exit_code != 0 and "Traceback" not in result.output
