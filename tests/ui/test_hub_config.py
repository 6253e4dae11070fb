"""The Jupyter server settings of the hub image (binder/postBuild), without a browser."""

from __future__ import annotations

import json

import pytest

from mus_lab.errors import ProductionError
from mus_lab.ui import hub_server_config, write_hub_server_config
from mus_lab.ui._serve import VOILA_DENIED_EXTENSIONS
from tests.ui.test_hub_routes import ROOT


def test_config_gives_voila_the_offline_template_and_no_mathjax():
    config = hub_server_config()
    assert config["VoilaConfiguration"]["template"] == "mus_lab"
    assert config["VoilaConfiguration"]["extension_denylist"] == list(VOILA_DENIED_EXTENSIONS)
    assert config["ServerApp"]["tornado_settings"] == {"mathjax_url": None, "mathjax_config": None}


def test_write_merges_into_an_existing_file(tmp_path):
    path = tmp_path / "jupyter_server_config.json"
    path.write_text(
        json.dumps(
            {
                "ServerApp": {"tornado_settings": {"headers": {"X-A": "1"}}, "port": 9000},
                "VoilaConfiguration": {"template": "lab", "show_tracebacks": True},
                "LabApp": {"collaborative": False},
            }
        )
    )
    assert write_hub_server_config(tmp_path) == path
    config = json.loads(path.read_text())
    assert config["ServerApp"] == {
        "tornado_settings": {"headers": {"X-A": "1"}, "mathjax_url": None, "mathjax_config": None},
        "port": 9000,
    }
    assert config["VoilaConfiguration"]["template"] == "mus_lab"
    assert config["VoilaConfiguration"]["show_tracebacks"] is True
    assert config["LabApp"] == {"collaborative": False}
    write_hub_server_config(tmp_path)  # a second run changes nothing
    assert json.loads(path.read_text()) == config


def test_write_refuses_a_broken_file(tmp_path):
    (tmp_path / "jupyter_server_config.json").write_text("{not json")
    with pytest.raises(ProductionError, match="fix or remove it"):
        write_hub_server_config(tmp_path)


def test_post_build_uses_the_script_not_a_config_d_file():
    # Jupyter Server reads only `ServerApp.jpserver_extensions` in jupyter_server_config.d/.
    commands = [
        line
        for line in (ROOT / "binder" / "postBuild").read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    assert "python binder/jupyter_config.py" in commands
    assert not any("jupyter_server_config.d" in line for line in commands)
