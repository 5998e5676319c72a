"""The deployable model: stages one to three trained on every usable subject (the fold
``all``), written as one self-describing folder, and applied to a new radiograph.

The cross-validation's models estimate how accurate this one is; none of them is the
model a site would use. The folder holds everything a prediction needs and nothing of
the cohort's images:

- ``model.json``: the pair frame (shape, downsampling), per BMD target the threshold and
  line that read BMD off a PF-DRR (fitted on every subject's ground-truth PF-DRRs, the
  paper's Fig. 4, unless ``bmd_fit`` says otherwise), the plausible range of PF-DRRs
  (failure detection), the T-score reference, the networks' files, a summary of the
  cohort and the cross-validated metrics, software versions, and what an input must be;
- ``generator.pt``: stage two's generator (weights and settings, no optimiser state);
- ``regressor_<target>.pt``: stage three per BMD target (weights and settings);
- ``model_card.md``: the same for people (Mitchell et al. 2019's headings, shortened).

:func:`predict_hips` reads both hips of a radiograph (or the one asked); an image that
is not an AP hip radiograph the model can read is refused with its reasons
(:func:`reasons_not_an_ap_hip`), and so is a hip whose predicted PF-DRR lies outside
the plausible range (no proximal femur found).
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from conventions.errors import InputError
from conventions.files import atomic_path, write_json, write_text
from conventions.geometry import read_json_object
from conventions.labels import SIDES
from conventions.predictions import BMD_TARGETS, DECOMPOSITION, REGRESSION
from conventions.radiograph import Radiograph
from conventions.who import t_score, who_category
from models.bmd import BmdCalibration, fit_bmd_calibration
from models.data import load_pair
from models.folds import fold_rows, fold_subjects
from models.networks import Generator
from models.plausibility import PlausibleRange
from models.predict import load_generator, predict_images, predict_radiograph
from models.train import load_checkpoint, save_weights
from models.train_regression import predict_bmd, regressor_from_checkpoint

FORMAT_VERSION = 1
UNITS = {"dxa_bmd_g_cm2": "g/cm²", "qct_bmd_mg_cm3": "mg/cm³"}
# What the model reads: a projection radiograph of the hips, AP (or PA) like its
# training images. Values a DICOM may carry that say otherwise refuse the image; absent
# values (common in PACS exports) do not.
RADIOGRAPH_MODALITIES = ("CR", "DX", "RG", "DR", "OT")
FRONTAL_VIEWS = ("AP", "PA")
HIP_BODY_PARTS = ("HIP", "PELVI", "FEMUR", "LEG", "LOWER", "EXTREMITY")
# Width / height: the paper's clinical images run 0.88 to 1.23, this phantom's 1.23; a
# film twice as wide as tall, or half, is no AP hip view.
ASPECT_RANGE = (0.5, 2.0)
SOFTWARE = ("xray-bmd", "torch", "timm", "numpy", "scipy", "scikit-image", "pydicom", "SimpleITK")


def software_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in SOFTWARE:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _lean_generator(checkpoint: str | Path, path: Path) -> dict:
    ckpt = load_checkpoint(checkpoint)
    save_weights({"generator": ckpt["generator"], "config": ckpt["config"]}, path)
    return ckpt["config"]


def _lean_regressor_file(checkpoint: str | Path, out: Path, factor: int) -> str:
    """Stage three's weights and settings as ``regressor_<target>.pt`` in ``out``."""
    ckpt = load_checkpoint(checkpoint)
    config = ckpt["config"]
    if config.get("kind") != "decomposition" or int(config.get("factor", 1)) != factor:
        raise InputError(
            checkpoint,
            f"a {config.get('kind')} regressor at factor "
            f"{config.get('factor')}; the model takes stage three's at the "
            f"generator's factor {factor}",
        )
    name = f"regressor_{config['target']}.pt"
    save_weights({"model": ckpt["model"], "config": config}, out / name)
    return name


def cohort_summary(table: pd.DataFrame) -> dict:
    """Counts and BMD distributions of the training cohort (no identifiers)."""
    per_subject = table.drop_duplicates("subject_id")
    summary = {
        "subjects": int(per_subject.shape[0]),
        "radiographs": int(table[["subject_id", "image"]].drop_duplicates().shape[0]),
        "pairs": len(table),
        "poses": {str(k): int(v) for k, v in table["pose"].value_counts().sort_index().items()},
    }
    for target in BMD_TARGETS:
        v = per_subject[target].to_numpy(float)
        v = v[np.isfinite(v)]
        if len(v):
            summary[target] = {
                "mean": float(v.mean()),
                "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                "min": float(v.min()),
                "max": float(v.max()),
            }
    return summary


def cross_validated_metrics(metrics_tsv: str | Path | None) -> list[dict]:
    """The evaluation's rows for the methods this model is (decomposition, + regression),
    trained on every pose with the phantom-calibrated CT: its accuracy as estimated on
    held-out folds."""
    if metrics_tsv is None:
        return []
    m = pd.read_csv(metrics_tsv, sep="\t")
    if "experiment" in m.columns:
        m = m[m["experiment"] == "main"]
    m = m[m["method"].isin([DECOMPOSITION, REGRESSION])]
    keep = [
        c
        for c in ("method", "target", "n", "pcc", "icc", "mae", "see", "rms_cv_pct")
        if c in m.columns
    ]
    return m[keep].to_dict("records")


def package_model(
    generator: str | Path,
    regressors: list[str | Path],
    table: str | Path,
    folds: str | Path,
    factor: int,
    out_dir: str | Path,
    t_reference: dict,
    metrics: str | Path | None = None,
    bmd_fit: str = "ground_truth",
) -> dict:
    """Write the model folder from the fold-``all`` checkpoints; returns ``model.json``.

    The BMD lines are fitted on every subject's pairs, as each fold's are on its training
    subjects', so the deployed model reads BMD as the cross-validated one did."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    subjects, _ = fold_subjects(folds, "all")
    rows = fold_rows(table, subjects)
    if rows.empty:
        raise InputError(table, "no pair of the folds' subjects: nothing to fit the model on")
    pairs = [load_pair(p, "pf", factor) for p in rows["pair"]]
    truth = np.stack([y for _, y in pairs])
    with np.load(rows["pair"].iloc[0]) as first:
        pair_shape = [int(n) for n in first["xray"].shape]
    images = truth
    if bmd_fit == "predicted":
        g, _ = load_generator(str(generator))
        images = predict_images(g, np.stack([x for x, _ in pairs]))
    calibrations = {}
    for target in BMD_TARGETS:
        values = rows[target].to_numpy(float)
        ok = np.isfinite(values)
        if ok.sum() >= 3:
            cal, _ = fit_bmd_calibration(images[ok], values[ok], target)
            calibrations[target] = asdict(cal)
    generator_config = _lean_generator(generator, out / "generator.pt")
    regressor_files = {}
    for path in regressors:
        name = _lean_regressor_file(path, out, factor)
        target = name.removeprefix("regressor_").removesuffix(".pt")
        if target in regressor_files:
            raise InputError(path, f"a second regressor of {target}")
        regressor_files[target] = name
    doc = {
        "format_version": FORMAT_VERSION,
        "what": "radiograph → proximal-femur DRR → BMD (Gu et al. 2023), final model",
        "pair": {"shape": pair_shape, "factor": int(factor)},
        "generator": {
            "file": "generator.pt",
            "backbone": generator_config.get("backbone"),
            "width": generator_config.get("width"),
        },
        "regressors": regressor_files,
        "bmd_fit": bmd_fit,
        "calibrations": calibrations,
        # Failure detection needs a spread to judge by: three PF-DRRs at least.
        "plausible_range": PlausibleRange.fit(truth).to_dict() if len(truth) >= 3 else None,
        "t_score_reference": dict(t_reference),
        "cohort": cohort_summary(rows),
        "cross_validated": cross_validated_metrics(metrics),
        "software": software_versions(),
        "input": {
            "image": "An AP (or PA) projection radiograph of the hips, both femoral heads "
            "on the film, DICOM or an image file; one channel (colour is reduced to luma)",
            "modalities": list(RADIOGRAPH_MODALITIES),
            "views": list(FRONTAL_VIEWS),
            "width_over_height": list(ASPECT_RANGE),
        },
    }
    write_json(out / "model.json", doc)
    write_text(out / "model_card.md", model_card(doc))
    return doc


@dataclass
class DeployedModel:
    generator: Generator
    factor: int
    pair_shape: tuple[int, int]
    calibrations: dict[str, BmdCalibration]
    regressors: dict[str, torch.nn.Module]
    plausible: PlausibleRange | None  # None: too few training PF-DRRs to judge by
    t_reference: dict
    doc: dict


def load_model(model_dir: str | Path) -> DeployedModel:
    """A model folder written by :func:`package_model`; InputError naming what is amiss."""
    root = Path(model_dir)
    if not (root / "model.json").is_file():
        raise InputError(root, "no model.json: not a model folder (python -m models package)")
    doc = read_json_object(root / "model.json")
    if doc.get("format_version") != FORMAT_VERSION:
        raise InputError(
            root / "model.json",
            f"format {doc.get('format_version')}, this code reads {FORMAT_VERSION}",
        )
    for name in [doc["generator"]["file"], *doc["regressors"].values()]:
        if not (root / name).is_file():
            raise InputError(root / name, "missing from the model folder")
    generator, _ = load_generator(str(root / doc["generator"]["file"]))
    regressors = {
        t: regressor_from_checkpoint(load_checkpoint(root / f))[0]
        for t, f in doc["regressors"].items()
    }
    return DeployedModel(
        generator=generator,
        factor=int(doc["pair"]["factor"]),
        pair_shape=tuple(doc["pair"]["shape"]),
        calibrations={t: BmdCalibration.from_record(r) for t, r in doc["calibrations"].items()},
        regressors=regressors,
        plausible=PlausibleRange.from_record(doc["plausible_range"])
        if doc["plausible_range"]
        else None,
        t_reference=doc["t_score_reference"],
        doc=doc,
    )


def reasons_not_an_ap_hip(radiograph: Radiograph) -> list[str]:
    """Why ``radiograph`` is no AP hip radiograph this model can read (empty: it may be).

    Only what the file says is held against it: DICOM's modality, view position and body
    part where present, and the image's proportions. Whether a hip is actually there is
    the PF-DRR's plausibility, judged per hip by :func:`predict_hips`."""
    info, reasons = radiograph.info, []
    modality = str(info.get("modality", "")).upper()
    if modality and modality not in RADIOGRAPH_MODALITIES:
        reasons.append(
            f"modality {modality}, not a projection radiograph ({', '.join(RADIOGRAPH_MODALITIES)})"
        )
    view = str(info.get("view_position", "")).upper()
    if view and view not in FRONTAL_VIEWS:
        reasons.append(f"view position {view}; the model reads AP (or PA) views")
    body = str(info.get("body_part", "")).upper()
    if body and not any(k in body for k in HIP_BODY_PARTS):
        reasons.append(f"body part examined {body}, not the hips")
    rows, cols = radiograph.pixels.shape
    lo, hi = ASPECT_RANGE
    if not lo <= cols / rows <= hi:
        reasons.append(
            f"{cols} × {rows} pixels (width/height {cols / rows:.2f}); an AP hip "
            f"view's is {lo}–{hi}"
        )
    return reasons


def _hip(model: DeployedModel, pixels: np.ndarray, side: str) -> tuple[dict, np.ndarray]:
    out = predict_radiograph(
        model.generator,
        pixels,
        side,
        model.factor,
        pair_shape=model.pair_shape,
        plausible=model.plausible,
    )
    record: dict = {"side": side}
    if model.plausible is None:
        record["warnings"] = ["PF-DRR unchecked: the model's cohort had under 3 PF-DRRs"]
    elif not out["plausible"]:
        record.update(
            status="refused",
            reasons=[
                "no proximal femur found: the predicted PF-DRR is outside the training "
                "cohort's range (" + ", ".join(out["implausible_because"]) + ")"
            ],
        )
        return record, out["pf_drr_radiograph_g_cm2"]
    small = out["pf_drr_model_g_cm2"]
    record["status"] = "ok"
    for target in BMD_TARGETS:
        estimates = {}
        if target in model.calibrations:
            estimates[DECOMPOSITION] = float(model.calibrations[target].predict([small])[0])
        if target in model.regressors:  # stage three reads the same input
            estimates[REGRESSION] = float(
                predict_bmd(model.regressors[target], out["model_input"][None])[0]
            )
        if estimates:
            # The paper's best reading is stage three's; the PF-DRR's stands in without it.
            reported = estimates.get(REGRESSION, estimates.get(DECOMPOSITION))
            record[target] = {"value": reported, "unit": UNITS[target], "methods": estimates}
    if "dxa_bmd_g_cm2" in record:
        ref = model.t_reference
        t = float(t_score(record["dxa_bmd_g_cm2"]["value"], ref["mean_g_cm2"], ref["sd_g_cm2"]))
        record["t_score"] = t
        record["who_category"] = str(who_category(t))
    return record, out["pf_drr_radiograph_g_cm2"]


@torch.no_grad()
def predict_hips(
    model: DeployedModel, radiograph: Radiograph, sides=SIDES
) -> tuple[list[dict], np.ndarray]:
    """Each asked hip's BMD (DXA- and QCT-scale), T-score and WHO category, or its
    refusal; and the PF-DRRs over the radiograph's pixels (g/cm², 0 elsewhere).

    Raises InputError when the image is no AP hip radiograph, or when no asked hip could
    be read."""
    reasons = reasons_not_an_ap_hip(radiograph)
    if reasons:
        raise InputError(
            radiograph.path, "not an AP hip radiograph this model reads: " + "; ".join(reasons)
        )
    hips, overlay = [], np.zeros(radiograph.pixels.shape, np.float32)
    for side in sides:
        record, pf = _hip(model, radiograph.pixels, side)
        hips.append(record)
        if record["status"] == "ok":
            overlay = np.maximum(overlay, pf)  # the two halves do not overlap
    if not any(h["status"] == "ok" for h in hips):
        raise InputError(
            radiograph.path,
            "no hip could be read: "
            + "; ".join(f"{h['side']}: {' '.join(h['reasons'])}" for h in hips),
        )
    return hips, overlay


def overlay_figure(pixels: np.ndarray, pf_drr: np.ndarray, hips: list[dict], path) -> None:
    """The PF-DRRs over the radiograph (the patient's right on the image's left), each hip
    labelled with its BMD, T-score and category, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi = np.percentile(pixels, [1, 99])
    rows, cols = pixels.shape
    fig, ax = plt.subplots(figsize=(6, 6 * rows / cols), dpi=120)
    ax.imshow(pixels, cmap="gray", vmin=lo, vmax=hi)
    shown = np.ma.masked_less_equal(pf_drr, 0.05)
    im = ax.imshow(shown, cmap="inferno", alpha=0.6, vmin=0.0, vmax=max(float(pf_drr.max()), 0.1))
    fig.colorbar(im, ax=ax, fraction=0.04, label="PF-DRR (g/cm²)")
    for h in hips:
        x = 0.25 if h["side"] == "R" else 0.75  # the patient's right on the image's left
        if h["status"] == "ok":
            text = f"{h['side']}: {h['dxa_bmd_g_cm2']['value']:.3f} g/cm²"
            if "t_score" in h:
                text += f"\nT {h['t_score']:+.1f}, {h['who_category']}"
        else:
            text = f"{h['side']}: refused"
        ax.text(
            x,
            0.03,
            text,
            transform=ax.transAxes,
            ha="center",
            va="bottom",
            fontsize=8,
            color="white",
            bbox={"facecolor": "black", "alpha": 0.6, "pad": 2},
        )
    ax.set_axis_off()
    ax.set_title("PF-DRR predicted from the radiograph", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _metric_lines(rows: list[dict]) -> list[str]:
    if not rows:
        return ["No cross-validated metrics were given to the packaging."]
    names = {
        DECOMPOSITION: "decomposition (PF-DRR → BMD)",
        REGRESSION: "decomposition + regression",
    }
    lines = [
        "| method | target | PCC | ICC | MAE | SEE | RMS-CV % |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cells = [f"{r.get(k, float('nan')):.3f}" for k in ("pcc", "icc", "mae", "see")]
        cells.append(f"{r.get('rms_cv_pct', float('nan')):.2f}")
        lines.append(
            f"| {names.get(r['method'], r['method'])} | {r['target']} | " + " | ".join(cells) + " |"
        )
    return lines


def _plausibility_line(plausible: dict | None) -> str:
    if not plausible:
        return "The cohort was too small to judge predicted PF-DRRs by: none is refused."
    return (
        f"A hip whose predicted PF-DRR lies outside the training cohort's range "
        f"({plausible['n']} PF-DRRs) is refused."
    )


def model_card(doc: dict) -> str:
    """``model_card.md`` from ``model.json``."""
    c, ref = doc["cohort"], doc["t_score_reference"]
    dist = []
    for target in BMD_TARGETS:
        if target in c:
            d = c[target]
            dist.append(
                f"- {target}: mean {d['mean']:.3f}, SD {d['sd']:.3f}, range "
                f"{d['min']:.3f}–{d['max']:.3f} {UNITS[target]}"
            )
    poses = ", ".join(f"{k} {v}" for k, v in c["poses"].items())
    lines = [
        "# Model card: BMD from a hip radiograph",
        "",
        "## What it is",
        "",
        "Stage two's generator (radiograph → proximal-femur DRR) and stage three's "
        "regression heads (Gu et al., Medical Image Analysis 2023), trained on every "
        "usable subject of the cohort below. BMD is read off the predicted PF-DRR by a "
        f"threshold and line fitted on the cohort's {doc['bmd_fit'].replace('_', '-')} "
        "PF-DRRs, and by the regression head; the head's value is reported.",
        "",
        "## Intended use",
        "",
        "Research: estimating areal (DXA-scale) and volumetric (QCT-scale) BMD of the "
        "proximal femur from an AP hip radiograph of a population like the training "
        "cohort's. Not a medical device; not validated for diagnosis.",
        "",
        "## Training cohort",
        "",
        f"{c['subjects']} subjects, {c['radiographs']} radiographs, {c['pairs']} hip "
        f"pairs ({poses}).",
        *dist,
        "",
        "## Accuracy (cross-validated, patient-wise folds; the models of the folds, not this one)",
        "",
        *_metric_lines(doc["cross_validated"]),
        "",
        "## Inputs",
        "",
        f"{doc['input']['image']}. Modalities {', '.join(doc['input']['modalities'])} "
        f"and views {', '.join(doc['input']['views'])} where the file names them; "
        f"width/height {doc['input']['width_over_height'][0]}–"
        f"{doc['input']['width_over_height'][1]}. Each hip half is resampled to "
        f"{doc['pair']['shape'][0]} × {doc['pair']['shape'][1]} pixels and read at 1/"
        f"{doc['pair']['factor']} of that. {_plausibility_line(doc['plausible_range'])}",
        "",
        "## Outputs",
        "",
        "Per hip: BMD in g/cm² (DXA scale) and mg/cm³ (QCT scale), the T-score against "
        f"mean {ref['mean_g_cm2']} and SD {ref['sd_g_cm2']} g/cm², the WHO category, and "
        "the PF-DRR over the radiograph.",
        "",
        "## Software",
        "",
        *[f"- {k} {v}" for k, v in doc["software"].items()],
        "",
    ]
    return "\n".join(lines)
