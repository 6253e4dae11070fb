"""Load test of the STAC API's search: N concurrent clients for S seconds, on 127.0.0.1.

Issue 15 ("Security and reliability"): a PostgreSQL cluster and the STAC API start in
``--workdir``, 200 items (4 collections x 50 dates, small polygons) go in through the
transaction extension, then ``--clients`` threads (default 50) each send searches in a loop
for ``--seconds`` (default 60): ``POST /search`` with a random bbox, a datetime interval and a
CQL2 filter, and ``GET /collections/{id}/items``, alternately. Reported: requests, errors
(any non-200 answer or exception), p50/p95/max latency in ms, the machine's load.

Usage: ``python benchmarks/bench_stac_api.py [--clients 50] [--seconds 60] [--workdir DIR]``
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import requests
from _common import arg_parser, machine, write_report

COLLECTIONS = ("bench-a", "bench-b", "bench-c", "bench-d")


def _collection(cid: str) -> dict[str, Any]:
    return {
        "type": "Collection", "id": cid, "description": "load test", "license": "other",
        "stac_version": "1.0.0", "links": [],
        "extent": {"spatial": {"bbox": [[-80, 40, -70, 50]]},
                   "temporal": {"interval": [["2022-01-01T00:00:00Z", None]]}},
    }  # fmt: skip


def _item(cid: str, n: int, rng: random.Random) -> dict[str, Any]:
    x, y = rng.uniform(-80, -71), rng.uniform(40, 49)
    ring = [[x, y], [x + 0.5, y], [x + 0.5, y + 0.5], [x, y + 0.5], [x, y]]
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": f"{cid}-{n:03d}", "collection": cid,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": [x, y, x + 0.5, y + 0.5], "links": [], "assets": {},
        "properties": {"datetime": f"2022-{1 + n % 12:02d}-{1 + n % 28:02d}T10:00:00Z",
                       "eo:cloud_cover": rng.uniform(0, 100), "processing:level": "L2A"},
    }  # fmt: skip


def _client(url: str, stop: float, seed: int, out: list[float], errors: list[str]) -> None:
    rng = random.Random(seed)
    session = requests.Session()
    while time.monotonic() < stop:
        x, y = rng.uniform(-80, -72), rng.uniform(40, 48)
        start = time.perf_counter()
        try:
            if rng.random() < 0.5:
                answer = session.post(
                    f"{url}/search",
                    json={
                        "bbox": [x, y, x + 2, y + 2],
                        "datetime": "2022-03-01T00:00:00Z/2022-09-30T00:00:00Z",
                        "filter": {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 50]},
                        "filter-lang": "cql2-json",
                        "limit": 20,
                    },
                    timeout=30,
                )
            else:
                cid = rng.choice(COLLECTIONS)
                answer = session.get(f"{url}/collections/{cid}/items?limit=20", timeout=30)
            ok = answer.status_code == 200
            if not ok:
                errors.append(str(answer.status_code))
        except requests.RequestException as exc:
            errors.append(type(exc).__name__)
            continue
        out.append((time.perf_counter() - start) * 1000)


def main() -> None:
    parser = arg_parser(__doc__, workdir="bench_data/stac_api")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    from mus_lab.services.postgres import PostgresCluster
    from mus_lab.services.stac_api import StacApiServer

    workdir: Path = args.workdir.absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)
    with (
        PostgresCluster(workdir / "postgres", durable=False) as pg,
        StacApiServer(pg.url, workdir / "stac-api") as api,
    ):
        url = api.url or ""
        auth = {"Authorization": f"Bearer {api.token}"}
        rng = random.Random(0)
        for cid in COLLECTIONS:
            requests.post(f"{url}/collections", json=_collection(cid), headers=auth, timeout=30)
            for n in range(50):
                requests.post(
                    f"{url}/collections/{cid}/items", json=_item(cid, n, rng), headers=auth,
                    timeout=30,
                )  # fmt: skip
        latencies: list[float] = []
        errors: list[str] = []
        stop = time.monotonic() + args.seconds
        threads = [
            threading.Thread(target=_client, args=(url, stop, i, latencies, errors))
            for i in range(args.clients)
        ]
        begun = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - begun
    cuts = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else [float("nan")] * 19
    result = {
        "clients": args.clients,
        "seconds": round(wall, 1),
        "requests": len(latencies) + len(errors),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "requests_per_s": round((len(latencies) + len(errors)) / wall, 1),
        "latency_ms": {
            "p50": round(statistics.median(latencies), 1) if latencies else None,
            "p95": round(cuts[18], 1),
            "max": round(max(latencies), 1) if latencies else None,
        },
        "machine": machine(),
    }
    write_report(result, workdir / "report.json")


if __name__ == "__main__":
    main()
