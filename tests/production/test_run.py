"""Batch runs of notebooks: parameters checked first, chains, failures, the ``mus-lab run`` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from typer.testing import CliRunner

from mus_lab.cli import app
from mus_lab.errors import MusLabError, NotebookNotFoundError, NotebookParameterError
from mus_lab.production import (
    NoCatalogError,
    check_parameters,
    notebook_parameters,
    parse_value,
    read_records,
    require_catalog,
    run_chain,
    run_notebook,
)

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _notebook(path: Path, parameters: str, *body: str) -> Path:
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        }
    )
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# tiny"), cell]
    nb.cells += [nbformat.v4.new_code_cell(b) for b in body]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def tiny(tmp_path) -> tuple[Path, Path]:
    """Two small notebooks: one doubles ``n``, one fails when ``fail`` is True."""
    a = _notebook(
        tmp_path / "a_double.ipynb",
        'n = 2  # how many\nlabel = "x"  # a name\noutput_dir = "out"  # folder\n'
        "scale = 1.0  # a factor\nbox = None  # type: list|None  an area",
        "from mus_lab.production import record\nrecord('double', n * 2)\nrecord('out', output_dir)",
    )
    b = _notebook(
        tmp_path / "b_maybe_fail.ipynb",
        "fail = False  # raise on purpose\nn = 1  # shared with a",
        "from mus_lab.errors import EmptySearchError\n"
        "if fail:\n    raise EmptySearchError('No items in this area: widen the dates')",
        "from mus_lab.production import record\nrecord('n', n)",
    )
    return a, b


def test_values_are_read_like_papermill():
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5
    assert parse_value("True") is True and parse_value("None") is None
    assert parse_value("[1, 2.5]") == [1, 2.5]
    assert parse_value("{s2: sentinel-2-l2a}") == {"s2": "sentinel-2-l2a"}
    assert parse_value("2022-03-01") == "2022-03-01"  # a date stays text
    assert parse_value("2022-03-01/2022-08-31") == "2022-03-01/2022-08-31"
    assert parse_value("refined_lee") == "refined_lee"
    assert parse_value("[unclosed") == "[unclosed"


def test_parameters_are_checked_against_the_parameters_cell(tiny):
    a, _ = tiny
    params = notebook_parameters(a)
    assert list(params) == ["n", "label", "output_dir", "scale", "box"]
    assert params["box"].types == (list, type(None)) and params["n"].help == "how many"
    check_parameters(a, {"n": 3, "scale": 2, "box": [1, 2, 3, 4], "label": "y"})  # int for float
    check_parameters(a, {"box": None})
    with pytest.raises(
        NotebookParameterError, match=r"has no parameter 'm': choose among box, label"
    ):
        check_parameters(a, {"m": 1})
    with pytest.raises(
        NotebookParameterError, match=r"'n' of a_double.ipynb must be int .*got str 'ten'.*-p n 2"
    ):
        check_parameters(a, {"n": "ten"})
    with pytest.raises(NotebookParameterError, match="must be int"):
        check_parameters(a, {"n": True})
    with pytest.raises(
        NotebookParameterError, match=r"must be list or None.*-p box \"\[a, b, \.\.\.\]\""
    ):
        check_parameters(a, {"box": "1,2,3,4"})
    with pytest.raises(NotebookNotFoundError, match="not found"):
        notebook_parameters(a.with_name("missing.ipynb"))


@pytest.mark.parametrize(
    "path",
    sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")),
    ids=lambda p: p.stem,
)
def test_the_curated_notebooks_declare_typed_area_dates_and_output(path):
    params = notebook_parameters(path)
    # 00 searches providers (`sources`) and makes the catalog the others take.
    source = "sources" if path.name.startswith("00_") else "catalog"
    assert {source, "bbox", "datetime", "collections", "output_dir"} <= set(params), path.name
    assert params["bbox"].types == (list, type(None)), path.name
    with pytest.raises(NotebookParameterError):
        check_parameters(path, {"datetime": 2022})
    with pytest.raises(NotebookParameterError, match="must be dict"):
        check_parameters(path, {"collections": "sentinel-2-l2a"})


@pytest.mark.slow
def test_a_chain_writes_executed_notebooks_html_records_and_a_summary(tiny, tmp_path):
    a, b = tiny
    out = tmp_path / "run"
    report = run_chain([a, b], out, parameters={"n": 5}, per_notebook={"a_double": {"label": "z"}})
    assert report.ok, report.table()
    assert [r.records for r in report.runs] == [
        {"double": 10, "out": str((out / "a_double").resolve())},
        {"n": 5},
    ]
    for run in report.runs:
        assert run.executed.exists() and run.html.exists()
        assert json.loads(run.records_json.read_text()) == run.records
        assert "<html" in run.html.read_text()[:2000].lower()
        assert "<script src=" not in run.html.read_text()  # no require.js/MathJax from a CDN
    summary = json.loads((out / "summary.json").read_text())
    assert [r["status"] for r in summary["runs"]] == ["ok", "ok"]
    table = report.table()
    assert "a_double.ipynb" in table and "double=10" in table and "duration" in table


@pytest.mark.slow
def test_a_failing_notebook_stops_the_chain_with_the_message_in_the_notebook(tiny, tmp_path):
    a, b = tiny
    report = run_chain([b, a], tmp_path / "run", parameters={"fail": True})
    assert not report.ok
    assert [r.status for r in report.runs] == ["failed", "skipped"]
    failed = report.runs[0]
    assert failed.error.startswith("EmptySearchError: No items in this area")
    text = failed.executed.read_text()
    assert (
        "No items in this area: widen the dates" in text and "An Exception was encountered" in text
    )
    assert failed.html.exists() and json.loads(failed.records_json.read_text()) == {}


def test_bad_parameters_stop_before_any_kernel_starts(tiny, tmp_path):
    a, b = tiny
    out = tmp_path / "run"
    with pytest.raises(NotebookParameterError, match=r"No notebook of the chain .* \['colour'\]"):
        run_chain([a, b], out, parameters={"colour": "red"})
    with pytest.raises(NotebookParameterError, match="not in the chain"):
        run_chain([a], out, per_notebook={"c": {"n": 1}})
    with pytest.raises(NotebookParameterError, match="must be int"):
        run_notebook(a, out, parameters={"n": 0.5})
    assert not out.exists()


def test_cli_run_rejects_bad_input_with_exit_code_2(tiny, tmp_path):
    a, _ = tiny
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(a), "-p", "n", "ten", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "must be int" in result.output
    result = runner.invoke(app, ["run", str(a), "-p", "n"])
    assert result.exit_code == 2 and "needs a NAME and a VALUE" in result.output
    result = runner.invoke(app, ["run", "-p", "n", "3"])
    assert result.exit_code == 2 and "at least one notebook" in result.output
    result = runner.invoke(app, ["run", str(tmp_path / "nope.ipynb")])
    assert result.exit_code == 2 and "not found" in result.output
    result = runner.invoke(app, ["run", str(a), "--help-parameters"])
    assert result.exit_code == 0 and "-p box" in result.output and "list or None" in result.output
    assert not (tmp_path / "r").exists()
    result = runner.invoke(app, ["dashboards", "--only", "maps"])
    assert (
        result.exit_code == 2
        and "choose among ['flood_risk', 'landcover_explorer']" in result.output
    )


@pytest.mark.slow
def test_cli_run_of_the_search_notebook_on_an_area_without_data_fails_clearly(scenario, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(NOTEBOOKS / "01_search_and_load.ipynb"),
            "-p",
            "catalog",
            str(scenario.catalog_path),
            "-p",
            "bbox",
            "[10.0, 10.0, 10.1, 10.1]",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "failed" in result.output and "EmptySearchError" in result.output
    executed = out / "01_search_and_load.ipynb"
    text = executed.read_text()
    assert "No items for" in text and "enlarge the area" in text
    assert (out / "01_search_and_load.html").exists()
    assert read_records(executed) == {}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] is False and summary["runs"][0]["status"] == "failed"


def test_a_notebook_without_catalog_stops_and_says_how_to_make_or_point_to_one(monkeypatch):
    monkeypatch.delenv("MUS_LAB_CATALOG", raising=False)
    with pytest.raises(NoCatalogError) as info:
        require_catalog(None)
    message = str(info.value)
    for hint in ("-p catalog", "MUS_LAB_CATALOG", "mus-lab sample --out", "make demo"):
        assert hint in message
    assert isinstance(info.value, MusLabError)
    monkeypatch.setenv("MUS_LAB_CATALOG", "https://example.org/stac")
    assert require_catalog(None) == "https://example.org/stac"
    assert require_catalog("given/catalog.json") == "given/catalog.json"


@pytest.mark.slow
def test_a_curated_notebook_without_catalog_fails_with_the_hint_and_generates_nothing(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("MUS_LAB_CATALOG", raising=False)
    run = run_notebook(NOTEBOOKS / "01_search_and_load.ipynb", tmp_path / "run", cwd=tmp_path)
    assert run.status == "failed" and run.error.startswith("NoCatalogError: No catalog")
    assert "mus-lab sample --out" in run.executed.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no sample scenario made


@pytest.mark.slow
def test_figures_get_static_pictures_and_the_reports_nothing_that_needs_a_live_kernel(
    tmp_path, caplog
):
    nb = _notebook(
        tmp_path / "c_figures.ipynb",
        "title = 'a map'  # figure title",
        "import hvplot.xarray  # noqa: F401\nimport numpy as np\nimport xarray as xr\n"
        "import pandas as pd\nimport hvplot.pandas  # noqa: F401",
        "da = xr.DataArray(np.arange(1200.0).reshape(30, 40), dims=('y', 'x'), name='v')\n"
        "da.hvplot.image(cmap='magma', clim=(0, 1200), title=title, colorbar=True)",
        "pd.Series([0.8, 0.6], index=['a', 'b'], name='csi').hvplot.bar(ylim=(0, 1))",
        "pd.DataFrame({'a': [1, 2]})",
        "import sys\nprint('to stderr', file=sys.stderr)",
    )
    run = run_notebook(nb, tmp_path / "run")
    assert run.ok, run.error
    executed = nbformat.read(run.executed, as_version=4)
    outputs = [o for c in executed.cells for o in c.get("outputs", [])]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) == 2
    assert all(set(o["data"]) == {"image/png", "text/plain"} for o in figures)
    assert not [o for o in outputs if "vnd.holoviews" in " ".join(o.get("data", {}))]
    assert not [o for o in outputs if "application/javascript" in o.get("data", {})]
    assert any("<table" in str(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert any(o.get("name") == "stderr" for o in outputs)  # the cells' own output stays
    html = run.html.read_text()
    assert html.count('src="data:image/png;base64,') == 2
    assert "<script src=" not in html and "cdnjs" not in html
    assert "not able to be represented" not in caplog.text  # nbconvert display_priority
    assert "Alternative text is missing" not in caplog.text
    assert run.kernel_log.exists()
    assert "over TCP" not in "".join(str(o) for o in outputs)
