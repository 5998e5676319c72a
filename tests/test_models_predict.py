"""Inference on one new radiograph: the prediction lands back where the pair transform
says, on the right hip side, and the BMD is the calibration's (the CLI on a model folder:
tests/test_models_deploy.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from conventions.pairs import pair_transform
from models.__main__ import main as models_main
from models.bmd import BmdCalibration
from models.data import load_pair
from models.predict import load_generator, predict_images, predict_radiograph
from models.train import TrainConfig, train_stage


class BlobGenerator(torch.nn.Module):
    """A stand-in network whose "PF-DRR" is a square of 1 g/cm² at known pair pixels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x)
        out[..., 30:34, 10:14] = 1.0  # at factor 8: pair rows 240-271, cols 80-111
        return out


@pytest.mark.parametrize("side", ["L", "R"])
def test_the_predicted_pf_drr_lands_where_the_pair_transform_maps_it(side):
    pixels = np.random.default_rng(0).normal(size=(300, 480)).astype(np.float32)
    calibration = BmdCalibration("dxa_bmd_g_cm2", 0.5, 2.0, 0.1, 1.0, 10)
    out = predict_radiograph(BlobGenerator(), pixels, side, 8, calibration)
    assert out["pf_drr_pair_g_cm2"].shape == (512, 256)
    back = out["pf_drr_radiograph_g_cm2"]
    assert back.shape == pixels.shape
    t = pair_transform(pixels.shape, side, (512, 256))
    centre_in_pair = np.array([[(31.5 + 0.5) * 8 - 0.5, (11.5 + 0.5) * 8 - 0.5]])
    expected = t.to_radiograph(centre_in_pair)[0]
    rows, cols = np.nonzero(back > 0.5)
    found = np.array([rows.mean(), cols.mean()])
    assert np.abs(found - expected).max() < 1.0
    # The target hip's half of the image: the patient's right on the image's left.
    assert (cols < 240).all() if side == "R" else (cols >= 240).all()
    # Areal density is intensive: the square reads 1 g/cm² in both frames.
    assert back.max() == pytest.approx(1.0)
    assert out["bmd"] == pytest.approx(2.0 * 1.0 + 0.1)  # the calibration's line at t = 0.5


def test_pf_roi_intensities_are_means_over_the_pf_silhouette(tmp_path):
    """Fig. 1's intensities of one pair: the radiograph's and the ground-truth PF-DRR's
    means over the PF mask, and the predicted PF-DRR's over the mask at the model's
    resolution (blocks at least half inside)."""
    from models.cross_validation import pf_roi_intensities

    xray = np.full((8, 8), 100.0, np.float32)
    mask = np.zeros((8, 8), np.uint8)
    mask[:4, :4] = 1
    xray[:4, :4] = 300.0  # the PF region is brighter than the rest
    truth = np.where(mask > 0, 0.9, 0.0).astype(np.float32)
    np.savez(tmp_path / "pair.npz", xray=xray, pf_drr_g_cm2=truth, pf_mask=mask)
    table = pd.DataFrame({"subject_id": ["S1"], "image": ["ap"], "pose": ["supine"],
                          "pair": [str(tmp_path / "pair.npz")], "dxa_bmd_g_cm2": [0.8],
                          "qct_bmd_mg_cm3": [250.0]})  # fmt: skip
    predicted = np.zeros((1, 4, 4), np.float32)  # factor 2: 2 × 2 blocks of the mask
    predicted[0, :2, :2] = 0.7
    predicted[0, 2:, 2:] = 5.0  # outside the region: not counted
    row = pf_roi_intensities(table, np.array([True]), 0, 2, predicted).iloc[0]
    assert row["radiograph"] == pytest.approx(300.0)
    z = (300.0 - xray.mean()) / xray.std()
    assert row["radiograph_standardised"] == pytest.approx(z, rel=1e-5)
    assert row["gt_pf_drr"] == pytest.approx(0.9)
    assert row["predicted_pf_drr"] == pytest.approx(0.7)
    assert row["dxa_bmd_g_cm2"] == 0.8 and row["qct_bmd_mg_cm3"] == 250.0


@pytest.mark.parametrize("bmd_fit", ["ground_truth", "predicted"])
def test_predict_fold_fits_the_bmd_line_on_what_it_is_told(tmp_path, bmd_fit):
    """The decomposition's threshold and line come from the training fold's ground-truth
    PF-DRRs (the paper's Fig. 4: then they are the gt_pf_drr method's, exactly) or from
    the network's predictions of them; the test subjects get that line applied to their
    predicted PF-DRRs either way."""
    from models.data import PairDataset
    from tiny_pairs import write_tiny_pairs

    table = write_tiny_pairs(tmp_path / "pairs", 8, shape=(64, 32))
    subjects = [f"S{i:03d}" for i in range(8)]
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"folds": [{"train": subjects[:6], "test": subjects[6:]}]}))
    cfg = TrainConfig(epochs=1, batch_size=4, width=8, adversarial=False)
    train_stage(PairDataset(table, subjects[:6], "pf"), cfg, tmp_path / "g", progress=False)
    out = {k: tmp_path / f"{k}.out" for k in ("predictions", "calibration")}
    args = ["predict-fold", "--model", str(tmp_path / "g" / "final.pt"), "--table", str(table),
            "--folds", str(folds), "--fold", "0", "--bmd-fit", bmd_fit,
            "--out-predictions", str(out["predictions"]),
            "--out-calibration", str(out["calibration"])]  # fmt: skip
    assert models_main(args) == 0
    doc = json.loads(out["calibration"].read_text())
    assert doc["bmd_fit"] == bmd_fit
    decomposition, truth = doc["decomposition/dxa_bmd_g_cm2"], doc["gt_pf_drr/dxa_bmd_g_cm2"]
    keys = ("threshold_g_cm2", "slope", "intercept")
    same = all(decomposition[k] == truth[k] for k in keys)
    assert same == (bmd_fit == "ground_truth")  # one epoch: predictions are not the truth
    predictions = pd.read_csv(out["predictions"], sep="\t", dtype={"subject_id": str})
    rows = predictions[(predictions.method == "decomposition")
                       & (predictions.target == "dxa_bmd_g_cm2")]  # fmt: skip
    assert sorted(rows.subject_id) == subjects[6:]
    cal = BmdCalibration.from_record(decomposition)
    generator, _ = load_generator(str(tmp_path / "g" / "final.pt"))
    pairs = pd.read_csv(table, sep="\t").set_index("subject_id").loc[subjects[6:], "pair"]
    images = predict_images(generator, np.stack([load_pair(p, "pf")[0] for p in pairs]))
    assert rows.prediction.to_numpy() == pytest.approx(cal.predict(images), rel=1e-5)


def test_one_process_predicts_several_folds_as_one_call_a_fold_would(tmp_path):
    """``predict-fold --fold 0 1``: each fold's files byte for byte those of its own call
    (the workflow predicts an experiment's folds in one job)."""
    from models.data import PairDataset
    from tiny_pairs import write_tiny_pairs

    table = write_tiny_pairs(tmp_path / "pairs", 8, shape=(64, 32))
    subjects = [f"S{i:03d}" for i in range(8)]
    folds = tmp_path / "folds.json"
    splits = [{"train": subjects[:6], "test": subjects[6:]},
              {"train": subjects[2:], "test": subjects[:2]}]  # fmt: skip
    folds.write_text(json.dumps({"folds": splits}))
    cfg = TrainConfig(epochs=1, batch_size=4, width=8, adversarial=False)
    for k, split in enumerate(splits):
        data = PairDataset(table, split["train"], "pf")
        train_stage(data, cfg, tmp_path / f"g{k}", progress=False)
    outputs = ("predictions", "calibration", "checks", "intensities")

    def args(folds_, name):
        return ["predict-fold", "--fold", *map(str, folds_),
                "--model", *(str(tmp_path / f"g{k}" / "final.pt") for k in folds_),
                "--table", str(table), "--folds", str(folds),
                *(x for o in outputs for x in
                  (f"--out-{o}", *(str(tmp_path / f"{name}{k}.{o}") for k in folds_)))]  # fmt: skip

    assert models_main(args([0, 1], "both")) == 0
    for k in (0, 1):
        assert models_main(args([k], "alone")) == 0
        for o in outputs:
            alone = (tmp_path / f"alone{k}.{o}").read_bytes()
            assert (tmp_path / f"both{k}.{o}").read_bytes() == alone, (k, o)
    test_subjects = pd.read_csv(tmp_path / "both1.predictions", sep="\t")["subject_id"]
    assert set(test_subjects) == set(subjects[:2])  # fold 1's own test subjects


def test_the_folds_arguments_pair_up_or_are_refused():
    from argparse import Namespace

    from models.__main__ import per_fold

    a = Namespace(fold=[3, 4], model=["m3", "m4"], out=["o3", "o4"],
                  regressors=["r3a", "r3b", "r4a", "r4b"])  # fmt: skip
    got = per_fold(a, ("model", "out"), ("regressors",))
    assert got == [
        {"fold": 3, "model": "m3", "out": "o3", "regressors": ["r3a", "r3b"]},
        {"fold": 4, "model": "m4", "out": "o4", "regressors": ["r4a", "r4b"]},
    ]
    with pytest.raises(ValueError, match="--model gives 1 values for 2 folds"):
        per_fold(Namespace(**{**vars(a), "model": ["m3"]}), ("model", "out"), ("regressors",))
    with pytest.raises(ValueError, match="--regressors gives 3 files for 2 folds"):
        per_fold(Namespace(**{**vars(a), "regressors": ["r3a", "r3b", "r4a"]}), ("model",),
                 ("regressors",))  # fmt: skip
    with pytest.raises(ValueError, match="names a fold twice"):
        per_fold(Namespace(**{**vars(a), "fold": [3, 3]}), ("model",), ())
