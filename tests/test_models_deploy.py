"""The deployable model: one folder, fitted on every subject, read back, applied to a new
radiograph's hips, and refusing images it cannot read."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch

from conftest import write_dicom_radiograph
from conventions.errors import InputError
from conventions.radiograph import read_radiograph
from conventions.who import t_score, who_category
from models import deploy
from models.__main__ import main as models_main
from models.bmd import fit_bmd_calibration
from models.data import PairDataset, RegressionDataset, load_pair
from models.deploy import load_model, predict_hips
from models.train import TrainConfig, train_stage
from models.train_regression import RegressionConfig, train_regressor
from tiny_pairs import write_tiny_pairs

N = 8
SUBJECTS = [f"S{i:03d}" for i in range(N)]


class MeanPfDrr(torch.nn.Module):
    """A stand-in generator that draws a fixed PF-DRR whatever it is shown."""

    def __init__(self, image: np.ndarray):
        super().__init__()
        self.image = torch.from_numpy(np.asarray(image, np.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2:] == self.image.shape  # the pair at the model's resolution
        return self.image.expand(x.shape[0], 1, *self.image.shape).clone()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A model packaged from barely trained fold-'all' networks on tiny pairs."""
    root = tmp_path_factory.mktemp("deploy")
    table = write_tiny_pairs(root / "pairs", N)
    folds = root / "folds.json"  # two folds: every subject is some fold's test subject
    halves = (SUBJECTS[:4], SUBJECTS[4:])
    fold_list = [{"train": halves[1 - i], "test": halves[i]} for i in (0, 1)]
    folds.write_text(json.dumps({"folds": fold_list}))
    cfg = TrainConfig(epochs=1, batch_size=4, width=8, adversarial=False)
    train_stage(PairDataset(table, SUBJECTS, "pf"), cfg, root / "g", progress=False)
    rcfg = RegressionConfig(epochs=1, finetune_epochs=1, width=8, image_size=(64, 32),
                            head_dims=(16,), head_depths=(1,), dim_head=8)  # fmt: skip
    regressors = []
    for target in ("dxa_bmd_g_cm2", "qct_bmd_mg_cm3"):
        rcfg.target = target
        data = RegressionDataset(table, SUBJECTS, target)
        train_regressor(data, rcfg, root / target, init_from=root / "g" / "final.pt",
                        progress=False)  # fmt: skip
        regressors.append(str(root / target / "final.pt"))
    metrics = root / "metrics.tsv"
    pd.DataFrame([
        {"experiment": "main", "method": "decomposition", "target": "dxa_bmd_g_cm2", "n": 8,
         "pcc": 0.8123, "icc": 0.7, "mae": 0.05, "see": 0.06, "rms_cv_pct": 3.1},
        {"experiment": "main", "method": "training_mean", "target": "dxa_bmd_g_cm2", "n": 8,
         "pcc": 0.0, "icc": 0.0, "mae": 0.1, "see": 0.1, "rms_cv_pct": 0.0},
    ]).to_csv(metrics, sep="\t", index=False)  # fmt: skip
    rcfg.factor = 4  # a regressor at another resolution than the generator's
    train_regressor(RegressionDataset(table, SUBJECTS, "qct_bmd_mg_cm3"), rcfg, root / "r4",
                    init_from=root / "g" / "final.pt", progress=False)  # fmt: skip
    out = root / "model"
    args = ["package", "--generator", str(root / "g" / "final.pt"), "--regressors", *regressors,
            "--table", str(table), "--folds", str(folds), "--factor", "1", "--metrics",
            str(metrics), "--out-dir", str(out)]  # fmt: skip
    wrong = [*args[:4], regressors[0], str(root / "r4" / "final.pt"), *args[6:]]
    assert models_main([*wrong[:-1], str(root / "wrong")]) == 2  # refused, with the reason
    assert models_main(args) == 0
    return out, table


def _radiograph(tmp_path, name="xray.mha", shape=(64, 64)):
    """A featureless radiograph: what the generator draws is the stand-in's alone."""
    image = np.random.default_rng(3).normal(1.0, 0.05, shape).astype(np.float32)
    path = tmp_path / name
    itk = sitk.GetImageFromArray(image)
    itk.SetSpacing((0.8, 0.8))
    sitk.WriteImage(itk, str(path))
    return read_radiograph(path)


def test_the_folder_describes_a_model_fitted_on_every_subject(model_dir):
    out, table = model_dir
    doc = json.loads((out / "model.json").read_text())
    assert doc["cohort"]["subjects"] == N and doc["cohort"]["pairs"] == N
    assert doc["pair"] == {"shape": [64, 32], "factor": 1}
    # The BMD line is the one fitted on every subject's ground-truth PF-DRRs.
    rows = pd.read_csv(table, sep="\t")
    truth = [load_pair(p, "pf")[1] for p in rows["pair"]]
    expected, _ = fit_bmd_calibration(truth, rows["dxa_bmd_g_cm2"], "dxa_bmd_g_cm2")
    fitted = doc["calibrations"]["dxa_bmd_g_cm2"]
    assert fitted["slope"] == pytest.approx(expected.slope)
    assert fitted["threshold_g_cm2"] == expected.threshold_g_cm2
    assert set(doc["regressors"]) == {"dxa_bmd_g_cm2", "qct_bmd_mg_cm3"}
    assert doc["plausible_range"]["n"] == N
    # The card carries the cross-validated accuracy of the methods it is, not the others.
    card = (out / "model_card.md").read_text()
    assert "0.812" in card and "training_mean" not in card
    assert f"{N} subjects" in card and "torch" in card
    # Lean: no optimiser or discriminator state in the deployed weights.
    assert set(torch.load(out / "generator.pt", weights_only=True)) == {"generator", "config"}


def test_both_hips_get_bmd_t_score_and_category(model_dir, tmp_path):
    out, table = model_dir
    model = load_model(out)
    rows = pd.read_csv(table, sep="\t")
    typical = load_pair(rows["pair"].iloc[0], "pf")[1]  # one of the cohort's PF-DRRs
    model.generator = MeanPfDrr(typical)
    hips, overlay = predict_hips(model, _radiograph(tmp_path))
    assert sorted(h["side"] for h in hips) == ["L", "R"]
    cal = model.calibrations["dxa_bmd_g_cm2"]
    for h in hips:
        assert h["status"] == "ok"
        dxa = h["dxa_bmd_g_cm2"]
        # The PF-DRR's reading is the packaged line on the drawn PF-DRR.
        assert dxa["methods"]["decomposition"] == pytest.approx(cal.predict([typical])[0])
        assert dxa["value"] == dxa["methods"]["decomposition+regression"]  # stage three's
        assert h["qct_bmd_mg_cm3"]["unit"] == "mg/cm³"
        t = (dxa["value"] - 0.942) / 0.122
        assert h["t_score"] == pytest.approx(t)
        assert h["who_category"] == who_category(t_score(dxa["value"], 0.942, 0.122))
    # The PF-DRR lies over both halves of the radiograph.
    assert overlay[:, :32].max() > 0.1 and overlay[:, 32:].max() > 0.1
    left_only, _ = predict_hips(model, _radiograph(tmp_path), sides=("L",))
    assert [h["side"] for h in left_only] == ["L"]


def test_a_hip_without_a_femur_is_refused_and_an_image_with_none_is_an_error(model_dir, tmp_path):
    out, _ = model_dir
    model = load_model(out)
    model.generator = MeanPfDrr(np.zeros((64, 32), np.float32))  # no bone drawn at all
    with pytest.raises(InputError, match=r"no hip could be read.*no proximal femur"):
        predict_hips(model, _radiograph(tmp_path))


@pytest.mark.parametrize(
    ("tags", "shape", "reason"),
    [
        ({"Modality": "CT"}, (64, 64), "modality CT"),
        ({"ViewPosition": "LL"}, (64, 64), "view position LL"),
        ({"BodyPartExamined": "CHEST"}, (64, 64), "body part examined CHEST"),
        ({}, (40, 120), "width/height 3.00"),
    ],
)
def test_what_is_no_ap_hip_radiograph_is_refused_with_its_reason(
    model_dir, tmp_path, tags, shape, reason
):
    out, _ = model_dir
    path = tmp_path / "x.dcm"
    pixels = np.random.default_rng(0).integers(0, 4095, shape).astype(np.uint16)
    write_dicom_radiograph(path, pixels, **tags)
    with pytest.raises(InputError, match=reason):
        predict_hips(load_model(out), read_radiograph(path))
    # Through the CLI: exit status 2 and nothing written.
    assert models_main(["predict", "--model-dir", str(out), "--xray", str(path),
                        "--out-dir", str(tmp_path / "o")]) == 2  # fmt: skip
    assert not (tmp_path / "o").exists()


def test_the_cli_writes_the_prediction_and_its_figure(model_dir, tmp_path, monkeypatch):
    out, table = model_dir
    rows = pd.read_csv(table, sep="\t")
    typical = load_pair(rows["pair"].iloc[0], "pf")[1]  # one of the cohort's PF-DRRs
    real_load = deploy.load_model

    def load_with_stand_in(path):
        model = real_load(path)
        model.generator = MeanPfDrr(typical)
        return model

    monkeypatch.setattr(deploy, "load_model", load_with_stand_in)  # the CLI imports it per call
    path = tmp_path / "hip.dcm"
    write_dicom_radiograph(path, np.random.default_rng(0).integers(0, 4095, (64, 64)))
    assert models_main(["predict", "--model-dir", str(out), "--xray", str(path), "--side", "R",
                        "--out-dir", str(tmp_path / "o")]) == 0  # fmt: skip
    record = json.loads((tmp_path / "o" / "prediction.json").read_text())
    assert [h["side"] for h in record["hips"]] == ["R"]
    assert record["image"]["format"] == "DICOM"
    text = (tmp_path / "o" / "prediction.json").read_text()
    assert "PatientName" not in text and "Doe" not in text  # no identifier of the file's
    assert (tmp_path / "o" / "pf_drr.png").stat().st_size > 1000
    # A folder that is not a model is an input error, not a traceback.
    assert models_main(["predict", "--model-dir", str(tmp_path), "--xray", str(path)]) == 2
