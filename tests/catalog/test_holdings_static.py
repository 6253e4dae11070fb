"""StaticHoldings keeps its collection extents incrementally and sweeps dead writers' files."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pystac

from mus_lab.catalog import StaticHoldings

COLL = "sentinel-2-l2a"


def _item(name: str, x: float, day: int) -> pystac.Item:
    box = [x, 43.0, x + 0.1, 43.1]
    geom = {
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
    }
    when = datetime.datetime(2024, 6, day, tzinfo=datetime.UTC)
    return pystac.Item(name, geom, box, when, {}, collection=COLL)


def _extent(root: Path) -> tuple[list[float], list[str]]:
    data = json.loads((root / COLL / "collection.json").read_text())
    return data["extent"]["spatial"]["bbox"][0], data["extent"]["temporal"]["interval"][0]


def test_extent_grows_by_batch_without_rereading_old_items(tmp_path: Path) -> None:
    holdings = StaticHoldings(tmp_path)
    holdings.ingest([_item("a", 1.0, 1), _item("b", 2.0, 3)])
    assert _extent(tmp_path)[0] == [1.0, 43.0, 2.1, 43.1]

    # Spoil item "a" on disk: were it re-read, the extent would jump to its bbox.
    spoiled = tmp_path / COLL / "a" / "a.json"
    data = json.loads(spoiled.read_text())
    data["bbox"] = [-50.0, -50.0, 50.0, 50.0]
    spoiled.write_text(json.dumps(data))

    holdings.ingest([_item("c", 3.0, 10)])
    box, interval = _extent(tmp_path)
    assert box == [1.0, 43.0, 3.1, 43.1]
    assert interval[0].startswith("2024-06-01") and interval[1].startswith("2024-06-10")
    links = json.loads((tmp_path / COLL / "collection.json").read_text())["links"]
    assert sorted(link["href"] for link in links if link["rel"] == "item") == [
        "./a/a.json",
        "./b/b.json",
        "./c/c.json",
    ]


def test_items_a_killed_ingest_left_unlisted_join_the_extent(tmp_path: Path) -> None:
    holdings = StaticHoldings(tmp_path)
    holdings.ingest([_item("a", 1.0, 1)])
    # An ingest killed after writing item "z" but before relinking: z.json exists, unlisted.
    orphan = tmp_path / COLL / "z"
    orphan.mkdir()
    data = _item("z", -5.0, 20).to_dict(include_self_link=False)
    (orphan / "z.json").write_text(json.dumps(data))

    holdings.ingest([_item("b", 2.0, 2)])
    box, interval = _extent(tmp_path)
    assert box == [-5.0, 43.0, 2.1, 43.1]
    assert interval[1].startswith("2024-06-20")
    assert holdings.get(COLL, "z") is not None


def test_dead_writers_temporaries_are_swept_live_ones_kept(tmp_path: Path) -> None:
    holdings = StaticHoldings(tmp_path)
    holdings.ingest([_item("a", 1.0, 1)])
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    item_dir = tmp_path / COLL / "a"
    stale = [
        item_dir / f".a.json.tmp-{dead_pid}-1",
        tmp_path / COLL / f".collection.json.tmp-{dead_pid}-1",
        tmp_path / f".catalog.json.tmp-{dead_pid}-1",
    ]
    live = item_dir / f".a.json.tmp-{os.getpid()}-7"
    part = item_dir / "B04.tif.part"  # a harvest's resumable download: never a temporary
    for path in [*stale, live, part]:
        path.write_text("{")

    holdings.ingest([_item("a", 1.0, 1)])
    assert not any(path.exists() for path in stale)
    assert live.exists() and part.exists()
