"""``mus-lab holdings init | ingest | search``: a round trip folder -> database -> folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from mus_lab.cli import app

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, ["holdings", *args])
    assert result.exit_code == 0, result.output
    return result.output


def ids(output: str) -> list[str]:
    return sorted(f["id"] for f in json.loads(output)["features"])


def test_round_trip(pg_cluster: Any, local_catalog: Path, tmp_path: Path) -> None:
    folder = tmp_path / "holdings"
    assert "ready" in run("init", str(folder))
    assert (folder / "catalog.json").is_file()
    assert run("ingest", str(folder), str(local_catalog)).startswith("10 items ingested")

    # A database that does not exist yet: init creates it and installs pgstac.
    url = pg_cluster.url.replace(f"/{pg_cluster.database}?", f"/cli_{os.getpid()}?")
    assert "pgstac" in run("init", url)
    assert run("ingest", url, str(folder), "--collection", "sentinel-2-l2a").startswith("6 items")
    s1 = tmp_path / "s1.json"
    s1.write_text(run("search", str(folder), "-c", "sentinel-1-grd", "-o", "json"))
    assert run("ingest", url, str(s1)).startswith("4 items")

    for args in (
        (),
        ("-c", "sentinel-2-l2a", "--max-cloud", "20"),
        ("--bbox", "2.5,0.2,2.6,0.3", "--datetime", "2024-06-10/2024-06-30"),
        ("--filter", "eo:cloud_cover > 10"),
    ):
        assert ids(run("search", url, *args, "-o", "json")) == ids(
            run("search", str(folder), *args, "-o", "json")
        )

    table = run("search", url, "-c", "sentinel-2-l2a", "--max-cloud", "20").splitlines()
    assert table[0].split() == ["id", "collection", "datetime", "cloud"]
    assert table[-1].startswith("3 items in postgresql://")
    assert "s2-0611-e" in table[1]  # newest first

    back = tmp_path / "back"
    assert run("ingest", str(back), url).startswith("10 items")
    assert ids(run("search", str(back), "-o", "json")) == ids(run("search", url, "-o", "json"))


def test_bad_options(tmp_path: Path) -> None:
    result = runner.invoke(app, ["holdings", "search", str(tmp_path), "-o", "yaml"])
    assert result.exit_code == 2 and "choose table or json" in result.output
    result = runner.invoke(app, ["holdings", "ingest", str(tmp_path), str(tmp_path / "nope")])
    assert result.exit_code == 2 and "Nothing to ingest" in result.output
