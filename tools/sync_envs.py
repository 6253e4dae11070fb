"""Write environment.yml and binder/environment.yml from pyproject.toml (one source of truth).

Run ``python tools/sync_envs.py`` after changing dependencies; a test checks they agree.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra, items in project["optional-dependencies"].items():
        if extra != "all":
            reqs.extend(items)
    return reqs


def render(name: str, header: str) -> str:
    lines = [
        f"# {header}",
        "# Generated from pyproject.toml by tools/sync_envs.py: edit pyproject.toml, then rerun it.",
        f"name: {name}",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        "  - python=3.11",
        "  - pip",
        "  - pip:",
    ]
    lines += [f'      - "{r}"' for r in requirements()]
    return "\n".join(lines) + "\n"


def main() -> int:
    (ROOT / "environment.yml").write_text(
        render("mus_lab", "Conda environment for mus_lab; then `pip install --no-deps -e .`")
    )
    (ROOT / "binder" / "environment.yml").write_text(
        render(
            "mus_lab-binder", "Binder/JupyterHub image for mus_lab (postBuild installs the package)"
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
