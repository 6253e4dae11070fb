"""Sen2Cor and MAJA as managed external steps, run through stand-in programs (tests/ard/fake_*.py)
that check their arguments and write the real L2A layouts."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from mus_lab import ard, set_options
from mus_lab.ard import external
from mus_lab.catalog import open_holdings
from mus_lab.errors import ExternalToolError

HERE = Path(__file__).resolve().parent
L1C = "S2A_MSIL1C_20220214T070051_N0400_R120_T38KQA_20220214T073803.SAFE"


def _stand_in(tmp_path: Path, name: str) -> Path:
    """An executable named ``fake_<tool>`` running the stand-in with this interpreter."""
    program = tmp_path / "bin" / f"fake_{name}"
    program.parent.mkdir(exist_ok=True)
    program.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{HERE / f"fake_{name}.py"}" "$@"\n')
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program


def _l1c(tmp_path: Path, name: str = L1C) -> Path:
    """An L1C SAFE folder: only its MTD_MSIL1C.xml (minimal; the stand-ins read no pixel)."""
    safe = tmp_path / "l1c" / name
    safe.mkdir(parents=True)
    (safe / "MTD_MSIL1C.xml").write_text("<Level-1C_User_Product/>")
    return safe


@pytest.mark.realdata
def test_sen2cor_run_logs_registers_and_feeds_prepare_s2(tmp_path, real_data):
    gipp = tmp_path / "L2A_GIPP.xml"
    gipp.write_text("<Level-2A_Ground_Image_Processing_Parameter/>")
    run = external.run_sen2cor(
        _l1c(tmp_path), output_dir=tmp_path / "out", config=gipp, resolution=10,
        executable=_stand_in(tmp_path, "sen2cor"), holdings=tmp_path / "holdings",
        env={"MUS_LAB_REAL_DATA": str(real_data)},
    )  # fmt: skip
    assert run.command[1:] == (
        str(tmp_path / "l1c" / L1C), "--output_dir", str(tmp_path / "out"),
        "--resolution", "10", "--GIP_L2A", str(gipp),
    )  # fmt: skip
    assert "Application terminated successfully" in run.log.read_text()
    (item,) = run.items
    assert item.properties["mus_lab:derived_from"] == L1C
    assert item.get_single_link("derived_from") is not None
    assert item.assets["processing-log"].href == str(run.log)
    stored = open_holdings(tmp_path / "holdings").get("sentinel-2-l2a", item.id)
    assert stored is not None and stored.properties["processing:lineage"].startswith("sen2cor")
    ds = ard.prepare_s2([stored], bands=("red",))
    assert np.nanmin(ds.red.values) >= -0.1  # baseline 04.00 offset applied


def test_sen2cor_failure_quotes_the_log_and_missing_program_says_how_to_fix(tmp_path, monkeypatch):
    fake = _stand_in(tmp_path, "sen2cor")
    bad = _l1c(tmp_path, L1C.replace("T38KQA", "T38KQA_CORRUPT"))
    with pytest.raises(ExternalToolError, match=r"exit status 1(.|\n)*JP2 stream truncated"):
        external.run_sen2cor(bad, output_dir=tmp_path / "out", executable=fake)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("MUS_LAB_SEN2COR", raising=False)
    with pytest.raises(ExternalToolError, match="MUS_LAB_SEN2COR"):
        external.find_tool("sen2cor")
    with set_options(sen2cor=str(fake)):
        assert external.find_tool("sen2cor") == fake


def test_maja_run_assembles_its_input_and_registers_the_theia_product(tmp_path):
    gipp, dtm, conf = (tmp_path / d for d in ("gipp", "dtm", "userconf"))
    for folder, name in ((gipp, "S2A_TEST_GIP_L2COMM_L_ALLSITES_00001_20190626_21000101.EEF"),
                         (dtm, "S2__TEST_AUX_REFDE2_T31TCJ_0001.HDR"), (conf, "MAJAUserConfig.xml")):  # fmt: skip
        folder.mkdir()
        (folder / name).write_text("<Earth_Explorer_File/>")
    run = external.run_maja(
        _l1c(tmp_path), output_dir=tmp_path / "out", config=conf, gipp=gipp, dtm=dtm,
        tile="T31TCJ", executable=_stand_in(tmp_path, "maja"),
    )  # fmt: skip
    (item,) = run.items
    assert item.collection_id == "sentinel-2-l2a-theia" and "--TileId" in run.command
    ds = ard.prepare_s2(run.products[0], bands=("red",))
    assert ds.quality.dtype == np.uint8
    (dtm / "S2__TEST_AUX_REFDE2_T31TCJ_0001.HDR").unlink()
    with pytest.raises(ExternalToolError, match="lacks"):
        external.run_maja(_l1c(tmp_path / "b"), output_dir=tmp_path / "out2", config=conf,
                          gipp=gipp, dtm=dtm, tile="31TCJ", executable=_stand_in(tmp_path, "maja"))  # fmt: skip
