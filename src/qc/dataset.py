"""The dataset audit: what a reviewer checks before trusting the training pairs.

- **Pairs** (per subject): each radiograph's pair as the network sees it, the
  radiograph, the bone DRR and the PF-DRR, with the PF mask's outline on the radiograph
  and the projected landmarks: a misregistration shows as an outline off the femur.
- **PF-DRR mean vs BMD** (cohort): the PF-DRR mean of every dataset-B pair against the
  subject's DXA-BMD and QCT-BMD, PCC and the least-squares line, outliers marked (the
  paper's Fig. 1 and GT-PF-DRR rows of Table 2). A good dataset is a tight line; a
  pair far from it is a registration or a region to look at.
- **Summary** (cohort, HTML): counts, BMD and pose distributions, registration status,
  the exclusions with reasons, the folds.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state
from scipy import ndimage

from conventions.files import atomic_path, write_json, write_text
from conventions.geometry import read_json_object
from qc import PNG_OPTIONS

STATUS_MARKERS = {"ok": "o", "suspect": "^"}
OUTLIER_MADS = 3.5  # robust z of a residual beyond which a pair is marked


def _save(fig: Figure, path: str) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png", pil_kwargs=PNG_OPTIONS)


def pairs_montage(records: list[str], subject: str, out_png: str) -> None:
    """One row per radiograph: pair radiograph with PF outline and landmarks, bone DRR,
    PF-DRR (g/cm²)."""
    docs = [read_json_object(p) for p in records]
    fig = Figure(figsize=(3 * 2.2, 4.8 * len(docs) + 0.4))
    for row, doc in enumerate(docs):
        with np.load(doc["pair"]) as pair:
            xray, bone, pf = pair["xray"], pair["bone_drr_g_cm2"], pair["pf_drr_g_cm2"]
            mask = pair["pf_mask"] > 0
        reg = doc["registration"]
        title = (
            f"{doc['image']} ({doc['pose']}), side {doc['side']}\npelvis "
            f"{reg['pelvis']['status']}, femur {reg['femur']['status']}\n"
            f"PF-DRR mean {doc['pf_drr_mean_g_cm2']:.3f} g/cm²"
        )
        outline = mask & ~ndimage.binary_erosion(mask)
        for col, (image, name) in enumerate(
            ((xray, "radiograph"), (bone, "bone DRR"), (pf, "PF-DRR"))
        ):
            ax = fig.add_subplot(len(docs), 3, 3 * row + col + 1)
            lo, hi = np.percentile(image, [1, 99.5]) if col == 0 else (0.0, image.max() or 1.0)
            ax.imshow(image, cmap="gray", vmin=lo, vmax=hi)
            if col == 0:
                ax.imshow(np.ma.masked_where(~outline, outline), cmap="autumn", alpha=0.9)
                for r, c in doc["landmarks_pair_rc"].values():
                    if 0 <= r < image.shape[0] and 0 <= c < image.shape[1]:
                        ax.plot(c, r, "+", color="#00d0ff", ms=6)
                ax.set_title(title, fontsize=6, loc="left")
            else:
                ax.set_title(name, fontsize=7)
            ax.set_xlim(-0.5, image.shape[1] - 0.5)
            ax.set_ylim(image.shape[0] - 0.5, -0.5)
            ax.set(xticks=[], yticks=[])  # no tick layout either: a third of the drawing
            ax.set_axis_off()
    fig.suptitle(f"{subject}: training pairs", fontsize=9)
    _save(fig, out_png)


def _fit(x: np.ndarray, y: np.ndarray) -> dict:
    """PCC, line y = a·x + b, and robust outliers of the residuals (indices)."""
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 3 or np.ptp(x[keep]) == 0:
        return {"n": int(keep.sum()), "pcc": None, "slope": None, "intercept": None, "outliers": []}
    from scipy import stats  # 0.3 s to import: only the audit needs it, not the pairs' montage

    pcc = float(stats.pearsonr(x[keep], y[keep])[0])
    slope, intercept = np.polyfit(x[keep], y[keep], 1)
    residual = y - (slope * x + intercept)
    mad = 1.4826 * float(np.median(np.abs(residual[keep] - np.median(residual[keep]))))
    scale = mad if mad > 0 else float(np.std(residual[keep])) or 1.0
    outliers = np.flatnonzero(keep & (np.abs(residual) > OUTLIER_MADS * scale))
    return {
        "n": int(keep.sum()),
        "pcc": pcc,
        "slope": float(slope),
        "intercept": float(intercept),
        "outliers": outliers.tolist(),
    }


def bmd_checks(table_b: pd.DataFrame) -> dict:
    """The PF-DRR mean against each reference BMD: PCC, line, outliers (subject, image)."""
    checks = {}
    y = table_b["pf_drr_mean_g_cm2"].to_numpy(float)
    for column in ("dxa_bmd_g_cm2", "qct_bmd_mg_cm3", "ct_abmd_g_cm2"):
        fit = _fit(table_b[column].to_numpy(float), y)
        fit["outliers"] = [
            {"subject_id": table_b["subject_id"].iloc[i], "image": table_b["image"].iloc[i]}
            for i in fit["outliers"]
        ]
        checks[column] = fit
    return checks


def scatter_figure(table_b: pd.DataFrame, checks: dict, out_png: str) -> None:
    fig = Figure(figsize=(11, 4.2))
    y = table_b["pf_drr_mean_g_cm2"].to_numpy(float)
    panels = (
        ("dxa_bmd_g_cm2", "DXA-BMD (g/cm²)"),
        ("qct_bmd_mg_cm3", "QCT-BMD (mg/cm³)"),
        ("ct_abmd_g_cm2", "CT areal BMD, DXA view (g/cm²)"),
    )
    for k, (column, label) in enumerate(panels):
        ax = fig.add_subplot(1, 3, k + 1)
        x = table_b[column].to_numpy(float)
        fit = checks[column]
        for status, marker in STATUS_MARKERS.items():
            sel = (table_b["status"] == status).to_numpy()
            ax.scatter(x[sel], y[sel], s=18, marker=marker, label=status, alpha=0.8)
        flagged = {(o["subject_id"], o["image"]) for o in fit["outliers"]}
        for i in range(len(table_b)):
            key = (table_b["subject_id"].iloc[i], table_b["image"].iloc[i])
            if key in flagged:
                ax.scatter(x[i], y[i], s=90, facecolors="none", edgecolors="#d62728")
                ax.annotate(f"{key[0]} {key[1]}", (x[i], y[i]), fontsize=6, color="#d62728")
        if fit["pcc"] is not None:
            xs = np.linspace(np.nanmin(x), np.nanmax(x), 2)
            ax.plot(xs, fit["slope"] * xs + fit["intercept"], "k-", lw=0.8)
            ax.set_title(f"PCC {fit['pcc']:.3f} (n = {fit['n']})", fontsize=9)
        else:
            ax.set_title(f"n = {fit['n']}: too few values", fontsize=9)
        ax.set_xlabel(label, fontsize=8)
        ax.set_ylabel("PF-DRR mean (g/cm²)", fontsize=8)
        ax.tick_params(labelsize=7)
        if k == 0:
            ax.legend(fontsize=7, title="registration", title_fontsize=7)
    fig.suptitle("Dataset B: ground-truth PF-DRR mean against the reference BMDs", fontsize=10)
    fig.tight_layout()
    _save(fig, out_png)


def _table_html(df: pd.DataFrame) -> str:
    return df.to_html(index=False, border=0, na_rep="", float_format=lambda v: f"{v:.4g}")


# The kinds of exclusion the dataset tables write (dataset.tables), by their wording.
EXCLUSION_KINDS = {
    "registration failed": "a needed body's registration failed",
    "registration suspect": "a needed body's registration is suspect",
    "the PF region is cut by the radiograph's": "the PF region is cut by the radiograph's edge",
}
# A measured QCT-BMD this far from the pipeline's own (relative) points at calibration,
# region or side: the audit lists the subject.
QCT_DISAGREEMENT = 0.15


def exclusion_counts(excluded: pd.DataFrame) -> pd.DataFrame:
    """Exclusions counted per dataset and kind (a pair excluded for two reasons counts
    under both)."""
    rows = []
    for rec in excluded.itertuples():
        for part in str(rec.reason).split("; "):
            kind = next((k for p, k in EXCLUSION_KINDS.items() if part.startswith(p)), None)
            if kind is not None:
                rows.append((rec.dataset, kind))
    counts = pd.DataFrame(rows, columns=["dataset", "reason"])
    return counts.groupby(["dataset", "reason"]).size().reset_index(name="pairs")


def qct_agreement(table_b: pd.DataFrame) -> pd.DataFrame:
    """Per subject whose QCT-BMD the manifest gives: the measured value beside the
    pipeline's own, their relative difference, and whether it exceeds QCT_DISAGREEMENT."""
    if "ct_qct_bmd_mg_cm3" not in table_b.columns:
        return pd.DataFrame()
    per_subject = table_b.groupby("subject_id")[["qct_bmd_mg_cm3", "ct_qct_bmd_mg_cm3"]].first()
    measured = ~np.isclose(per_subject["qct_bmd_mg_cm3"], per_subject["ct_qct_bmd_mg_cm3"])
    out = per_subject[measured].reset_index()
    out["relative_difference"] = out["ct_qct_bmd_mg_cm3"] / out["qct_bmd_mg_cm3"] - 1.0
    out["disagrees"] = out["relative_difference"].abs() > QCT_DISAGREEMENT
    return out


def summary_html(
    table_a: pd.DataFrame, table_b: pd.DataFrame, excluded: pd.DataFrame, folds: dict, checks
) -> str:
    """The cohort's summary page: counts, distributions, status, exclusions, folds."""
    per_subject = table_b.groupby("subject_id").first()
    counts = pd.DataFrame(
        [
            ("subjects in dataset B", per_subject.shape[0]),
            ("pairs in dataset A", len(table_a)),
            ("pairs in dataset B", len(table_b)),
            ("pairs flagged suspect (B)", int((table_b["status"] == "suspect").sum())),
            ("exclusions (A and B)", len(excluded)),
        ],
        columns=["", "count"],
    )
    by_reason = exclusion_counts(excluded)
    qct = qct_agreement(table_b)
    bmd = per_subject[["dxa_bmd_g_cm2", "qct_bmd_mg_cm3", "ct_abmd_g_cm2"]].describe().T
    bmd = bmd.reset_index().rename(columns={"index": "per subject"})
    poses = table_b.groupby(["pose", "status"]).size().unstack(fill_value=0).reset_index()
    fold_rows = pd.DataFrame(
        [(f["fold"], len(f["test"]), ", ".join(f["test"])) for f in folds["folds"]],
        columns=["fold", "test subjects", "IDs"],
    )
    pcc = pd.DataFrame(
        [(c, v["n"], v["pcc"], len(v["outliers"])) for c, v in checks.items()],
        columns=["reference", "n", "PCC with PF-DRR mean", "outliers"],
    )
    parts = [
        "<h2>Dataset audit</h2>",
        _table_html(counts),
        "<h3>BMD per subject</h3>",
        _table_html(bmd),
        "<h3>Pairs of dataset B by pose and registration status</h3>",
        _table_html(poses),
        "<h3>PF-DRR mean against the references</h3>",
        _table_html(pcc),
        "<h3>Exclusions by reason</h3>",
        _table_html(by_reason) if len(by_reason) else "<p>none</p>",
        f"<h3>QCT-BMD measured (manifest) against the pipeline's own, relative difference "
        f"over {QCT_DISAGREEMENT:.0%} flagged</h3>",
        _table_html(qct) if len(qct) else "<p>no measured QCT-BMD in the manifest</p>",
        f"<h3>Exclusions ({len(excluded)})</h3>",
        _table_html(excluded) if len(excluded) else "<p>none</p>",
        "<h3>Suspect pairs kept (dataset B)</h3>",
        _table_html(table_b.loc[table_b["status"] == "suspect", ["subject_id", "image", "reasons"]])
        if (table_b["status"] == "suspect").any()
        else "<p>none</p>",
        f"<h3>Folds (k = {folds['k']}, seed {folds['seed']}, stratified by "
        f"{html.escape(str(folds['stratified_by']))})</h3>",
        _table_html(fold_rows),
    ]
    return "<html><head><meta charset='utf-8'></head><body>" + "\n".join(parts) + "</body></html>\n"


def dataset_audit(
    a_tsv: str, b_tsv: str, excluded_tsv: str, folds_json: str, out_scatter, out_summary, out_checks
) -> dict:
    read = {"sep": "\t", "dtype": {"subject_id": str, "image": str}, "keep_default_na": True}
    table_a, table_b = pd.read_csv(a_tsv, **read), pd.read_csv(b_tsv, **read)
    excluded = pd.read_csv(excluded_tsv, **read)
    folds = read_json_object(folds_json)
    checks = bmd_checks(table_b)
    scatter_figure(table_b, checks, out_scatter)
    write_text(out_summary, summary_html(table_a, table_b, excluded, folds, checks))
    write_json(out_checks, checks)
    return checks
