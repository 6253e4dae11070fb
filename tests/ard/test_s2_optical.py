"""Sentinel-2 optical ARD pieces: metadata offsets, masks, quality bits, features."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from mus_lab.ard import (
    QUALITY_BITS,
    detect_mask_format,
    iota2_features,
    maja_quality,
    read_l2a_metadata,
    scl_quality,
    spectral_indices,
    valid_from_maja,
    valid_from_scl,
)
from mus_lab.errors import ARDError

L2A = "s2_l2a_product_metadata/ESA/SENTINEL-2/L2A/data"


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("product", "baseline", "offset"),
    [
        ("S2B_MSIL2A_20210208T043939_N0214_R033_T49WDM_20210208T061027.SAFE", "02.14", 0.0),
        ("S2A_MSIL2A_20220214T070051_N0400_R120_T38KQA_20220214T085403.SAFE", "04.00", -1000.0),
        ("S2A_MSIL2A_20240725T021611_N0511_R003_T52SBF_20240725T085851.SAFE", "05.11", -1000.0),
    ],
)
def test_offsets_read_from_real_mtd(real_data, product, baseline, offset):
    meta = read_l2a_metadata(real_data / L2A / product)
    assert meta.processing_baseline == baseline
    assert meta.quantification == 10000.0
    assert set(meta.boa_add_offset.values()) == {offset}
    assert len(meta.boa_add_offset) == 13
    scale, off = meta.scale_offset("B04")
    # METHODS.md section 1 vectors
    if offset == -1000.0:
        assert 1000 * scale + off == pytest.approx(0.0)
        assert 3500 * scale + off == pytest.approx(0.25)
    else:
        assert 3500 * scale + off == pytest.approx(0.35)
    assert meta.sun_zenith is not None and 0 < meta.sun_zenith < 90
    assert meta.nodata == 0 and meta.saturated == 65535


def test_baseline_4_without_offset_is_refused(tmp_path):
    mtd = tmp_path / "MTD_MSIL2A.xml"
    mtd.write_text(
        "<root><PROCESSING_BASELINE>04.00</PROCESSING_BASELINE>"
        "<BOA_QUANTIFICATION_VALUE>10000</BOA_QUANTIFICATION_VALUE></root>"
    )
    with pytest.raises(ARDError, match="lists no BOA_ADD_OFFSET"):
        read_l2a_metadata(mtd)
    with pytest.raises(ARDError, match="Cannot read"):
        read_l2a_metadata(tmp_path / "missing.xml")


def test_iota2_feature_vector():
    """METHODS.md section 3: two dates [2,3,4,5] and [5,4,3,2]; red=1, NIR=2, SWIR=3 (1-based)."""
    bands = np.array([[2, 3, 4, 5], [5, 4, 3, 2]], float)  # (date, band)
    ds = xr.Dataset({f"b{i}": ("time", bands[:, i]) for i in range(4)})
    f = iota2_features(ds, red="b0", nir="b1", swir="b2", bands=["b0", "b1", "b2", "b3"])
    np.testing.assert_allclose(f.ndvi, [0.2, -0.111111], atol=1e-4)
    np.testing.assert_allclose(f.ndwi, [0.142857, -0.142857], atol=1e-4)
    assert f.brightness[1] == pytest.approx(7.348469, abs=1e-4)


def test_iota2_nodata_date_gives_nodata_features():
    ds = xr.Dataset({f"b{i}": ("time", [1.0, 2.0]) for i in range(4)})
    ds["b2"][1] = -10000
    f = iota2_features(
        ds, red="b1", nir="b2", swir="b3", bands=["b0", "b1", "b2", "b3"], nodata=-10000
    )
    assert float(f.ndvi[1]) == -10000 and float(f.brightness[1]) == -10000
    assert float(f.ndvi[0]) == 0.0


def test_spyndex_indices_lazy_and_right():
    ds = xr.Dataset(
        {
            b: ("x", np.array(v, "float32"))
            for b, v in {
                "green": [0.1, 0.05],
                "red": [0.1, 0.04],
                "nir": [0.4, 0.02],
                "swir16": [0.2, 0.01],
            }.items()
        }
    ).chunk()
    out = spectral_indices(ds, ("NDVI", "NDWI", "MNDWI"))
    assert out.ndvi.chunks is not None
    np.testing.assert_allclose(out.ndvi, [(0.4 - 0.1) / 0.5, (0.02 - 0.04) / 0.06], rtol=1e-5)
    np.testing.assert_allclose(
        out.ndwi, [(0.1 - 0.4) / 0.5, (0.05 - 0.02) / 0.07], rtol=1e-5
    )  # McFeeters
    np.testing.assert_allclose(out.mndwi, [(0.1 - 0.2) / 0.3, (0.05 - 0.01) / 0.06], rtol=1e-5)
    with pytest.raises(ARDError, match="Unknown spectral index"):
        spectral_indices(ds, ("NOPE",))
    with pytest.raises(ARDError, match="needs bands"):
        spectral_indices(ds, ("EVI",))


def test_scl_quality_bits_and_validity():
    scl = xr.DataArray(np.arange(12, dtype="uint8"), dims="x")
    q = scl_quality(scl).values
    assert q[0] == 1 << QUALITY_BITS["nodata"]
    assert q[8] == q[9] == 1 << QUALITY_BITS["cloud"]
    assert q[3] == 1 << QUALITY_BITS["shadow"]
    assert q[11] == 1 << QUALITY_BITS["snow"]
    assert q[4] == q[5] == q[7] == 0
    valid = valid_from_scl(scl).values
    assert list(np.flatnonzero(~valid)) == [0, 1, 3, 8, 9, 10]
    assert not valid_from_scl(scl, invalid=(0, 1, 3, 8, 9, 10, 11)).values[11]
    with pytest.raises(ARDError, match="Unknown SCL classes"):
        valid_from_scl(scl, invalid=(12,))


def test_maja_rule_and_format_detection():
    clm = xr.DataArray(np.array([0, 0b10, 0b100000, 0, 0], "uint8"), dims="x")
    edg = xr.DataArray(np.array([0, 0, 0, 1, 0], "uint8"), dims="x")
    sat = xr.DataArray(np.array([0, 0, 0, 0, 1], "uint8"), dims="x")
    valid = valid_from_maja(clm, edg, sat).values
    assert valid.tolist() == [True, False, False, False, False]
    q = maja_quality(clm, edg, sat).values
    assert q[1] & (1 << QUALITY_BITS["cloud"]) and q[2] & (1 << QUALITY_BITS["shadow"])
    assert q[3] & 1 and q[4] & (1 << QUALITY_BITS["saturated"])
    assert detect_mask_format(xr.Dataset({"clm": clm, "edg": edg, "sat": sat})) == "maja"
    assert detect_mask_format(xr.Dataset({"scl": clm})) == "scl"
    with pytest.raises(ARDError, match="No cloud mask"):
        detect_mask_format(xr.Dataset({"red": clm}))


@pytest.mark.realdata
def test_scl_masking_on_real_slovenian_patch_agrees_with_s2cloudless(real_data):
    """Real Sen2Cor SCL (36 dates) vs the patch's s2cloudless cloud mask (CLM) on the same dates."""
    root = real_data / "eolearn_testeopatch_slovenia"
    scl = np.load(root / "TestEOPatch_2018_with_SCL" / "mask__SCL.npy")[..., 0].astype("uint8")
    clm = np.load(root / "TestEOPatch_2018_with_SCL" / "mask__CLM.npy")[..., 0].astype(bool)
    invalid = ~valid_from_scl(xr.DataArray(scl, dims=("time", "y", "x"))).values
    cloud_scl = np.isin(scl, (8, 9, 10))
    agreement = float((cloud_scl == clm).mean())
    # Both masks describe the same real scenes: they must largely agree, and SCL's invalid set
    # (clouds + shadows) must contain most s2cloudless clouds.
    assert agreement > 0.8
    assert float(invalid[clm].mean()) > 0.6
    idx = json.loads(
        (root / "TestEOPatch_2018_with_SCL" / "index_in_68_timestamps.json").read_text()
    )
    assert len(idx["old_index_to_new_index"]) == scl.shape[0] == 36
    print(f"SCL cloud vs s2cloudless agreement: {agreement:.3f}")
