"""RCM CEOS-ARD items (EODMS rcm-ard) into the cube, and the compact-pol products.

The item is reconstructed from the executed EODMS notebooks (no full item JSON is in the
shared data, see mus_lab.testing._rcm_ard); its COGs are small and written here. The m-chi
check runs the notebook's own cells, read from ../shared/data, on the same numbers.
"""

from __future__ import annotations

import ast
import html
import json
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox

from mus_lab import cube
from mus_lab.ard import CompactPolError, compact_pol, mchi, prepare_rcm_ard, stokes
from mus_lab.contracts import SAR_QUALITY_BITS
from mus_lab.errors import ARDError, MissingProjectionError
from mus_lab.testing import raise_if_dask_computes, write_rcm_ard_item
from mus_lab.testing._rcm_ard import ASSETS, rcm_ard_item_dict

GRID = GeoBox((24, 32), Affine(20, 0, 424100, 0, -20, 5040740), "EPSG:32618")
NOTEBOOKS = "eodms_real_responses/rcm-ard-stac-examples"


@pytest.fixture(scope="module")
def written(tmp_path_factory):  # type: ignore[no-untyped-def]
    return write_rcm_ard_item(tmp_path_factory.mktemp("rcm-ard"))


@pytest.fixture(scope="module")
def loaded(written):  # type: ignore[no-untyped-def]
    item, _ = written
    with raise_if_dask_computes():
        ds = prepare_rcm_ard(
            [item], geobox=GRID, covariance=True, extras=("local_inc_angle", "gamma_to_sigma_ratio")
        )
    return ds, ds.compute()


def test_real_item_quirks_are_handled(written) -> None:  # type: ignore[no-untyped-def]
    item, _ = written
    # As the real items: 'Float' data type, only proj:epsg; cube.load alone cannot place them.
    assert item.assets["rr"].extra_fields["raster:bands"][0]["data_type"] == "Float"
    with pytest.raises(MissingProjectionError):
        cube.load([item], "rr", geobox=GRID)


def test_values_mask_and_extras(written, loaded) -> None:  # type: ignore[no-untyped-def]
    _, arrays = written
    lazy, ds = loaded
    assert lazy.rr.dtype == np.float32 and lazy.rr.dims == ("time", "y", "x")
    assert sorted(ds.data_vars) == [
        "gamma_to_sigma_ratio",
        "local_inc_angle",
        "quality",
        "rl",
        "rr",
        "rrrl_im",
        "rrrl_re",
        "valid",
    ]
    edge = np.s_[:, :3]
    np.testing.assert_array_equal(ds.rr.values[0][:, 3:], arrays["rr"][:, 3:])
    np.testing.assert_array_equal(ds.rrrl_im.values[0][:, 3:], arrays["rrrl"].imag[:, 3:])
    np.testing.assert_array_equal(
        ds.local_inc_angle.values[0][:, 3:], arrays["local_inc_angle"][:, 3:]
    )
    assert np.isnan(ds.rr.values[0][edge]).all() and not ds.valid.values[0][edge].any()
    q = ds.quality.values[0]
    bit = {k: 1 << v for k, v in SAR_QUALITY_BITS.items()}
    assert (q[edge] & bit["nodata"]).all()
    assert q[5, 10] == bit["layover"] and q[6, 11] == bit["shadow"]
    assert q[7, 12] == 0 and ds.valid.values[0][7, 12]  # water is not a validity bit
    assert ds.valid.values.sum() == 24 * 29 - 2
    assert ds.local_inc_angle.attrs["units"] == "degree"
    assert lazy.attrs["product"] == "rcm_gamma0_ard"


def test_options_and_refusals(written) -> None:  # type: ignore[no-untyped-def]
    item, _ = written
    db = prepare_rcm_ard([item], geobox=GRID, polarisations=("rl",), db=True, extras=())
    assert sorted(db.data_vars) == ["quality", "rl", "valid"] and db.rl.attrs["units"] == "dB"
    with pytest.raises(ARDError, match=r"hold 'rr' and 'rl'"):
        prepare_rcm_ard([item], polarisations=("vv",))
    with pytest.raises(ARDError, match=r"mask_bits names"):
        prepare_rcm_ard([item], mask_bits={4: "ocean"})
    bare = item.clone()
    del bare.assets["rrrl"]
    with pytest.raises(ARDError, match=r"lacks asset\(s\) \['rrrl'\]"):
        prepare_rcm_ard([bare], geobox=GRID, covariance=True)


@pytest.mark.realdata
def test_reconstruction_matches_the_notebook(real_data: Path) -> None:
    nb = json.loads((real_data / NOTEBOOKS / "rcm_ard_stac_example.ipynb").read_text())
    printed = [
        "".join(o["data"]["text/plain"])
        for c in nb["cells"]
        for o in c.get("outputs", [])
        if "text/plain" in o.get("data", {})
    ]
    table = next(p for p in printed if "Asset Key" in p)
    rows = re.findall(r"│ (\w+)\s+│ (.+?)\s+│ (\[.*?\]|None)\s+│", table)
    got = {k: (t, None if r == "None" else ast.literal_eval(r)) for k, t, r in rows}
    d = rcm_ard_item_dict()
    assert list(got) == [a[0] for a in ASSETS] == list(d["assets"])
    for key, (title, roles) in got.items():
        if not title.endswith("Matrix"):  # the table wraps "(CovMat)" onto a second line
            assert d["assets"][key]["title"] == title
        assert d["assets"][key].get("roles") == roles
    rr = ast.literal_eval(next(p for p in printed if p.startswith("{'href'")))
    assert d["assets"]["rr"] == {**rr, "raster:bands": d["assets"]["rr"]["raster:bands"]}
    assert "'data_type': 'Float'" in html.unescape(
        "".join(
            "".join(o["data"].get("text/html", ""))
            for c in nb["cells"]
            for o in c.get("outputs", [])
            if "data" in o
        )
    )


def test_compact_pol_is_one_lazy_pass_and_self_consistent(loaded) -> None:  # type: ignore[no-untyped-def]
    lazy, ds = loaded
    with raise_if_dask_computes():
        out = compact_pol(lazy)
    assert sorted(out.data_vars) == sorted([*compact_pol(ds).data_vars])
    kernels = {k for p in out.data_vars for k in out[p].data.dask.layers if k.startswith("kernel-")}
    assert len(kernels) == 1  # one blockwise pass gives every product
    c = out.compute().isel(time=0)
    ok = c.valid.values
    # RH/RV synthesised from RR/RL give the same Stokes vector through the linear formulas
    np.testing.assert_allclose(c.rh + c.rv, c.s0, rtol=1e-5)
    np.testing.assert_allclose(c.rh - c.rv, c.s1, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(2 * c.rhrv_re, c.s2, rtol=1e-5)
    np.testing.assert_allclose(-2 * c.rhrv_im, c.s3, rtol=1e-5)
    m = c.dop.values[ok]
    assert ((m >= 0) & (m <= 1)).all()  # |rho| <= 0.8 in the written covariance
    total = (c.mchi_surface + c.mchi_double + c.mchi_volume).values[ok]
    np.testing.assert_allclose(total, c.s0.values[ok], rtol=1e-5)
    assert np.isnan(c.s0.values[~ok & ~np.isfinite(ds.rr.values[0])]).all()
    surface, _, _ = mchi(*stokes(ds.rr, ds.rl, ds.rrrl_re, ds.rrrl_im))
    np.testing.assert_allclose(
        surface.values[0][ok], c.mchi_surface.values[ok], rtol=1e-5, atol=1e-7
    )


def test_linear_basis_gives_the_same_products(loaded) -> None:  # type: ignore[no-untyped-def]
    _, ds = loaded
    circular = compact_pol(ds)
    linear = ds[["valid"]].assign(
        rh=circular.rh, rv=circular.rv, rhrv_re=circular.rhrv_re, rhrv_im=circular.rhrv_im
    )
    again = compact_pol(linear, basis="linear")
    for p in ("s0", "s1", "s2", "s3", "dop", "mchi_surface", "mchi_volume", "rh"):
        np.testing.assert_allclose(again[p], circular[p], rtol=1e-4, atol=1e-6)
    grd = linear.drop_vars(["rhrv_re", "rhrv_im"])
    with pytest.raises(CompactPolError, match=r"cross term.*detected \(GRD\) compact-pol"):
        compact_pol(grd, basis="linear")


def test_compact_pol_refusals(loaded) -> None:  # type: ignore[no-untyped-def]
    lazy, _ = loaded
    with pytest.raises(CompactPolError, match=r"lacks \['rl', 'rrrl_im'\].*covariance=True"):
        compact_pol(lazy.drop_vars(["rl", "rrrl_im"]))
    with pytest.raises(CompactPolError, match=r"not the cross term \['rrrl_re', 'rrrl_im'\]"):
        compact_pol(lazy.drop_vars(["rrrl_re", "rrrl_im"]))
    with pytest.raises(CompactPolError, match="basis='pauli'"):
        compact_pol(lazy, basis="pauli")  # type: ignore[arg-type]
    with pytest.raises(CompactPolError, match=r"in dB"):
        compact_pol(lazy.assign_attrs(db=1))
    with pytest.raises(CompactPolError, match=r"Unknown compact-pol"):
        compact_pol(lazy, ["h_alpha"])


@pytest.mark.realdata
def test_mchi_equals_the_executed_eodms_notebook(real_data: Path, written) -> None:  # type: ignore[no-untyped-def]
    """The notebook's own cells (ard_to_stokes, stokes_to_pol, pol_to_mchi) on our COG values."""
    _, arrays = written
    nb = json.loads((real_data / NOTEBOOKS / "mchi_decomposition.ipynb").read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    wanted = ("def ard_to_stokes", "def stokes_to_pol", "def pol_to_mchi")
    code = [next(c for c in cells if w in c) for w in wanted]
    valid = arrays["rr"] > 0
    bands = {  # what rioxarray gives the notebook: a leading band axis
        "rr": arrays["rr"][None],
        "rl": arrays["rl"][None],
        "rrrl": np.stack([arrays["rrrl"].real, arrays["rrrl"].imag]),
    }
    ns: dict[str, object] = {"np": np, "read_cog_from_bbox": lambda url, bbox=None: bands[url]}
    for source in code:
        exec(compile(source, "mchi_decomposition.ipynb", "exec"), ns)
    s0, s1, s2, s3 = ns["ard_to_stokes"]("rl", "rr", "rrrl")  # type: ignore[operator]
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 at the no-data edge
        dpol, chi = ns["stokes_to_pol"](s0, s1, s2, s3)  # type: ignore[operator]
        single, volume, double = ns["pol_to_mchi"](s0, dpol, chi)  # type: ignore[operator]
    ds = xr.Dataset(
        {
            "rr": (("y", "x"), arrays["rr"]),
            "rl": (("y", "x"), arrays["rl"]),
            "rrrl_re": (("y", "x"), arrays["rrrl"].real),
            "rrrl_im": (("y", "x"), arrays["rrrl"].imag),
        }
    )
    ours = compact_pol(ds)
    for mine, theirs in (
        ("mchi_surface", single),
        ("mchi_double", double),
        ("mchi_volume", volume),
        ("dop", dpol),
        ("sin2chi", chi),
        ("s0", s0),
        ("s3", s3),
    ):
        np.testing.assert_allclose(ours[mine].values[valid], theirs[valid], rtol=2e-5, atol=1e-7)
    # the notebook calls 2 Im<RR RL*> S1 and 2 Re<RR RL*> S2 (see mus_lab.ard._compact_pol)
    np.testing.assert_allclose(ours.s1.values[valid], s2[valid], rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(ours.s2.values[valid], s1[valid], rtol=2e-5, atol=1e-7)


def test_complete_items_are_not_read_at_prepare_time(written, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import mus_lab.ard._rcm_ard as mod

    item, _ = written
    complete = item.clone()
    for key in ("rr", "rl", "data_mask", "local_inc_angle"):
        fields = complete.assets[key].extra_fields
        fields["proj:shape"], fields["proj:transform"] = [24, 32], list(GRID.transform)[:6]
        dtype = "uint8" if key == "data_mask" else "float32"
        fields["raster:bands"] = [{"nodata": 0, "data_type": dtype}]

    def no_read(href: str) -> None:
        raise AssertionError(f"read {href}")

    monkeypatch.setattr(mod, "_header", no_read)
    ds = prepare_rcm_ard([complete], geobox=GRID)
    assert sorted(ds.data_vars) == ["local_inc_angle", "quality", "rl", "rr", "valid"]
    with pytest.raises(AssertionError, match="read"):
        prepare_rcm_ard([item], geobox=GRID)  # the real items' 'Float' needs the header
