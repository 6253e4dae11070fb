"""A user's own series through the SDK, as users hold it (issue 16): EPSG:4326 COGs opened by
rioxarray (one per date, concatenated over ``time``), odc-stac and stackstac, in a fresh
interpreter where ``odc.geo.xr`` was never imported: feature_cube + extract_samples and
flood.map_water work on each, and give the same samples and the same water map."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_rioxarray_odc_stac_stackstac_inputs_in_a_fresh_interpreter(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "tests._sdk_inputs_script", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    # The accessor was not there before: the package registered it itself.
    assert got["odc_preloaded"] is False
    assert got["odc_after_classify"] is True
    # Same pixels in the polygons whoever opened the files (stackstac's corner coordinates
    # included): 2 + 2 px margins inside a 32 px chip -> 12 x 28 px per class.
    assert got["rioxarray_samples"][:2] == [12 * 28, 12 * 28]
    assert got["stackstac_samples"] == got["rioxarray_samples"]
    assert got["odc_stac_samples"] == got["rioxarray_samples"]
    water, dry = got["rioxarray_flood"]
    assert 0.1 < water / (water + dry) < 0.4
    assert got["stackstac_flood"] == got["rioxarray_flood"]
    assert got["odc_stac_flood"] == got["rioxarray_flood"]
