"""The lab's processes over OGC API Processes (pygeoapi) and WPS (pywps), with a token."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("pygeoapi", reason="the serve extra is not installed")
pytest.importorskip("pywps", reason="the serve extra is not installed")
pytest.importorskip("owslib.wps", reason="the serve extra is not installed")

import httpx
from owslib.wps import WebProcessingService

from mus_lab.services.processes import ProcessConfig, ProcessesServer, TokenGuard, main


def _sar_item(scenario: Any) -> Path:
    """The Sentinel-1 item of the first flood date."""
    day = scenario.flood_dates[0].replace("-", "")
    folder = scenario.catalog_path.parent / "sentinel-1-grd"
    return next(p for p in sorted(folder.glob("*/*.json")) if day in p.name)


@pytest.fixture(scope="module")
def procs(scenario: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """One server for the module; the OGC API and the WPS flood-map jobs submitted at once."""
    folder = tmp_path_factory.mktemp("processes")
    config = ProcessConfig(folder / "products", allowed_roots=(scenario.root,))
    server = ProcessesServer(folder / "server", config)
    item = _sar_item(scenario).as_uri()
    with server:
        auth = {"Authorization": f"Bearer {server.token}"}
        ogc = httpx.post(
            f"{server.url}/processes/flood-map/execution",
            json={"inputs": {"sar": item}},
            headers={**auth, "Prefer": "respond-async"},
            timeout=30,
        )
        wps = WebProcessingService(server.wps_url, headers=auth)
        execution = wps.execute("flood-map", [("sar", item)], output=[("result", False)])
        yield SimpleNamespace(
            server=server, url=server.url, auth=auth, item=item, config=config,
            ogc=ogc, wps=wps, execution=execution, answers=[],
        )  # fmt: skip
    assert not server.running  # stopped at the end of the block: no process left


def _poll(url: str, *, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = httpx.get(url, params={"f": "json"}, timeout=10).json()
        if status["status"] in ("successful", "failed", "dismissed") or time.monotonic() > deadline:
            return dict(status)
        time.sleep(0.3)


def test_ogc_api_processes_async(procs: SimpleNamespace) -> None:
    listing = httpx.get(f"{procs.url}/processes", params={"f": "json"}, timeout=10).json()
    ids = {p["id"] for p in listing["processes"]}
    assert ids == {"flood-map", "landcover-predict", "fusion", "harvest"}
    described = httpx.get(f"{procs.url}/processes/flood-map", params={"f": "json"}, timeout=10)
    assert described.json()["inputs"]["sar"]["minOccurs"] == 1
    assert "async-execute" in described.json()["jobControlOptions"]
    assert procs.ogc.status_code == 201, procs.ogc.text
    location = procs.ogc.headers["Location"]
    job_id = location.rstrip("/").rsplit("/", 1)[1]
    status = _poll(location)
    assert status["status"] == "successful", status
    result = httpx.get(f"{procs.url}/jobs/{job_id}/results", params={"f": "json"}, timeout=10)
    assert result.status_code == 200
    answer = result.json()
    assert answer["collection"].startswith("flood-extent-")
    (item,) = answer["items"]
    assert set(item["assets"]) >= {"water", "flood", "likelihood"}
    assert all(Path(a["href"]).is_file() for a in item["assets"].values())
    # the provenance, in the store's own item
    self_href = next(ln["href"] for ln in item["links"] if ln["rel"] == "self")
    stored = json.loads(Path(self_href.removeprefix("file://")).read_text("utf-8"))
    props = stored["properties"]
    assert job_id in props["processing:lineage"] and "flood-map" in props["processing:lineage"]
    assert props["mus_lab:job"] == {
        "id": job_id, "engine": "ogcapi-processes", "process": "flood-map"
    }  # fmt: skip
    rels = {(ln["rel"], ln["href"]) for ln in stored["links"]}
    assert ("derived_from", procs.item) in rels
    assert ("via", f"{procs.url}/jobs/{job_id}") in rels
    assert stored["properties"]["datetime"].startswith(procs.item.split("_")[-2][:8][:4])
    assert (procs.config.store / answer["collection"] / "collection.json").is_file()
    procs.answers += [procs.ogc, described, result]


def test_wps_with_owslib(procs: SimpleNamespace) -> None:
    wps = procs.wps
    assert {p.identifier for p in wps.processes} == {
        "flood-map", "landcover-predict", "fusion", "harvest"
    }  # fmt: skip
    described = wps.describeprocess("flood-map")
    assert [i.identifier for i in described.dataInputs] == ["sar", "reference"]
    assert described.statusSupported and described.storeSupported
    execution = procs.execution
    assert execution.statusLocation.startswith(f"{procs.url}/wps/outputs/")
    deadline = time.monotonic() + 120
    while not execution.isComplete() and time.monotonic() < deadline:
        time.sleep(0.3)
        execution.checkStatus(sleepSecs=0)
    assert execution.isSucceded(), execution.errors
    (output,) = execution.processOutputs
    result = json.loads(output.data[0])
    stored = Path(result["items"][0]["assets"]["water"]["href"]).with_name(
        f"{result['items'][0]['id']}.json"
    )
    props = json.loads(stored.read_text("utf-8"))["properties"]
    assert props["mus_lab:job"]["engine"] == "wps"
    assert props["mus_lab:job"]["id"] in execution.statusLocation
    # WPS 2.0.0 answers its capabilities too
    caps = httpx.get(
        f"{procs.url}/wps",
        params={"service": "WPS", "request": "GetCapabilities", "acceptversions": "2.0.0"},
        timeout=10,
    )
    assert caps.status_code == 200 and 'version="2.0.0"' in caps.text


def test_execution_needs_the_token(procs: SimpleNamespace) -> None:
    token = procs.server.token
    body = {"inputs": {"sar": procs.item}}
    execute = f"{procs.url}/processes/flood-map/execution"
    kvp = f"{procs.url}/wps?service=WPS&version=1.0.0&request=Execute&identifier=flood-map"
    answers = [
        httpx.post(execute, json=body, timeout=10),
        httpx.post(execute, json=body, headers={"Authorization": "Bearer nope"}, timeout=10),
        httpx.post(execute, json=body, headers={"Authorization": f"Basic {token}"}, timeout=10),
        httpx.get(f"{kvp}&datainputs=sar={procs.item}", timeout=10),
        httpx.delete(f"{procs.url}/jobs/x", timeout=10),
    ]
    assert [a.status_code for a in answers] == [401, 403, 401, 401, 401]
    assert answers[0].headers["WWW-Authenticate"].startswith("Bearer")
    # reads are public
    for path in (
        "/processes",
        "/jobs",
        "/openapi?f=json",
        "/wps?service=WPS&request=GetCapabilities",
    ):
        assert httpx.get(procs.url + path, timeout=10).status_code == 200, path
    # the token is in no log, no answer, no state or job file
    folder = procs.server.folder
    texts = [a.text for a in answers + procs.answers] + [
        repr(procs.server),
        repr(TokenGuard(lambda e, s: [], token)),
    ]
    texts += [httpx.get(procs.url + "/jobs?f=json", timeout=10).text]
    texts += [
        p.read_text("utf-8", errors="replace")
        for p in folder.rglob("*")
        if p.is_file() and p.name != "token" and p.suffix != ".sqlite"
    ]
    texts += [p.read_bytes().decode("latin-1") for p in folder.rglob("*.sqlite")]
    assert all(token not in t for t in texts)
    assert oct(procs.server.token_file.stat().st_mode & 0o777) == "0o600"


def test_inputs_outside_the_store_are_400(procs: SimpleNamespace) -> None:
    execute = f"{procs.url}/processes/flood-map/execution"
    store = procs.config.store
    cases = {
        "file:///etc/passwd": "outside the product store",
        f"{store.as_uri()}/../../../../etc/passwd": "outside the product store",
        "http://example.org/item.json": "not one this server reads from",
        "/etc/passwd": "is no URL",
    }
    for value, words in cases.items():
        answer = httpx.post(
            execute, json={"inputs": {"sar": value}}, headers=procs.auth, timeout=10
        )
        assert answer.status_code == 400, (value, answer.text)
        assert words in answer.json()["description"], answer.text
    missing = httpx.post(execute, json={"inputs": {}}, headers=procs.auth, timeout=10)
    assert missing.status_code == 400 and "'sar' is required" in missing.text
    # the WPS outputs route serves only its own folder
    for name in ("../token", "..%2Ftoken", "%2e%2e/processes.json"):
        assert httpx.get(f"{procs.url}/wps/outputs/{name}", timeout=10).status_code == 404


def test_harvest_runs_synchronously(procs: SimpleNamespace, scenario: Any) -> None:
    """Harvest, executed without ``Prefer``: the answer is the result; the holdings hold it."""
    item = _sar_item(scenario)
    execute = f"{procs.url}/processes/harvest/execution"
    inline = json.loads(item.read_text("utf-8"))  # relative asset hrefs and no URL: refused
    refused = httpx.post(execute, json={"inputs": {"items": [inline]}}, headers=procs.auth)
    assert refused.status_code == 400 and "relative href" in refused.text
    answer = httpx.post(
        execute, json={"inputs": {"items": [item.as_uri()]}}, headers=procs.auth, timeout=60
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["failures"] == [] and "harvest" in result["processing:lineage"]
    (held,) = result["items"]
    assert held["id"] == item.stem
    assert Path(result["holdings"]) == procs.config.holdings_dir()
    assert all(Path(result["holdings"], held["collection"], held["id"]).glob("*.tif"))


def test_module_entry(procs: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", str(procs.server.folder)]) == 0
    assert capsys.readouterr().out.strip() == f"running: {procs.url}"


def test_fuzzed_openapi_gives_no_server_error(procs: SimpleNamespace, tmp_path: Path) -> None:
    """schemathesis over pygeoapi's OpenAPI document: 2 examples per operation, fixed seed.

    Without a token: the reads are fuzzed, job deletions must be refused (401) by the
    guard. Executions (POST) are left out: generating their bodies is most of the time,
    and the guard refuses them before pygeoapi (test_execution_needs_the_token).
    """
    exe = Path(sys.executable).with_name("st")
    if not exe.exists():
        pytest.skip("schemathesis is not installed (serve extra)")
    cmd = [str(exe), "run", f"{procs.url}/openapi?f=json", "--checks", "not_a_server_error",
           "--phases", "fuzzing", "--max-examples", "2",
           "--exclude-method", "POST",
           "--seed", "3", "--request-timeout", "10", "--no-color"]  # fmt: skip
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "Server error" not in out, out[-3000:]
    tested = re.search(r"Tested: (\d+)", out)
    assert tested and int(tested.group(1)) >= 10, out[-3000:]  # of 12


def test_results_go_to_the_stac_api_with_provenance(tmp_path: Path) -> None:
    """With ``stac_api`` configured, the stamped items are sent (a recording API on 127.0.0.1)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from mus_lab import publish
    from mus_lab.services._jobs import Job, _finish
    from tests.publish.conftest import prediction
    from tests.publish.test_products import _model

    received: list[tuple[str, str, str, dict[str, Any]]] = []

    class Api(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(size) or b"{}")
            received.append((self.command, self.path, self.headers["Authorization"], body))
            self.send_response(201)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    api = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=api.serve_forever, daemon=True)
    thread.start()
    try:
        token_file = tmp_path / "api-token"
        token_file.write_text("api-s3cret\n", "utf-8")
        cfg = ProcessConfig(
            tmp_path / "products",
            stac_api=f"http://127.0.0.1:{api.server_address[1]}",
            stac_api_token_file=token_file,
        )
        assert "api-s3cret" not in json.dumps(cfg.to_dict()) + repr(cfg)
        store = publish.StaticCatalog.create(cfg.store)
        written = store.publish(
            publish.LandCoverProduct.from_prediction(prediction(0), model=_model())
        )
        job = Job("job-7", "ogcapi-processes", "http://127.0.0.1:1/jobs/job-7")
        result = _finish(written, cfg, job, "fusion", [], extra=["file:///in/item.json"])
    finally:
        api.shutdown()
        api.server_close()
    assert result["stac_api"] is True
    assert [(m, p) for m, p, _, _ in received] == [
        ("POST", "/collections"),
        ("POST", "/collections/landcover-optical/items"),
    ]
    assert {auth for _, _, auth, _ in received} == {"Bearer api-s3cret"}
    sent = received[1][3]
    assert sent["properties"]["mus_lab:job"]["id"] == "job-7"
    assert "job job-7" in sent["properties"]["processing:lineage"]
    links = {(ln["rel"], ln["href"]) for ln in sent["links"]}
    assert ("derived_from", "file:///in/item.json") in links
    assert ("via", "http://127.0.0.1:1/jobs/job-7") in links
