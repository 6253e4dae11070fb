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
(``mus-lab serve``'s folder), or else one started for the run in ``--workdir`` (PostgreSQL +
the STAC API, 200 items in 4 collections sent through the transactions, stopped at the end).
Every URL must be on 127.0.0.1 / localhost; at most 200 clients and 600 s.

Reported as JSON (and in ``--workdir/report.json``): per target and in all, requests, errors
(an answer other than 2xx, or no answer), requests/s and p50/p95/max latency in ms; the
machine's load average before and after (the clients share the CPUs with the servers).

Usage: ``python benchmarks/bench_services_load.py [--clients 50] [--seconds 60] [--api URL]
[--url URL ...] [--tile Z/X/Y]``
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


def _search_post(api: str) -> Callable[[requests.Session, random.Random], requests.Response]:
    def send(session: requests.Session, rng: random.Random) -> requests.Response:
        x, y = rng.uniform(-80, -72), rng.uniform(40, 48)
        body = {
            "bbox": [x, y, x + 2, y + 2],
            "datetime": "2022-03-01T00:00:00Z/2022-09-30T00:00:00Z",
            "filter": {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 50]},
            "filter-lang": "cql2-json",
            "limit": 20,
        }
        return session.post(f"{api}/search", json=body, timeout=30)

    return send


def _search_get(api: str) -> Callable[[requests.Session, random.Random], requests.Response]:
    def send(session: requests.Session, rng: random.Random) -> requests.Response:
        x, y = rng.uniform(-80, -72), rng.uniform(40, 48)
        bbox = f"{x:.4f},{y:.4f},{x + 2:.4f},{y + 2:.4f}"
        return session.get(f"{api}/search", params={"bbox": bbox, "limit": 20}, timeout=30)

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
            requests.post(f"{url}/collections", json=_collection(cid), headers=auth, timeout=30)
            for n in range(50):
                requests.post(
                    f"{url}/collections/{cid}/items", json=_item(cid, n, rng), headers=auth,
                    timeout=30,
                )  # fmt: skip
        yield url
    finally:
        stop_services(folder)


def _api_of(folder: Path) -> str:
    from mus_lab.services.serve import status_services

    for status in status_services(folder):
        if status.name == "stac-api" and status.state == "running" and status.url:
            return status.url
    raise SystemExit(f"No STAC API runs in {folder}: `mus-lab serve start --dir {folder}` first.")


def main() -> None:
    parser = arg_parser(__doc__, workdir="bench_data/services_load")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--api", default=None, help="a running STAC API (else --dir, else own)")
    parser.add_argument("--dir", type=Path, default=None, help="`mus-lab serve`'s folder")
    parser.add_argument("--url", action="append", default=[], help="another URL to load")
    parser.add_argument("--tile", default=None, help="Z/X/Y around which {z}/{x}/{y} are drawn")
    parser.add_argument("--no-search", action="store_true", help="load only the --url targets")
    args = parser.parse_args()
    if not 1 <= args.clients <= 200 or not 0 < args.seconds <= 600:
        raise SystemExit("Bounded: 1 to 200 clients, at most 600 s.")
    extra = {f"url{i}": _tiles(_loopback(u), args.tile) for i, u in enumerate(args.url)}
    workdir: Path = args.workdir.absolute()
    with contextlib.ExitStack() as stack:
        targets: dict[str, Callable[[requests.Session, random.Random], Any]] = {
            k: _get(v) for k, v in extra.items()
        }
        if not args.no_search:
            if args.api:
                api = _loopback(args.api)
            elif args.dir:
                api = _loopback(_api_of(args.dir))
            else:
                api = stack.enter_context(_own_api(workdir))
            targets["search-post"] = _search_post(api)
            targets["search-get"] = _search_get(api)
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
        "load_average_before": before["load_average"],
        "load_average_after": after["load_average"],
        "cpus": after["cpus"],
    }
    write_report(result, workdir / "report.json")


if __name__ == "__main__":
    main()
