import numpy as np
import pytest

from mus_lab.classify import ConfusionMatrix
from mus_lab.errors import ConfusionMatrixError, MusLabError
from tests._helpers import METHODS_A_LABELS as LABELS
from tests._helpers import METHODS_A_OPT as OPT


def test_csv_round_trip_in_otb_layout(tmp_path):
    cm = ConfusionMatrix(LABELS, np.array(OPT))
    path = cm.to_csv(tmp_path / "conf.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "#Reference labels (rows):11,12,31,42,43,51"
    assert lines[1] == "#Produced labels (columns):11,12,31,42,43,51"
    assert lines[2] == "36,57,99,72,66,48"
    back = ConfusionMatrix.from_csv(path)
    assert back.labels == LABELS
    np.testing.assert_array_equal(back.counts, OPT)


def test_metrics_against_hand_computation():
    ref = np.array([1, 1, 1, 2, 2, 3, 3, 3, 3, 3])
    prod = np.array([1, 1, 2, 2, 2, 3, 3, 3, 1, 2])
    cm = ConfusionMatrix.from_labels(ref, prod)
    np.testing.assert_array_equal(cm.counts, [[2, 1, 0], [0, 2, 0], [1, 1, 3]])
    assert cm.overall_accuracy == pytest.approx(0.7)
    np.testing.assert_allclose(cm.precision, [2 / 3, 2 / 4, 3 / 3])
    np.testing.assert_allclose(cm.recall, [2 / 3, 2 / 2, 3 / 5])
    pe = (3 * 3 + 4 * 2 + 3 * 5) / 100
    assert cm.kappa == pytest.approx((0.7 - pe) / (1 - pe))


def test_bad_matrices_are_clear_errors(tmp_path):
    with pytest.raises(ConfusionMatrixError, match="6 x 6"):
        ConfusionMatrix(LABELS, np.ones((5, 6)))
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2\n3,4\n")
    with pytest.raises(MusLabError, match="not an OTB"):
        ConfusionMatrix.from_csv(bad)
    with pytest.raises(ConfusionMatrixError, match="not in the legend"):
        ConfusionMatrix.from_labels(np.array([1, 9]), np.array([1, 1]), labels=[1, 2])
