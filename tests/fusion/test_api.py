"""One entry point: fuse() dispatches on its inputs; FusionOptions; the deprecated aliases."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pytest
import xarray as xr

from mus_lab import fusion
from mus_lab.classify import ConfusionMatrix
from mus_lab.errors import FusionError, UnknownRuleError
from mus_lab.fusion import FusionOptions

from .conftest import grid

CM = ConfusionMatrix((1, 2, 3), np.array([[80, 15, 5], [10, 85, 5], [3, 2, 95]]))


def _cube(rng: np.random.Generator, shape=(6, 5)) -> xr.DataArray:
    p = rng.dirichlet(np.full(3, 0.6), size=shape).transpose(2, 0, 1)
    return grid(p, "float32").assign_coords({"class": [1, 2, 3]})


@dataclass(frozen=True)
class Product:
    """Any object with the land-cover attributes (not fusion.LandCoverSource)."""

    name: str
    classification: xr.DataArray
    probability: xr.DataArray | None
    confusion: ConfusionMatrix | None
    legend: Mapping[int, str] = field(default_factory=dict)


def _products(rng: np.random.Generator) -> list[Product]:
    legend = {1: "crops", 2: "grassland", 3: "water"}
    out = []
    for name in ("optical", "radar"):
        p = _cube(rng)
        out.append(Product(name, fusion.labels_of(p), p, CM, legend))
    return out


def test_in_memory_products_are_fused_by_their_attributes():
    rng = np.random.default_rng(0)
    optical, radar = _products(rng)
    assert isinstance(optical, fusion.LandCoverLike)
    ds = fusion.fuse([optical, radar])
    same = fusion.fuse(
        {"optical": optical.probability, "radar": radar.probability},
        confusions=[CM, CM],
        options=FusionOptions(legend=optical.legend),
    )
    xr.testing.assert_identical(ds, same)
    assert ds.attrs["sources"] == "optical, radar" and ds.attrs["decision"] == "bel"
    assert "grassland" in ds.fused_class.attrs["classes"]
    labels = fusion.fuse([optical, radar], options=FusionOptions(masses="labels"))
    assert labels.attrs["decision"] == "otb" and "mass of belief" in labels.attrs["masses"]
    # a label-only product (no probabilities) joins through its class map
    label_only = Product("radar", radar.classification, None, CM)
    mixed = fusion.fuse([optical, label_only])
    assert mixed.attrs["masses"].startswith("mixed")
    with pytest.raises(FusionError, match="no probability cube"):
        fusion.fuse([optical, label_only], options=FusionOptions(masses="probabilities"))
    with pytest.raises(FusionError, match="needs its confusion matrix"):
        fusion.fuse([optical, Product("radar", radar.classification, None, None)])


def test_datasets_and_chunks_option():
    rng = np.random.default_rng(1)
    optical, radar = _products(rng)
    ds = fusion.fuse(
        [xr.Dataset({"probability": optical.probability}), radar.probability],
        confusions=[CM, CM],
        options=FusionOptions(chunks=3),
    )
    assert ds.fused_class.chunks == ((3, 3), (3, 2))
    plain = fusion.fuse([optical.probability, radar.probability], confusions=[CM, CM])
    xr.testing.assert_equal(ds.compute(), plain)


def test_output_masses_gives_the_combined_mass_function():
    rng = np.random.default_rng(2)
    cubes = [_cube(rng), _cube(rng)]
    out = fusion.fuse(cubes, options=FusionOptions(output="masses", reliability=0.9))
    assert list(out.data_vars) == ["mass"] and out["mass"].dims == ("focal", "y", "x")
    np.testing.assert_allclose(out["mass"].sum("focal"), 1.0, atol=1e-5)
    with pytest.raises(FusionError, match="output='product'"):
        fusion.fuse(cubes, options=FusionOptions(output="masses"), labels=cubes)


def test_bad_sources_and_options_say_what_to_do():
    rng = np.random.default_rng(3)
    p = _cube(rng)
    with pytest.raises(FusionError, match="two or more sources"):
        fusion.fuse(p)  # type: ignore[arg-type]
    with pytest.raises(FusionError, match="two or more"):
        fusion.fuse([p], confusions=[CM])
    with pytest.raises(FusionError, match="give a label map"):
        fusion.fuse([p, p.isel({"class": 0}, drop=True)], confusions=[CM, CM])
    with pytest.raises(FusionError, match="names must differ"):
        fusion.fuse([Product("a", fusion.labels_of(p), p, CM)] * 2)
    with pytest.raises(FusionError, match="one per source"):
        fusion.fuse([p, p], confusions=[CM])
    with pytest.raises(FusionError, match="decision='otb'"):
        fusion.fuse([p, p], confusions=[CM, CM], options=FusionOptions(decision="otb"))
    with pytest.raises(FusionError, match="decision='best'"):
        FusionOptions(decision="best")  # type: ignore[arg-type]
    with pytest.raises(FusionError, match="total_conflict"):
        FusionOptions(total_conflict="undecided")  # type: ignore[arg-type]
    with pytest.raises(FusionError, match="reliability"):
        FusionOptions(reliability=1.5)
    with pytest.raises(UnknownRuleError, match="murphy"):
        FusionOptions(rule="murphy")
    with pytest.raises(FusionError, match="3 values of reliability for 2"):
        fusion.fuse([p, p], options=FusionOptions(reliability=(0.9, 0.8, 0.7)))


def test_total_conflict_means_the_same_in_every_mode(vector_a):
    opt, sar, cm_opt, cm_sar, *_ = vector_a
    for mode in (FusionOptions(), FusionOptions(rule=fusion.Dempster())):
        assert mode.effective_total_conflict() == "vacuous"
    raising = FusionOptions(total_conflict="raise")
    assert raising.effective_total_conflict() == "raise"
    labels = fusion.fuse([opt, sar], confusions=[cm_opt, cm_sar], options=raising)
    masses = [fusion.masses_from_labels(opt, cm_opt), fusion.masses_from_labels(sar, cm_sar)]
    cubes = fusion.fuse(masses, options=raising)
    assert labels.attrs["total_conflict"] == cubes.attrs["total_conflict"] == "raise"


def test_deprecated_entry_points_warn_and_give_the_same_product(vector_a):
    opt, sar, cm_opt, cm_sar, conf_opt, conf_sar = vector_a
    new = fusion.fuse(
        {"optical": opt, "sar": sar},
        confusions=[cm_opt, cm_sar],
        confidences=[conf_opt, conf_sar],
    )
    with pytest.deprecated_call(match="fuse_labels"):
        old = fusion.fuse_labels(
            [opt, sar], [cm_opt, cm_sar], confidences=[conf_opt, conf_sar], names=["optical", "sar"]
        )
    xr.testing.assert_identical(new, old)
    with pytest.deprecated_call(match="fuse_maps"):
        old, own = fusion.fuse_maps([opt, sar], [cm_opt, cm_sar], names=["optical", "sar"])
    xr.testing.assert_identical(new.drop_vars("source_confidence"), old)
    assert own[0] is opt
    rng = np.random.default_rng(4)
    cubes = [_cube(rng), _cube(rng)]
    opts = FusionOptions(rule="yager", reliability=(0.9, 0.7))
    new = fusion.fuse(cubes, options=opts)
    with pytest.deprecated_call(match="fuse_probabilities"):
        old = fusion.fuse_probabilities(cubes, reliability=[0.9, 0.7], rule="yager")
    xr.testing.assert_identical(new, old)
    masses = [fusion.masses_from_probabilities(c, reliability=0.8) for c in cubes]
    with pytest.deprecated_call(match="fuse.*rule="):
        old = fusion.fuse(masses, rule="pcr6", names=["a", "b"])
    new = fusion.fuse({"a": masses[0], "b": masses[1]}, options=FusionOptions(rule="pcr6"))
    xr.testing.assert_identical(new, old)
    with pytest.deprecated_call(match="combine_cubes"):
        old = fusion.combine_cubes(masses, rule="pcr6")
    new = fusion.fuse(masses, options=FusionOptions(rule="pcr6", output="masses"))["mass"]
    xr.testing.assert_identical(new, old)
    with pytest.raises(TypeError, match="rules"):
        fusion.fuse(masses, rules="pcr6")
