"""METHODS.md section 5, vectors A-D, exactly (tolerance 1e-6)."""

from __future__ import annotations

import numpy as np
import pytest

from mus_lab import fusion
from mus_lab.fusion import Frame, FusionOptions, MassFunction

from .conftest import A_FUSED, A_FUSED_CONF, A_KEPT, grid

TOL = 1e-6


# --------------------------------------------------------------------------- vector A (IOTA²/OTB)


def test_vector_a_fused_labels_source_kept_and_confidence(vector_a):
    opt, sar, cm_opt, cm_sar, conf_opt, conf_sar = vector_a
    ds = fusion.fuse(
        {"optical": opt, "sar": sar},
        confusions=[cm_opt, cm_sar],
        confidences=[conf_opt, conf_sar],
    )
    np.testing.assert_array_equal(ds.fused_class.values, A_FUSED)
    np.testing.assert_array_equal(ds.agreement.values, A_KEPT)
    np.testing.assert_allclose(ds.source_confidence.values, A_FUSED_CONF, atol=TOL)


def test_vector_a_intermediate_conflict_and_belief_at_pixel_0_0(vector_a):
    opt, sar, cm_opt, cm_sar, *_ = vector_a
    ds = fusion.fuse([opt, sar], confusions=[cm_opt, cm_sar])
    assert abs(float(ds.conflict[0, 0]) - 0.071224) < TOL
    assert abs(float(ds.belief[0, 0]) - 0.316802) < TOL
    # The same numbers from the engine itself, masses from the precisions.
    frame = Frame(cm_opt.labels)
    p_sar, p_opt = cm_sar.precision[0], cm_opt.precision[1]  # SAR says 11, optical 12
    m_sar = MassFunction.from_dict(frame, {11: p_sar, frozenset(frame.classes) - {11}: 1 - p_sar})
    m_opt = MassFunction.from_dict(frame, {12: p_opt, frozenset(frame.classes) - {12}: 1 - p_opt})
    assert abs(float(fusion.conflict([m_sar, m_opt])) - 0.071224) < TOL
    assert abs(float(fusion.belief(fusion.combine([m_sar, m_opt]), 11)) - 0.316802) < TOL


def test_vector_a_through_mass_cubes_and_the_generic_engine(vector_a):
    opt, sar, cm_opt, cm_sar, *_ = vector_a
    masses = [fusion.masses_from_labels(opt, cm_opt), fusion.masses_from_labels(sar, cm_sar)]
    ds = fusion.fuse(masses, labels=[opt, sar])
    np.testing.assert_array_equal(ds.fused_class.values, A_FUSED)
    np.testing.assert_array_equal(ds.agreement.values, A_KEPT)
    assert abs(float(ds.conflict[0, 0]) - 0.071224) < TOL
    assert abs(float(ds.belief[0, 0]) - 0.316802) < TOL
    # confidence index = conjunctive (unnormalised) belief = (1 - K) Bel under Dempster
    np.testing.assert_allclose(
        ds.confidence.values, (1 - ds.conflict.values) * ds.belief.values, atol=TOL
    )


def test_vector_a_on_dask_chunks_is_the_same(vector_a):
    opt, sar, cm_opt, cm_sar, conf_opt, conf_sar = vector_a
    ds = fusion.fuse(
        [opt.chunk(2), sar.chunk(2)],
        confusions=[cm_opt, cm_sar],
        confidences=[conf_opt.chunk(2), conf_sar.chunk(2)],
    )
    assert ds.fused_class.chunks is not None
    np.testing.assert_array_equal(ds.fused_class.values, A_FUSED)
    np.testing.assert_allclose(ds.source_confidence.values, A_FUSED_CONF, atol=TOL)


def test_vector_a_with_land_cover_contract_confidences(vector_a):
    """uint8 0-100 confidences (255 = no data) as classify.predict writes them."""
    opt, sar, cm_opt, cm_sar, conf_opt, conf_sar = vector_a
    c_opt = grid(np.rint(conf_opt.values * 100), "uint8")
    c_sar = grid(np.rint(conf_sar.values * 100), "uint8")
    ds = fusion.fuse([opt, sar], confusions=[cm_opt, cm_sar], confidences=[c_opt, c_sar])
    np.testing.assert_allclose(
        ds.source_confidence.values, np.rint(np.array(A_FUSED_CONF) * 100) / 100, atol=TOL
    )


# --------------------------------------------------------------------------- vector B


def test_vector_b_dempster():
    frame = Frame((1, 2, 3, 4), ("a", "b", "c", "d"))
    m1 = MassFunction.from_dict(
        frame, {"a": 0.4, "b": 0.2, ("a", "d"): 0.1, ("a", "b", "c", "d"): 0.3}
    )
    m2 = MassFunction.from_dict(frame, {"b": 0.5, "c": 0.2, ("a", "c"): 0.3})
    assert abs(float(fusion.conflict([m1, m2])) - 0.45) < TOL
    m = fusion.combine([m1, m2], rule="dempster")
    expected = {"a": 0.2727273, "b": 0.4545455, "c": 0.1090909, "a|c": 0.1636364}
    got = m.to_dict(tol=1e-12)
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        assert abs(got[k] - v) < TOL, k


def test_vector_b_belief_plausibility_pignistic():
    frame = Frame((1, 2, 3, 4), ("a", "b", "c", "d"))
    m1 = MassFunction.from_dict(
        frame, {"a": 0.4, "b": 0.2, ("a", "d"): 0.1, ("a", "b", "c", "d"): 0.3}
    )
    assert abs(float(fusion.belief(m1, "a")) - 0.4) < TOL
    assert abs(float(fusion.belief(m1, ("a", "d"))) - 0.5) < TOL
    assert abs(float(fusion.plausibility(m1, "a")) - 0.8) < TOL
    assert abs(float(fusion.plausibility(m1, "b")) - 0.5) < TOL
    np.testing.assert_allclose(fusion.pignistic(m1), [0.525, 0.275, 0.075, 0.125], atol=TOL)


# --------------------------------------------------------------------------- vector C (Zadeh)


@pytest.fixture()
def zadeh():
    frame = Frame((1, 2, 3), ("M", "T", "C"))
    m1 = MassFunction.from_dict(frame, {"M": 0.99, "T": 0.01})
    m2 = MassFunction.from_dict(frame, {"C": 0.99, "T": 0.01})
    return frame, m1, m2


def test_vector_c_dempster(zadeh):
    _, m1, m2 = zadeh
    assert abs(float(fusion.conflict([m1, m2])) - 0.9999) < TOL
    m = fusion.combine([m1, m2], rule="dempster").to_dict(tol=1e-12)
    assert m.keys() == {"T"} and abs(m["T"] - 1) < TOL


def test_vector_c_yager(zadeh):
    _, m1, m2 = zadeh
    m = fusion.combine([m1, m2], rule="yager").to_dict(tol=1e-12)
    assert m.keys() == {"T", "*"}
    assert abs(m["T"] - 0.0001) < TOL and abs(m["*"] - 0.9999) < TOL


@pytest.mark.parametrize("rule", ["pcr5", "pcr6"])
def test_vector_c_pcr5(zadeh, rule):
    _, m1, m2 = zadeh
    m = fusion.combine([m1, m2], rule=rule).to_dict(tol=1e-12)
    assert abs(m["M"] - 0.499851) < TOL
    assert abs(m["C"] - 0.499851) < TOL
    assert abs(m["T"] - 0.000298) < TOL
    assert abs(sum(m.values()) - 1) < 1e-12


# --------------------------------------------------------------------------- vector D


@pytest.fixture()
def vector_d():
    frame = Frame((1, 2, 3), ("A", "B", "C"))
    optical = fusion.discount(MassFunction.from_dict(frame, {"A": 0.6, "B": 0.3, "C": 0.1}), 0.9)
    sar = fusion.discount(MassFunction.from_dict(frame, {"A": 0.2, "B": 0.7, "C": 0.1}), 0.7)
    return frame, optical, sar


def _close(m: MassFunction, expected: dict[str, float], tol: float = TOL) -> None:
    got = m.to_dict(tol=1e-12)
    assert got.keys() == expected.keys(), got
    for k, v in expected.items():
        assert abs(got[k] - v) < tol, (k, got[k], v)


def test_vector_d_discounting(vector_d):
    _, optical, sar = vector_d
    _close(optical, {"A": 0.54, "B": 0.27, "C": 0.09, "*": 0.10})
    _close(sar, {"A": 0.14, "B": 0.49, "C": 0.07, "*": 0.30})


def test_vector_d_dempster_bel_pl_betp_and_decision(vector_d):
    _, optical, sar = vector_d
    assert abs(float(fusion.conflict([optical, sar])) - 0.4158) < TOL
    m = fusion.combine([optical, sar], rule="dempster")
    _close(m, {"A": 0.430674, "B": 0.448990, "C": 0.068983, "*": 0.051352})
    assert abs(float(fusion.belief(m, "B")) - 0.448990) < TOL
    assert abs(float(fusion.plausibility(m, "B")) - 0.500342) < TOL
    assert abs(float(fusion.pignistic(m)[1]) - 0.466107) < TOL
    for by in ("bel", "pl", "betp"):
        assert int(fusion.decide(m, by=by)) == 2  # B


def test_vector_d_yager_and_pcr5(vector_d):
    _, optical, sar = vector_d
    # METHODS.md gives Yager to 4 decimals: {A .2516, B .2623, C .0403, frame .4458}
    _close(
        fusion.combine([optical, sar], rule="yager"),
        {"A": 0.2516, "B": 0.2623, "C": 0.0403, "*": 0.4458},
    )
    _close(
        fusion.combine([optical, sar], rule="pcr5"),
        {"A": 0.444362, "B": 0.465336, "C": 0.060302, "*": 0.03},
    )


def test_vector_d_from_probability_cubes_through_fuse():
    """Vector D end to end: probability cubes -> discounted masses -> fused product."""
    classes = {"class": [1, 2, 3], "class_name": ("class", ["A", "B", "C"])}
    p_opt = grid(np.array([0.6, 0.3, 0.1])[:, None, None] * np.ones((3, 2, 2)), "float32")
    p_sar = grid(np.array([0.2, 0.7, 0.1])[:, None, None] * np.ones((3, 2, 2)), "float32")
    p_opt, p_sar = (p.assign_coords(classes) for p in (p_opt, p_sar))
    discounted = FusionOptions(reliability=(0.9, 0.7))
    ds = fusion.fuse({"optical": p_opt.chunk(1), "sar": p_sar.chunk(1)}, options=discounted)
    np.testing.assert_array_equal(ds.fused_class.values, 2)
    np.testing.assert_allclose(ds.belief.values, 0.448990, atol=TOL)
    np.testing.assert_allclose(ds.plausibility.values, 0.500342, atol=TOL)
    np.testing.assert_allclose(ds.conflict.values, 0.4158, atol=TOL)
    np.testing.assert_allclose(ds.ignorance.values, 0.051352, atol=TOL)
    np.testing.assert_allclose(ds.confidence.values, 0.448990 * (1 - 0.4158), atol=TOL)
    np.testing.assert_array_equal(ds.agreement.values, 2)  # optical says A, SAR B: SAR kept
    yager = fusion.fuse([p_opt, p_sar], options=discounted.replace(rule="yager"))
    np.testing.assert_allclose(yager.ignorance.values, 0.4458, atol=1e-4)
    pcr = fusion.fuse([p_opt, p_sar], options=discounted.replace(rule="pcr5"))
    np.testing.assert_allclose(pcr.belief.values, 0.465336, atol=TOL)
    np.testing.assert_allclose(pcr.ignorance.values, 0.03, atol=TOL)
