"""benchmarks/bench_fusion.py still runs (tiny size) and its library baseline agrees with us."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_bench_fusion_smoke(tmp_path):
    pytest.importorskip("dstz")
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_fusion.py"),
            "--size",
            "128",
            "--chunk",
            "64",
            "--repeat",
            "1",
            "--sample",
            "30",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads((tmp_path / "bench_fusion.json").read_text())
    assert out["mus_lab_fuse_mpix_s"] > 0 and out["floor_mpix_s"] > 0
    assert out["library"]["same_decision_share"] == 1.0
    assert out["library"]["max_abs_belief_diff"] < 1e-4
