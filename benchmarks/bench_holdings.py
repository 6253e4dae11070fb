"""Search latency of the pgstac holdings against the static holdings, on 10,000 items.

Issue 13 benchmark (point 4). Synthetic Sentinel-2 L2A-like items (a grid of 100 km tiles
over southern Quebec and Ontario, a revisit every few days, random cloud cover, 13 assets
each) go into a :class:`~mus_lab.catalog.StaticHoldings` folder and into a
:class:`~mus_lab.catalog._pgstac.PgstacHoldings` database of the lab's own PostgreSQL
cluster (:class:`~mus_lab.services.postgres.PostgresCluster`, started in the work folder
and stopped at the end). Reported, in one run on the same machine:

* ingest seconds of each backend;
* the static backend's first search (it reads every item file into its in-memory index);
* median and p95 latency of a few typical queries over ``--repeat`` runs, and the ratio.

Both backends must find the same items for every query (checked). Figures are indicative:
the machine may be shared (the load average is in the report).

Usage: ``python benchmarks/bench_holdings.py [--items 10000] [--repeat 30] [--workdir DIR]``
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import statistics
import time
from typing import Any

import pystac
from _common import arg_parser, machine, print_table, write_report

from mus_lab.catalog import StaticHoldings
from mus_lab.catalog._pgstac import PgstacHoldings
from mus_lab.catalog._query import build_query
from mus_lab.services.postgres import PostgresCluster

COLLECTION = "sentinel-2-l2a"
BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
WEST, SOUTH, STEP = -80.0, 44.0, 1.0  # 1 degree tiles, 10 x 6 of them
COLS, ROWS = 10, 6
START = dt.datetime(2022, 1, 1, 15, 40, tzinfo=dt.UTC)


def synthetic_items(count: int, *, seed: int = 13) -> list[pystac.Item]:
    """``count`` S2-like items over a tile grid, each tile revisited every ~5 days."""
    rng = random.Random(seed)
    tiles = [(c, r) for r in range(ROWS) for c in range(COLS)]
    items = []
    for n in range(count):
        c, r = tiles[n % len(tiles)]
        when = START + dt.timedelta(days=5 * (n // len(tiles)), minutes=rng.randint(0, 20))
        west, south = WEST + c * STEP, SOUTH + r * STEP
        box = [west, south, west + STEP * 1.1, south + STEP * 1.1]  # tiles overlap a little
        tile = f"{17 + c // 5}T{'PQRSTU'[r]}{'ABCDEFGHJK'[c]}"
        item_id = f"S2{'AB'[n % 2]}_{tile}_{when:%Y%m%d}_0_L2A"
        item = pystac.Item(
            item_id,
            {
                "type": "Polygon",
                "coordinates": [
                    [
                        [box[0], box[1]],
                        [box[2], box[1]],
                        [box[2], box[3]],
                        [box[0], box[3]],
                        [box[0], box[1]],
                    ]
                ],
            },
            box,
            when,
            {
                "platform": f"sentinel-2{'ab'[n % 2]}",
                "constellation": "sentinel-2",
                "eo:cloud_cover": round(rng.random() ** 2 * 100, 3),
                "s2:mgrs_tile": tile,
                "proj:epsg": 32617 + c // 5,
                "view:sun_azimuth": round(150 + 20 * rng.random(), 2),
                "view:sun_elevation": round(20 + 40 * rng.random(), 2),
            },
            collection=COLLECTION,
        )
        for band in BANDS:
            item.add_asset(
                band,
                pystac.Asset(
                    f"s3://example-bucket/{tile}/{when:%Y/%m/%d}/{item_id}/{band}.tif",
                    media_type=pystac.MediaType.COG,
                    roles=["data"],
                ),
            )
        item.add_asset("SCL", pystac.Asset(f"s3://example-bucket/{item_id}/SCL.tif"))
        items.append(item)
    return items


QUERIES: dict[str, dict[str, Any]] = {
    "one tile, one month": {"bbox": (-76.6, 46.2, -76.4, 46.4), "datetime": "2023-05"},
    "region, summer, cloud<=20": {
        "bbox": (-78.0, 45.0, -74.0, 48.0),
        "datetime": "2023-06-01/2023-08-31",
        "max_cloud": 20,
    },
    "point, all dates, cloud<=10": {
        "intersects": {"type": "Point", "coordinates": [-73.57, 45.5]},
        "max_cloud": 10,
    },
    "CQL2 tile + year": {"filter": "\"s2:mgrs_tile\" = '17TRD'", "datetime": "2022"},
    "first 100 of everything": {"max_items": 100},
}


def query(spec: dict[str, Any]) -> Any:
    args: dict[str, Any] = {
        "collections": COLLECTION,
        "bbox": None,
        "intersects": None,
        "datetime": None,
        "max_cloud": None,
        "filter": None,
        "filter_lang": None,
        "max_items": None,
        "limit": None,
    }
    args.update(spec)
    return build_query(**args)


def latencies(fn: Any, repeat: int) -> tuple[float, float, Any]:
    """Median and p95 milliseconds of ``repeat`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return (
        statistics.median(times),
        times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
        result,
    )


def main() -> None:
    parser = arg_parser(__doc__, repeat=30)
    parser.add_argument("--items", type=int, default=10_000)
    args = parser.parse_args()
    work = args.workdir.absolute() / "holdings"
    shutil.rmtree(work, ignore_errors=True)  # a fresh folder and cluster each run
    work.mkdir(parents=True, exist_ok=True)
    items = synthetic_items(args.items)

    static = StaticHoldings(work / "static")
    t0 = time.perf_counter()
    static.ingest(items)
    static_ingest = time.perf_counter() - t0
    t0 = time.perf_counter()
    static.search(query({"max_items": 1}))
    static_index = time.perf_counter() - t0

    with PostgresCluster(work / "pg", durable=False) as cluster, PgstacHoldings(cluster.url) as pg:
        if True:
            t0 = time.perf_counter()
            pg.ingest(items)
            pg_ingest = time.perf_counter() - t0
            rows, report_queries = [], {}
            for name, spec in QUERIES.items():
                q = query(spec)
                s_med, s_p95, s_items = latencies(lambda q=q: static.search(q), args.repeat)
                p_med, p_p95, p_items = latencies(lambda q=q: pg.search(q), args.repeat)
                if spec.get("max_items") is None:
                    assert sorted(i.id for i in s_items) == sorted(i.id for i in p_items), name
                else:
                    assert len(s_items) == len(p_items), name
                rows.append((name, len(p_items), s_med, s_p95, p_med, p_p95, p_med / s_med))
                report_queries[name] = {
                    "items": len(p_items),
                    "static_ms": {"median": round(s_med, 2), "p95": round(s_p95, 2)},
                    "pgstac_ms": {"median": round(p_med, 2), "p95": round(p_p95, 2)},
                    "pgstac_over_static": round(p_med / s_med, 2),
                }
    print_table(
        [
            ("query", "<30"),
            ("items", ">7d"),
            ("static med ms", ">15.1f"),
            ("p95", ">8.1f"),
            ("pgstac med ms", ">15.1f"),
            ("p95", ">8.1f"),
            ("ratio", ">8.2f"),
        ],
        rows,
    )
    write_report(
        {
            "items": args.items,
            "repeat": args.repeat,
            "ingest_s": {"static": round(static_ingest, 2), "pgstac": round(pg_ingest, 2)},
            "static_first_search_s (index build)": round(static_index, 2),
            "queries": report_queries,
            "machine": machine(),
        },
        args.workdir / "bench_holdings.json",
    )


if __name__ == "__main__":
    main()
