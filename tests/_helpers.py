"""Test helpers shared across the test packages (one place, no copies).

- Vector A of METHODS.md section 5 (the OTB/IOTA² fusion check): the class labels and the two
  confusion matrices (optical, SAR), used by the confusion-matrix and the fusion tests.
- Laziness checks: use :func:`mus_lab.testing.raise_if_dask_computes`.
- Local servers: :mod:`tests._servers` (processes) and :mod:`tests._stac_server` (recorded STAC API).
"""

from __future__ import annotations

__all__ = ["METHODS_A_LABELS", "METHODS_A_OPT", "METHODS_A_SAR"]

#: Class labels of METHODS.md section 5, vector A.
METHODS_A_LABELS = (11, 12, 31, 42, 43, 51)
#: Optical confusion matrix of vector A (rows: reference, columns: produced).
METHODS_A_OPT = [
    [36, 57, 99, 72, 66, 48],
    [43, 61, 45, 41, 14, 91],
    [93, 46, 8, 25, 60, 40],
    [11, 6, 59, 23, 75, 82],
    [44, 81, 16, 21, 68, 35],
    [42, 62, 97, 29, 9, 71],
]
#: SAR confusion matrix of vector A.
METHODS_A_SAR = [
    [91, 62, 97, 29, 96, 57],
    [2, 18, 38, 27, 76, 78],
    [52, 25, 15, 95, 9, 20],
    [21, 80, 53, 54, 64, 16],
    [55, 94, 59, 45, 10, 77],
    [28, 11, 98, 47, 75, 67],
]
