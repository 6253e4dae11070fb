"""Kill test: a harvest of 100 files SIGKILLed at 20 random moments, resumed each time.

The harvest runs in a child process. ``import mus_lab.catalog`` takes seconds here
(pystac_client's validation imports), so a "zygote" (``python -c``, started once) imports
it and forks one child per run; the zygote sends the child SIGKILL after a random delay
(seeded, printed) or reaps it when it ends first. A fork is a real process: SIGKILL
leaves its files exactly as a killed ``mus-lab harvest`` would. The last resume runs
``python -m mus_lab.cli harvest`` itself.

The server trickles (4 KiB every 20 ms per connection) so that kills land mid-body. Checked
at the end (the last resume at full speed): every file present once under its item and equal to the source, every
``file:checksum`` verifies, no ``.part`` left, every item held; and from the server's
log: a file that was complete under its final name at a kill is never requested again,
and every resumed request starts where the ``.part`` ended (or at 0 when there was none).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from mus_lab.catalog._harvest_fetch import parse_checksum, verify_file
from mus_lab.testing import Fault, FileServer
from tests.catalog.conftest import write_catalog
from tests.catalog.test_harvest import COLLECTION, check_dest, make_files, make_items

N_ITEMS, KEYS, SIZE, KILLS = 50, ("red", "nir"), 64 * 1024, 20

ZYGOTE = r"""
import json, os, signal, sys, time
from mus_lab.catalog import RetryPolicy, harvest, search

catalog, dest = sys.argv[1], sys.argv[2]
items = list(search(catalog, collections="test-coll"))
policy = RetryPolicy(backoff=0.05, max_backoff=0.2)
print("ready", flush=True)
for line in sys.stdin:
    delay = float(line)
    pid = os.fork()
    if pid == 0:
        report = harvest(items, dest, workers=4, progress=False, retries=policy)
        os._exit(0 if report.ok else 1)
    end, status = time.monotonic() + delay, None
    while status is None and time.monotonic() < end:
        done, code = os.waitpid(pid, os.WNOHANG)
        status = code if done else None
        time.sleep(0.002)
    if status is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    print(json.dumps({"killed": status is None}), flush=True)
"""


def _state(dest: Path, paths: list[str]) -> dict[str, tuple[str, int]]:
    """For each source path: ("final", size), ("part", size) or ("none", 0)."""
    out = {}
    for rel in paths:
        folder, _, name = rel.partition("/")
        final = dest / COLLECTION / folder / name
        part = final.with_name(name + ".part")
        if final.is_file():
            out[rel] = ("final", final.stat().st_size)
        elif part.is_file():
            out[rel] = ("part", part.stat().st_size)
        else:
            out[rel] = ("none", 0)
    return out


def test_sigkill_at_random_moments_then_resume(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    make_files(tmp_path / "srv", N_ITEMS, KEYS, SIZE)
    dest = tmp_path / "holdings"
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), *sys.path])}
    with FileServer(tmp_path / "srv") as server:
        server.add_fault(Fault.trickle(chunk=4096, delay=0.02))
        items = make_items(server)
        write_catalog(tmp_path / "cat", items)
        catalog = str(tmp_path / "cat" / "catalog.json")
        paths = list(server.files())
        zygote = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE, catalog, str(dest)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert zygote.stdout is not None and zygote.stdin is not None
        assert zygote.stdout.readline().strip() == "ready"
        kills, complete_at = 0, {}  # path -> monotonic time when first seen complete
        try:
            for _ in range(KILLS):
                before = _state(dest, paths)
                started = time.monotonic()
                zygote.stdin.write(f"{rng.uniform(0.05, 0.6)}\n")
                zygote.stdin.flush()
                kills += json.loads(zygote.stdout.readline())["killed"]
                after = _state(dest, paths)
                run = [r for r in list(server.requests) if r.at >= started]
                for request in run:  # resumed where the part ended
                    kind, size = before[request.path]
                    assert kind != "final", f"{request.path} complete but requested again"
                    assert request.start in (size, 0), (request, before[request.path])
                for rel, (kind, _) in after.items():
                    if kind == "final":
                        complete_at.setdefault(rel, time.monotonic())
        finally:
            zygote.stdin.close()
            zygote.wait(10)
        progress = sum(kind == "final" for kind, _ in _state(dest, paths).values())
        server.clear_faults()  # the last resume at full speed
        logged = len(server.requests)
        t0 = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mus_lab.cli",
                "harvest",
                catalog,
                "-c",
                COLLECTION,
                "--out",
                str(dest),
                "--quiet",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        final_seconds = time.monotonic() - t0
        assert done.returncode == 0, done.stdout + done.stderr
        check_dest(dest, server, items)
        for rel, seen in complete_at.items():  # nothing complete was downloaded twice
            assert all(r.at < seen for r in server.requests if r.path == rel), rel
        for rel in paths:
            path = dest / COLLECTION / rel
            assert verify_file(path, parse_checksum(_checksum(dest, rel)), SIZE) is not None
        served = sum(server.served.values())
        total = len(paths) * SIZE
        ranged = sum(r.start > 0 for r in server.requests)
        assert served < total + kills * 4 * SIZE  # at most one lost file-worth per worker and kill
        leftovers = [p.name for p in dest.rglob(".*.tmp-*")]
        print(
            f"\nkill test (seed {seed}): {kills} SIGKILLs of {KILLS} runs, "
            f"{progress}/{len(paths)} files complete before the last resume "
            f"({logged} requests, {ranged} resumed with Range); last resume "
            f"{final_seconds:.1f} s; bytes served {served} for {total} "
            f"({served / total:.3f}x); stray temporary item files: {len(leftovers)}"
        )
        assert not leftovers, leftovers


def _checksum(dest: Path, rel: str) -> str:
    folder, _, name = rel.partition("/")
    data = json.loads((dest / COLLECTION / folder / f"{folder}.json").read_text())
    (asset,) = [a for a in data["assets"].values() if a["href"] == f"./{name}"]
    return str(asset["file:checksum"])
