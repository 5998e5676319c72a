"""Stage three and the conventional baseline: the paper's sample weights and loss, the
regression head, frozen-then-fine-tuned training with exact resumption, the PF ROI, and
the CLI from training to a fold's predictions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from timm.models.maxxvit import RelPosBias

from models.__main__ import main as models_main
from models.data import RegressionDataset, proximal_femur_roi
from models.regression import (
    ConventionalRegressor,
    DecompositionRegressor,
    RegressionHead,
    sample_weights,
    weighted_l1,
)
from models.train import TrainConfig, load_checkpoint, train_stage
from models.train_regression import RegressionConfig, load_regressor, train_regressor
from tiny_pairs import write_tiny_pairs

SUBJECTS = [f"S{i:03d}" for i in range(8)]


def test_sample_weights_are_the_papers_eq_10():
    y = np.array([0.5, 0.7, 0.9, 1.3])  # mean 0.85: d = 0.35, 0.15, 0.05, 0.45
    assert np.allclose(sample_weights(y), [0.75, 1.25, 1.5, 0.5])
    assert np.allclose(sample_weights([0.8, 0.8]), 1.0)
    pred, target = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0])
    assert float(weighted_l1(pred, target, torch.tensor([1.0, 0.5]))) == pytest.approx(1.0)


def test_regression_head_reads_the_quarter_resolution_representation():
    model = DecompositionRegressor((64, 32), width=8, head_dims=(16, 32), dim_head=8)
    x = torch.rand(3, 1, 64, 32)
    assert model.encoder(x).shape == (3, 32, 16, 8)  # 1/4 resolution, 4·width channels
    assert model(x).shape == (3,)
    # CoAtNet's relative attention: one bias table per stage, over that stage's grid.
    biases = [m for m in model.head.modules() if isinstance(m, RelPosBias)]
    assert [b.window_size for b in biases] == [(8, 4), (8, 4), (4, 2), (4, 2)]
    # Outputs are in the target's units: a head that says 0 predicts the fold's mean.
    model.target_mean.fill_(0.8)
    model.target_sd.fill_(0.15)
    torch.nn.init.zeros_(model.head.fc.weight)
    torch.nn.init.zeros_(model.head.fc.bias)
    assert torch.allclose(model(x), torch.full((3,), 0.8))
    with pytest.raises(ValueError, match="multiple of 16"):
        RegressionHead(32, (6, 8), dims=(16, 32))


def test_the_conventional_baseline_learns_instead_of_collapsing(tmp_path):
    """The baseline fits its training ROIs: its predictions spread and follow BMD. With
    the decomposition's group normalisation it collapsed to the fold's mean (predictions'
    SD 0.001 of a BMD SD of 0.17 on these pairs; 0.08 with its own batch norm)."""
    model = ConventionalRegressor("resnet18")
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    subjects = [f"S{i:03d}" for i in range(17)]  # 17 % 4 = 1: a last batch of one
    table = write_tiny_pairs(tmp_path / "pairs", len(subjects), seed=1)
    data = RegressionDataset(table, subjects, "dxa_bmd_g_cm2", roi_size=32)
    cfg = RegressionConfig(kind="conventional", epochs=15, lr=1e-3, augment=False,
                           roi_size=32, image_size=(32, 32))  # fmt: skip
    run = train_regressor(data, cfg, tmp_path / "b", progress=False)
    with torch.no_grad():
        pred = run["model"].eval()(torch.from_numpy(np.stack(data.inputs))[:, None]).numpy()
    assert pred.std() > 0.25 * data.bmd.std()
    assert np.corrcoef(pred, data.bmd)[0, 1] > 0.5


def test_proximal_femur_roi_is_centred_on_the_region():
    image = np.zeros((128, 64), np.float32)
    mask = np.zeros_like(image, np.uint8)
    mask[40:60, 30:40] = 1  # 20 rows × 10 columns, centre (49.5, 34.5)
    image[49:51, 34:36] = 1.0  # a bright dot at the region's centre
    roi = proximal_femur_roi(image, mask, 32)
    assert roi.shape == (32, 32)
    peak = np.unravel_index(np.argmax(roi), roi.shape)
    assert abs(peak[0] - 15.5) <= 1 and abs(peak[1] - 15.5) <= 1
    # A region at the image's edge: the crop repeats the edge instead of failing.
    edge = np.zeros_like(mask)
    edge[0:30, 50:64] = 1
    assert proximal_femur_roi(image + 2.0, edge, 32).min() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="empty PF mask"):
        proximal_femur_roi(image, np.zeros_like(mask), 32)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return write_tiny_pairs(tmp_path_factory.mktemp("pairs"), len(SUBJECTS), seed=3)


@pytest.fixture(scope="module")
def stage2(pairs, tmp_path_factory):
    """A (barely trained) stage-two generator to start stage three from."""
    out = tmp_path_factory.mktemp("stage2")
    cfg = TrainConfig(epochs=1, batch_size=4, width=8, discriminator_width=8, adversarial=False)
    from models.data import PairDataset

    train_stage(PairDataset(pairs, SUBJECTS, "pf"), cfg, out, progress=False)
    return out / "final.pt"


def stage3_config(**kw) -> RegressionConfig:
    base = {"epochs": 2, "finetune_epochs": 2, "batch_size": 4, "lr": 1e-3,
            "finetune_lr": 1e-4, "checkpoint_every": 1, "width": 8, "head_dims": (16,),
            "head_depths": (1,), "dim_head": 8, "image_size": (64, 32)}  # fmt: skip
    return RegressionConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def stage3_whole(pairs, stage2, tmp_path_factory):
    """Stage three trained without interruption: 2 epochs frozen, 2 end to end."""
    out = tmp_path_factory.mktemp("stage3")
    data = RegressionDataset(pairs, SUBJECTS, "dxa_bmd_g_cm2", augment=True)
    run = train_regressor(data, stage3_config(), out, init_from=stage2, progress=False)
    return out, run["history"], data


def test_stage_three_trains_the_head_frozen_then_everything(stage2, stage3_whole):
    out, history, data = stage3_whole
    generator = load_checkpoint(stage2)["generator"]
    assert [h["phase"] for h in history] == ["frozen"] * 2 + ["finetune"] * 2
    frozen, _ = load_regressor(out / "frozen.pt")
    final, cfg = load_regressor(out / "final.pt")
    # Frozen: the encoder is stage two's, bit for bit, and only the head moved.
    for k, v in frozen.encoder.state_dict().items():
        assert torch.equal(v, generator[f"encoder.{k}"]), k
    # End to end: the encoder moved too.
    assert any(
        not torch.equal(v, generator[f"encoder.{k}"]) for k, v in final.encoder.state_dict().items()
    )
    assert float(final.target_mean) == pytest.approx(float(data.bmd.mean()), rel=1e-6)
    assert cfg.target == "dxa_bmd_g_cm2"


def test_a_regressor_interrupted_and_resumed_equals_an_uninterrupted_one(
    pairs, stage2, stage3_whole, tmp_path
):
    """Killed at the switch from frozen to end to end, then within fine-tuning: each
    resumption repeats the uninterrupted run exactly."""
    whole, history, data = stage3_whole
    cut = tmp_path / "cut"
    for stop in (2, 3):
        train_regressor(data, stage3_config(), cut, stage2, stop, progress=False)
        assert not (cut / "final.pt").exists()
    resumed = train_regressor(data, stage3_config(), cut, stage2, progress=False)
    assert resumed["history"] == history
    for name in ("frozen.pt", "final.pt"):
        a = load_checkpoint(whole / name)["model"]
        b = load_checkpoint(cut / name)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a)
    # Killed in fine-tuning, and Snakemake removed its outputs (frozen.pt): the frozen
    # phase cannot be resumed, so the rerun starts afresh and gets it all back.
    gone = tmp_path / "gone"
    train_regressor(data, stage3_config(), gone, stage2, 3, progress=False)
    (gone / "frozen.pt").unlink()
    again = train_regressor(data, stage3_config(), gone, stage2, progress=False)
    assert again["history"] == history
    a, b = (load_checkpoint(d / "frozen.pt")["model"] for d in (whole, gone))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_roi_keeps_the_density_a_whole_image_shows(pairs):
    """The conventional method's ROI is cut from the radiograph standardised as a whole:
    its bone stays brighter the denser the bone (a crop standardised on its own would
    make every bone look alike)."""
    data = RegressionDataset(pairs, SUBJECTS, "dxa_bmd_g_cm2", roi_size=32)
    assert data.inputs[0].shape == (32, 32)
    bright = [np.percentile(x, 98) for x in data.inputs]  # the bone's brightest (not noise)
    assert np.corrcoef(bright, data.bmd)[0, 1] > 0.95  # 0.962; 0.887 standardised alone


def test_cli_trains_both_regressors_and_predicts_a_fold(pairs, stage2, tmp_path):
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"folds": [{"train": SUBJECTS[:6], "test": SUBJECTS[6:]}]}))
    common = ["--table", str(pairs), "--folds", str(folds), "--fold", "0", "--quiet"]
    settings = {"epochs": 1, "finetune_epochs": 1, "head_dims": [16], "head_depths": [1],
                "dim_head": 8, "lr": 1e-3}  # fmt: skip
    assert models_main(["train-regressor", "--kind", "decomposition", "--target",
                        "dxa_bmd_g_cm2", "--init", str(stage2), "--config", json.dumps(settings),
                        "--out-dir", str(tmp_path / "s3"), "--out-history",
                        str(tmp_path / "s3.json"), *common]) == 0  # fmt: skip
    assert models_main(["train-regressor", "--kind", "conventional", "--target",
                        "dxa_bmd_g_cm2", "--config", json.dumps({"epochs": 1}),
                        "--out-dir", str(tmp_path / "b"), "--out-history",
                        str(tmp_path / "b.json"), *common]) == 0  # fmt: skip
    out = tmp_path / "predictions.tsv"
    models = [str(tmp_path / "s3" / "frozen.pt"), str(tmp_path / "s3" / "final.pt"),
              str(tmp_path / "b" / "final.pt")]  # fmt: skip
    assert models_main(["predict-regressors", "--models", *models, "--table", str(pairs),
                        "--folds", str(folds), "--fold", "0", "--out", str(out)]) == 0  # fmt: skip
    table = pd.read_csv(out, sep="\t")
    assert sorted(set(table["method"])) == [
        "conventional_regression", "decomposition+regression", "decomposition+regression_frozen"
    ]  # fmt: skip
    assert set(table["subject_id"]) == set(SUBJECTS[6:])  # the test subjects only
    assert np.isfinite(table["prediction"]).all()
    truth = pd.read_csv(pairs, sep="\t").set_index("subject_id")["dxa_bmd_g_cm2"]
    assert np.allclose(table["truth"], truth[table["subject_id"]].to_numpy(), rtol=1e-5)
    history = json.loads((tmp_path / "s3.json").read_text())
    assert history["stage"] == "stage 3, dxa_bmd_g_cm2"
    # A fold's two targets in one process (the workflow's job per fold): each trained as
    # it is alone, weight for weight, into its own folder.
    both = [tmp_path / "b_dxa", tmp_path / "b_qct"]
    assert models_main(["train-regressor", "--kind", "conventional", "--target",
                        "dxa_bmd_g_cm2", "qct_bmd_mg_cm3", "--config", json.dumps({"epochs": 1}),
                        "--out-dir", *map(str, both),
                        "--out-history", str(both[0] / "h.json"), str(both[1] / "h.json"),
                        *common]) == 0  # fmt: skip
    alone = load_checkpoint(tmp_path / "b" / "final.pt")["model"]
    first = load_checkpoint(both[0] / "final.pt")["model"]
    assert all(torch.equal(alone[k], first[k]) for k in alone)
    assert json.loads((both[1] / "h.json").read_text())["stage"] == "conventional, qct_bmd_mg_cm3"
    assert models_main(["train-regressor", "--kind", "conventional", "--target",
                        "dxa_bmd_g_cm2", "qct_bmd_mg_cm3", "--out-dir", str(tmp_path / "y"),
                        "--out-history", str(tmp_path / "y.json"), *common]) == 2  # fmt: skip
    # Settings the regressors do not know are refused, not ignored.
    assert models_main(["train-regressor", "--kind", "conventional", "--target",
                        "dxa_bmd_g_cm2", "--config", json.dumps({"epoch": 1}),
                        "--out-dir", str(tmp_path / "x"), "--out-history",
                        str(tmp_path / "x.json"), *common]) == 2  # fmt: skip
