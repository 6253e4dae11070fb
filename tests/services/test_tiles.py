"""The tile service: titiler-pgstac over pgstac, read-only, never outside the product store."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("titiler.pgstac", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")

import pystac
import requests
from PIL import Image

from mus_lab import catalog as cat
from mus_lab import publish
from mus_lab.contracts import RISK_COLOURS
from mus_lab.services.tiles import TileServer, main

ZOOM = 16


def _landcover(folder: Path) -> pystac.Item:
    """A land-cover product, 40 x 20 px of 20 m: crops (1) west, forest (3) east."""
    from odc.geo.geobox import GeoBox
    from odc.geo.xr import xr_zeros

    gbox = GeoBox.from_bbox((500000, 5000000, 500800, 5000400), "EPSG:32618", resolution=20)
    codes = xr_zeros(gbox, "uint8") + np.repeat(np.array([1, 3], "uint8"), 20)
    prob = xr.concat([(codes == c) * 0.8 + 0.1 for c in (1, 3)], "class")
    score = (prob.max("class") * 100).astype("uint8")
    data = xr.Dataset(
        {
            "classification": codes,
            "confidence": score,
            "margin": score,
            "probability": prob.assign_coords({"class": [1, 3]}).astype("float32"),
        }
    )
    publish.LandCoverProduct(data, legend={1: "crops", 3: "forest"}).write(folder)
    (item,) = cat.search(folder, collections="landcover-optical")
    return item


@pytest.fixture(scope="module")
def tiles(
    pg_cluster: Any, scenario: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimpleNamespace]:
    """One server over a fresh database: a land-cover product and the scenario's Sentinel-2."""
    from mus_lab.catalog._pgstac import PgstacHoldings
    from tests._postgres import new_database

    work = tmp_path_factory.mktemp("tiles")
    store = work / "store"
    pystac.Catalog("store", "products").normalize_and_save(str(store), "SELF_CONTAINED")
    item = _landcover(store)
    # The same item once more, its classification copied outside the store.
    outside = work / "outside"
    outside.mkdir()
    shutil.copy(item.assets["classification"].get_absolute_href(), outside / "c.tif")
    stray = item.clone()
    stray.id = "stray"
    stray.assets["classification"].href = str(outside / "c.tif")
    stray.assets["confidence"].href = str(store / ".." / "outside" / "c.tif")
    s2 = list(cat.search(scenario.catalog_path, collections="sentinel-2-l2a"))
    database = new_database(pg_cluster, "tiles")
    with PgstacHoldings(database) as holdings:
        holdings.ingest([item, stray, *s2])
    server = TileServer(
        database, work / "server", roots=[store, Path(scenario.catalog_path).parent]
    )
    with server:
        yield SimpleNamespace(server=server, url=server.url, item=item, s2=s2, store=store)
    assert not server.running  # stopped at the end of the block: no process left


def _tile_and_pixel(lon: float, lat: float) -> tuple[Any, int, int]:
    """The WebMercatorQuad tile at ``ZOOM`` holding a point, and the point's pixel in it."""
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    tile = tms.tile(lon, lat, ZOOM)
    left, bottom, right, top = tms.xy_bounds(tile)
    x, y = tms.xy(lon, lat)
    return tile, int((x - left) / (right - left) * 256), int((top - y) / (top - bottom) * 256)


def _png(url: str) -> np.ndarray:
    answer = requests.get(url, timeout=60)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(answer.content)).convert("RGBA"))


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def test_tiles_show_the_products_pixels_in_their_legend_colours(tiles: SimpleNamespace) -> None:
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs("EPSG:32618", "EPSG:4326", always_xy=True)
    classes = tiles.item.assets["classification"].extra_fields["classification:classes"]
    colours = {c["value"]: c["color_hint"] for c in classes if "color_hint" in c}
    template = publish.item_tile_url(tiles.url, tiles.item, "classification")
    for (x, y), code in (((500150, 5000210), 1), ((500650, 5000190), 3)):
        tile, col, row = _tile_and_pixel(*to_lonlat.transform(x, y))
        image = _png(template.format(z=tile.z, x=tile.x, y=tile.y))
        assert tuple(image[row, col]) == (*_rgb(colours[code]), 255)
        # The named flood-risk map colours the same codes as risk classes.
        named = f"{tiles.url}/collections/landcover-optical/items/{tiles.item.id}/tiles/"
        named += f"WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png?assets=classification"
        risk = _png(named + "&colormap_name=mus-risk")
        assert tuple(risk[row, col]) == (*_rgb(RISK_COLOURS[code - 1]), 255)
    # Outside the product: transparent.
    tile, col, row = _tile_and_pixel(*to_lonlat.transform(499990, 5000200))
    assert _png(template.format(z=tile.z, x=tile.x, y=tile.y))[row, col, 3] == 0
    # Confidence (90 everywhere) through viridis over 0-100.
    from rio_tiler.colormap import cmap

    tile, col, row = _tile_and_pixel(*to_lonlat.transform(500400, 5000200))
    url = publish.item_tile_url(tiles.url, tiles.item, "confidence")
    expected = cmap.get("viridis")[int(90 / 100 * 255)]  # titiler truncates
    assert tuple(_png(url.format(z=tile.z, x=tile.x, y=tile.y))[row, col]) == tuple(expected)


def test_true_colour_mosaic_of_a_collection(tiles: SimpleNamespace) -> None:
    west, south, east, north = tiles.s2[0].bbox
    tile, col, row = _tile_and_pixel((west + east) / 2, (south + north) / 2)
    url = publish.collection_tile_url(
        tiles.url,
        "sentinel-2-l2a",
        publish.true_colour_render(),
        bbox=(west, south, east, north),
        datetime="2021-01-01/2022-12-31",
        max_cloud=30,
    )
    image = _png(url.format(z=tile.z, x=tile.x, y=tile.y))
    assert image[row, col, 3] == 255  # drawn
    assert image[..., :3].std() > 0  # a picture, not a flat fill
    # The pixel is the true colour of one of the scenes there (0-3000 DN to 0-255).
    import morecantile
    import rasterio
    from pyproj import Transformer

    tms = morecantile.tms.get("WebMercatorQuad")
    left, _, right, top = tms.xy_bounds(tile)
    size = (right - left) / 256
    centre = (left + (col + 0.5) * size, top - (row + 0.5) * size)
    colours = []
    for item in tiles.s2:
        if (item.properties.get("eo:cloud_cover") or 0) >= 30:
            continue
        rgb = []
        for band in ("red", "green", "blue"):
            with rasterio.open(item.assets[band].get_absolute_href()) as src:
                x, y = Transformer.from_crs("EPSG:3857", src.crs, always_xy=True).transform(*centre)
                rgb.append(float(next(src.sample([(x, y)]))[0]))
        colours.append(np.clip(np.array(rgb) / 3000 * 255, 0, 255))
    assert min(np.abs(c - image[row, col, :3]).max() for c in colours) <= 1.0


def test_wmts_capabilities_parse_with_owslib(tiles: SimpleNamespace) -> None:
    owslib = pytest.importorskip("owslib.wmts")
    item = tiles.item
    query = "assets=classification&colormap_name=mus-landcover"
    url = f"{tiles.url}/collections/landcover-optical/items/{item.id}/WMTSCapabilities.xml"
    wmts = owslib.WebMapTileService(f"{url}?{query}")
    assert set(wmts.tilematrixsets) == {"WebMercatorQuad", "WGS1984Quad"}
    (layer,) = [c for name, c in wmts.contents.items() if "WebMercatorQuad" in name]
    assert list(layer.tilematrixsetlinks) == ["WebMercatorQuad"]
    west, south, east, north = layer.boundingBoxWGS84
    assert west < item.bbox[0] + 1e-3 and east > item.bbox[2] - 1e-3
    template = layer.resourceURLs[0]["template"]
    assert template.startswith(tiles.url)
    tile, _, _ = _tile_and_pixel((west + east) / 2, (south + north) / 2)
    filled = template.replace("{TileMatrixSet}", "WebMercatorQuad").replace(
        "{TileMatrix}", str(tile.z)
    )
    filled = filled.replace("{TileCol}", str(tile.x)).replace("{TileRow}", str(tile.y))
    assert requests.get(filled, timeout=60).status_code == 200
    # The collection's mosaic has its capabilities too.
    mosaic = f"{tiles.url}/collections/sentinel-2-l2a/WMTSCapabilities.xml?"
    mosaic += "assets=red&assets=green&assets=blue&rescale=0,3000"
    assert owslib.WebMapTileService(mosaic).contents


def test_no_file_outside_the_store_and_no_write(tiles: SimpleNamespace) -> None:
    west, south, east, north = tiles.item.bbox
    tile, _, _ = _tile_and_pixel((west + east) / 2, (south + north) / 2)
    xyz = f"tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png"
    base = f"{tiles.url}/collections/landcover-optical/items/stray/{xyz}"
    for asset in ("classification", "confidence"):  # outside, and through ".."
        answer = requests.get(f"{base}?assets={asset}", timeout=30)
        assert answer.status_code == 403, answer.text[:200]
        assert "outside" not in answer.text
    for path in (
        f"/collections/..%2F..%2F..%2Fetc%2Fpasswd/items/x/{xyz}",
        "/collections/landcover-optical/items/..%2F..%2Fetc%2Fpasswd/info",
        "/external/info?url=/etc/passwd",
        "/cog/info?url=/etc/passwd",
        "/../../../../etc/passwd",
    ):
        answer = requests.get(tiles.url + path, timeout=30)
        assert answer.status_code in (400, 403, 404, 422), path
        assert "root:" not in answer.text
    for method in ("POST", "PUT", "DELETE"):
        answer = requests.request(method, f"{tiles.url}/searches/register", json={}, timeout=30)
        assert answer.status_code == 405
    assert requests.get(f"{tiles.url}/colorMaps/mus-landcover", timeout=30).status_code == 200


def test_command_line_status(tiles: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", str(tiles.server.folder)]) == 0
    assert capsys.readouterr().out.strip() == f"running: {tiles.url}"
    assert main(["start", str(tiles.server.folder / "other")]) == 2
    assert "--database" in capsys.readouterr().err
    state = json.loads((tiles.server.folder / "tiles.json").read_text())
    assert set(state) == {"port", "pid", "roots"}


def test_fuzzed_reads_give_no_server_error(tiles: SimpleNamespace, tmp_path: Path) -> None:
    """schemathesis over the tile service's OpenAPI: 2 examples per operation, fixed seed.

    Everything it serves is a read; odd tile indices, colour maps, expressions and bboxes must
    be 4xx answers, never a 5xx.
    """
    import re
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("st")
    if not exe.exists():
        pytest.skip("schemathesis is not installed (dev extra)")
    cmd = [str(exe), "run", f"{tiles.url}/api", "--checks", "not_a_server_error",
           "--phases", "examples,fuzzing", "--max-examples", "2", "--seed", "3",
           "--request-timeout", "20", "--no-color"]  # fmt: skip
    done = subprocess.run(  # in tmp_path: schemathesis keeps a cache in its folder
        cmd, capture_output=True, text=True, timeout=240, check=False, cwd=tmp_path
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "Server error" not in out, out[-3000:]
    tested = re.search(r"Tested: (\d+)", out)
    assert tested and int(tested.group(1)) >= 10, out[-3000:]
