"""Production chains over tiles: checks before running, registry, retry, cancel, provenance."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import dask
import numpy as np
import pytest
import rasterio
import yaml
from distributed import Client, LocalCluster
from typer.testing import CliRunner

from mus_lab import catalog, cube, production
from mus_lab.cli import app
from mus_lab.errors import ChainError
from mus_lab.production import _tilerun
from mus_lab.production._demo import s2_clear_ndvi_median
from mus_lab.production._tilesteps import sha256_file

STEPS = "tests.production.tiles_steps:contrast"
AFTER = "tests.production.tiles_steps:passthrough"


def _chain(tmp: Path, scenario, *, name: str = "tiles", out: str = "out", **change) -> Path:
    w, s, e, n = scenario.bbox
    n = (s + n) / 2  # the southern half: a 132 x 69 px grid, two tiles of 69 px
    data = {
        "chain": name,
        "catalog": str(scenario.catalog_path),
        "output": out,
        "period": "2022-03-01/2022-07-31",
        "area": {"bbox": [w, s, e, n], "tile": 69},
        "steps": {
            "contrast": {"uses": "python", "needs": ["ndvi", "vv"], "options": {"function": STEPS}},
            "ndvi": {"uses": "s2.ndvi_median"},
            "vv": {"uses": "sar.mean_db", "options": {"band": "vv"}},
            "after": {"uses": "python", "needs": ["contrast"], "options": {"function": AFTER}},
        },
    }
    for key, value in change.items():
        data[key] = value
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _checksums(report) -> dict[tuple[str, str], str]:
    return {
        (t.step, t.tile): next(iter(t.outputs.values()))["sha256"]
        for t in report.tasks
        if t.outputs
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"steps": {"a": {"uses": "s2.ndvi"}}}, r"uses 's2.ndvi', which is not a step kind"),
        ({"steps": {"a": {"uses": "python"}}}, r"missing option\(s\) \['function'\]"),
        (
            {"steps": {"a": {"uses": "sar.mean_db", "options": {"polarisation": "vv"}}}},
            r"unknown option\(s\) \['polarisation'\]: allowed are \['band', 'collection'\]",
        ),
        (
            {"steps": {"a": {"uses": "s2.ndvi_median", "needs": ["b"]}}},
            r"needs 'b', which is not a step",
        ),
        (
            {
                "steps": {
                    "a": {"uses": "s2.ndvi_median", "needs": ["c"]},
                    "b": {"uses": "s2.ndvi_median", "needs": ["a"]},
                    "c": {"uses": "s2.ndvi_median", "needs": ["b"]},
                }
            },
            r"form a cycle: a -> c -> b -> a",
        ),
        (
            {"steps": {"a": {"uses": "python", "options": {"function": "no_such_module:f"}}}},
            r"cannot import 'no_such_module:f'",
        ),
        ({"area": {"bbox": [10, 50, 9, 51]}}, r"area.bbox .* is not a lon/lat box"),
        ({"colour": "red"}, r"Unknown key\(s\) \['colour'\]"),
    ],
)
def test_bad_chain_files_are_refused_before_anything_runs(tmp_path, scenario, change, message):
    path = _chain(tmp_path, scenario, **change)
    with pytest.raises(ChainError, match=message):
        production.run_tiles(path)
    assert not (tmp_path / "out").exists()


def test_a_tile_outside_every_input_is_refused_before_the_run_is_recorded(
    tmp_path, scenario, client
):
    w, s, e, n = scenario.bbox
    path = _chain(tmp_path, scenario, area={"bbox": [w, s, e + 0.02, n], "tile": 69})
    with pytest.raises(ChainError, match=r"have no sentinel-1-grd, sentinel-2-l2a item .*shrink"):
        production.run_tiles(path, client=client)
    assert not (tmp_path / "out" / "registry.sqlite").exists()
    result = CliRunner().invoke(app, ["chain", "run", str(path)])
    assert result.exit_code == 2 and "shrink area.bbox" in result.output


def test_run_fail_retry_and_provenance(tmp_path, scenario, client, monkeypatch):
    faults = tmp_path / "faults"
    faults.mkdir()
    monkeypatch.setenv("MUS_LAB_TEST_FAULTS", str(faults))
    (faults / "fail-r0c1").touch()
    path = _chain(tmp_path, scenario)
    spec = production.load_chain(path)
    tiles = [t.id for t in spec.tiles()]
    assert tiles == ["r0c0", "r0c1"] and spec.names[-2:] == ["contrast", "after"]

    report = production.run_tiles(path, client=client, log=lambda line: None)
    states = {(t.step, t.tile): t.state for t in report.tasks}
    assert report.state == "failed" and not report.ok
    assert states[("contrast", "r0c1")] == "failed"
    assert states[("after", "r0c1")] == "skipped" and states[("after", "r0c0")] == "done"
    assert all(states[(s, t)] == "done" for s in ("ndvi", "vv") for t in tiles)
    assert all(states[("contrast", t)] == "done" for t in tiles if t != "r0c1")
    failed = next(t for t in report.tasks if t.state == "failed")
    assert "injected failure on r0c1" in (failed.error or "")
    status = CliRunner().invoke(app, ["chain", "status", str(path)])
    assert status.exit_code == 0 and "injected failure on r0c1" in status.output

    # The tiles mosaic to the same NDVI as one computation over the whole grid.
    grid = spec.grid()
    s2 = cube.load(
        catalog.search(
            scenario.catalog_path, collections="sentinel-2-l2a", datetime=spec.period, max_cloud=80
        ),
        ("red", "nir", "scl"),
        geobox=grid,
    )
    whole = s2_clear_ndvi_median(s2).values
    for tile in spec.tiles():
        with rasterio.open(spec.output / "ndvi" / f"{tile.id}.tif") as src:
            part = src.read(1)
        rows, cols = tile.geobox.shape.yx
        y0 = round((tile.geobox.affine.f - grid.affine.f) / grid.affine.e)
        x0 = round((tile.geobox.affine.c - grid.affine.c) / grid.affine.a)
        np.testing.assert_allclose(part, whole[y0 : y0 + rows, x0 : x0 + cols], atol=1e-6)

    # retry re-runs the failed task only; the others keep their attempt and bytes
    (faults / "fail-r0c1").unlink()
    before = _checksums(report)
    again = production.retry(path, client=client, log=lambda line: None)
    assert again.ok and again.run_id == report.run_id
    attempts = {(t.step, t.tile): t.attempts for t in again.tasks}
    rerun = {("contrast", "r0c1"), ("after", "r0c1")}
    assert {k for k, v in attempts.items() if v == 2} == rerun
    assert {v for k, v in attempts.items() if k not in rerun} == {1}
    after = _checksums(again)
    assert {k: v for k, v in after.items() if k not in rerun} == before

    # the products are a STAC catalog that the stages can search, with their lineage
    found = catalog.search(again.catalog, collections="contrast")
    assert sorted(i.id for i in found) == ["contrast-r0c0", "contrast-r0c1"]
    item = next(i for i in found if i.id == "contrast-r0c1")
    assert report.run_id in item.properties["processing:lineage"]
    assert (
        item.assets["contrast"].extra_fields["file:checksum"]
        == "1220" + after[("contrast", "r0c1")]
    )
    derived = [link.href for link in item.links if link.rel == "derived_from"]
    assert any("ndvi-r0c1.json" in h for h in derived) and any("vv-r0c1.json" in h for h in derived)
    ndvi_item = catalog.search(again.catalog, collections="ndvi")[0]
    assert any(
        link.rel == "derived_from" and "sentinel-2-l2a" in link.href for link in ndvi_item.links
    )

    # a clean run elsewhere writes the same bytes for every task
    clean = production.run_tiles(
        _chain(tmp_path, scenario, name="clean", out="clean"), client=client, log=lambda line: None
    )
    assert clean.ok and _checksums(clean) == after

    # provenance: from a product back to the run, the chain, the inputs and the parameters
    product = spec.output / "contrast" / "r0c1.tif"
    info = production.history(product, path)
    assert info["run"]["run_id"] == report.run_id and info["step"] == "contrast"
    assert info["parameters"]["function"] == STEPS
    assert info["outputs"]["contrast"]["sha256"] == sha256_file(product)
    assert info["outputs"]["contrast"]["intact"]
    upstream = {u["step"]: u for u in info["upstream"]}
    assert set(upstream) == {"ndvi", "vv"}
    s1_items = upstream["vv"]["inputs"]
    assert s1_items and {i["collection"] for i in s1_items} == {"sentinel-1-grd"}
    assert all(a["state"] for i in s1_items for a in i["assets"].values())
    assert info["run"]["versions"]["mus_lab"] and info["run"]["versions"]["gdal"]

    # a changed option re-runs that step and what depends on it, nothing else
    _chain(
        tmp_path,
        scenario,
        steps={
            "contrast": {"uses": "python", "needs": ["ndvi", "vv"], "options": {"function": STEPS}},
            "ndvi": {"uses": "s2.ndvi_median"},
            "vv": {"uses": "sar.mean_db", "options": {"band": "vh"}},
            "after": {"uses": "python", "needs": ["contrast"], "options": {"function": AFTER}},
        },
    )
    said: list[str] = []
    changed = production.retry(path, client=client, log=said.append)
    attempts = {(t.step, t.tile): t.attempts for t in changed.tasks}
    assert changed.ok
    assert any(line.startswith("  again   vv ") and "options changed" in line for line in said), (
        said
    )
    assert any(line.startswith("  again   after ") and "a step it needs" in line for line in said)
    assert all(attempts[("ndvi", t)] == 1 for t in tiles)
    assert all(attempts[("vv", t)] == 2 for t in tiles)
    assert all(attempts[("contrast", t)] >= 2 and attempts[("after", t)] >= 2 for t in tiles)

    # an altered output is noticed and made again
    target = spec.output / "ndvi" / "r0c0.tif"
    target.write_bytes(target.read_bytes()[:-10])
    said.clear()
    mended = production.retry(path, client=client, log=said.append)
    assert mended.ok and sha256_file(target) == before[("ndvi", "r0c0")]
    assert "  again   ndvi r0c0: done before, but an output is missing or its bytes changed" in said


def test_cancel_stops_a_running_chain(tmp_path, scenario, client, monkeypatch):
    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / "slow").touch()
    monkeypatch.setenv("MUS_LAB_TEST_FAULTS", str(faults))
    monkeypatch.setattr(_tilerun, "HEARTBEAT_SECONDS", 0.1)
    path = _chain(tmp_path, scenario)
    result: dict[str, object] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault(
            "report", production.run_tiles(path, client=client, log=lambda line: None)
        )
    )
    thread.start()
    deadline = time.time() + 60
    while time.time() < deadline and not list(faults.glob("started-*")):
        time.sleep(0.1)
    registry = production.open_registry(path)  # the driver says it lives while it waits
    run_id = registry.runs()[-1]["run_id"]
    beats = {registry.run(run_id)["heartbeat"]}
    while len(beats) < 2 and time.time() < deadline:  # it polls the registry every second
        time.sleep(0.2)
        beats.add(registry.run(run_id)["heartbeat"])
    assert len(beats) >= 2, "the driver's heartbeat did not advance"
    asked = time.time()
    production.cancel(path)
    thread.join(timeout=10)
    assert not thread.is_alive(), "the run did not stop within 10 s of the cancel"
    assert time.time() - asked < 10  # the 12 s steps were not waited for
    report = result["report"]
    states = {(t.step, t.tile): t.state for t in report.tasks}  # type: ignore[attr-defined]
    assert report.state == "cancelled"  # type: ignore[attr-defined]
    assert "cancelled" in states.values() and "failed" not in states.values()
    assert not [k for k, v in states.items() if k[0] == "contrast" and v == "done"]
    assert production.status(path).state == "cancelled"
    # the cancelled steps still run on the module's in-process worker, holding dask's
    # scheduler setting at "synchronous": let them end before the next test (a step
    # outliving its client would compute on a client of its own)
    (faults / "slow").unlink()
    deadline = time.time() + 30
    while time.time() < deadline and dask.config.get("scheduler", None) == "synchronous":
        time.sleep(0.05)
    assert dask.config.get("scheduler", None) == "dask.distributed"


def test_a_driver_taken_over_by_another_host_stops_and_leaves_it_the_run(
    tmp_path, scenario, client, monkeypatch
):
    import sqlite3

    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / "slow").touch()
    monkeypatch.setenv("MUS_LAB_TEST_FAULTS", str(faults))
    path = _chain(tmp_path, scenario)
    lines: list[str] = []
    result: dict[str, object] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault(
            "report", production.run_tiles(path, client=client, log=lines.append)
        )
    )
    thread.start()
    deadline = time.time() + 60
    while time.time() < deadline and not list(faults.glob("started-*")):
        time.sleep(0.1)
    registry = production.open_registry(path)
    run_id = registry.runs()[-1]["run_id"]
    # a retry on another host judged this driver dead and claimed the run
    seen = registry.run(run_id)
    with sqlite3.connect(registry.path) as db:
        db.execute(
            "UPDATE runs SET pid = 4194304, host = 'other-host', heartbeat = ? WHERE run_id = ?",
            (time.time(), run_id),
        )
    thread.join(timeout=10)
    assert not thread.is_alive(), "the driver went on after the takeover"
    report = result["report"]
    assert report.state == "running"  # type: ignore[attr-defined]  # the other driver's
    row = registry.run(run_id)
    assert (row["host"], row["pid"], row["finished"]) == ("other-host", 4194304, None)
    assert row["attempts"] == seen["attempts"]
    assert any(
        f"run {run_id}: taken over by process 4194304 on host other-host" in line for line in lines
    ), lines
    (faults / "slow").unlink()  # let the cancelled steps end before the next test
    deadline = time.time() + 30
    while time.time() < deadline and dask.config.get("scheduler", None) == "synchronous":
        time.sleep(0.05)
    assert dask.config.get("scheduler", None) == "dask.distributed"


def test_a_worker_killed_in_the_middle_of_a_step_is_replaced(tmp_path, scenario, monkeypatch):
    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / "kill-r0c0").touch()
    monkeypatch.setenv("MUS_LAB_TEST_FAULTS", str(faults))
    path = _chain(tmp_path, scenario)
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None
        ) as lc,
        Client(lc) as client,
    ):
        report = production.run_tiles(path, client=client, log=lambda line: None)
    assert report.ok, report.table()
    assert not (faults / "kill-r0c0").exists(), "the step did kill its worker once"
    assert len({t.worker for t in report.tasks}) >= 1


def test_the_example_chain_is_valid_and_its_tiles_are_covered_by_the_sample(scenario):
    from mus_lab import production as prod

    example = Path(__file__).parents[2] / "chains" / "sample-tiles.yaml"
    spec = prod.load_chain(example)
    assert spec.names == ["ndvi", "vv", "vh_rcm"]
    assert spec.catalog.endswith("demo_output/scenario/catalog/catalog.json")
    data = yaml.safe_load(example.read_text())
    data["catalog"] = str(scenario.catalog_path)  # the test scenario covers the same quarter
    counts = prod.check_coverage(prod.load_chain(data))
    assert set(counts) == {"sentinel-2-l2a", "sentinel-1-grd", "rcm-grd"}
    assert all(n > 0 for n in counts.values())


def test_landcover_predict_over_tiles_equals_one_prediction_of_the_whole_grid(
    tmp_path, scenario, client
):
    from mus_lab import classify, recipes

    path = _chain(tmp_path, scenario)
    spec = production.load_chain(path)
    grid = spec.grid()
    feats, recipe, _ = recipes.features_from_catalog(
        scenario.catalog_path, bbox=spec.area.bbox, geobox=grid, every_days=30
    )
    samples = classify.extract_samples(feats, scenario.polygons, layer="reference")
    model = classify.train(samples, "rf", params={"n_estimators": 15}, recipe=recipe)
    model.save(tmp_path / "model")
    whole = classify.predict(feats, model).classification.values

    data = yaml.safe_load(path.read_text())
    data["steps"] = {"landcover": {"uses": "landcover.predict", "options": {"model": "model"}}}
    path.write_text(yaml.safe_dump(data))
    report = production.run_tiles(path, client=client, log=lambda line: None)
    assert report.ok, report.table()
    for tile in spec.tiles():
        with rasterio.open(spec.output / "landcover" / f"{tile.id}.tif") as src:
            part = src.read(1)
        rows, cols = tile.geobox.shape.yx
        x0 = round((tile.geobox.affine.c - grid.affine.c) / grid.affine.a)
        assert (part == whole[:rows, x0 : x0 + cols]).mean() == 1.0
        assert (spec.output / "landcover" / f"{tile.id}_confidence.tif").is_file()

    # a retrained model (new content at the same path) re-runs every task
    model.save(tmp_path / "model", overwrite=True)
    again = production.retry(path, client=client, log=lambda line: None)
    assert again.ok and {t.attempts for t in again.tasks} == {2}


def test_a_chain_with_its_registry_in_postgresql(
    tmp_path, scenario, client, monkeypatch, pg_cluster
):
    """Run, fail a tile, retry and ask for provenance with the registry in PostgreSQL."""
    from tests._postgres import new_database

    password = pg_cluster.passfile.read_text().strip().rsplit(":", 1)[1]
    url = new_database(pg_cluster, prefix="chain").split("?")[0].replace("@", f":{password}@", 1)
    faults = tmp_path / "faults"
    faults.mkdir()
    monkeypatch.setenv("MUS_LAB_TEST_FAULTS", str(faults))
    (faults / "fail-r0c1").touch()
    path = _chain(tmp_path, scenario, registry=url)
    data = yaml.safe_load(path.read_text())
    del data["steps"]["after"]
    path.write_text(yaml.safe_dump(data))

    report = production.run_tiles(path, client=client, log=lambda line: None)
    assert report.state == "failed" and report.registry is None
    assert not (tmp_path / "out" / "registry.sqlite").exists()
    status = CliRunner().invoke(app, ["chain", "status", str(path)])
    assert status.exit_code == 0 and "injected failure on r0c1" in status.output
    assert f"run {report.run_id}: failed" in status.output

    (faults / "fail-r0c1").unlink()
    lines: list[str] = []
    production.retry(path, client=client, log=lines.append)
    shown = production.status(path)
    assert shown.ok and shown.run_id == report.run_id
    attempts = {(t.step, t.tile): t.attempts for t in shown.tasks}
    assert attempts.pop(("contrast", "r0c1")) == 2 and set(attempts.values()) == {1}

    product = production.load_chain(path).output / "contrast" / "r0c1.tif"
    info = production.history(product, path)
    assert info["run"]["run_id"] == report.run_id and info["outputs"]["contrast"]["intact"]
    assert {u["step"] for u in info["upstream"]} == {"ndvi", "vv"}
    as_json = CliRunner().invoke(app, ["chain", "history", str(path), str(product)])
    assert as_json.exit_code == 0 and report.run_id in as_json.output
    for text in (status.output, *lines, as_json.output, repr(production.open_registry(path))):
        assert password not in text
