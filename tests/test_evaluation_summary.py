"""Table 2 from a fixed predictions file, against values computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conventions.who import t_score, who_category
from evaluation.__main__ import main as evaluation_main
from evaluation.plots import bland_altman_figure, scatter_figure

TRUTH = [0.6, 0.6, 0.8, 0.8, 1.0, 1.0]  # subjects A, B, C, two radiographs each


@pytest.fixture()
def predictions(tmp_path):
    rows = []
    for method, preds in (
        ("decomposition", TRUTH),  # perfect
        ("conventional_regression", [0.7, 0.5, 0.8, 0.8, 1.1, 0.9]),  # ±0.1 on A and C
        ("gt_pf_drr", [0.6, 0.6, 0.8, np.nan, 1.0, 1.0]),  # one missing
    ):
        for i, (p, t) in enumerate(zip(preds, TRUTH, strict=True)):
            rows.append({"subject_id": "ABC"[i // 2], "image": f"ap{i % 2}", "pose": "supine",
                         "fold": 0, "method": method, "target": "dxa_bmd_g_cm2",
                         "prediction": p, "truth": t})  # fmt: skip
    path = tmp_path / "predictions.tsv"
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


def test_table2_matches_hand_computed_values(predictions, tmp_path):
    out_metrics, out_table = tmp_path / "metrics.tsv", tmp_path / "table2.md"
    assert evaluation_main(["summarise", "--predictions", str(predictions), "--out-metrics",
                            str(out_metrics), "--out-table", str(out_table)]) == 0  # fmt: skip
    m = pd.read_csv(out_metrics, sep="\t").set_index("method")
    # Rows in Table 2's order.
    assert list(m.index) == ["conventional_regression", "decomposition", "gt_pf_drr"]
    perfect = m.loc["decomposition"]
    assert perfect["pcc"] == pytest.approx(1.0) and perfect["icc"] == pytest.approx(1.0)
    assert perfect["mae"] == 0.0 and perfect["see"] == pytest.approx(0.0, abs=1e-12)
    assert perfect["rms_cv_pct"] == pytest.approx(0.0, abs=1e-10)
    noisy = m.loc["conventional_regression"]
    assert noisy["mae"] == pytest.approx(0.4 / 6)
    assert noisy["ba_bias"] == pytest.approx(0.0, abs=1e-12)
    # Per-subject CVs: A 0.1414/0.6, B 0, C 0.1414/1.0, so RMS-CV = 15.87 %.
    cv_a, cv_c = np.sqrt(0.02) / 0.6, np.sqrt(0.02) / 1.0
    expected = 100 * np.sqrt((cv_a**2 + cv_c**2) / 3)
    assert noisy["rms_cv_pct"] == pytest.approx(expected, rel=1e-5)  # 6 digits in the TSV
    missing = m.loc["gt_pf_drr"]
    assert missing["n"] == 5 and missing["n_missing"] == 1
    table = out_table.read_text()
    assert "| Decomposition | 1.000 | 1.000 | 0.000 | 0.000 | 0.00% | – |" in table
    assert "| Conventional regression |" in table and "15.87%" in table
    assert "fitted on" not in table  # not told what the BMD line was fitted on
    args = ["summarise", "--predictions", str(predictions), "--out-metrics", str(out_metrics),
            "--out-table", str(out_table), "--bmd-fit", "ground_truth"]  # fmt: skip
    assert evaluation_main(args) == 0
    assert "fitted on the training fold's ground-truth PF-DRRs" in out_table.read_text()


def test_a_predictions_file_without_its_columns_is_refused(tmp_path, capsys):
    bad = tmp_path / "predictions.tsv"
    bad.write_text("subject_id\tmethod\nS001\tx\n")
    out = ["--out-metrics", str(tmp_path / "m.tsv"), "--out-table", str(tmp_path / "t.md")]
    code = evaluation_main(["summarise", "--predictions", str(bad), *out])
    assert code == 2
    err = capsys.readouterr().err
    assert "predictions.tsv" in err and "prediction" in err and "truth" in err
    assert not (tmp_path / "m.tsv").exists()


def test_the_figures_show_each_method_and_its_agreement(predictions, tmp_path):
    table = pd.read_csv(predictions, sep="\t")
    scatter = scatter_figure(table)
    assert len(scatter.axes) == 3  # one target × three methods, Table 2's order
    titles = [ax.get_title() for ax in scatter.axes]
    assert titles[1] == "Decomposition\nPCC 1.000, ICC 1.000"
    ba = bland_altman_figure(table).axes[0]  # conventional regression: bias 0, SD √0.008
    levels = sorted(line.get_ydata()[0] for line in ba.lines)
    sd = np.std([0.1, -0.1, 0, 0, 0.1, -0.1], ddof=1)
    assert levels == pytest.approx([-1.96 * sd, 0.0, 1.96 * sd], abs=1e-12)
    out = ["--out-scatter", str(tmp_path / "s.png"), "--out-bland-altman", str(tmp_path / "b.png")]
    assert evaluation_main(["plots", "--predictions", str(predictions), *out]) == 0
    for name in ("s.png", "b.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_who_categories_at_their_boundaries():
    assert who_category([-1.0, -1.0001, -2.4999, -2.5, 0.3]).tolist() == [
        "normal", "osteopenia", "osteopenia", "osteoporosis", "normal"
    ]  # fmt: skip
    assert t_score([0.942 - 0.244], 0.942, 0.122)[0] == pytest.approx(-2.0)
    with pytest.raises(ValueError, match="SD must be positive"):
        t_score([0.8], 0.9, 0.0)


def test_the_category_table_counts_each_method_against_dxa(predictions, tmp_path):
    """Reference 0.942 ± 0.122: the truths 0.6, 0.8, 1.0 are osteoporosis, osteopenia and
    normal (T = −2.80, −1.16, +0.48); the noisy method puts A's 0.7 in osteopenia."""
    out = tmp_path / "categories.tsv"
    assert evaluation_main(["summarise", "--predictions", str(predictions), "--out-metrics",
                            str(tmp_path / "m.tsv"), "--out-table", str(tmp_path / "t.md"),
                            "--out-categories", str(out)]) == 0  # fmt: skip
    counts = pd.read_csv(out, sep="\t").set_index(["method", "dxa", "predicted"])["count"]
    for category in ("normal", "osteopenia", "osteoporosis"):
        assert counts["decomposition", category, category] == 2
    assert counts["conventional_regression", "osteoporosis", "osteopenia"] == 1
    assert counts["conventional_regression", "osteoporosis", "osteoporosis"] == 1
    assert counts["conventional_regression", "normal", "normal"] == 2
    assert counts.groupby(level="method").sum().to_dict() == {
        "conventional_regression": 6, "decomposition": 6, "gt_pf_drr": 5
    }  # fmt: skip


def test_robustness_experiments_get_their_own_table2_sections(predictions, tmp_path, capsys):
    out = ["--out-metrics", str(tmp_path / "m.tsv"), "--out-table", str(tmp_path / "t.md")]
    base = ["summarise", "--predictions", str(predictions), *out]
    assert evaluation_main([*base, "--experiment", f"uncalibrated_ct={predictions}"]) == 0
    table = (tmp_path / "t.md").read_text()
    assert table.startswith("### Trained on every pose, phantom-calibrated CT")
    assert "### Trained on every pose, uncalibrated CT (a fixed HU line)" in table
    metrics = pd.read_csv(tmp_path / "m.tsv", sep="\t")
    assert set(metrics["experiment"]) == {"main", "uncalibrated_ct"}
    # An unknown experiment, or the limited-pose one without its poses, is refused.
    assert evaluation_main([*base, "--experiment", f"colder={predictions}"]) == 2
    assert "colder" in capsys.readouterr().err
    assert evaluation_main([*base, "--experiment", f"limited_poses={predictions}"]) == 2
    assert "--limited-poses" in capsys.readouterr().err


def test_fig1_intensities_their_pccs_and_figure(tmp_path):
    """The PF-region intensities of each image against BMD (the paper's Fig. 1): a PF-DRR
    mean that is a line of the BMD correlates 1, one that falls with it −1, and the
    correlation table and figure say so."""
    bmd = np.array([0.6, 0.7, 0.8, 0.9, 1.0])
    rows = pd.DataFrame({
        "subject_id": list("ABCDE"), "image": "ap", "pose": "supine", "fold": 0,
        "radiograph": [3.0, 1.0, 4.0, 1.0, 5.0], "radiograph_standardised": -bmd,
        "gt_pf_drr": 2 * bmd + 0.1, "predicted_pf_drr": bmd, "dxa_bmd_g_cm2": bmd,
        "qct_bmd_mg_cm3": 300 * bmd,
    })  # fmt: skip
    paths = [tmp_path / "fold0.tsv", tmp_path / "fold1.tsv"]
    rows.iloc[:3].to_csv(paths[0], sep="\t", index=False)
    rows.iloc[3:].to_csv(paths[1], sep="\t", index=False)
    out = {k: tmp_path / f"{k}.out" for k in ("table", "correlations", "figure")}
    args = ["intensities", "--intensities", *map(str, paths)]
    for name in out:
        args += [f"--out-{name}", str(out[name])]
    assert evaluation_main(args) == 0
    assert len(pd.read_csv(out["table"], sep="\t")) == 5  # the folds gathered
    pcc = pd.read_csv(out["correlations"], sep="\t").set_index(["target", "image"])["pcc"]
    expected = np.corrcoef([3.0, 1.0, 4.0, 1.0, 5.0], bmd)[0, 1]
    for target in ("dxa_bmd_g_cm2", "qct_bmd_mg_cm3"):
        assert pcc[target, "gt_pf_drr"] == pytest.approx(1.0)
        assert pcc[target, "predicted_pf_drr"] == pytest.approx(1.0)
        assert pcc[target, "radiograph_standardised"] == pytest.approx(-1.0)
        assert pcc[target, "radiograph"] == pytest.approx(expected, rel=1e-5)  # 6 digits
    assert out["figure"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
