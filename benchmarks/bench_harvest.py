"""Harvest throughput against aria2c, and its memory against the number of files.

Same files, same local server, same concurrency, in one run:

* ``--files`` files of ``--size-mb`` MB of random bytes, generated once in
  ``WORKDIR/harvest_src`` and served by :class:`mus_lab.testing.FileServer` (its fast
  ``sendfile`` path, no fault) in a process of its own on 127.0.0.1;
* **ours**: ``catalog.harvest`` of one item per file (``file:checksum`` and ``file:size``
  given, so every file is hashed and verified, as a real harvest does), ``--workers``
  threads, in a child process (peak RSS polled by ``_common.run_child``); MB/s from the
  harvest's own wall time, ingest into the holdings included;
* **aria2c** (Debian's ``aria2``, ``make aria2``): the same URLs, ``-j WORKERS -x 1``
  (one connection per file, WORKERS files at a time), no checksum, no pre-allocation;
* the engines alternate over ``--repeat`` rounds (load drifts hit both); each round
  writes into an empty folder; the best round of each is reported;
* memory: our peak RSS harvesting a quarter of the files vs all of them: flat when the
  difference is small against the file size (the items themselves are the only thing that
  grows with the count).

Usage: ``python benchmarks/bench_harvest.py [--files 200] [--size-mb 20] [--workers 8]
[--repeat 2] [--workdir DIR] [--json FILE]``. Needs ``aria2c`` and disk for the sources
plus one copy (8 GB at the defaults); not run by the tests. Our MB/s is timed inside the
harvest (the child's Python start and imports left out); aria2c's includes its start.
The goal: at least 0.9 of aria2c's MB/s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import arg_parser, machine, run_child, write_report

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

SERVER = r"""
import sys
from mus_lab.testing import FileServer
with FileServer(sys.argv[1]) as server:
    print(server.url, flush=True)
    sys.stdin.read()
"""

OURS = r"""
import json, sys, pystac
from mus_lab.catalog import harvest
items = list(pystac.ItemCollection.from_file(sys.argv[1]))
report = harvest(items, sys.argv[2], workers=int(sys.argv[3]), progress=False)
assert report.ok, report.summary()
print(json.dumps({"seconds": report.seconds, "bytes": report.bytes, "files": report.files}))
"""


def make_sources(folder: Path, files: int, size: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(files):
        path = folder / f"f{i:04d}.bin"
        if not path.is_file() or path.stat().st_size != size:
            with open(path, "wb") as fh:
                left = size
                while left:
                    n = min(left, 1 << 22)
                    fh.write(os.urandom(n))
                    left -= n
        paths.append(path)
    return paths


def write_items(paths: list[Path], url: str, out: Path) -> None:
    import datetime as dt
    import hashlib

    import pystac

    items = []
    for path in paths:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        item = pystac.Item(
            path.stem,
            None,
            None,
            dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            {},
            collection="bench",
        )
        item.add_asset(
            "data",
            pystac.Asset(
                f"{url}/{path.name}",
                roles=["data"],
                extra_fields={"file:checksum": "1220" + digest, "file:size": path.stat().st_size},
            ),
        )
        items.append(item)
    out.write_text(json.dumps(pystac.ItemCollection(items).to_dict()))


def run_ours(items: Path, dest: Path, workers: int, env: dict[str, str]) -> dict[str, float]:
    shutil.rmtree(dest, ignore_errors=True)
    child = run_child(
        [sys.executable, "-c", OURS, str(items), str(dest), str(workers)],
        env=env,
        capture=True,
        label="harvest",
    )
    out = json.loads((child.stdout or "").strip().splitlines()[-1])
    shutil.rmtree(dest, ignore_errors=True)  # disk: the sources plus one copy at a time
    return {
        "seconds": out["seconds"],
        "mb_per_s": out["bytes"] / 1e6 / out["seconds"],
        "peak_rss_mib": child.peak_rss_mib,
    }


def run_aria2(urls: list[str], dest: Path, workers: int) -> dict[str, float]:
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    listing = dest.parent / "aria2_input.txt"
    listing.write_text("".join(f"{u}\n" for u in urls))
    cmd = [
        "aria2c", f"--input-file={listing}", f"--dir={dest}", f"--max-concurrent-downloads={workers}",
        "--max-connection-per-server=1", "--split=1", "--file-allocation=none",
        "--allow-overwrite=true", "--auto-file-renaming=false", "--check-certificate=false",
        "--console-log-level=warn", "--summary-interval=0", "--quiet=true",
    ]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(f"aria2c failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    total = sum(p.stat().st_size for p in dest.iterdir())
    shutil.rmtree(dest, ignore_errors=True)
    return {"seconds": seconds, "mb_per_s": total / 1e6 / seconds}


def main() -> None:
    parser = arg_parser(__doc__, workdir="bench_data", repeat=2)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size-mb", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if shutil.which("aria2c") is None:
        sys.exit("aria2c is missing: `make aria2` (Debian package aria2) installs it.")
    work = args.workdir.resolve() / "harvest"
    size = int(args.size_mb * 1e6)
    t0 = time.perf_counter()
    paths = make_sources(work / "src", args.files, size)
    print(f"{args.files} files of {size / 1e6:.1f} MB ready in {time.perf_counter() - t0:.1f} s")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(work / "src")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        quarter = max(1, args.files // 4)
        write_items(paths, url, work / "items.json")
        write_items(paths[:quarter], url, work / "items_quarter.json")
        urls = [f"{url}/{p.name}" for p in paths]
        ours, theirs = [], []
        for _ in range(args.repeat):
            ours.append(run_ours(work / "items.json", work / "dest_ours", args.workers, env))
            theirs.append(run_aria2(urls, work / "dest_aria2", args.workers))
            print(
                f"  ours {ours[-1]['mb_per_s']:.0f} MB/s, aria2c {theirs[-1]['mb_per_s']:.0f} MB/s"
            )
        small = run_ours(work / "items_quarter.json", work / "dest_quarter", args.workers, env)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(10)
        for name in ("dest_ours", "dest_aria2", "dest_quarter"):
            shutil.rmtree(work / name, ignore_errors=True)
    best_ours = max(ours, key=lambda r: r["mb_per_s"])
    best_aria = max(theirs, key=lambda r: r["mb_per_s"])
    result = {
        "benchmark": "harvest",
        "files": args.files,
        "size_mb": size / 1e6,
        "workers": args.workers,
        "machine": machine(
            aria2c=subprocess.run(
                ["aria2c", "--version"], capture_output=True, text=True
            ).stdout.splitlines()[0]
        ),
        "ours_mb_per_s": round(best_ours["mb_per_s"], 1),
        "aria2c_mb_per_s": round(best_aria["mb_per_s"], 1),
        "ratio": round(best_ours["mb_per_s"] / best_aria["mb_per_s"], 3),
        "goal_ratio": 0.9,
        "peak_rss_mib": {
            f"{quarter} files": round(small["peak_rss_mib"], 1),
            f"{args.files} files": round(max(r["peak_rss_mib"] for r in ours), 1),
        },
        "rounds": {"ours": ours, "aria2c": theirs},
    }
    write_report(result, args.json or args.workdir / "bench_harvest.json")


if __name__ == "__main__":
    main()
