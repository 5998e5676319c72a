"""The evaluation's significance tests, pose-wise metrics, compression study and failure
detection, against hand-computed values, scipy and files read back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from conventions.radiograph import read_radiograph
from evaluation.__main__ import main as evaluation_main
from evaluation.compression import compress, jpeg_quality, parse_condition, quantise
from evaluation.plots import posewise_figure
from evaluation.statistics import experiment_tests, method_tests, repeated_measures_anova
from evaluation.summary import compression_metrics, failure_detection_metrics, posewise_metrics
from models.plausibility import Z_LIMIT, PlausibleRange, pf_drr_features


def _long(errors: dict[str, list[float]], poses=None) -> pd.DataFrame:
    """A predictions table whose absolute errors are ``errors`` (truth 1.0, prediction
    1.0 + error), one radiograph per index, per method."""
    rows = []
    for method, values in errors.items():
        for i, e in enumerate(values):
            pose = poses[i] if poses else "supine"
            rows.append({"subject_id": f"S{i:02d}", "image": "ap", "pose": pose,
                         "method": method, "target": "dxa_bmd_g_cm2", "prediction": 1.0 + e,
                         "truth": 1.0})  # fmt: skip
    return pd.DataFrame(rows)


def test_repeated_measures_anova_by_hand():
    e = np.array([[0.10, 0.05, 0.02], [0.20, 0.08, 0.05], [0.15, 0.10, 0.01], [0.30, 0.12, 0.04]])
    methods = ["a", "b", "c"]
    table = _long({m: list(e[:, j]) for j, m in enumerate(methods)})
    row = repeated_measures_anova(table.assign(abs_error=table["prediction"] - 1.0), methods,
                                  "dxa_bmd_g_cm2")  # fmt: skip
    n, k = e.shape
    grand = e.mean()
    ss_methods = n * ((e.mean(axis=0) - grand) ** 2).sum()
    ss_subjects = k * ((e.mean(axis=1) - grand) ** 2).sum()
    ss_error = ((e - grand) ** 2).sum() - ss_methods - ss_subjects
    f = (ss_methods / (k - 1)) / (ss_error / ((n - 1) * (k - 1)))
    assert row["statistic"] == pytest.approx(f)
    assert row["df"] == "2,6"
    assert row["p"] == pytest.approx(stats.f.sf(f, k - 1, (n - 1) * (k - 1)))
    assert row["n"] == 4


def test_tukey_hsd_matches_scipy_and_poses_are_compared():
    rng = np.random.default_rng(3)
    poses = ["standing", "supine", "abduction"] * 6
    errors = {"decomposition": list(np.abs(rng.normal(0.05, 0.03, 18))),
              "conventional_regression": list(np.abs(rng.normal(0.12, 0.03, 18)))}  # fmt: skip
    table = _long(errors, poses)
    tests = method_tests(table, ["conventional_regression", "decomposition"])
    anova = tests[tests["test"] == "rm_anova"].iloc[0]
    assert anova["p"] < 1e-3  # errors of 0.05 against 0.12: the methods differ
    pair = tests[(tests["scope"] == "methods") & (tests["test"] == "tukey_hsd")].iloc[0]
    a = np.array(errors["conventional_regression"])
    b = np.array(errors["decomposition"])
    assert pair["p"] == pytest.approx(stats.tukey_hsd(a, b).pvalue[0, 1], rel=1e-6)
    assert pair["statistic"] == pytest.approx(b.mean() - a.mean())
    by_pose = tests[tests["scope"] == "poses of decomposition"]
    assert len(by_pose) == 3  # three poses, three pairs
    d = np.array(errors["decomposition"])
    groups = [d[[p == q for q in poses]] for p in ("abduction", "standing", "supine")]
    expected = stats.tukey_hsd(*groups).pvalue  # statsmodels orders the groups by name
    assert sorted(by_pose["p"]) == pytest.approx(sorted([expected[0, 1], expected[0, 2],
                                                         expected[1, 2]]), rel=1e-6)  # fmt: skip


def test_identical_experiments_do_not_differ():
    rng = np.random.default_rng(1)
    poses = ["standing", "supine"] * 5
    table = _long({"decomposition": list(np.abs(rng.normal(0.05, 0.02, 10)))}, poses)
    tests = experiment_tests(table, table, "main", "limited_poses", ["decomposition"])
    assert set(tests["scope"]) == {"decomposition at standing", "decomposition at supine"}
    assert np.allclose(tests["statistic"], 0.0) and np.allclose(tests["p"], 1.0)


def test_posewise_pcc_by_hand():
    truth = [0.6, 0.7, 0.8, 0.9]
    rows = []
    for i, t in enumerate(truth):
        rows.append(
            {
                "subject_id": f"S{i}",
                "image": "a",
                "pose": "standing",
                "method": "decomposition",
                "target": "dxa_bmd_g_cm2",
                "prediction": t + 0.05,
                "truth": t,
            }
        )  # perfect up to a bias
        rows.append({"subject_id": f"S{i}", "image": "b", "pose": "abduction",
                     "method": "decomposition", "target": "dxa_bmd_g_cm2",
                     "prediction": 1.5 - t, "truth": t})  # reversed  # fmt: skip
    table = posewise_metrics(pd.DataFrame(rows)).set_index("pose")
    assert list(table.index) == ["standing", "abduction"]  # the paper's order
    assert table.loc["standing", "pcc"] == pytest.approx(1.0)
    assert table.loc["standing", "mae"] == pytest.approx(0.05)
    assert table.loc["abduction", "pcc"] == pytest.approx(-1.0)


@pytest.mark.parametrize("quality", [100, 90, 75, 50, 10, 1])
def test_jpeg_files_have_the_requested_quality(tmp_path, quality):
    image = (1500 + 2000 * _pf_drr(shape=(64, 32))).astype(np.float32)  # smooth, as a radiograph
    data, suffix = compress(image, f"jpeg{quality}")
    path = tmp_path / f"x{suffix}"
    path.write_bytes(data)
    assert suffix == ".jpg" and jpeg_quality(path) == quality
    back = read_radiograph(path).pixels
    assert back.shape == image.shape
    # the lower the quality, the further from the image (8 × 8 blocks at quality 1)
    assert np.corrcoef(back.ravel(), image.ravel())[0, 1] > (0.99 if quality >= 50 else 0.8)


@pytest.mark.parametrize("bits", [1, 6, 8, 12, 16])
def test_bit_depth_is_reduced_losslessly(tmp_path, bits):
    image = np.linspace(1500.0, 4095.0, 512 * 4).reshape(64, 32)
    q = quantise(image, bits)
    assert q.min() == 0 and q.max() == 2**bits - 1
    data, suffix = compress(image, f"bits{bits}")
    path = tmp_path / f"x{suffix}"
    path.write_bytes(data)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == ("L" if bits <= 8 else "I;16")
    back = read_radiograph(path).pixels
    assert np.array_equal(back, q.astype(np.float32))  # lossless at that depth
    assert len(np.unique(back)) == min(2**bits, image.size)


def test_bad_conditions_are_refused(tmp_path):
    for bad in ("jpeg0", "jpeg101", "bits0", "bits17", "png8", "jpeg"):
        with pytest.raises(ValueError, match="condition"):
            parse_condition(bad)
    with pytest.raises(ValueError, match="not a JPEG"):
        path = tmp_path / "x.png"
        path.write_bytes(compress(np.eye(8), "bits8")[0])
        jpeg_quality(path)


def test_compress_cli_and_the_curves(tmp_path):
    rng = np.random.default_rng(2)
    rows = []
    for s in ("S1", "S2", "S3"):
        pair = tmp_path / f"{s}.npz"
        np.savez(pair, xray=rng.normal(2000, 300, (64, 32)).astype(np.float32))
        rows.append({"subject_id": s, "image": "ap", "pose": "supine", "pair": str(pair)})
    table = tmp_path / "dataset_B.tsv"
    pd.DataFrame(rows).to_csv(table, sep="\t", index=False)
    index = tmp_path / "jpeg50.tsv"
    assert evaluation_main(["compress", "--table", str(table), "--condition", "jpeg50",
                            "--out-dir", str(tmp_path / "jpeg50"), "--out-index",
                            str(index)]) == 0  # fmt: skip
    written = pd.read_csv(index, sep="\t")
    assert list(written["subject_id"]) == ["S1", "S2", "S3"]
    for r in written.itertuples():
        assert jpeg_quality(r.file) == 50
        assert r.bytes == (tmp_path / "jpeg50" / r.subject_id / "ap.jpg").stat().st_size
    code = evaluation_main(["compress", "--table", str(table), "--condition", "jpg50",
                            "--out-dir", str(tmp_path / "x"), "--out-index",
                            str(tmp_path / "x.tsv")])  # fmt: skip
    assert code == 2 and not (tmp_path / "x").exists()
    # The curves: per condition the mean file size, per method the PCC.
    predictions = pd.DataFrame([
        {"subject_id": f"S{i}", "image": "ap", "method": "decomposition",
         "target": "dxa_bmd_g_cm2", "prediction": t + e, "truth": t, "condition": c,
         "bytes": b}
        for c, e, b in (("bits8", 0.0, 1000), ("jpeg10", 0.3, 100))
        for i, t in enumerate([0.6, 0.7, 0.9])
    ])  # fmt: skip
    predictions.loc[(predictions["condition"] == "jpeg10") & (predictions["subject_id"] == "S0"),
                    "prediction"] = 1.5  # fmt: skip
    curves = compression_metrics(predictions).set_index("condition")
    assert curves.loc["bits8", "mean_bytes"] == 1000 and curves.loc["jpeg10", "mean_bytes"] == 100
    assert curves.loc["bits8", "pcc"] == pytest.approx(1.0)
    assert curves.loc["jpeg10", "pcc"] < 0


def _pf_drr(shift=(0, 0), scale=1.0, density=0.8, shape=(64, 32)) -> np.ndarray:
    """A femur-like blob: an ellipse of ``density`` g/cm² with a soft edge."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    r = ((rows - 40 - shift[0]) / (10 * scale)) ** 2 + ((cols - 8 - shift[1]) / (5 * scale)) ** 2
    return np.where(r < 1, density * (1.2 - 0.4 * r), 0.0)


def test_failure_detection_flags_implausible_pf_drrs():
    rng = np.random.default_rng(0)
    training = [_pf_drr(shift=rng.integers(-2, 3, 2), scale=rng.uniform(0.9, 1.1),
                        density=rng.uniform(0.6, 1.0)) for _ in range(20)]  # fmt: skip
    plausible = PlausibleRange.fit(training)
    assert plausible.n == 20
    _, reasons = plausible.check(_pf_drr(shift=(1, 0), density=0.75))
    assert reasons == []  # one like the training ones
    _, reasons = plausible.check(_pf_drr(shift=(-25, 12)))  # in the wrong place
    assert any(r.startswith("centroid_row") for r in reasons)
    _, reasons = plausible.check(_pf_drr(scale=0.4))  # far too small
    assert any(r.startswith("area") for r in reasons)
    _, reasons = plausible.check(np.zeros((64, 32)))  # no bone at all
    assert reasons and reasons[0].startswith("area")
    broken = _pf_drr()
    broken[5:9, 20:24] = 0.9  # a second fragment
    features = pf_drr_features(broken)
    assert features["fragments"] == pytest.approx(16 / ((_pf_drr() > 0.1).sum() + 16))
    _, reasons = plausible.check(broken)
    assert any(r.startswith("fragments") for r in reasons)
    z = plausible.z_scores(pf_drr_features(_pf_drr(shift=(-25, 12))))
    assert abs(z["centroid_row"]) > Z_LIMIT
    with pytest.raises(ValueError, match="3 or more"):
        PlausibleRange.fit(training[:2])


def test_metrics_with_and_without_flagged_radiographs():
    truth = [0.6, 0.7, 0.8, 0.9]
    predictions = pd.DataFrame([
        {"subject_id": f"S{i}", "image": "ap", "method": "decomposition",
         "target": "dxa_bmd_g_cm2", "prediction": p, "truth": t}
        for i, (p, t) in enumerate(zip([0.6, 0.7, 0.8, 0.3], truth, strict=True))
    ])  # fmt: skip
    checks = pd.DataFrame({"subject_id": ["S0", "S1", "S2", "S3"], "image": "ap",
                           "flagged": [False, False, False, True]})  # fmt: skip
    row = failure_detection_metrics(predictions, checks).iloc[0]
    assert row["n"] == 4 and row["n_flagged"] == 1
    assert row["mae_all"] == pytest.approx(0.6 / 4)
    assert row["mae_kept"] == pytest.approx(0.0)
    assert row["pcc_kept"] == pytest.approx(1.0) and row["pcc_all"] < 0.5


def test_posewise_figure_draws_each_experiment_and_method():
    rows = [{"experiment": e, "method": m, "target": "dxa_bmd_g_cm2", "pose": p, "n": 5,
             "pcc": 0.5, "mae": 0.1}
            for e in ("main", "limited_poses") for m in ("decomposition", "gt_pf_drr")
            for p in ("standing", "supine", "abduction")]  # fmt: skip
    fig = posewise_figure(pd.DataFrame(rows), seen_poses=["standing", "supine"])
    (ax,) = fig.axes
    styles = sorted(line.get_linestyle() for line in ax.lines if len(line.get_xdata()) == 3)
    assert styles == ["-", "-", "--", "--"]  # two methods in each of two experiments
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["standing", "supine", "abduction\n(unseen)"]
