"""``mus-lab harvest``: search a static catalog whose assets are on the file server, harvest."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mus_lab.cli import app
from mus_lab.testing import Fault, FileServer
from tests.catalog.conftest import write_catalog
from tests.catalog.test_harvest import COLLECTION, check_dest, make_files, make_items

runner = CliRunner()


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[tuple[FileServer, Path]]:
    make_files(tmp_path / "srv", 3, ("red", "nir"), 50_000)
    with FileServer(tmp_path / "srv") as server:
        write_catalog(tmp_path / "cat", make_items(server))
        yield server, tmp_path / "cat" / "catalog.json"


def harvest(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["harvest", *args, "--quiet", "--retries", "1"])
    return result.exit_code, result.output


def test_harvest_command_and_rerun(catalog: tuple[FileServer, Path], tmp_path: Path) -> None:
    server, cat = catalog
    code, out = harvest(str(cat), "--collection", COLLECTION, "--out", str(tmp_path / "h"))
    assert code == 0, out
    assert "Harvested 6 files (0.3 MB" in out and "0 failed; 3 items held" in out
    check_dest(tmp_path / "h", server, make_items(server))
    code, out = harvest(
        str(cat),
        "-c",
        COLLECTION,
        "--out",
        str(tmp_path / "h"),
        "--assets",
        "red",
        "--workers",
        "2",
    )
    assert code == 0 and "Harvested 0 files" in out and "3 already held" in out


def test_failures_exit_1_and_are_listed(catalog: tuple[FileServer, Path], tmp_path: Path) -> None:
    server, cat = catalog
    server.add_fault(Fault.status(404, times=None), "item-002/nir.bin")
    code, out = harvest(str(cat), "-c", COLLECTION, "--out", str(tmp_path / "h"))
    assert code == 1
    assert "failed: test-coll/item-002 [nir]: HTTP 404 (not found)" in out
    holdings = json.loads((tmp_path / "h" / COLLECTION / "collection.json").read_text())
    assert len([link for link in holdings["links"] if link["rel"] == "item"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-c", "no-such-collection"], "no-such-collection"),
        (["-c", COLLECTION, "--assets", "swir16"], "No item has the asset(s) ['swir16']"),
        (["-c", COLLECTION, "--workers", "0"], "--workers 0"),
        (["-c", COLLECTION, "--bbox", "10,10,0,0"], "Error:"),
    ],
)
def test_bad_input_is_one_line_and_downloads_nothing(
    catalog: tuple[FileServer, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    server, cat = catalog
    code, out = harvest(str(cat), *args, "--out", str(tmp_path / "h"))
    assert code == 2 and message in out and "Traceback" not in out
    assert out.count("Error:") == 1
    assert server.served == {} and not list(tmp_path.glob("h/**/*.bin"))


def test_unreachable_source(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out = harvest(f"http://127.0.0.1:{port}/stac", "-c", "x", "--out", str(tmp_path / "h"))
    assert code == 2 and "Error:" in out and f"127.0.0.1:{port}" in out
    assert not (tmp_path / "h").exists()
