"""Sentinel-1 GRD calibration: real SAFE XML parsing, LUT interpolation, calibration on synthetic DN."""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from mus_lab._settings import get_settings
from mus_lab.ard.sar import (
    DataMask,
    VectorLut,
    calibrate,
    data_mask,
    from_db,
    lut_on_grid,
    open_safe,
    read_calibration,
    read_noise,
    to_db,
)
from mus_lab.errors import ARDError, MetadataError, ProductFileError
from mus_lab.testing import raise_if_dask_computes


def _real_data() -> Path:
    path = get_settings().real_data
    return path if path.is_absolute() else Path(__file__).parents[2] / path


S1_DATA = _real_data() / "s1_safe_metadata_and_small_rasters"
SAFE = (
    S1_DATA
    / "sarsen_tests_data"
    / "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371.SAFE"
)
ZIP = (
    S1_DATA
    / "pyrosar_tests_data"
    / "S1A_IW_GRDH_1SDV_20210119T031653_20210119T031718_036201_043ED0_8255.zip"
)
needs_s1 = pytest.mark.skipif(
    not SAFE.is_dir(),
    reason=f"real Sentinel-1 SAFE test data absent at {SAFE} (set MUS_LAB_REAL_DATA)",
)


# --- a small synthetic calibration -----------------------------------------------------------
def _toy_cal_xml() -> bytes:
    vectors = []
    for line, base in ((0, 400.0), (10, 500.0), (30, 700.0)):
        pix = "0 8 16 24"
        sig = " ".join(f"{base + 10 * k:.6e}" for k in range(4))
        vectors.append(
            f"<calibrationVector><azimuthTime>2021-01-01T00:00:0{line // 10}</azimuthTime>"
            f"<line>{line}</line><pixel count='4'>{pix}</pixel>"
            f"<sigmaNought>{sig}</sigmaNought><betaNought>{sig}</betaNought>"
            f"<gamma>{sig}</gamma><dn>{sig}</dn></calibrationVector>"
        )
    return (
        "<calibration><adsHeader><missionId>S1A</missionId><productType>GRD</productType>"
        "<polarisation>VH</polarisation><swath>IW</swath><startTime>2021-01-01T00:00:00</startTime>"
        "<stopTime>2021-01-01T00:00:05</stopTime></adsHeader>"
        "<calibrationVectorList count='3'>" + "".join(vectors) + "</calibrationVectorList>"
        "</calibration>"
    ).encode()


def _old_noise_xml(value: float) -> bytes:
    vec = "".join(
        f"<noiseVector><line>{line}</line><pixel>0 31</pixel><noiseLut>{value} {value}</noiseLut>"
        "</noiseVector>"
        for line in (0, 30)
    )
    return (
        "<noise><adsHeader><polarisation>VH</polarisation></adsHeader>"
        f"<noiseVectorList count='2'>{vec}</noiseVectorList></noise>"
    ).encode()


def test_vector_lut_exact_at_nodes_and_bilinear() -> None:
    cal = read_calibration(_toy_cal_xml())
    lut = cal.sigma0
    v = lut.evaluate(np.array([0, 10, 30]), np.array([0, 8, 24]))
    np.testing.assert_array_equal(v, [[400, 410, 430], [500, 510, 530], [700, 710, 730]])
    # bilinear: half way in both directions
    mid = lut.evaluate(np.array([5]), np.array([4]))[0, 0]
    assert mid == pytest.approx((405 + 505) / 2, rel=1e-12)  # pixel 4 is half of step 8
    # beyond the last line / pixel the edge value is held
    assert lut.evaluate(np.array([99]), np.array([99]))[0, 0] == 730


def test_lut_on_grid_lazy_equals_numpy_for_any_chunking() -> None:
    cal = read_calibration(_toy_cal_xml())
    ref = lut_on_grid(cal.sigma0, (37, 29))
    for chunks in (5, (7, 29), (37, 3), 100):
        lazy = lut_on_grid(cal.sigma0, (37, 29), chunks=chunks)
        assert isinstance(lazy, da.Array)
        np.testing.assert_array_equal(lazy.compute(), ref)
    # an offset grid equals the matching crop of the full grid
    crop = lut_on_grid(cal.sigma0, (10, 10), chunks=4, offset=(12, 5)).compute()
    np.testing.assert_array_equal(crop, ref[12:22, 5:15])


def test_calibrate_formula_noise_and_clip() -> None:
    cal = read_calibration(_toy_cal_xml())
    noise = read_noise(_old_noise_xml(1000.0))
    assert noise.format == "noiseVectorList" and noise.azimuth == ()
    dn = np.full((31, 25), 100.0)
    dn[0, 0] = 0
    dn[1, 1] = 20  # 400 - 1000 < 0 after noise removal
    a = cal.sigma0.evaluate(np.arange(31), np.arange(25))
    s0 = calibrate(dn, cal, noise)
    expected = (dn**2 - 1000.0) / a**2
    good = np.ones_like(dn, dtype=bool)
    good[0, 0] = good[1, 1] = False
    np.testing.assert_allclose(s0[good], expected[good], rtol=1e-6)
    assert np.isnan(s0[0, 0]) and np.isnan(s0[1, 1])
    assert s0.dtype == np.float32
    floored = calibrate(dn, cal, noise, clip=1e-5)
    assert floored[1, 1] == np.float32(1e-5) and np.isnan(floored[0, 0])
    no_noise = calibrate(dn, cal, noise, remove_noise=False, to="beta0")
    np.testing.assert_allclose(no_noise[good], (dn**2 / a**2)[good], rtol=1e-6)
    mask = data_mask(dn, s0)
    assert mask[0, 0] == DataMask.NO_DATA and mask[1, 1] == DataMask.INVALID
    assert mask[5, 5] == DataMask.VALID and mask.dtype == np.uint8
    with pytest.raises(MetadataError, match="clip"):
        calibrate(dn, cal, clip=-1.0)
    with pytest.raises(MetadataError, match="choose one of"):
        calibrate(dn, cal, to="sigma1")  # type: ignore[arg-type]


def test_calibrate_stays_lazy_on_xarray_and_matches_numpy() -> None:
    cal = read_calibration(_toy_cal_xml())
    noise = read_noise(_old_noise_xml(50.0))
    rng = np.random.default_rng(0)
    dn = rng.integers(0, 400, size=(40, 33)).astype(np.uint16)
    x = xr.DataArray(da.from_array(dn, chunks=(9, 7)), dims=("line", "pixel"))
    with raise_if_dask_computes():
        lazy = calibrate(x, cal, noise)
        mask = data_mask(x, lazy)
    assert isinstance(lazy.data, da.Array) and lazy.dims == ("line", "pixel")
    assert lazy.attrs["calibration"] == "sigma0"
    np.testing.assert_array_equal(lazy.values, calibrate(dn, cal, noise))
    np.testing.assert_array_equal(mask.values, data_mask(dn, calibrate(dn, cal, noise)))
    # deterministic names: the same call gives the same graph key
    assert calibrate(x, cal, noise).data.name == lazy.data.name


def test_db_roundtrip_nan_safe() -> None:
    x = np.array([1.0, 0.01, 0.0, -1.0, np.nan], dtype=np.float32)
    db = to_db(x)
    np.testing.assert_allclose(db[:2], [0.0, -20.0], atol=1e-6)
    assert np.isnan(db[2:]).all()
    np.testing.assert_allclose(from_db(db[:2]), x[:2], rtol=1e-6)
    lazy = to_db(xr.DataArray(da.from_array(x, chunks=2)))
    assert isinstance(lazy.data, da.Array)
    np.testing.assert_array_equal(lazy.values, db)
    assert to_db(10.0) == pytest.approx(10.0)


def test_bad_inputs_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ProductFileError, match="No SAFE product"):
        open_safe(tmp_path / "nothing.SAFE")
    (tmp_path / "x.xml").write_text("<notcalibration/>")
    with pytest.raises(MetadataError, match="calibration-"):
        read_calibration(tmp_path / "x.xml")
    with pytest.raises(MetadataError, match="noise"):
        read_noise(tmp_path / "x.xml")
    with pytest.raises(MetadataError):
        VectorLut(np.array([5, 1]), (np.zeros(2), np.zeros(2)), (np.zeros(2), np.zeros(2)))
    assert issubclass(ProductFileError, ARDError)


# --- real SAFE metadata --------------------------------------------------------------------------
@pytest.mark.realdata
@needs_s1
def test_real_safe_folder_parses() -> None:
    safe = open_safe(SAFE)
    assert safe.polarisations == ("VV",)
    files = safe.files["VV"]
    assert files.calibration.startswith("annotation/calibration/calibration-s1b-iw-grd-vv-")
    assert files.measurement is not None and files.measurement.endswith(".tiff")
    info = safe.read_annotation("VV")
    assert (info.number_of_lines, info.number_of_samples) == (16705, 26102)
    assert info.pass_direction == "Descending"

    cal = safe.read_calibration("vv")
    assert cal.mission == "S1B" and cal.polarisation == "VV" and cal.product_type == "GRD"
    assert cal.absolute_calibration_constant == 1.393
    assert len(cal.sigma0) == 27
    assert cal.sigma0.lines[0] == 0 and cal.sigma0.lines[-1] == 17373
    assert cal.sigma0.pixels[0][0] == 0 and cal.sigma0.pixels[0][-1] == 26101
    assert cal.sigma0.pixels[0].size == 654
    assert cal.sigma0.values[0][0] == 6.638558e02  # as written in the XML
    assert cal.sigma0.values[0][-1] == 5.583672e02
    assert cal.beta0.values[0][0] == 4.739733e02
    assert cal.gamma0.values[0][0] == 6.157493e02
    assert cal.dn.values[0][0] == 4.015858e02

    # exact at a node (line 668 is the second vector, pixel 40 its second pixel)
    v = cal.sigma0.evaluate(np.array([0, 668]), np.array([0, 40]))
    assert v[0, 0] == 6.638558e02 and v[0, 1] == 6.635805e02
    assert v[1, 1] == cal.sigma0.values[1][1]
    # monotonic between two decreasing nodes along pixels
    between = cal.sigma0.evaluate(np.array([0]), np.arange(0, 41))[0]
    assert np.all(np.diff(between) < 0)
    assert between.min() >= 6.635805e02 and between.max() <= 6.638558e02


@pytest.mark.realdata
@needs_s1
def test_real_noise_is_ipf29_format() -> None:
    noise = open_safe(SAFE).read_noise("VV")
    assert noise.format == "noiseRangeVectorList"
    assert len(noise.range) == 27 and noise.range.pixels[0].size == 657
    assert noise.range.values[0][0] == 2.375788e03
    assert [b.swath for b in noise.azimuth] == ["IW1", "IW2", "IW3"]
    assert noise.azimuth[0].last_sample == 8889 and noise.azimuth[2].first_sample == 17701
    assert noise.azimuth[0].lines.size == 1689
    # total noise at a node = range LUT x azimuth factor at that line
    got = noise.evaluate(np.array([0]), np.array([0]))[0, 0]
    assert got == pytest.approx(2.375788e03 * noise.azimuth[0].values[0], rel=1e-12)


@pytest.mark.realdata
@needs_s1
def test_real_safe_lazy_scene_never_materialises() -> None:
    safe = open_safe(SAFE)
    cal, noise = safe.read_calibration("VV"), safe.read_noise("VV")
    with raise_if_dask_computes():
        s0 = safe.calibrated("VV", chunks=4096)
        big = lut_on_grid(cal.sigma0, (25000, 16000), chunks=2048)
    assert s0.shape == (16705, 26102) and s0.dtype == np.float32
    assert big.numblocks == (13, 8)
    # one block equals the numpy evaluation of the same window
    blk = big.blocks[3, 2].compute()
    np.testing.assert_array_equal(
        blk, cal.sigma0.evaluate(np.arange(6144, 8192), np.arange(4096, 6144))
    )
    # the dummy measurement is all zeros: everything is no data
    corner = s0[:64, :64].compute()
    assert np.isnan(corner).all()
    # a synthetic crop at an offset calibrates with the LUT of that place
    dn = np.full((8, 8), 300, dtype=np.uint16)
    out = calibrate(dn, cal, noise, offset=(668, 40))
    a = cal.sigma0.values[1][1]
    n = noise.evaluate(np.array([668]), np.array([40]))[0, 0]
    assert out[0, 0] == pytest.approx((300.0**2 - n) / a**2, rel=1e-6)


@pytest.mark.realdata
@needs_s1
def test_real_zip_metadata_only() -> None:
    safe = open_safe(ZIP)
    assert safe.is_zip and safe.polarisations == ("VH", "VV")
    assert safe.name.endswith("_8255.SAFE")
    assert safe.files["VH"].measurement is None
    cal = safe.read_calibration("VH")
    assert cal.mission == "S1A" and cal.polarisation == "VH"
    assert len(cal.sigma0) == 27 and cal.sigma0.pixels[0][-1] == 25930
    assert cal.sigma0.values[0][0] == 6.657139e02
    assert safe.read_noise("VV").format == "noiseRangeVectorList"
    with zipfile.ZipFile(ZIP) as z:
        member = next(n for n in z.namelist() if "calibration-s1a-iw-grd-vh" in n)
        root = ET.fromstring(z.read(member))
    assert int(root.find("calibrationVectorList").get("count")) == len(cal.sigma0)  # type: ignore[union-attr,arg-type]
    with pytest.raises(ProductFileError, match="metadata-only"):
        safe.open_dn("VH")
    with pytest.raises(MetadataError, match="no HH"):
        safe.read_calibration("HH")
