"""The outputs of a chain as a static STAC catalog, with their lineage.

After each run (and retry), ``<output>/catalog.json`` lists one collection per step and one
item per tile whose task is done: the tile's footprint, the chain's period, its grid (proj),
every output file as an asset with ``file:checksum`` (sha2-256 multihash) and
``file:size`` (kept intermediates too, with roles ``["intermediate", <name>]`` and
``expires``; pruned ones leave the item), and the provenance the registry holds: ``processing:lineage`` (chain, run,
step kind, options), ``processing:software`` (versions), ``mus_lab:run``, and
``derived_from`` links to the input items and to the items of the steps it needed on the
tile. So ``catalog.search(<output>/catalog.json, collections=<step>)`` finds the products,
and :func:`mus_lab.production.history` gives the same provenance from a file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from mus_lab.contracts import EXTENSIONS
from mus_lab.production._registry import Registry, TaskRecord

__all__ = ["publish_outputs"]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _period(spec: Any, created: float) -> dict[str, Any]:
    if spec.period and "/" in spec.period:
        start, end = spec.period.split("/", 1)
        return {
            "datetime": None,
            "start_datetime": f"{start[:10]}T00:00:00Z" if start not in ("", "..") else None,
            "end_datetime": f"{end[:10]}T23:59:59Z" if end not in ("", "..") else None,
        }
    return {"datetime": dt.datetime.fromtimestamp(created, dt.UTC).isoformat()}


def _item(spec: Any, run: dict[str, Any], task: TaskRecord, tile: Any) -> dict[str, Any]:
    footprint = tile.geobox.extent.to_crs("EPSG:4326")
    box = footprint.boundingbox
    step = run["spec"]["steps"][task.step]
    lineage = (
        f"mus_lab chain {run['chain']!r} run {run['run_id']}: step {task.step!r} "
        f"({step['uses']}, options {json.dumps(task.parameters, sort_keys=True, default=str)}) "
        f"on tile {task.tile}"
    )
    read = [i for i in task.inputs if i.get("step") and i.get("sha256")]
    if read:  # the ARD files of the chain's own steps it read, with their checksums
        lineage += ", reading " + ", ".join(
            f"{i['step']}/{Path(i['path']).name} (sha256 {i['sha256']})" for i in read
        )
    links = [
        {"rel": "derived_from", "href": i["href"], "type": "application/geo+json", "title": i["id"]}
        for i in task.inputs
        if i.get("href")
    ] + [
        {
            "rel": "derived_from",
            "href": f"../../{need}/{need}-{task.tile}/{need}-{task.tile}.json",
            "type": "application/geo+json",
        }
        for need in step.get("needs", [])
    ]
    folder = Path(run["spec"]["output"]) / "catalog" / task.step / f"{task.step}-{task.tile}"
    assets = {}
    for name, out in task.outputs.items():
        if out.get("pruned"):
            continue
        asset = {
            "href": os.path.relpath(out["path"], folder),
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data"],
            "file:checksum": "1220" + out["sha256"],
            "file:size": out["size"],
        }
        if out.get("intermediate"):  # kept intermediate: its role and when it goes
            asset["roles"] = ["intermediate", name]
            expires, life = out.get("expires"), out.get("lifetime")
            asset["mus_lab:lifetime"] = "forever" if life is None else "run" if life == 0 else life
            if expires:  # a date (timestamps extension); none for ever or for the run
                asset["expires"] = dt.datetime.fromtimestamp(float(expires), dt.UTC).isoformat()
        assets[name] = asset
    affine = tile.geobox.affine
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [EXTENSIONS["processing"], EXTENSIONS["file"], EXTENSIONS["proj"]],
        "id": f"{task.step}-{task.tile}",
        "collection": task.step,
        "geometry": footprint.json,
        "bbox": [box.left, box.bottom, box.right, box.top],
        "properties": {
            **_period(spec, run["created"]),
            "processing:lineage": lineage,
            "processing:software": run["versions"],
            "mus_lab:run": run["run_id"],
            "mus_lab:chain_digest": run["chain_digest"],
            "mus_lab:tile": task.tile,
            "proj:epsg": tile.geobox.crs.epsg,
            "proj:shape": list(tile.geobox.shape.yx),
            "proj:transform": [affine.a, affine.b, affine.c, affine.d, affine.e, affine.f],
        },
        "links": links,
        "assets": assets,
    }


def publish_outputs(spec: Any, registry: Registry, run_id: str) -> Path | None:
    """Write (or refresh) ``<output>/catalog/`` with the done tasks of a run.

    Parameters
    ----------
    spec
        The checked chain.
    registry
        Its registry.
    run_id
        The run.

    Returns
    -------
    Path or None
        The root ``catalog.json``; None when no task is done.
    """
    run = registry.run(run_id)
    done = [t for t in registry.tasks(run_id) if t.state == "done" and t.outputs]
    if not done:
        return None
    tiles = {t.id: t for t in spec.tiles()}
    root = spec.output / "catalog"
    by_step: dict[str, list[dict[str, Any]]] = {}
    for task in done:
        if task.tile not in tiles:
            continue
        item = _item(spec, run, task, tiles[task.tile])
        folder = root / task.step / item["id"]
        folder.mkdir(parents=True, exist_ok=True)
        item["links"] += [
            {"rel": "collection", "href": "../collection.json", "type": "application/json"},
            {"rel": "parent", "href": "../collection.json", "type": "application/json"},
            {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
        ]
        _write_json(folder / f"{item['id']}.json", item)
        by_step.setdefault(task.step, []).append(item)
    for step, items in by_step.items():
        boxes = [i["bbox"] for i in items]
        uses = run["spec"]["steps"][step]["uses"]
        _write_json(
            root / step / "collection.json",
            {
                "type": "Collection",
                "stac_version": "1.0.0",
                "id": step,
                "description": f"Step {step!r} ({uses}) of chain {run['chain']!r}, by tile.",
                "license": "other",
                "extent": {
                    "spatial": {
                        "bbox": [
                            [
                                min(b[0] for b in boxes),
                                min(b[1] for b in boxes),
                                max(b[2] for b in boxes),
                                max(b[3] for b in boxes),
                            ]
                        ]
                    },
                    "temporal": {
                        "interval": [
                            [
                                items[0]["properties"].get("start_datetime")
                                or items[0]["properties"].get("datetime"),
                                items[0]["properties"].get("end_datetime"),
                            ]
                        ]
                    },
                },
                "links": [
                    {"rel": "root", "href": "../catalog.json", "type": "application/json"},
                    {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
                ]
                + [
                    {
                        "rel": "item",
                        "href": f"./{i['id']}/{i['id']}.json",
                        "type": "application/geo+json",
                    }
                    for i in sorted(items, key=lambda i: i["id"])
                ],
            },
        )
    steps = sorted(p.parent.name for p in root.glob("*/collection.json"))
    _write_json(
        root / "catalog.json",
        {
            "type": "Catalog",
            "stac_version": "1.0.0",
            "id": f"{spec.name}-products",
            "description": f"Products of chain {spec.name!r} by step and tile (mus_lab).",
            "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
            + [
                {"rel": "child", "href": f"./{s}/collection.json", "type": "application/json"}
                for s in steps
            ],
        },
    )
    return root / "catalog.json"
