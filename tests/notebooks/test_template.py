"""Every curated notebook follows docs/notebook-template.md (checked without running it)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from mus_lab.production import notebook_parameters

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
CURATED = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
MAX_LINES = 15


def _lines(source: str) -> int:
    return sum(1 for line in source.splitlines() if line.strip())


def test_there_are_curated_notebooks():
    assert len(CURATED) >= 2
    template = Path(__file__).resolve().parents[2] / "docs" / "notebook-template.md"
    assert template.is_file()


@pytest.mark.parametrize("path", CURATED, ids=[p.stem for p in CURATED])
def test_notebook_follows_the_template(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    cells = nb.cells
    title = cells[0]
    assert title.cell_type == "markdown"
    assert re.match(rf"# {path.name[:2]} · \S", title.source), "title: '# NN · What it does'"
    assert "**Background.**" in title.source and "**Uses.**" in title.source
    code = [c for c in cells if c.cell_type == "code"]
    parameters = code[0]
    assert "parameters" in parameters.metadata.get("tags", []), "first code cell tagged parameters"
    declared = notebook_parameters(path)
    assignments = [
        line for line in parameters.source.splitlines() if re.match(r"^\w+\s*(:[^=]*)?=", line)
    ]
    assert len(declared) == len(assignments), "papermill could not read every parameter line"
    assert "output_dir" in declared and declared["output_dir"].help
    # No catalog: the notebook stops and says how to make one, it generates no data silently.
    # Notebook 00 is the exception: it searches providers and *makes* the holdings catalog.
    if not path.name.startswith("00_"):
        assert any("require_catalog(catalog)" in c.source for c in code[1:3]), "set-up: no catalog"
    assert not any("sample.generate" in c.source for c in code)
    assert all(p.help for p in declared.values()), "each parameter has a # help comment"
    headings = [c.source for c in cells if c.cell_type == "markdown" and c.source.startswith("## ")]
    assert len(headings) >= 3 and headings[-1].startswith("## Conclusions")
    steps = [h for h in headings[:-1] if re.match(r"## \d+\. \S", h)]
    assert len(steps) >= 2, "one numbered heading per step: '## 1. ...'"
    assert any("record(" in c.source for c in code), "records its results for the tests"
    last = cells[-1]
    assert last.cell_type == "code" and "print(" in last.source and "{" in last.source, (
        "the conclusion is computed from the numbers"
    )
    for cell in code[1:]:
        assert _lines(cell.source) <= MAX_LINES, (
            f"cell longer than {MAX_LINES} lines:\n{cell.source}"
        )
    assert all(not c.get("outputs") for c in code), "commit notebooks without outputs"
