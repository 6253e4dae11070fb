"""Evidence engine: invariants (hypothesis), rules as plug-ins, discounting, decisions, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mus_lab import fusion
from mus_lab.errors import (
    FusionError,
    MassFunctionError,
    TotalConflictError,
    UnknownRuleError,
)
from mus_lab.fusion import Frame, MassFunction
from mus_lab.fusion._engine import fuse_arrays

RULES = ("dempster", "conjunctive", "yager", "disjunctive", "pcr5", "pcr6")
NEUTRAL_VACUOUS = ("dempster", "conjunctive", "yager", "pcr5", "pcr6")


@st.composite
def mass_functions(draw, n_classes=None, pixels=3, contains=0):
    """Random mass functions over pixels; focal sets all contain the bits of ``contains``."""
    n = n_classes or draw(st.integers(2, 5))
    frame = Frame(tuple(range(1, n + 1)))
    pool = [m for m in range(1, frame.omega + 1) if m & contains == contains]
    focal = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=6, unique=True))
    raw = np.array(
        draw(
            st.lists(
                st.lists(st.floats(0.01, 1.0), min_size=pixels, max_size=pixels),
                min_size=len(focal),
                max_size=len(focal),
            )
        )
    )
    return MassFunction(frame, tuple(focal), raw / raw.sum(axis=0))


def _as_dict(m: MassFunction) -> dict[int, np.ndarray]:
    return {f: m.values[k] for k, f in enumerate(m.focal)}


def _same(a: MassFunction, b: MassFunction, tol: float = 1e-9) -> None:
    da, db = _as_dict(a), _as_dict(b)
    for f in set(da) | set(db):
        np.testing.assert_allclose(
            da.get(f, np.zeros(a.shape)), db.get(f, np.zeros(b.shape)), atol=tol
        )


@st.composite
def pairs(draw, contains=0):
    n = draw(st.integers(2, 5))
    return draw(mass_functions(n, contains=contains)), draw(mass_functions(n, contains=contains))


@settings(max_examples=40, deadline=None)
@given(pair=pairs(), rule=st.sampled_from(RULES))
def test_masses_stay_normalised_and_non_negative(pair, rule):
    m1, m2 = pair
    k = fusion.conflict([m1, m2])
    if rule == "dempster" and (k > 1 - 1e-9).any():
        return
    m = fusion.combine([m1, m2], rule=rule)
    assert (m.values >= -1e-12).all()
    np.testing.assert_allclose(m.values.sum(axis=0), 1.0, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(pair=pairs(), rule=st.sampled_from(RULES))
def test_combination_is_commutative(pair, rule):
    m1, m2 = pair
    _same(fusion.combine([m1, m2], rule=rule), fusion.combine([m2, m1], rule=rule))


@settings(max_examples=40, deadline=None)
@given(m=mass_functions(), rule=st.sampled_from(NEUTRAL_VACUOUS))
def test_combining_with_the_vacuous_mass_returns_the_input(m, rule):
    vac = MassFunction.vacuous(m.frame, m.shape)
    _same(fusion.combine([m, vac], rule=rule), m)
    _same(fusion.combine([vac, m], rule=rule), m)


@settings(max_examples=25, deadline=None)
@given(m=mass_functions())
def test_vacuous_mass_absorbs_under_the_disjunctive_rule(m):
    vac = MassFunction.vacuous(m.frame, m.shape)
    _same(fusion.combine([m, vac], rule="disjunctive"), vac)


@settings(max_examples=40, deadline=None)
@given(pair=pairs(contains=1))
def test_dempster_and_yager_agree_without_conflict(pair):
    """All focal sets share class 1, so no product is empty: K = 0."""
    m1, m2 = pair
    np.testing.assert_allclose(fusion.conflict([m1, m2]), 0.0, atol=1e-12)
    _same(fusion.combine([m1, m2], rule="dempster"), fusion.combine([m1, m2], rule="yager"))


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_dempster_is_associative_over_three_sources(data):
    n = data.draw(st.integers(2, 4))
    ms = [data.draw(mass_functions(n, contains=1)) for _ in range(3)]
    both = fusion.combine([fusion.combine(ms[:2]), ms[2]])
    _same(fusion.combine(ms), both)


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_pcr6_over_three_sources_stays_normalised(data):
    n = data.draw(st.integers(2, 4))
    ms = [data.draw(mass_functions(n)) for _ in range(3)]
    m = fusion.combine(ms, rule="pcr6")
    np.testing.assert_allclose(m.values.sum(axis=0), 1.0, atol=1e-9)
    assert (m.values >= 0).all()


# --------------------------------------------------------------------------- fast == generic


class _Wrapped:
    """A plug-in that delegates to a built-in rule: forces the generic (materialised) path."""

    def __init__(self, rule):
        self.rule, self.name = rule, f"wrapped-{rule.name}"

    def focal_sets(self, focal, omega):
        return self.rule.focal_sets(focal, omega)

    def combine(self, masses, focal, omega):
        return self.rule.combine(masses, focal, omega)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("by", ["bel", "pl", "betp"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_source_kernel_equals_the_generic_path(rule, by, dtype):
    """float64 inputs: float64 arithmetic, identical to 1e-9; float32 cubes are combined in
    float32 (sums of up to 121 products: a few 1e-6 relative)."""
    rng = np.random.default_rng(7)
    frame = Frame(tuple(range(1, 9)))
    fa = (*(1 << i for i in range(8)), 0b11, 0b110000, frame.omega)
    fb = (*(1 << i for i in range(8)), 0b1100, 0b110000, frame.omega)
    n = 3000

    def rnd(f):
        x = rng.random((len(f), n)) ** 4
        return (x / x.sum(axis=0)).astype(dtype)

    a, b = rnd(fa), rnd(fb)
    a[:, :7] = np.nan  # one source missing: vacuous there
    b[:, 3:11] = np.nan  # both missing on 3..6: no data
    a[2, 2990:2995] = np.nan  # a block where one source is copied, the other read in place
    r = fusion.get_rule(rule)
    fast = fuse_arrays([a, b], [fa, fb], frame, rule=r, by=by)
    slow = fuse_arrays([a, b], [fa, fb], frame, rule=_Wrapped(r), by=by)
    tol = {"rtol": 3e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 0, "atol": 1e-9}
    same_class = fast["fused_class"] == slow["fused_class"]
    assert same_class.mean() > 0.999  # float32 may split a near-tie differently
    for key in fast:
        np.testing.assert_allclose(
            fast[key][same_class], slow[key][same_class], equal_nan=True, err_msg=key, **tol
        )
    assert (fast["fused_class"][3:7] == 0).all() and np.isnan(fast["belief"][3:7]).all()
    assert not np.isnan(fast["belief"][11:]).any()


# --------------------------------------------------------------------------- plug-ins


class _Average:
    """Averaging rule: the mean of the masses over the union of the focal sets."""

    name = "test-average"

    def focal_sets(self, focal, omega):
        return tuple(sorted({m for f in focal for m in f} | {omega}))

    def combine(self, masses, focal, omega):
        out_f = self.focal_sets(focal, omega)
        out = np.zeros((len(out_f), masses[0].shape[1]))
        for m, f in zip(masses, focal, strict=True):
            for k, s in enumerate(f):
                out[out_f.index(s)] += m[k] / len(masses)
        return out


def test_a_registered_plug_in_rule_is_used_by_name():
    rule = fusion.register_rule(_Average(), overwrite=True)
    assert "test-average" in fusion.available_rules()
    frame = Frame((1, 2, 3))
    m1 = MassFunction.from_dict(frame, {1: 0.8, (1, 2, 3): 0.2})
    m2 = MassFunction.from_dict(frame, {2: 0.6, (1, 2, 3): 0.4})
    m = fusion.combine([m1, m2], rule="test-average")
    assert m.to_dict() == pytest.approx({"1": 0.4, "2": 0.3, "*": 0.3})
    assert isinstance(rule, fusion.CombinationRule)
    with pytest.raises(FusionError, match="overwrite=True"):
        fusion.register_rule(_Average())
    with pytest.raises(FusionError, match="not a combination rule"):
        fusion.register_rule(object())  # type: ignore[arg-type]


def test_unknown_rule_lists_the_known_ones():
    frame = Frame((1, 2))
    m = MassFunction.vacuous(frame)
    with pytest.raises(UnknownRuleError, match=r"murphy.*dempster"):
        fusion.combine([m, m], rule="murphy")


def test_pcr5_refuses_three_sources_and_points_to_pcr6():
    frame = Frame((1, 2))
    m = MassFunction.from_dict(frame, {1: 0.5, 2: 0.5})
    with pytest.raises(FusionError, match="pcr6"):
        fusion.combine([m, m, m], rule="pcr5")


# --------------------------------------------------------------------------- discounting, decisions


def test_discount_per_class_from_a_confusion_matrix():
    from mus_lab.classify import ConfusionMatrix

    cm = ConfusionMatrix((1, 2, 3), np.array([[8, 2, 0], [2, 6, 0], [0, 0, 10]]))
    rel = fusion.reliability_from_confusion(cm, [1, 2, 3, (1, 2)])
    assert rel[frozenset({1})] == pytest.approx(0.8)  # precision of 1: 8 / (8 + 2)
    assert rel[frozenset({2})] == pytest.approx(0.75)
    assert rel[frozenset({1, 2})] == pytest.approx(1.0)  # the pair is never confused with 3
    frame = Frame((1, 2, 3))
    m = MassFunction.from_dict(frame, {1: 0.5, 2: 0.3, (1, 2): 0.2})
    d = fusion.discount(m, rel)
    assert d.to_dict() == pytest.approx({"1": 0.4, "2": 0.225, "1|2": 0.2, "*": 0.175})
    with pytest.raises(MassFunctionError, match=r"\[0, 1\]"):
        fusion.discount(m, 1.5)


def test_decisions_ties_are_undecided_and_nan_is_no_data():
    frame = Frame((1, 2, 3))
    m = MassFunction.from_dict(
        frame,
        {1: [0.4, 0.5, 0.2], 2: [0.4, 0.3, 0.2], (1, 2, 3): [0.2, 0.2, 0.6]},
    )
    np.testing.assert_array_equal(fusion.decide(m, by="bel"), [255, 1, 255])
    nan = MassFunction(frame, m.focal, np.where([True, False, False], np.nan, m.values))
    assert fusion.decide(nan)[0] == 0


def test_malformed_masses_are_clear_errors():
    frame = Frame((1, 2))
    with pytest.raises(MassFunctionError, match="sum to"):
        MassFunction.from_dict(frame, {1: 0.5, 2: 0.2})
    with pytest.raises(MassFunctionError, match="Negative"):
        MassFunction.from_dict(frame, {1: 1.5, 2: -0.5})
    with pytest.raises(MassFunctionError, match="not in the frame"):
        MassFunction.from_dict(frame, {7: 1.0})
    with pytest.raises(MassFunctionError, match="1-254"):
        Frame((0, 1))
    other = MassFunction.vacuous(Frame((1, 3)))
    with pytest.raises(MassFunctionError, match="different frames"):
        fusion.combine([MassFunction.vacuous(frame), other])


# --------------------------------------------------------------------------- total conflict


def test_total_conflict_raises_or_falls_back_to_vacuous():
    frame = Frame((1, 2))
    m1 = MassFunction.from_dict(frame, {1: [1.0, 0.7], (1, 2): [0.0, 0.3]})
    m2 = MassFunction.from_dict(frame, {2: [1.0, 1.0]})
    with pytest.raises(TotalConflictError, match=r"K = 1.*1 of 2 pixels"):
        fusion.combine([m1, m2], rule=fusion.Dempster(total_conflict="raise"))
    m = fusion.combine([m1, m2])  # default: vacuous where K = 1
    assert m.to_dict((0,)) == {"*": 1.0}
    assert m.to_dict((1,), tol=1e-12) == pytest.approx({"2": 1.0})
    assert fusion.decide(m)[0] == 255
    assert not np.isnan(m.values).any()


@pytest.mark.parametrize(
    "module",
    [
        "mus_lab.fusion",
        "mus_lab.fusion._api",
        "mus_lab.fusion._engine",
        "mus_lab.fusion._frame",
        "mus_lab.fusion._fuse",
        "mus_lab.fusion._masses",
        "mus_lab.fusion._options",
        "mus_lab.fusion._probabilities",
        "mus_lab.fusion._rules",
    ],
)
def test_docstring_examples_run(module):
    """Also run by ``pytest --doctest-modules mus_lab`` (namespace of the repo's conftest)."""
    import doctest
    import importlib

    import xarray as xr

    failures, tried = doctest.testmod(
        importlib.import_module(module),
        extraglobs={"np": np, "xr": xr},
        optionflags=doctest.ELLIPSIS,
    )
    assert tried > 0 and failures == 0


# --------------------------------------------------------------------------- generated kernels


@pytest.fixture(scope="module")
def kernel_cache(tmp_path_factory):
    from mus_lab.fusion import _codegen

    _codegen.generated_fuse2.cache_clear()  # generate (or load) into this folder
    return tmp_path_factory.mktemp("kernels")


def _odd_pixels(a: np.ndarray, b: np.ndarray, frame: Frame, fa: tuple, fb: tuple) -> None:
    """No data in one or both sources, exact ties, and total conflict, spread over blocks."""
    n = a.shape[1]
    a[:, 5:9] = np.nan  # first source missing: vacuous there
    b[:, 7:12] = np.nan  # both missing on 7, 8: no data
    b[3, n - 600 : n - 590] = np.nan  # one NaN plane only: the whole pixel is missing
    tie = np.arange(1000, n, 977)
    a[:, tie], b[:, tie] = 0, 0
    a[fa.index(1), tie], a[fa.index(2), tie] = 0.5, 0.5
    b[fb.index(frame.omega), tie] = 1.0
    clash = np.arange(1500, n, 1931)
    a[:, clash], b[:, clash] = 0, 0
    a[fa.index(1), clash], b[fb.index(2), clash] = 1.0, 1.0


@pytest.mark.parametrize(
    ("rule", "n_cls", "dtype"),
    [
        ("dempster", 6, "float32"),
        (fusion.Dempster(total_conflict="raise"), 6, "float32"),
        ("yager", 3, "float64"),
        ("conjunctive", 5, "float32"),
    ],
)
def test_generated_kernel_is_bit_for_bit_the_general_one(
    rule, n_cls, dtype, monkeypatch, kernel_cache
):
    """The per-layout generated kernel (chunks of 512 x 512 px and more) gives exactly the
    general kernel's bytes, odd pixels included; its module is written to the cache folder."""
    from mus_lab.fusion import _codegen

    monkeypatch.setenv("MUS_LAB_KERNEL_CACHE", str(kernel_cache))
    rng = np.random.default_rng(n_cls)
    frame = Frame(tuple(range(1, n_cls + 1)))
    fa = (*(1 << i for i in range(n_cls)), 0b11, frame.omega)
    fb = (*(1 << i for i in range(n_cls)), 0b110, frame.omega)
    n = _codegen.MIN_PIXELS + 333  # blocks of 512 and a partial last block

    def rnd(f):
        x = rng.gamma(0.4, 1.0, (len(f), n))
        return (x / x.sum(axis=0)).astype(dtype)

    a, b = rnd(fa), rnd(fb)
    _odd_pixels(a, b, frame, fa, fb)
    r = fusion.get_rule(rule)
    labels = rng.integers(0, n_cls + 1, (2, n)).astype(np.uint8)
    if isinstance(rule, str):
        new = fuse_arrays([a, b], [fa, fb], frame, rule=r, labels=labels)
    else:  # total_conflict="raise": the generated kernel counts K = 1 as the general one does
        with pytest.raises(TotalConflictError) as err:
            fuse_arrays([a, b], [fa, fb], frame, rule=r, labels=labels)
    assert list(kernel_cache.glob("mus_lab_fuse2_*.py")), "the generated module is on disk"
    monkeypatch.setattr(_codegen, "MIN_PIXELS", n + 1)  # the general kernel
    if not isinstance(rule, str):
        with pytest.raises(TotalConflictError) as ref:
            fuse_arrays([a, b], [fa, fb], frame, rule=r, labels=labels)
        assert str(err.value) == str(ref.value)
        return
    old = fuse_arrays([a, b], [fa, fb], frame, rule=r, labels=labels)
    assert set(new) == set(old)
    for key in old:
        assert new[key].dtype == old[key].dtype, key
        assert new[key].tobytes() == old[key].tobytes(), key
    assert (new["fused_class"][7:9] == 0).all() and (new["fused_class"][1000::977] == 255).all()
    if r.name == "dempster":
        assert (new["ignorance"][1500::1931] == 1).all()  # total conflict: vacuous, undecided
