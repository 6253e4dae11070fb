"""Confusion matrices in IOTA²/OTB's layout (rows = reference, columns = produced).

The CSV is the one OTB's ``ComputeConfusionMatrix`` writes and ``FusionOfClassifications`` reads::

    #Reference labels (rows):11,12,31
    #Produced labels (columns):11,12,31
    36,57,99
    43,61,45
    93,46,8
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mus_lab._io import atomic_path
from mus_lab.errors import ConfusionMatrixError

_REF = "#Reference labels (rows):"
_PROD = "#Produced labels (columns):"


@dataclass(frozen=True)
class ConfusionMatrix:
    """Counts of (reference, produced) label pairs.

    Parameters
    ----------
    labels
        Class codes, in the order of both rows (reference) and columns (produced).
    counts
        ``counts[i, j]`` = number of samples of reference ``labels[i]`` mapped as ``labels[j]``.
    """

    labels: tuple[int, ...]
    counts: np.ndarray

    def __post_init__(self) -> None:
        counts = np.asarray(self.counts, dtype="float64")
        n = len(self.labels)
        if counts.shape != (n, n):
            raise ConfusionMatrixError(
                f"A confusion matrix over {n} labels must be {n} x {n}, got {counts.shape}: "
                "give one row and one column per label."
            )
        if len(set(self.labels)) != n:
            raise ConfusionMatrixError(f"Duplicate labels {list(self.labels)}: each class once.")
        if (counts < 0).any() or not np.isfinite(counts).all():
            raise ConfusionMatrixError("Confusion counts must be finite and non-negative.")
        object.__setattr__(self, "labels", tuple(int(v) for v in self.labels))
        object.__setattr__(self, "counts", counts)

    @classmethod
    def from_labels(
        cls,
        reference: np.ndarray,
        produced: np.ndarray,
        labels: Sequence[int] | None = None,
    ) -> ConfusionMatrix:
        """Count pairs from two label arrays of the same shape (1-D or n-D).

        Parameters
        ----------
        reference
            Reference (true) class codes.
        produced
            Mapped class codes, same shape.
        labels
            Class codes in row/column order (default: every code seen, ascending).

        Returns
        -------
        ConfusionMatrix

        Raises
        ------
        ConfusionMatrixError
            The arrays differ in size, or hold codes outside ``labels``.

        Examples
        --------
        >>> cm = ConfusionMatrix.from_labels(np.array([1, 1, 2]), np.array([1, 2, 2]))
        >>> cm.counts.tolist(), round(cm.overall_accuracy, 3)
        ([[1.0, 1.0], [0.0, 1.0]], 0.667)
        """
        ref = np.asarray(reference).ravel()
        prod = np.asarray(produced).ravel()
        if ref.shape != prod.shape:
            raise ConfusionMatrixError(
                f"Reference ({ref.size} samples) and produced ({prod.size}) labels differ in size."
            )
        codes = (
            tuple(int(v) for v in labels)
            if labels is not None
            else tuple(int(v) for v in np.union1d(ref, prod))
        )
        index = {c: i for i, c in enumerate(codes)}
        missing = set(np.unique(ref).tolist() + np.unique(prod).tolist()) - set(codes)
        if missing:
            raise ConfusionMatrixError(
                f"Labels {sorted(missing)} are not in the legend {list(codes)}: add them or mask them out."
            )
        lut = np.full(max(codes) + 1 if codes else 1, -1, dtype="int64")
        for c, i in index.items():
            lut[c] = i
        n = len(codes)
        flat = lut[ref.astype("int64")] * n + lut[prod.astype("int64")]
        counts = np.bincount(flat, minlength=n * n).reshape(n, n)
        return cls(codes, counts)

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str]) -> ConfusionMatrix:
        """Read OTB/IOTA²'s CSV (the two ``#... labels`` header lines, then the counts).

        Parameters
        ----------
        path
            The CSV file.

        Returns
        -------
        ConfusionMatrix

        Raises
        ------
        ConfusionMatrixError
            No file there, or not in OTB/IOTA²'s layout.
        """
        p = Path(path)
        if not p.exists():
            raise ConfusionMatrixError(f"No confusion matrix at {p}: check the path.")
        lines = [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
        try:
            ref = next(ln for ln in lines if ln.startswith(_REF))
            prod = next(ln for ln in lines if ln.startswith(_PROD))
            ref_labels = tuple(int(v) for v in ref[len(_REF) :].split(","))
            prod_labels = tuple(int(v) for v in prod[len(_PROD) :].split(","))
            rows = [[float(v) for v in ln.split(",")] for ln in lines if not ln.startswith("#")]
        except (StopIteration, ValueError) as exc:
            raise ConfusionMatrixError(
                f"{p} is not an OTB/IOTA² confusion matrix CSV (expected '{_REF}...' and "
                f"'{_PROD}...' header lines, then comma-separated counts): {exc}"
            ) from exc
        counts = np.array(rows, dtype="float64")
        if counts.shape != (len(ref_labels), len(prod_labels)):
            raise ConfusionMatrixError(
                f"{p}: {counts.shape[0]} rows x {counts.shape[1] if counts.ndim == 2 else 0} columns "
                f"for {len(ref_labels)} reference and {len(prod_labels)} produced labels."
            )
        if ref_labels == prod_labels:
            return cls(ref_labels, counts)
        labels = tuple(sorted(set(ref_labels) | set(prod_labels)))
        full = np.zeros((len(labels), len(labels)))
        ri = [labels.index(v) for v in ref_labels]
        ci = [labels.index(v) for v in prod_labels]
        full[np.ix_(ri, ci)] = counts
        return cls(labels, full)

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write OTB/IOTA²'s CSV atomically.

        Parameters
        ----------
        path
            Destination file.

        Returns
        -------
        pathlib.Path
            The written file.

        Examples
        --------
        >>> import tempfile
        >>> cm = ConfusionMatrix((1, 2), np.array([[3, 1], [0, 4]]))
        >>> out = cm.to_csv(Path(tempfile.mkdtemp()) / "cm.csv")
        >>> ConfusionMatrix.from_csv(out).counts.tolist()
        [[3.0, 1.0], [0.0, 4.0]]
        """
        joined = ",".join(str(v) for v in self.labels)
        body = "\n".join(
            ",".join(str(int(v)) if float(v).is_integer() else repr(float(v)) for v in row)
            for row in self.counts
        )
        with atomic_path(path) as tmp:
            Path(tmp).write_text(f"{_REF}{joined}\n{_PROD}{joined}\n{body}\n")
        return Path(path)

    @property
    def total(self) -> float:
        return float(self.counts.sum())

    @property
    def overall_accuracy(self) -> float:
        return float(np.trace(self.counts) / self.total) if self.total else float("nan")

    @property
    def kappa(self) -> float:
        """Cohen's kappa."""
        n = self.total
        if not n:
            return float("nan")
        po = np.trace(self.counts) / n
        pe = float((self.counts.sum(0) * self.counts.sum(1)).sum()) / (n * n)
        return float((po - pe) / (1 - pe)) if pe < 1 else float("nan")

    @property
    def precision(self) -> np.ndarray:
        """Per produced class: correct / all mapped as that class (user's accuracy)."""
        col = self.counts.sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(col > 0, np.diag(self.counts) / col, 0.0)

    @property
    def recall(self) -> np.ndarray:
        """Per reference class: correct / all reference samples (producer's accuracy)."""
        row = self.counts.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(row > 0, np.diag(self.counts) / row, 0.0)

    @property
    def f1(self) -> np.ndarray:
        p, r = self.precision, self.recall
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(p + r > 0, 2 * p * r / (p + r), 0.0)

    def reorder(self, labels: Sequence[int]) -> ConfusionMatrix:
        """The same matrix over ``labels`` (a superset adds empty rows/columns).

        Parameters
        ----------
        labels
            Class codes in the new order; must include every code of the matrix.

        Returns
        -------
        ConfusionMatrix

        Raises
        ------
        ConfusionMatrixError
            A code of the matrix is missing from ``labels``.
        """
        extra = set(self.labels) - {int(v) for v in labels}
        if extra:
            raise ConfusionMatrixError(
                f"Labels {sorted(extra)} of the matrix are missing from {list(labels)}."
            )
        full = np.zeros((len(labels), len(labels)))
        idx = [list(labels).index(v) for v in self.labels]
        full[np.ix_(idx, idx)] = self.counts
        return ConfusionMatrix(tuple(labels), full)
