"""Writers killed with SIGKILL at random moments: the catalog stays consistent, and the next
write sweeps every temporary folder they left. A live writer is never swept."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pystac
import pytest

from mus_lab import publish
from mus_lab.errors import PublishError

from .conftest import empty_catalog

WRITER = textwrap.dedent(
    """
    import sys, time
    from types import SimpleNamespace
    sys.path.insert(0, {tests!r})
    from publish.conftest import prediction
    from mus_lab import publish

    class Meta(SimpleNamespace):
        def to_json(self):
            return {{"kind": "rf", "classes": [11, 12, 31], "report": {{}}}}

    meta = Meta(kind="rf", classes=(11, 12, 31), class_names={{11: "a", 12: "b", 31: "c"}},
                features=("f",), params={{}}, report={{}})
    model = SimpleNamespace(metadata=meta)
    product = publish.LandCoverProduct.from_prediction(prediction(int(sys.argv[2])), model=model)
    print("start", flush=True)
    t0 = time.perf_counter()
    product.write(sys.argv[1], overwrite=True)
    print("done", time.perf_counter() - t0, flush=True)
    """
)


def _consistent(root: Path) -> list[str]:
    """Every child of catalog.json is a complete product whose files match their checksums."""
    doc = json.loads((root / "catalog.json").read_text())
    children = [lk["href"] for lk in doc["links"] if lk["rel"] == "child"]
    for href in children:
        coll = pystac.Collection.from_file(str(root / href))
        items = list(coll.get_items())
        assert items, href
        for item in items:
            publish.check_item(item, publish.LandCoverProduct.contract)
            publish.verify_checksums(item)
    return children


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".") and p.name != ".locks")


@pytest.mark.slow
def test_writers_killed_at_random_moments_leave_a_consistent_catalog(tmp_path: Path) -> None:
    root = empty_catalog(tmp_path / "cat").parent
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(tests=str(Path(__file__).parents[1])))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def run(seed: int) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(script), str(root), str(seed)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    first = run(0)
    out, _ = first.communicate(timeout=120)
    assert first.returncode == 0, out
    assert _consistent(root) == ["./landcover-optical/collection.json"]
    write_s = float(out.split("done")[1])

    rng = random.Random(12)
    outcomes = {"killed while writing": 0, "finished before the kill": 0}
    for k in range(8):
        proc = run(k + 1)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "start"  # imports done, the write begins
        time.sleep(rng.uniform(0.0, 1.2 * write_s))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        rest = proc.stdout.read()
        outcomes["finished before the kill" if "done" in rest else "killed while writing"] += 1
        # whatever the moment: the previous product or the new one, complete and verified
        assert _consistent(root) == ["./landcover-optical/collection.json"]
    print(f"kills at random moments (seed 12): {outcomes}")  # for the record (pytest -rP)
    assert outcomes["killed while writing"] >= 4, outcomes

    # The next write (which waits for no one: the kernel dropped the dead writers' locks)
    # sweeps every temporary folder they left.
    last = run(99)
    out, _ = last.communicate(timeout=120)
    assert last.returncode == 0, out
    assert _leftovers(root) == []
    assert _consistent(root) == ["./landcover-optical/collection.json"]


def test_a_live_writer_holds_its_collection(tmp_path: Path) -> None:
    root = empty_catalog(tmp_path / "cat").parent
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from mus_lab.publish import collection_lock\n"
            "with collection_lock(sys.argv[1], 'c'):\n"
            "    (__import__('pathlib').Path(sys.argv[1]) / '.c.tmp-1-live').mkdir()\n"
            "    print('held', flush=True); time.sleep(30)\n",
            str(root),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(PublishError, match="being written by another process"):
            with publish.collection_lock(root, "c", timeout=0.5):
                pass
        assert (root / ".c.tmp-1-live").is_dir()  # a live writer's folder is never swept
    finally:
        holder.kill()
        holder.wait()
    with publish.collection_lock(root, "c", timeout=5) as swept:
        assert [p.name for p in swept] == [".c.tmp-1-live"]
