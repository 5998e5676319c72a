"""The agreement metrics against hand-computed values, known identities and pingouin."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.metrics import bland_altman, icc, mae, pearson, rms_cv, see


def test_pcc_of_a_line_is_one():
    y = np.array([0.61, 0.74, 0.80, 0.95, 1.02])
    r, p = pearson(2 * y + 1, y)
    assert r == pytest.approx(1.0)
    assert p < 1e-6
    assert pearson(-y, y)[0] == pytest.approx(-1.0)


def test_icc_by_hand():
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    # Identical ratings agree perfectly in either form.
    assert icc(truth, truth) == pytest.approx(1.0)
    assert icc(truth, truth, "ICC(3,1)") == pytest.approx(1.0)
    # A constant bias of 1: consistency is perfect, absolute agreement is not.
    # By hand: MS_rows = 10/3, MS_raters = 2, MS_error = 0, so
    # ICC(2,1) = (10/3) / (10/3 + 2 · 2 / 4) = 10/13.
    assert icc(truth + 1.0, truth, "ICC(3,1)") == pytest.approx(1.0)
    assert icc(truth + 1.0, truth, "ICC(2,1)") == pytest.approx(10 / 13)
    with pytest.raises(ValueError, match="form"):
        icc(truth, truth, "ICC(1)")


def test_icc_matches_pingouin():
    pingouin = pytest.importorskip("pingouin")
    rng = np.random.default_rng(0)
    truth = rng.normal(0.8, 0.15, 40)
    pred = 0.9 * truth + 0.1 + rng.normal(0, 0.06, 40)
    long = pd.DataFrame(
        {
            "image": np.tile(np.arange(40), 2),
            "rater": np.repeat(["reference", "prediction"], 40),
            "bmd": np.concatenate([truth, pred]),
        }
    )
    table = pingouin.intraclass_corr(long, targets="image", raters="rater", ratings="bmd")
    # pingouin names McGraw & Wong's forms: A (absolute agreement) is Shrout & Fleiss's
    # ICC(2,1), C (consistency) their ICC(3,1).
    reference = table.set_index("Type")["ICC"]
    assert icc(pred, truth, "ICC(2,1)") == pytest.approx(reference["ICC(A,1)"], abs=1e-10)
    assert icc(pred, truth, "ICC(3,1)") == pytest.approx(reference["ICC(C,1)"], abs=1e-10)


def test_mae_and_see_by_hand():
    assert mae([1.0, 2.0, 3.0], [2.0, 2.0, 5.0]) == pytest.approx(1.0)
    # truth ≈ 1.3 · pred − 0.2: residuals 0.2, −0.1, −0.4, 0.3; SEE = √(0.30 / 2).
    assert see([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 4.0]) == pytest.approx(np.sqrt(0.15))
    # A method off by a line has no SEE: the line is calibrated away.
    y = np.array([0.6, 0.7, 0.9, 1.1])
    assert see(2 * y + 1, y) == pytest.approx(0.0, abs=1e-12)


def test_rms_cv_by_hand():
    subjects = ["A", "A", "B", "B", "C"]
    # A: 1.0 and 1.2 (CV = 0.1414 / 1.1), B: no variation, C: one radiograph (left out).
    cv_a = np.std([1.0, 1.2], ddof=1) / 1.1
    values = [1.0, 1.2, 2.0, 2.0, 5.0]
    assert rms_cv(values, subjects) == pytest.approx(100 * np.sqrt(cv_a**2 / 2))
    assert rms_cv([0.8, 0.8, 0.8, 1.1, 1.1], ["A", "A", "A", "B", "B"]) == pytest.approx(
        0.0, abs=1e-10
    )
    with pytest.raises(ValueError, match="at least 2 radiographs"):
        rms_cv([1.0, 2.0], ["A", "B"])


def test_bland_altman():
    y = np.linspace(0.5, 1.2, 20)
    same = bland_altman(y, y)
    assert same.bias == 0.0 and same.sd == 0.0 and not same.outliers.any()
    # Nineteen exact predictions and one 1 g/cm² too high: bias 0.05, SD √0.05.
    pred = y.copy()
    pred[7] += 1.0
    ba = bland_altman(pred, y)
    assert ba.bias == pytest.approx(0.05)
    assert ba.sd == pytest.approx(np.sqrt(0.05))
    assert ba.upper == pytest.approx(0.05 + 1.96 * np.sqrt(0.05))
    assert np.flatnonzero(ba.outliers).tolist() == [7]


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="1-D alike"):
        mae([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        pearson([1.0, np.nan, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="at least 3"):
        see([1.0, 2.0], [1.0, 2.0])
