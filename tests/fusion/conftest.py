"""Shared inputs of the fusion tests: METHODS.md section 5 vector A, simulated sources."""

from __future__ import annotations

import numpy as np
import odc.geo.xr  # noqa: F401  (registers .odc)
import pytest
import xarray as xr

from mus_lab.classify import ConfusionMatrix
from tests._helpers import METHODS_A_LABELS, METHODS_A_OPT, METHODS_A_SAR

A_LABELS, A_OPT, A_SAR = METHODS_A_LABELS, METHODS_A_OPT, METHODS_A_SAR
A_SAR_MAP = [[11, 12, 31], [42, 51, 11], [11, 43, 11]]
A_OPT_MAP = [[12, 42, 31], [11, 43, 51], [43, 51, 42]]
A_FUSED = [[11, 42, 31], [42, 43, 11], [11, 51, 11]]
A_KEPT = [[2, 3, 1], [2, 3, 2], [2, 3, 2]]  # 1 both, 2 SAR, 3 optical
A_SAR_CONF = [
    [0.159699, 0.872120, 0.610836],
    [0.657606, 0.110224, 0.675240],
    [0.263030, 0.623490, 0.517019],
]
A_OPT_CONF = [
    [0.208393, 0.674579, 0.507099],
    [0.214745, 0.962130, 0.779217],
    [0.858645, 0.258679, 0.015593],
]
A_FUSED_CONF = [
    [0.159699, 0.674579, 0.610836],
    [0.657606, 0.962130, 0.675240],
    [0.263030, 0.258679, 0.517019],
]


def grid(values, dtype="uint8", *, chunks=None) -> xr.DataArray:
    """A small map on a 10 m UTM grid (so that grid checks are real)."""
    a = np.asarray(values, dtype=dtype)
    ny, nx = a.shape[-2:]
    da = xr.DataArray(
        a,
        dims=("y", "x") if a.ndim == 2 else ("class", "y", "x"),
        coords={"y": 5_000_000 - 10 * np.arange(ny) - 5.0, "x": 600_000 + 10 * np.arange(nx) + 5.0},
    ).odc.assign_crs("EPSG:32631")
    return da.chunk(chunks) if chunks else da


@pytest.fixture()
def vector_a():
    """(optical map, SAR map, optical CM, SAR CM, optical conf, SAR conf), optical first."""
    return (
        grid(A_OPT_MAP),
        grid(A_SAR_MAP),
        ConfusionMatrix(A_LABELS, np.array(A_OPT)),
        ConfusionMatrix(A_LABELS, np.array(A_SAR)),
        grid(A_OPT_CONF, "float32"),
        grid(A_SAR_CONF, "float32"),
    )
