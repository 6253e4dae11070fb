"""The three dependency lists (pyproject, environment.yml, binder/) must agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_names() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in project["dependencies"]}
    for extra, reqs in project["optional-dependencies"].items():
        if extra != "all":
            names |= {_name(r) for r in reqs}
    return names


def _env_names(path: Path) -> set[str]:
    env = yaml.safe_load(path.read_text())
    names: set[str] = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {_name(r) for r in dep.get("pip", [])}
        elif _name(dep) not in {"python", "pip"}:
            names.add(_name(dep))
    return names


def test_environment_yml_lists_the_pyproject_packages():
    assert _env_names(ROOT / "environment.yml") == _pyproject_names()


def test_binder_lists_the_pyproject_packages():
    assert _env_names(ROOT / "binder" / "environment.yml") == _pyproject_names()


def test_all_extra_covers_every_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = set(project["optional-dependencies"]) - {"all"}
    (all_req,) = project["optional-dependencies"]["all"]
    assert set(re.search(r"\[(.*)\]", all_req).group(1).split(",")) == extras


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    head = readme[:1500]
    assert "make demo" in head and "make test" in head
