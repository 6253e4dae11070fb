"""Accuracy: Olofsson et al. (2014) worked example, assessment from samples or polygons, CSVs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from mus_lab.classify import (
    AccuracyReport,
    ConfusionMatrix,
    area_adjusted,
    assess,
    extract_samples,
    feature_cube,
    map_class_pixels,
    split_by_polygon,
)
from mus_lab.errors import ConfusionMatrixError, SamplesError

# Olofsson et al. (2014), Remote Sensing of Environment 148, section 5 example: map classes
# deforestation, forest gain, stable forest, stable non-forest; 30 m pixels (0.09 ha).
# Sample counts with rows = MAP class, columns = reference (the paper's layout).
OLOFSSON_SAMPLE = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
OLOFSSON_MAP_PIXELS = {1: 200_000, 2: 150_000, 3: 3_200_000, 4: 6_450_000}


def test_olofsson_2014_worked_example() -> None:
    # ConfusionMatrix rows are the reference (IOTA² layout): transpose the paper's matrix.
    cm = ConfusionMatrix((1, 2, 3, 4), OLOFSSON_SAMPLE.T)
    est = area_adjusted(cm, {c: n * 0.09 for c, n in OLOFSSON_MAP_PIXELS.items()})
    t = est.table
    # Published: areas (ha) with 95 % intervals.
    np.testing.assert_allclose(t["area"], [21_158, 11_686, 285_770, 581_386], atol=1.0)
    np.testing.assert_allclose(t["area_ci"], [6_158, 3_756, 15_510, 16_282], atol=1.0)
    # Published (2 decimals): overall 0.95 +/- 0.02, user's and producer's of deforestation.
    assert round(est.overall, 2) == 0.95 and round(est.overall_ci, 2) == 0.02
    assert round(t.loc[1, "users"], 2) == 0.88 and round(t.loc[1, "users_ci"], 2) == 0.07
    assert round(t.loc[1, "producers"], 2) == 0.75 and round(t.loc[1, "producers_ci"], 2) == 0.21
    # Hand computation (eq. 2-7) to 1e-6: p_.1 = 0.02*66/75 + 0.32*1/165 + 0.645*2/325.
    p1 = 0.02 * 66 / 75 + 0.32 / 165 + 0.645 * 2 / 325
    assert t.loc[1, "area"] == pytest.approx(p1 * 900_000, abs=1e-6)
    assert est.overall == pytest.approx(
        0.02 * 66 / 75 + 0.015 * 55 / 75 + 0.32 * 153 / 165 + 0.645 * 313 / 325, abs=1e-9
    )
    se_users2 = np.sqrt((55 / 75) * (20 / 75) / 74)
    assert t.loc[2, "users_ci"] == pytest.approx(1.959963984540054 * se_users2, abs=1e-9)
    assert t["area"].sum() == pytest.approx(900_000, abs=1e-6)


def test_area_adjusted_needs_samples_in_every_mapped_class() -> None:
    cm = ConfusionMatrix((1, 2), np.array([[5, 0], [1, 0]]))  # nothing mapped as 2
    with pytest.raises(ConfusionMatrixError, match="no validation sample"):
        area_adjusted(cm, {1: 10.0, 2: 5.0})


def _map_from_truth(truth: np.ndarray, template: xr.DataArray) -> xr.DataArray:
    return xr.DataArray(truth, dims=("y", "x"), coords=template.isel(feature=0, drop=True).coords)


def test_assess_from_polygons_and_from_samples_agree(problem, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ds, truth, polys = problem
    fc = feature_cube(ds)
    produced = truth.copy()
    produced[2:5, 2:14] = 2  # 3 rows of a crops polygon mapped as forest (36 pixels)
    produced[0, :] = 0  # a no-data row, outside the polygons
    cmap = _map_from_truth(produced, fc).chunk({"y": 16, "x": 16})
    rep = assess(cmap, polys)
    assert rep.confusion.labels == (1, 2, 3)
    np.testing.assert_array_equal(
        rep.confusion.counts, [[288 - 36, 36, 0], [0, 288, 0], [0, 0, 288]]
    )
    assert rep.overall_accuracy == pytest.approx(1 - 36 / 864)
    assert rep.per_class.loc[1, "recall"] == pytest.approx(252 / 288)
    assert rep.per_class.loc[2, "precision"] == pytest.approx(288 / 324)
    assert rep.macro_f1 == pytest.approx(rep.per_class["f1"].mean())
    assert rep.areas is not None and map_class_pixels(cmap)[2] == 16 * 48 - 16 + 36
    _, val = split_by_polygon(extract_samples(fc, polys), seed=0)
    from_samples = assess(cmap, val)
    from_polys = assess(cmap, polys, polygon_ids=np.unique(val.polygon))
    np.testing.assert_array_equal(from_samples.confusion.counts, from_polys.confusion.counts)
    paths = rep.save(tmp_path / "acc")
    lines = paths["confusion"].read_text().splitlines()
    assert lines[0] == "#Reference labels (rows):1,2,3"
    assert lines[1] == "#Produced labels (columns):1,2,3"
    assert lines[2] == "252,36,0"
    assert ConfusionMatrix.from_csv(paths["confusion"]).counts.sum() == 864
    doc = json.loads(paths["report"].read_text())
    assert doc["overall_accuracy"] == pytest.approx(rep.overall_accuracy, abs=1e-6)
    assert "area_adjusted" in doc and (tmp_path / "acc" / "areas.csv").exists()


def test_assess_with_nothing_mapped_is_an_error(problem) -> None:  # type: ignore[no-untyped-def]
    ds, truth, polys = problem
    empty = _map_from_truth(np.zeros_like(truth), feature_cube(ds))
    with pytest.raises(SamplesError, match="mapped pixel"):
        assess(empty, polys)


def test_report_from_confusion_matches_the_matrix() -> None:
    cm = ConfusionMatrix((1, 2), np.array([[8, 2], [1, 9]]))
    rep = AccuracyReport.from_confusion(cm, {1: "a"})
    assert rep.class_names == {1: "a", 2: "2"}
    assert rep.kappa == pytest.approx(cm.kappa)
    assert "OA 0.850" in rep.summary()
