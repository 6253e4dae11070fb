"""WMS 1.3.0 / WCS 2.0.1 of the products (MapServer): OWSLib, GDAL's drivers, path traversal."""

from __future__ import annotations

import io
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mus_lab import contracts, publish
from mus_lab.services import ows
from tests.publish.conftest import GBOX, empty_catalog, prediction
from tests.publish.test_products import _model

pytestmark = pytest.mark.skipif(
    ows.find_mapserv() is None, reason="MapServer is not installed (make mapserver)"
)
owslib = pytest.importorskip("owslib")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

DATES = ("2022-04-01T00:00:00Z", "2022-04-13T00:00:00Z")
WEST, SOUTH, EAST, NORTH = GBOX.boundingbox  # 600000 4999600 600400 5000000 (EPSG:32618)


def _products(catalog: Path) -> SimpleNamespace:
    """Land cover, fused map, a two-date flood extent and flood risk on the 40 x 40 grid."""
    pred = prediction()
    publish.LandCoverProduct.from_prediction(pred, model=_model(), name="optical").write(catalog)
    belief = pred.probability.isel({"class": 0}, drop=True)
    fused = xr.Dataset(
        {
            "fused_class": pred.classification.assign_attrs(
                classes=str({11: "crops", 12: "grassland", 31: "forest"})
            ),
            "belief": belief,
            "plausibility": np.minimum(belief + 0.1, 1),
            "conflict": 1 - belief,
            "ignorance": belief * 0 + 0.05,
            "confidence": belief * 0.9,
            "agreement": xr.ones_like(pred.classification),
        },
        attrs={"rule": "dempster", "decision": "max_bel", "sources": "optical, radar"},
    )
    publish.FusedProduct.from_fusion(fused).write(catalog)
    water = (
        xr.concat([pred.confidence > 50, pred.confidence > 70], "time")
        .astype("uint8")
        .assign_coords(time=[np.datetime64(d[:10]) for d in DATES])
    )
    extent = xr.Dataset({"water": water, "flood": water, "likelihood": water * 90})
    publish.FloodExtentProduct(extent).write(catalog)
    summary = xr.Dataset(
        {v.name: (pred.confidence % 5 + 1).astype(v.dtype) for v in contracts.FLOOD_RISK.variables}
    )
    zones = pd.DataFrame({c: [1] for c in contracts.ZONE_COLUMNS})
    publish.FloodRiskProduct(summary, zones=zones).write(catalog)
    return SimpleNamespace(pred=pred, fused=fused, water=water.values)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    folder = tmp_path_factory.mktemp("ows")
    catalog = empty_catalog(folder / "products")
    made = _products(catalog)
    state = folder / "ows"
    assert ows.main(["start", str(state), "--catalog", str(catalog)]) == 0
    srv = ows.OwsServer(None, state)
    pid = srv._state()["pid"]
    try:
        yield SimpleNamespace(url=srv.url, folder=folder, **vars(made))
    finally:
        assert ows.main(["stop", str(state)]) == 0
        assert ows.main(["status", str(state)]) == 1
        assert not Path(f"/proc/{pid}").exists()  # stopping leaves nothing running


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _legend(catalog: Path) -> dict[int, tuple[int, ...]]:
    item = publish.find_items(catalog, "landcover-optical")[0]
    return {
        c["value"]: tuple(int(c["color_hint"][i : i + 2], 16) for i in (0, 2, 4))
        for c in item.assets["classification"].extra_fields["classification:classes"]
        if "color_hint" in c
    }


def test_wms_capabilities_map_and_feature_info(server: SimpleNamespace) -> None:
    from owslib.wms import WebMapService
    from PIL import Image

    wms = WebMapService(server.url, version="1.3.0")
    layers = set(wms.contents)
    assert {
        "landcover-optical.classification",
        "landcover-optical.confidence",
        "landcover-fused.belief",
        "flood-extent.water",
        "flood-risk.risk_class",
    } <= layers
    assert "legend" in wms["landcover-optical.classification"].styles
    assert "ramp" in wms["landcover-optical.confidence"].styles
    assert wms["flood-extent.water"].timepositions == list(DATES)
    assert "EPSG:32618" in wms["landcover-optical.classification"].crsOptions

    # GetMap on the product's grid: every pixel has its class's legend colour
    img = wms.getmap(
        layers=["landcover-optical.classification"], styles=["legend"], srs="EPSG:32618",
        bbox=(WEST, SOUTH, EAST, NORTH), size=(40, 40), format="image/png",
    )  # fmt: skip
    rgb = np.asarray(Image.open(io.BytesIO(img.read())).convert("RGB"))
    colours = _legend(server.folder / "products" / "catalog.json")
    classes = server.pred.classification.values
    for code, colour in colours.items():
        assert (rgb[classes == code] == colour).all(), code
    status, png = _get(
        f"{server.url}?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetLegendGraphic&FORMAT=image/png"
        "&LAYER=landcover-optical.classification&STYLE=legend&SLD_VERSION=1.1.0"
    )
    swatches = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    assert status == 200 and all((swatches == c).all(-1).any() for c in colours.values())
    # TIME: the first date has more water than the default (latest) one
    blue = []
    for when in (DATES[0], None):
        kw = {"time": when} if when else {}
        png = wms.getmap(
            layers=["flood-extent.water"], srs="EPSG:32618", bbox=(WEST, SOUTH, EAST, NORTH),
            size=(40, 40), format="image/png", **kw,
        ).read()  # fmt: skip
        px = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        blue.append(int((px == (0x1F, 0x78, 0xB4)).all(-1).sum()))
    assert blue == [int(server.water[0].sum()), int(server.water[1].sum())]
    status, body = _get(
        f"{server.url}?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=flood-extent.water"
        f"&STYLES=&CRS=EPSG:32618&BBOX={WEST},{SOUTH},{EAST},{NORTH}&WIDTH=40&HEIGHT=40"
        "&FORMAT=image/png&TIME=2021-01-01"
    )
    assert status == 400 and b"InvalidDimensionValue" in body and DATES[0].encode() in body

    # GetFeatureInfo on the product's group: the class (name, code), confidence, masses
    col, row = 5, 7
    info = wms.getfeatureinfo(
        layers=["landcover-optical"], query_layers=["landcover-optical"], srs="EPSG:32618",
        bbox=(WEST, SOUTH, EAST, NORTH), size=(40, 40), xy=(col, row),
        format="image/png", info_format="application/vnd.ogc.gml",
    ).read().decode()  # fmt: skip
    code = int(classes[row, col])
    name = {11: "crops", 12: "grassland", 31: "forest"}[code]
    assert f"<value_0>{code}</value_0>" in info and f"<class>{name}</class>" in info
    conf = re.search(r"confidence_feature>.*?<value_0>(\d+)</value_0>", info, re.S)
    assert conf and int(conf.group(1)) == int(server.pred.confidence.values[row, col])
    info = wms.getfeatureinfo(
        layers=["landcover-fused"], query_layers=["landcover-fused"], srs="EPSG:32618",
        bbox=(WEST, SOUTH, EAST, NORTH), size=(40, 40), xy=(col, row), format="image/png",
        info_format="text/plain",
    ).read().decode()  # fmt: skip
    for var in ("belief", "plausibility", "conflict", "ignorance"):
        found = re.search(rf"Layer 'landcover-fused.{var}'.*?value_0 = '([-\d.e]+)'", info, re.S)
        assert found, var
        assert float(found.group(1)) == pytest.approx(float(server.fused[var].values[row, col]))
    assert f"class = '{name}'" in info


def test_wcs_describe_and_subsets(server: SimpleNamespace) -> None:
    import rasterio
    from owslib.wcs import WebCoverageService

    wcs = WebCoverageService(server.url, version="2.0.1")
    assert "landcover-optical.classification" in wcs.contents
    assert "flood-extent.water.20220401T000000Z" in wcs.contents  # each date, as a coverage
    described = wcs.getDescribeCoverage("landcover-optical.classification")
    text = owslib.etree.etree.tostring(described).decode()
    assert "600000 4999600" in text and "<gml:high>39 39</gml:high>" in text

    # spatial subset in the product's coordinates: exactly the product's pixels
    answer = wcs.getCoverage(
        "landcover-optical.classification", format="image/tiff",
        subsets=[("x", 600100, 600300), ("y", 4999700, 4999900)],
    )  # fmt: skip
    with rasterio.MemoryFile(answer.read()) as mem, mem.open() as ds:
        assert ds.crs.to_epsg() == 32618 and ds.transform.c == 600100 and ds.transform.f == 4999900
        np.testing.assert_array_equal(ds.read(1), server.pred.classification.values[10:30, 10:30])
    # temporal subsets: a date, an interval (its latest date), none of the dates
    for subset, index in (
        (("time", "2022-04-01"), 0),
        (("time", "2022-03-01", "2022-04-10"), 0),
        (("time", "2022-04-02", "2022-12-31"), 1),
        (("time", DATES[1]), 1),
    ):
        answer = wcs.getCoverage(
            "flood-extent.water", format="image/tiff", subsets=[subset, ("x", WEST, EAST)]
        )
        with rasterio.MemoryFile(answer.read()) as mem, mem.open() as ds:
            np.testing.assert_array_equal(ds.read(1), server.water[index])
    status, body = _get(
        f"{server.url}?SERVICE=WCS&VERSION=2.0.1&REQUEST=GetCoverage"
        '&COVERAGEID=flood-extent.water&SUBSET=time("2023-01-01")'
    )
    assert status == 400 and b"2022-04-01T00:00:00Z" in body


def test_gdal_drivers_read_back_the_products(server: SimpleNamespace) -> None:
    import rasterio

    cache = server.folder / "gdal-cache"
    for name, var in (
        ("landcover-optical.classification", server.pred.classification),
        ("landcover-optical.confidence", server.pred.confidence),
        ("landcover-fused.belief", server.fused.belief),
    ):
        with rasterio.open(
            f"WCS:{server.url}?version=2.0.1&coverage={name}", CACHE=str(cache)
        ) as ds:
            assert ds.shape == (40, 40) and ds.crs.to_epsg() == 32618
            np.testing.assert_array_equal(ds.read(1), var.values)  # the product's pixels
    wms = (
        f"WMS:{server.url}?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap"
        f"&LAYERS=flood-risk.risk_class&CRS=EPSG:32618&BBOX={WEST},{SOUTH},{EAST},{NORTH}"
        "&FORMAT=image/png"
    )
    with rasterio.Env(GDAL_DEFAULT_WMS_CACHE_PATH=str(cache)), rasterio.open(wms) as ds:
        assert ds.crs.to_epsg() == 32618 and ds.count >= 3
        rgb = np.moveaxis(ds.read([1, 2, 3], out_shape=(3, 40, 40)), 0, -1)
    risk = (server.pred.confidence.values % 5 + 1).astype(int)
    colours = [tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in contracts.RISK_COLOURS]
    assert (rgb[risk == 5] == colours[4]).all() and (rgb[risk == 1] == colours[0]).all()


@pytest.mark.parametrize(
    "query",
    [
        "map=/etc/passwd&SERVICE=WMS&REQUEST=GetCapabilities",
        "SERVICE=WMS&REQUEST=GetCapabilities&MAP=../../../../etc/passwd",
        "SERVICE=WMS&REQUEST=GetCapabilities&map.web.template=/etc/passwd",
        "SERVICE=WCS&VERSION=2.0.1&REQUEST=GetCoverage&COVERAGEID=../../../../etc/passwd",
        "SERVICE=WCS&VERSION=2.0.1&REQUEST=GetCoverage&COVERAGEID=%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "SERVICE=WMS&REQUEST=GetMap&LAYERS=%252e%252e%252fetc&STYLES=",
        "SERVICE=WMS&REQUEST=GetMap&SLD=file:///etc/passwd",
        "SERVICE=WMS&REQUEST=GetLegendGraphic&LAYER=x%00/etc/passwd",
        "mode=browse&layer=x",
        "",
    ],
)
def test_path_traversal_is_refused(server: SimpleNamespace, query: str) -> None:
    status, body = _get(f"{server.url}?{query}")
    assert status in (400, 404)
    assert b"root:" not in body and b"/bin/" not in body


@pytest.mark.parametrize(
    "path", ["/ows/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/etc/passwd"]
)
def test_no_route_serves_files(server: SimpleNamespace, path: str) -> None:
    base = server.url.rsplit("/", 1)[0]
    status, body = _get(base + path)
    assert status in (400, 404) and b"root:" not in body


def test_mapfile_refuses_an_empty_catalog(tmp_path: Path) -> None:
    catalog = empty_catalog(tmp_path / "empty")
    with pytest.raises(ows.ServiceError, match="holds no raster product"):
        ows.write_mapfile(catalog, tmp_path / "out", url="http://127.0.0.1:1/ows")
    assert os.environ.get(ows.MAPFILE_ENV) is None
