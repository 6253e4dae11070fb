"""RCM products: parsing GDAL's fake product, LUT expansion, writer round trip (dual and compact pol)."""

from __future__ import annotations

import shutil
from pathlib import Path

import dask.array as da
import numpy as np
import pytest

from mus_lab._settings import get_settings
from mus_lab.ard.sar import (
    RcmGcp,
    RcmLut,
    calibrate_rcm,
    open_rcm,
    read_rcm_lut,
)
from mus_lab.errors import MetadataError, ProductFileError
from mus_lab.testing import write_rcm_product


def _real_data() -> Path:
    path = get_settings().real_data
    return path if path.is_absolute() else Path(__file__).parents[2] / path


FAKE = _real_data() / "gdal_rcm_fake_VV_VH_GRD"
needs_rcm = pytest.mark.skipif(
    not (FAKE / "metadata" / "product.xml").is_file(),
    reason=f"GDAL's fake RCM product absent at {FAKE} (set MUS_LAB_REAL_DATA)",
)


@pytest.mark.realdata
@needs_rcm
@pytest.mark.parametrize("entry", ["", "metadata", "metadata/product.xml"])
def test_fake_product_metadata(entry: str) -> None:
    prod = open_rcm(FAKE / entry if entry else FAKE)
    assert prod.folder == FAKE
    assert (prod.samples, prod.lines) == (17915, 3297)
    assert prod.polarizations == ("VH", "VV")
    assert prod.orbit_direction == "Descending"
    assert prod.product_type == "GRD" and prod.satellite == "RCM-1" and prod.sensor == "SAR"
    assert prod.sample_type == "Magnitude Detected" and prod.data_type == "Integer"
    assert prod.bits_per_sample == 16
    assert prod.security_classification == "Non classifié / Unclassified"
    assert prod.polarization_data_mode == "Dual Co/Cross"
    assert prod.beam_mode == "Medium Resolution 50m" and prod.lut_applied == "Mixed"
    assert prod.satellite_height == 600000 and prod.geodetic_terrain_height == 200
    assert prod.gcps == (RcmGcp(pixel=2, line=1, lon=2.5, lat=1.5, height=3.5),)
    assert prod.imagery == {"VV": "../imagery/VV.tif", "VH": "../imagery/VH.tif"}
    assert prod.luts[("beta0", "VH")] == "lutBeta_VH.xml"
    assert prod.luts[("gamma0", "VV")] == "lutGamma_VV.xml"
    assert prod.noise_files["VH"] == "noiseLevels_VH.xml"
    # placeholders in the fake product are not numbers
    assert prod.pixel_spacing is None and prod.incidence_near is None


@pytest.mark.realdata
@needs_rcm
def test_fake_beta_lut_noise_and_incidence() -> None:
    prod = open_rcm(FAKE)
    lut = prod.read_lut("VH", "beta0")
    assert (lut.pixel_first, lut.step, lut.number_of_values, lut.offset) == (10, -17915, 1, 0.0)
    np.testing.assert_array_equal(lut.gains, [10.0])
    gains = lut.expand(prod.samples)
    assert gains.shape == (17915,) and np.all(gains == 10.0)
    noise = prod.read_noise("VH")
    assert sorted(noise.levels) == ["beta0", "gamma0", "sigma0"]
    first, step, vals = noise.levels["sigma0"]
    assert (first, step) == (0, -23) and vals.tolist() == [0.0]
    assert np.all(noise.expand("beta0", prod.samples) == 1.0)  # 0 dB
    inc = prod.read_incidence()
    assert inc.shape == (17915,) and np.all(inc == 0)
    # calibrated value per the RCM convention: (DN^2 + 0) / 10 - 1
    dn = np.array([[0, 10, 20]], dtype=np.uint16)
    out = calibrate_rcm(dn, lut, noise, to="beta0", width=prod.samples)
    assert np.isnan(out[0, 0]) and out[0, 1] == pytest.approx(9.0) and out[0, 2] == 39.0


@pytest.mark.realdata
@needs_rcm
def test_fake_product_missing_files_name_the_file() -> None:
    prod = open_rcm(FAKE)
    with pytest.raises(ProductFileError, match=r"lutSigma_VV\.xml"):
        prod.read_lut("VV", "sigma0")
    with pytest.raises(ProductFileError, match=r"imagery/VH\.tif"):
        prod.open_dn("VH")
    with pytest.raises(ProductFileError, match="remove_noise=False"):
        prod.read_noise("VV")
    with pytest.raises(MetadataError, match="choose one of"):
        prod.read_lut("HH")


def test_negative_step_lut_runs_right_to_left() -> None:
    lut = RcmLut(
        pixel_first=9, step=-3, number_of_values=4, offset=0.0, gains=np.array([1.0, 2, 3, 4])
    )
    # samples at columns 9, 6, 3, 0 -> gains 1, 2, 3, 4
    np.testing.assert_allclose(lut.expand(10)[[0, 3, 6, 9]], [4, 3, 2, 1])
    np.testing.assert_allclose(lut.expand(10)[[1, 2]], [4 - 1 / 3, 4 - 2 / 3])
    pos = RcmLut(pixel_first=0, step=5, number_of_values=2, offset=0.0, gains=np.array([1.0, 2]))
    np.testing.assert_allclose(pos.expand(8), [1, 1.2, 1.4, 1.6, 1.8, 2, 2, 2])  # edge held


def test_missing_product(tmp_path: Path) -> None:
    with pytest.raises(ProductFileError, match=r"product\.xml"):
        open_rcm(tmp_path)


@pytest.mark.parametrize(
    ("pols", "direction", "mode"),
    [(("VV", "VH"), "Descending", "Dual Co/Cross"), (("RH", "RV"), "Ascending", "Compact")],
)
def test_writer_round_trip(
    tmp_path: Path, pols: tuple[str, str], direction: str, mode: str
) -> None:
    rng = np.random.default_rng(7)
    shape = (48, 67)
    truth = {
        pols[0]: rng.gamma(4.4, 0.08 / 4.4, size=shape),
        pols[1]: rng.gamma(4.4, 0.015 / 4.4, size=shape),
    }
    truth[pols[0]][3, 4] = np.nan  # no data survives
    gains = np.linspace(4e6, 9e6, shape[1])  # linear, so a subsampled LUT is exact
    folder = write_rcm_product(
        tmp_path / "prod",
        truth,
        values="sigma0",
        lut_gains=gains,
        noise_db=-24.0,
        lut_step=8,
        orbit_direction=direction,  # type: ignore[arg-type]
        gcps=[RcmGcp(pixel=0, line=0, lon=4.6, lat=43.5, height=0.0)],
    )
    prod = open_rcm(folder)
    assert prod.polarizations == pols and prod.polarization_data_mode == mode
    assert (prod.lines, prod.samples) == shape and prod.orbit_direction == direction
    assert prod.gcps[0].lon == 4.6
    lut = prod.read_lut(pols[0])
    assert (lut.step < 0) == (direction == "Descending")
    np.testing.assert_allclose(lut.expand(shape[1]), gains, rtol=1e-12)
    assert read_rcm_lut(folder / "metadata/calibration" / f"lutBeta_{pols[1]}.xml").step == lut.step
    for pol in pols:
        dn = prod.open_dn(pol, chunks=16)
        assert dn.dtype == np.uint16 and isinstance(dn.data, da.Array)
        back = prod.calibrated(pol, chunks=16)
        assert isinstance(back.data, da.Array)
        got, want = back.values, truth[pol]
        ok = np.isfinite(want)
        # DN quantisation: d(sigma0)/sigma0 <= ~ 2 * 0.5 / DN + noise term
        dn_v = dn.values.astype(float)
        tol = (dn_v + 0.5) ** 2 / gains - dn_v**2 / gains
        assert np.all(np.abs(got[ok] - want[ok]) <= tol[ok] + 1e-9)
        assert np.nanmedian(np.abs(got - want) / want) < 0.01
    assert np.isnan(prod.calibrated(pols[0]).values[3, 4])
    # beta0 = sigma0 / sin(inc), gamma0 = sigma0 / cos(inc); the LUTs are sampled every
    # 8 columns, so the non-linear sin/cos gains are only linearly interpolated (<1 %)
    inc = np.radians(prod.read_incidence())
    s0 = prod.calibrated(pols[0], remove_noise=False).values
    b0 = prod.calibrated(pols[0], to="beta0", remove_noise=False).values
    g0 = prod.calibrated(pols[0], to="gamma0", remove_noise=False).values
    np.testing.assert_allclose(b0 * np.sin(inc), s0, rtol=1e-2)
    np.testing.assert_allclose(g0 * np.cos(inc), s0, rtol=1e-2)
    s0_denoised = prod.calibrated(pols[0]).values
    diff = (s0 - s0_denoised)[np.isfinite(s0)]
    np.testing.assert_allclose(diff, 10 ** (-2.4), rtol=1e-3)


def test_writer_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="empty"):
        write_rcm_product(tmp_path / "p", {})
    with pytest.raises(MetadataError, match="share a shape"):
        write_rcm_product(tmp_path / "p", {"VV": np.ones((2, 2)), "VH": np.ones((3, 2))})
    with pytest.raises(MetadataError, match="uint16"):
        write_rcm_product(
            tmp_path / "p", {"VV": np.full((2, 2), 10.0)}, values="sigma0", lut_gains=1e12
        )


def test_missing_imagery_after_write(tmp_path: Path) -> None:
    folder = write_rcm_product(tmp_path / "p", {"VV": np.full((4, 5), 100, dtype=np.uint16)})
    shutil.rmtree(folder / "imagery")
    with pytest.raises(ProductFileError, match=r"imagery/VV\.tif"):
        open_rcm(folder).calibrated("VV")
