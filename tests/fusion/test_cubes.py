"""Fusion on grids: laziness, chunk invariance, masses from classifier outputs, bad input."""

from __future__ import annotations

import contextlib
import itertools

import dask
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from mus_lab import fusion
from mus_lab.classify import ConfusionMatrix
from mus_lab.errors import (
    ConfusionMatrixError,
    FusionError,
    GridMismatchError,
    LegendMismatchError,
    TotalConflictError,
)
from mus_lab.fusion import Frame, FusionOptions, MassFunction

from .conftest import grid


@contextlib.contextmanager
def no_compute():
    def _get(*args, **kwargs):
        raise AssertionError("a stage function computed a dask graph")

    with dask.config.set(scheduler=_get):
        yield


def _probabilities(rng, classes=(1, 2, 3, 4), shape=(12, 10), names=None, chunks=None):
    p = rng.dirichlet(np.full(len(classes), 0.5), size=shape).transpose(2, 0, 1)
    da = grid(p, "float32").assign_coords({"class": list(classes)})
    if names:
        da = da.assign_coords(class_name=("class", list(names)))
    return da.chunk(chunks) if chunks else da


CM = ConfusionMatrix(
    (1, 2, 3, 4),
    np.array([[70, 25, 3, 2], [20, 75, 3, 2], [2, 3, 90, 5], [1, 1, 4, 94]]),
)


def test_fuse_is_lazy_and_keeps_the_grid():
    rng = np.random.default_rng(0)
    probs = [_probabilities(rng, chunks={"y": 5, "x": 5}) for _ in range(2)]
    with no_compute():
        ds = fusion.fuse({"optical": probs[0], "sar": probs[1]}, confusions=[CM, CM])
        masses = fusion.masses_from_probabilities(probs[0], confusion=CM)
    assert all(v.chunks is not None for v in ds.data_vars.values())
    assert ds.odc.geobox == probs[0].odc.geobox
    assert {str(v): ds[v].dtype for v in ds.data_vars} == {
        "fused_class": np.uint8,
        "belief": np.float32,
        "plausibility": np.float32,
        "conflict": np.float32,
        "ignorance": np.float32,
        "confidence": np.float32,
        "agreement": np.uint8,
    }
    assert ds.attrs["rule"] == "dempster" and "optical" in ds.attrs["sources"]
    assert masses.dims == ("focal", "y", "x") and masses.chunks is not None


@settings(max_examples=15, deadline=None)
@given(
    cy=st.integers(1, 12),
    cx=st.integers(1, 10),
    rule=st.sampled_from(["dempster", "yager", "pcr6", "disjunctive"]),
)
def test_chunking_never_changes_values(cy, cx, rule):
    rng = np.random.default_rng(1)
    probs = [_probabilities(rng) for _ in range(2)]
    probs[1][:, 2:4, 3:6] = np.nan
    opts = FusionOptions(rule=rule)
    whole = fusion.fuse(probs, confusions=[CM, CM], options=opts).compute()
    parts = fusion.fuse(
        [p.chunk({"y": cy, "x": cx}) for p in probs], confusions=[CM, CM], options=opts
    ).compute()
    xr.testing.assert_identical(whole, parts)


def test_masses_from_probabilities_compound_sets_and_discounting():
    rng = np.random.default_rng(2)
    prob = _probabilities(rng, names=["crops", "grassland", "forest", "water"])
    assert fusion.confused_pairs(CM, threshold=0.1) == ((1, 2),)  # (25 + 20) / 200
    m = fusion.masses_from_probabilities(prob, confusion=CM)
    assert list(m.focal_name.values) == [
        "crops",
        "grassland",
        "forest",
        "water",
        "crops|grassland",
        "*",
    ]
    np.testing.assert_allclose(m.sum("focal"), 1.0, atol=1e-6)
    assert (m >= 0).all()
    # Class 1: P(ref 1 | map 1) = 70/93 stays on {1}; P(ref 2 | map 1) = 20/93 moves to {1, 2}.
    t, focal, _ = fusion.transfer_matrix(Frame((1, 2, 3, 4)), confusion=CM)
    np.testing.assert_allclose(t[0, :2], [70 / 93, 0.0])
    np.testing.assert_allclose(t[0, focal.index(0b11)], 20 / 93)
    np.testing.assert_allclose(t.sum(axis=1), 1.0)
    none = fusion.masses_from_probabilities(prob, reliability=None, compound_threshold=None)
    np.testing.assert_allclose(none.values[:4], prob.values, atol=1e-6)


def test_nan_probabilities_are_no_data_and_one_source_missing_is_vacuous():
    rng = np.random.default_rng(3)
    a, b = _probabilities(rng), _probabilities(rng)
    a[:, 0, :] = np.nan
    b[:, 0, :3] = np.nan
    ds = fusion.fuse([a, b], confusions=[CM, CM]).compute()
    assert (ds.fused_class[0, :3] == 0).all() and np.isnan(ds.belief[0, :3]).all()
    assert (ds.fused_class[0, 3:] > 0).all() and not np.isnan(ds.belief[0, 3:]).any()
    assert (ds.agreement[0, 3:].isin([0, 2])).all()  # the first source is missing there
    valid = ds.fused_class > 0
    for v in ("belief", "plausibility", "conflict", "ignorance", "confidence"):
        assert not ds[v].where(valid).isnull().sum() - (~valid).sum()


def test_total_conflict_is_undecided_by_default_or_an_error():
    p1 = grid(np.array([1.0, 0.0])[:, None, None] * np.ones((2, 2, 2)), "float32")
    p2 = grid(np.array([0.0, 1.0])[:, None, None] * np.ones((2, 2, 2)), "float32")
    p1, p2 = (p.assign_coords({"class": [1, 2]}) for p in (p1, p2))
    ds = fusion.fuse(
        [p1, p2], options=FusionOptions(reliability=None, compound_threshold=None)
    ).compute()
    assert (ds.fused_class == 255).all()
    np.testing.assert_array_equal(ds.conflict, 1.0)
    np.testing.assert_array_equal(ds.ignorance, 1.0)
    np.testing.assert_array_equal(ds.belief, 0.0)
    assert not any(ds[v].isnull().any() for v in ds.data_vars)
    lazy = fusion.fuse(
        [p1.chunk(1), p2.chunk(1)],
        options=FusionOptions(reliability=None, total_conflict="raise"),
    )
    with pytest.raises(TotalConflictError, match="K = 1"):
        lazy.compute()
    # Discounting removes total conflict.
    ok = fusion.fuse([p1, p2], options=FusionOptions(reliability=(0.9, 0.6))).compute()
    assert (ok.fused_class == 1).all() and (ok.conflict < 1).all()


def test_maps_on_different_grids_are_refused(vector_a):
    opt, sar, cm_opt, cm_sar, *_ = vector_a
    shifted = sar.assign_coords(x=sar.x + 10).odc.assign_crs("EPSG:32631")
    with pytest.raises(GridMismatchError, match="different grids"):
        fusion.fuse([opt, shifted], confusions=[cm_opt, cm_sar])
    other_crs = sar.odc.assign_crs("EPSG:32632")
    with pytest.raises(GridMismatchError, match=r"EPSG:32631.* vs EPSG:32632.*reproject one"):
        fusion.fuse([opt, other_crs], confusions=[cm_opt, cm_sar])
    rng = np.random.default_rng(4)
    with pytest.raises(GridMismatchError):
        fusion.fuse([_probabilities(rng), _probabilities(rng, shape=(12, 11))], confusions=[CM, CM])


def test_maps_with_different_legends_are_refused(vector_a):
    opt, sar, cm_opt, cm_sar, *_ = vector_a
    fewer = ConfusionMatrix(cm_sar.labels[:-1], cm_sar.counts[:-1, :-1])
    with pytest.raises(LegendMismatchError, match=r"\[51\].*reorder"):
        fusion.fuse([opt, sar], confusions=[cm_opt, fewer])
    rng = np.random.default_rng(5)
    a, b = _probabilities(rng), _probabilities(rng, classes=(1, 2, 3, 5))
    with pytest.raises(LegendMismatchError, match=r"\[4\] only in source 1, \[5\] only"):
        fusion.fuse([a, b], options=FusionOptions(reliability=0.9))
    with pytest.raises(LegendMismatchError, match="confusion matrix"):
        fusion.masses_from_probabilities(b, confusion=CM)


def test_a_label_the_confusion_matrix_does_not_know_is_a_clear_error(vector_a):
    opt, sar, cm_opt, cm_sar, *_ = vector_a
    bad = sar.copy(data=np.where(sar.values == 43, 99, sar.values).astype(np.uint8))
    ds = fusion.fuse({"opt": opt.chunk(2), "sar": bad.chunk(2)}, confusions=[cm_opt, cm_sar])
    with pytest.raises(ConfusionMatrixError, match=r"sar holds labels \[99\]"):
        ds.compute()
    with pytest.raises(ConfusionMatrixError, match=r"\[99\]"):
        fusion.masses_from_labels(bad, cm_sar).compute()


def test_no_data_labels_follow_otb(vector_a):
    opt, sar, cm_opt, cm_sar, *_ = vector_a
    holes = sar.copy(data=np.where(np.eye(3, dtype=bool), 0, sar.values).astype(np.uint8))
    both = opt.copy(data=np.where(np.eye(3, dtype=bool)[::-1], 0, opt.values).astype(np.uint8))
    ds = fusion.fuse([both, holes], confusions=[cm_opt, cm_sar]).compute()
    # diagonal: SAR missing -> the optical label; centre: both missing -> 0 (no data)
    assert ds.fused_class.values[1, 1] == 0 and np.isnan(ds.belief.values[1, 1])
    assert ds.fused_class.values[0, 0] == opt.values[0, 0]
    assert ds.fused_class.values[2, 2] == opt.values[2, 2]
    assert ds.agreement.values[0, 0] == 3 and ds.agreement.values[1, 1] == 0


def test_otb_special_cases_read_from_its_source():
    d = fusion.otb_decision
    assert d([1, 2], [0.6, 0.4]) == 1
    assert d([1, 2], [0.5, 0.5]) == 255  # tie
    assert d([1, 2], [0.6, 1.0]) == 1  # one label among 0 < v < 1 wins before v = 1
    assert d([1, 2, 3], [0.6, 0.7, 1.0]) == 3  # v = 1 decides when two labels compete
    assert d([1, 2, 3, 3], [0.6, 0.7, 1.0, 1.0]) == 3
    assert d([1, 2, 3, 4], [0.6, 0.7, 1.0, 1.0]) == 255  # two certain labels disagree
    assert d([1, 2], [0.0, 0.0]) == 255  # every source left out
    assert d([1, 1], [0.0, 0.0]) == 0  # OTB counts zero-mass *labels*: no data
    assert d([0, 0], [0.5, 0.5]) == 0
    assert d([1, 2], [0.0, 0.3]) == 2  # a zero-mass source is ignored
    # two sources for 1 at 0.6 join to 0.36 / (0.36 + 0.16) = 0.692: beats 0.65, not 0.7
    assert d([1, 1, 2], [0.6, 0.6, 0.65]) == 1
    assert d([1, 1, 2], [0.6, 0.6, 0.7]) == 2


@settings(max_examples=30, deadline=None)
@given(
    v=st.lists(st.floats(0.01, 0.99), min_size=12, max_size=12),
    labels=st.lists(st.integers(1, 6), min_size=2, max_size=3),
)
def test_otb_decision_is_max_belief_of_exact_dempster(v, labels):
    """With masses in (0, 1) and at least two classes unnamed, OTB = exact Dempster max Bel."""
    if len(set(labels)) > 4:
        return
    frame = Frame(tuple(range(1, 7)))
    values = np.array(v[:6])  # one mass per class, shared by the sources
    masses = [
        MassFunction.from_dict(
            frame, {lab: values[lab - 1], frozenset(frame.classes) - {lab}: 1 - values[lab - 1]}
        )
        for lab in labels
    ]
    exact = int(fusion.decide(fusion.combine(masses), by="bel"))
    assert fusion.otb_decision(labels, [values[lab - 1] for lab in labels]) == exact


def test_label_table_covers_every_combination():
    frame = Frame((1, 2, 3))
    values = np.array([[0.8, 0.6, 0.9], [0.7, 0.95, 0.5]])
    table = fusion.label_table(values, frame)
    assert table["fused_class"].shape == (16,)
    assert table["fused_class"][15] == 0  # (no data, no data)
    for i, j in itertools.product(range(3), range(3)):
        t = i + 4 * j
        if i == j:
            assert table["fused_class"][t] == frame.classes[i] and table["agreement"][t] == 1


def test_output_masses_is_a_normalised_mass_cube():
    rng = np.random.default_rng(6)
    a = fusion.masses_from_probabilities(_probabilities(rng, chunks=4), confusion=CM)
    b = fusion.masses_from_probabilities(_probabilities(rng, chunks=4), reliability=0.8)
    with no_compute():
        m = fusion.fuse([a, b], options=FusionOptions(rule="pcr6", output="masses"))["mass"]
    assert m.dims == ("focal", "y", "x") and "crops" not in m.focal_name.values
    np.testing.assert_allclose(m.sum("focal"), 1.0, atol=1e-5)
    frame = fusion.frame_of(m)
    assert frame.classes == (1, 2, 3, 4)
    with pytest.raises(FusionError, match="two or more"):
        fusion.fuse([a])


def test_mass_cube_wraps_in_memory_masses():
    frame = Frame((1, 2))
    like = grid(np.zeros((2, 3)))
    m = MassFunction.from_dict(frame, {1: np.full((2, 3), 0.7), (1, 2): np.full((2, 3), 0.3)})
    cube = fusion.mass_cube(m, like)
    ds = fusion.fuse([cube, cube])
    np.testing.assert_allclose(ds.belief, 0.91, atol=1e-6)
    assert (ds.agreement == 1).all()


def test_label_fusion_and_mass_cubes_are_lazy(vector_a):
    opt, sar, cm_opt, cm_sar, conf_opt, conf_sar = vector_a
    with no_compute():
        ds = fusion.fuse(
            [opt.chunk(2), sar.chunk(2)],
            confusions=[cm_opt, cm_sar],
            confidences=[conf_opt, conf_sar],
        )
        masses = [
            fusion.masses_from_labels(opt.chunk(2), cm_opt),
            fusion.masses_from_labels(sar.chunk(2), cm_sar),
        ]
        fused = fusion.fuse(masses, options=FusionOptions(rule="pcr6"))
        again = fusion.fuse(masses, options=FusionOptions(rule="pcr6"))
    assert all(v.chunks is not None for v in [*ds.data_vars.values(), *fused.data_vars.values()])
    assert fused.fused_class.data.name == again.fused_class.data.name  # deterministic graphs
