"""Load test of the lab's services: N concurrent clients for S seconds, on 127.0.0.1 only.

Issue 15 ("Security and reliability"): ``--clients`` threads (default 50) send requests in a
loop for ``--seconds`` (default 60), each picking a target at random:

- ``search-post``: ``POST /search`` of the STAC API (random bbox, a datetime interval, a CQL2
  filter, 20 items a page);
- ``search-get``: ``GET /search?bbox=...&limit=20``;
- every ``--url`` given (a tile, a WMS ``GetMap``, a WCS ``GetCoverage``...), as is, or with
  ``{z}``, ``{x}``, ``{y}`` filled from tiles around ``--tile Z/X/Y`` (a 5x5 block), e.g.
  ``--url 'http://127.0.0.1:PORT/collections/c/tiles/WebMercatorQuad/{z}/{x}/{y}' --tile 12/1205/1480``.

The STAC API is ``--api URL`` (e.g. what ``mus-lab serve`` printed), or else ``--dir DIR``
(``mus-lab serve``'s folder), or else (the default, the issue's figure) services started for the
run in ``--workdir`` over a sample scenario, all stopped at the end (no process left):

- a sample scenario (``--size`` px, ``--dates`` Sentinel-2 dates, kept in ``--workdir`` for
  the next run) and a land-cover product of it (its truth map, written by
  :mod:`mus_lab.publish`), both ingested into pgstac (the holdings ingest);
- PostgreSQL, the STAC API, the tile service and the WMS/WCS (``mus-lab serve``'s
  :func:`~mus_lab.services.serve.start_services`, the product catalog given to the WMS);
- targets besides the two searches (over the scenario's area and dates): ``tiles-s2``, XYZ
  tiles of the true-colour Sentinel-2 mosaic of the collection over the area (z 14-16, every
  tile intersecting it, from morecantile), ``tiles-product``, the same tiles of the
  product's ``classification``, and ``wms-getmap``, WMS 1.3.0 ``GetMap`` of the product's
  layer on those tiles' bounds (256 x 256 PNG). Before the load, one tile of each is checked
  to be a PNG with drawn (non-transparent) pixels.

``--synthetic`` instead starts PostgreSQL + the STAC API only, with 200 synthetic items in 4
collections sent through the transactions (search only). Every URL must be on 127.0.0.1 /
localhost; at most 200 clients and 600 s.

Reported as JSON (and in ``--workdir/report.json``): per target and in all, requests, errors
(an answer other than 2xx, or no answer), requests/s and p50/p95/max latency in ms; the
machine's load average before and after (the clients share the CPUs with the servers).

Usage: ``python benchmarks/bench_services_load.py [--clients 50] [--seconds 60] [--api URL]
[--url URL ...] [--tile Z/X/Y] [--size 256] [--dates 4] [--synthetic]``
"""

from __future__ import annotations

import contextlib
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from _common import arg_parser, machine, write_report

_LOCAL = {"127.0.0.1", "localhost", "::1"}


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _loopback(url: str) -> str:
    host = urlsplit(url).hostname
    if host not in _LOCAL:
        raise SystemExit(f"{url}: the load test only targets 127.0.0.1 / localhost.")
    return url.rstrip("/")


def _tiles(template: str, center: str | None) -> Callable[[random.Random], str]:
    if "{z}" not in template:
        return lambda rng: template
    if not center:
        raise SystemExit(
            f"{template} has {{z}}/{{x}}/{{y}}: give --tile Z/X/Y around which to draw."
        )
    z, x, y = (int(v) for v in center.split("/"))
    return lambda rng: template.format(z=z, x=x + rng.randint(-2, 2), y=y + rng.randint(-2, 2))


@dataclass(frozen=True)
class _Area:
    """Where the searches draw their boxes (lon/lat), how wide, and their period."""

    bbox: tuple[float, float, float, float] = (-80.0, 40.0, -70.0, 50.0)
    box: float = 2.0
    datetime: str = "2022-03-01T00:00:00Z/2022-09-30T00:00:00Z"

    def draw(self, rng: random.Random) -> tuple[float, float, float, float]:
        west, south, east, north = self.bbox
        x = rng.uniform(west, max(west, east - self.box))
        y = rng.uniform(south, max(south, north - self.box))
        return x, y, x + self.box, y + self.box


def _search_post(
    api: str, area: _Area
) -> Callable[[requests.Session, random.Random], requests.Response]:
    def send(session: requests.Session, rng: random.Random) -> requests.Response:
        body: dict[str, Any] = {
            "bbox": list(area.draw(rng)),
            "datetime": area.datetime,
            "filter": {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 50]},
            "filter-lang": "cql2-json",
            "limit": 20,
        }
        return session.post(f"{api}/search", json=body, timeout=30)

    return send


def _search_get(
    api: str, area: _Area
) -> Callable[[requests.Session, random.Random], requests.Response]:
    def send(session: requests.Session, rng: random.Random) -> requests.Response:
        bbox = ",".join(f"{v:.5f}" for v in area.draw(rng))
        return session.get(f"{api}/search", params={"bbox": bbox, "limit": "20"}, timeout=30)

    return send


def _get(pick: Callable[[random.Random], str]) -> Callable[[requests.Session, random.Random], Any]:
    return lambda session, rng: session.get(pick(rng), timeout=30)


def _client(
    targets: dict[str, Callable[[requests.Session, random.Random], Any]],
    tallies: dict[str, _Tally],
    stop: float,
    seed: int,
) -> None:
    rng = random.Random(seed)
    names = sorted(targets)
    session = requests.Session()
    session.trust_env = False  # never through a proxy
    while time.monotonic() < stop:
        name = rng.choice(names)
        tally = tallies[name]
        start = time.perf_counter()
        try:
            answer = targets[name](session, rng)
            answer.content  # noqa: B018 - read the whole body
        except requests.RequestException as exc:
            tally.errors.append(type(exc).__name__)
            continue
        if not 200 <= answer.status_code < 300:
            tally.errors.append(str(answer.status_code))
            continue
        tally.latencies.append((time.perf_counter() - start) * 1000)


def _summary(tally: _Tally, wall: float) -> dict[str, Any]:
    lat = tally.latencies
    cuts = statistics.quantiles(lat, n=20) if len(lat) > 1 else [float("nan")] * 19
    total = len(lat) + len(tally.errors)
    return {
        "requests": total,
        "errors": len(tally.errors),
        "error_kinds": sorted(set(tally.errors)),
        "requests_per_s": round(total / wall, 1) if wall else None,
        "latency_ms": {
            "p50": round(statistics.median(lat), 1) if lat else None,
            "p95": round(cuts[18], 1) if lat else None,
            "max": round(max(lat), 1) if lat else None,
        },
    }


@contextlib.contextmanager
def _own_api(workdir: Path) -> Iterator[str]:
    """PostgreSQL + the STAC API in ``workdir``, seeded as bench_stac_api.py does."""
    from bench_stac_api import COLLECTIONS, _collection, _item

    from mus_lab.services.serve import start_services, stop_services

    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)
    folder = workdir / "services"
    try:
        done = start_services(folder, durable=False, only=("stac-api",))
        url = str(next(s.url for s in done if s.name == "stac-api"))
        token = (folder / "stac-api" / "token").read_text("utf-8").strip()
        auth = {"Authorization": f"Bearer {token}"}
        rng = random.Random(0)
        for cid in COLLECTIONS:
            collection: dict[str, Any] = _collection(cid)
            requests.post(f"{url}/collections", json=collection, headers=auth, timeout=30)
            for n in range(50):
                item: dict[str, Any] = _item(cid, n, rng)
                requests.post(f"{url}/collections/{cid}/items", json=item, headers=auth, timeout=30)
        yield url
    finally:
        stop_services(folder)


ZOOMS = (14, 15, 16)


@dataclass
class _Scene:
    """What the scenario mode started: URLs, the search area and the image targets."""

    api: str
    area: _Area
    targets: dict[str, Callable[[random.Random], str]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


def scenario_tiles(
    bbox: tuple[float, float, float, float], zooms: tuple[int, ...] = ZOOMS
) -> list[tuple[int, int, int]]:
    """The WebMercatorQuad tiles ``(z, x, y)`` intersecting ``bbox`` (lon/lat) at ``zooms``.

    The box is shrunk by 1 % of its size first, so that no tile merely touching its edge
    (which the tile service would answer 404) is drawn.
    """
    import morecantile

    west, south, east, north = bbox
    dx, dy = (east - west) / 100, (north - south) / 100
    tms = morecantile.tms.get("WebMercatorQuad")
    tiles = tms.tiles(west + dx, south + dy, east - dx, north - dy, zooms=list(zooms))
    return [(t.z, t.x, t.y) for t in tiles]


def _landcover_product(scenario: Any, store: Path) -> Any:
    """The scenario's truth land cover written as a land-cover product into ``store``."""
    import pystac
    import rasterio
    import xarray as xr
    from affine import Affine
    from odc.geo.geobox import GeoBox
    from odc.geo.xr import xr_zeros

    from mus_lab import catalog as cat
    from mus_lab import publish

    if not (store / "catalog.json").exists():
        pystac.Catalog("products", "Products of the load test").normalize_and_save(
            str(store), pystac.CatalogType.SELF_CONTAINED
        )
    if not (store / "landcover-optical").exists():
        with rasterio.open(scenario.landcover) as src:
            codes = src.read(1)
        gbox = GeoBox(scenario.shape, Affine(*scenario.transform[:6]), scenario.crs)
        classes = xr_zeros(gbox, "uint8") + codes.astype("uint8")
        legend = {c: n for c, n in scenario.legend.items() if (codes == c).any()}
        prob = xr.concat([(classes == c) * 0.8 + 0.1 for c in legend], "class")
        prob = prob.assign_coords({"class": list(legend)}).astype("float32")
        score = (prob.max("class") * 100).astype("uint8")
        data = xr.Dataset(
            {"classification": classes, "confidence": score, "margin": score, "probability": prob}
        )
        publish.LandCoverProduct(data, legend=legend).write(store)
    (item,) = cat.search(store, collections="landcover-optical")
    return item


def _check_image(name: str, url: str) -> None:
    """Stop the run unless ``url`` answers a PNG with some drawn (non-transparent) pixel."""
    import io

    import numpy as np
    from PIL import Image

    answer = requests.get(url, timeout=60)
    kind = answer.headers.get("content-type", "")
    if answer.status_code != 200 or not kind.startswith("image/png"):
        raise SystemExit(f"{name}: {url} answered {answer.status_code} {kind}: {answer.text[:300]}")
    pixels = np.asarray(Image.open(io.BytesIO(answer.content)).convert("RGBA"))
    if not pixels[..., 3].any():
        raise SystemExit(f"{name}: {url} is a fully transparent PNG: nothing is drawn.")


@contextlib.contextmanager
def _own_scenario(workdir: Path, *, size: int, dates: int) -> Iterator[_Scene]:
    """A sample scenario + product in pgstac, with the STAC API, tiles and WMS over them."""
    import time as _time

    from mus_lab import catalog as cat
    from mus_lab import publish, sample
    from mus_lab.catalog._pgstac import PgstacHoldings
    from mus_lab.services.serve import start_services, stop_services

    begun = _time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)
    folder = workdir / "services"
    # The Sentinel-2 files must lie under a tile root: the product store, DIR/products.
    where = folder / "products" / f"sample-{size}-{dates}"
    if (where / "scenario.json").exists():
        scenario = sample.Scenario.open(where)
    else:
        start, end = "2022-04-01", "2022-09-30"
        every = max(1, 182 // max(1, dates))
        scenario = sample.generate(
            where, size=size, start=start, end=end, s2_every_days=every, sensors=("s2",)
        )
    store = workdir / "products"
    item = _landcover_product(scenario, store)
    s2 = list(cat.search(scenario.catalog_path, collections="sentinel-2-l2a"))
    try:
        done = {
            s.name: s
            for s in start_services(
                folder,
                catalog=store / "catalog.json",
                durable=False,
                only=("stac-api", "tiles", "ows"),
            )
        }
        with PgstacHoldings(str(done["postgres"].url)) as holdings:
            holdings.ingest([*s2, item])
        days = scenario.dates["s2"]
        area = _Area(
            tuple(scenario.bbox),  # type: ignore[arg-type]
            box=(scenario.bbox[2] - scenario.bbox[0]) / 2,
            datetime=f"{days[0]}T00:00:00Z/{days[-1]}T23:59:59Z",
        )
        scene = _Scene(str(done["stac-api"].url).rstrip("/"), area)
        tiles = scenario_tiles(scenario.bbox)
        base = str(done["tiles"].url).rstrip("/")
        mosaic = publish.collection_tile_url(
            base,
            "sentinel-2-l2a",
            publish.true_colour_render(),
            bbox=scenario.bbox,
            datetime=f"{days[0]}/{days[-1]}",
        )
        product = publish.item_tile_url(base, item, "classification")

        def xyz(template: str) -> Callable[[random.Random], str]:
            return lambda rng: template.format(**dict(zip("zxy", rng.choice(tiles), strict=True)))

        scene.targets["tiles-s2"] = xyz(mosaic)
        scene.targets["tiles-product"] = xyz(product)
        ows = done.get("ows")
        if ows is not None and ows.state == "running" and ows.url:
            import morecantile

            tms = morecantile.tms.get("WebMercatorQuad")
            wms = str(ows.url)

            def getmap(rng: random.Random) -> str:
                z, x, y = rng.choice(tiles)
                box = tms.xy_bounds(morecantile.Tile(x, y, z))
                return wms + (
                    "?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&STYLES=&CRS=EPSG:3857"
                    "&LAYERS=landcover-optical.classification&FORMAT=image/png&TRANSPARENT=TRUE"
                    f"&WIDTH=256&HEIGHT=256&BBOX={box.left},{box.bottom},{box.right},{box.top}"
                )

            scene.targets["wms-getmap"] = getmap
        else:
            scene.notes["wms"] = ows.line() if ows is not None else "the ows module is absent"
        first = random.Random(0)
        for name, pick in scene.targets.items():
            _check_image(name, pick(first))
        body: dict[str, Any] = {"bbox": list(area.bbox), "datetime": area.datetime}
        found = requests.post(f"{scene.api}/search", json=body, timeout=60).json()["features"]
        if len(found) != len(s2):
            raise SystemExit(f"The search over the scenario found {len(found)} of {len(s2)} items.")
        scene.notes.update(
            size=size,
            s2_items=len(s2),
            product=f"{item.collection_id}/{item.id}",
            tiles=len(tiles),
            zooms=list(ZOOMS),
            templates={"tiles-s2": mosaic, "tiles-product": product},
            setup_s=round(_time.monotonic() - begun, 1),
        )
        yield scene
    finally:
        stop_services(folder)


def _api_of(folder: Path) -> str:
    from mus_lab.services.serve import status_services

    for status in status_services(folder):
        if status.name == "stac-api" and status.state == "running" and status.url:
            return status.url
    raise SystemExit(f"No STAC API runs in {folder}: `mus-lab serve start --dir {folder}` first.")


def main() -> None:
    parser = arg_parser(__doc__, workdir="bench_data/services_load", size=256, dates=4)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--api", default=None, help="a running STAC API (else --dir, else own)")
    parser.add_argument("--dir", type=Path, default=None, help="`mus-lab serve`'s folder")
    parser.add_argument("--url", action="append", default=[], help="another URL to load")
    parser.add_argument("--tile", default=None, help="Z/X/Y around which {z}/{x}/{y} are drawn")
    parser.add_argument("--no-search", action="store_true", help="load only the --url targets")
    parser.add_argument(
        "--synthetic", action="store_true", help="own STAC API of synthetic items, search only"
    )
    args = parser.parse_args()
    if not 1 <= args.clients <= 200 or not 0 < args.seconds <= 600:
        raise SystemExit("Bounded: 1 to 200 clients, at most 600 s.")
    extra = {f"url{i}": _tiles(_loopback(u), args.tile) for i, u in enumerate(args.url)}
    workdir: Path = args.workdir.absolute()
    notes: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        targets: dict[str, Callable[[requests.Session, random.Random], Any]] = {
            k: _get(v) for k, v in extra.items()
        }
        if not args.no_search:
            area = _Area()
            if args.api:
                api = _loopback(args.api)
            elif args.dir:
                api = _loopback(_api_of(args.dir))
            elif args.synthetic:
                api = stack.enter_context(_own_api(workdir))
            else:
                scene = stack.enter_context(
                    _own_scenario(workdir, size=args.size, dates=args.dates)
                )
                api, area, notes = scene.api, scene.area, scene.notes
                targets.update({k: _get(v) for k, v in scene.targets.items()})
            targets["search-post"] = _search_post(api, area)
            targets["search-get"] = _search_get(api, area)
        if not targets:
            raise SystemExit("Nothing to load: give --url, or leave out --no-search.")
        tallies = {name: _Tally() for name in targets}
        before = machine()
        stop = time.monotonic() + args.seconds
        threads = [
            threading.Thread(target=_client, args=(targets, tallies, stop, i))
            for i in range(args.clients)
        ]
        begun = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - begun
        after = machine()
    everything = _Tally(
        [v for t in tallies.values() for v in t.latencies],
        [e for t in tallies.values() for e in t.errors],
    )
    result = {
        "clients": args.clients,
        "seconds": round(wall, 1),
        "targets": {name: _summary(t, wall) for name, t in sorted(tallies.items())},
        "urls": {f"url{i}": u for i, u in enumerate(args.url)},
        "all": _summary(everything, wall),
        "scenario": notes,
        "load_average_before": before["load_average"],
        "load_average_after": after["load_average"],
        "cpus": after["cpus"],
    }
    write_report(result, workdir / "report.json")


if __name__ == "__main__":
    main()
