"""The cohort's dataset tables: one row per usable pair, and the exclusions with reasons.

- **Dataset A** (stage one: radiograph → bone DRR) needs both bodies: its target holds
  the pelvis at its pose and the femur at its own.
- **Dataset B** (stages two and three: radiograph → PF-DRR, BMD) needs the femur.

A pair is excluded from a dataset when a body it needs failed registration or, by
default, is suspect (``keep_suspect`` keeps those, flagged ``status`` = suspect with the
reasons, for a reviewer to check in the audit report), and from dataset B when the
radiograph's edge cuts the PF region (its PF-DRR mean would be a part's); the reason
names the edges. A PF region the pair's crop cuts is kept and flagged
(``pf_cut_by_pair_crop``, the reason naming the pair's edges: superior, inferior,
lateral, medial): the crop is the paper's normalisation.

The QCT-BMD target is the manifest's measured ``qct_bmd_mg_cm3`` where a subject has
one, else the pipeline's own from the calibrated CT; the pipeline's stays beside it
(``ct_qct_bmd_mg_cm3``) so the audit can show where the two disagree.
"""

from __future__ import annotations

import pandas as pd

NEEDS = {"A": ("pelvis", "femur"), "B": ("femur",)}
STATUS_ORDER = {"ok": 0, "suspect": 1, "failed": 2}
COLUMNS = [
    "subject_id",
    "image",
    "pose",
    "side",
    "pair",
    "status",
    "reasons",
    "pelvis_status",
    "femur_status",
    "pelvis_gc",
    "femur_gc",
    "dxa_bmd_g_cm2",
    "qct_bmd_mg_cm3",
    "ct_qct_bmd_mg_cm3",
    "ct_abmd_g_cm2",
    "pf_drr_mean_g_cm2",
    "pf_cut_by_pair_crop",
]


def _status(record: dict, bodies) -> tuple[str, list[str]]:
    """The worst status of ``bodies`` and their reasons, each prefixed by its body."""
    reg = record["registration"]
    worst = max((reg[b]["status"] for b in bodies), key=STATUS_ORDER.__getitem__)
    reasons = [f"{b}: {r}" for b in bodies for r in reg[b].get("reasons", [])]
    return worst, reasons


def _cut_reason(what: str, edges: list[str] | None) -> str:
    """``what`` and the edges that cut (records before the edges were named: "edge")."""
    if not edges:
        return f"{what} edge"
    return f"{what} {' and '.join(edges)} edge{'s' if len(edges) > 1 else ''}"


def _manifest_values(subjects: pd.DataFrame, column: str) -> dict[str, float]:
    """The manifest's known values of ``column`` by subject (none if it has no column)."""
    if column not in subjects.columns:
        return {}
    values = pd.to_numeric(subjects[column], errors="coerce")
    known = values.notna()
    return dict(zip(subjects["subject_id"].astype(str)[known], values[known], strict=True))


def dataset_tables(
    records: list[dict],
    subjects: pd.DataFrame,
    ct_bmd: dict[str, dict],
    keep_suspect: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(dataset A, dataset B, exclusions) from the pairs' records (``pair.json``), the
    subjects' manifest (``subject_id``, optional ``dxa_bmd_g_cm2`` and
    ``qct_bmd_mg_cm3``) and each subject's ``ct_bmd.json``. Rows are sorted by subject
    and image."""
    dxa = _manifest_values(subjects, "dxa_bmd_g_cm2")
    measured_qct = _manifest_values(subjects, "qct_bmd_mg_cm3")
    rows = {"A": [], "B": []}
    excluded = []
    for rec in sorted(records, key=lambda r: (r["subject_id"], r["image"])):
        s = rec["subject_id"]
        value = dxa.get(s)
        base = {
            "subject_id": s,
            "image": rec["image"],
            "pose": rec["pose"],
            "side": rec["side"],
            "pair": rec["pair"],
            "pelvis_status": rec["registration"]["pelvis"]["status"],
            "femur_status": rec["registration"]["femur"]["status"],
            "pelvis_gc": rec["registration"]["pelvis"]["gc"],
            "femur_gc": rec["registration"]["femur"]["gc"],
            "dxa_bmd_g_cm2": float("nan") if value is None else float(value),
            "qct_bmd_mg_cm3": float(measured_qct.get(s, ct_bmd[s]["qct_bmd_mg_cm3"])),
            "ct_qct_bmd_mg_cm3": ct_bmd[s]["qct_bmd_mg_cm3"],
            "ct_abmd_g_cm2": ct_bmd[s]["areal_bmd_g_cm2"],
            "pf_drr_mean_g_cm2": rec["pf_drr_mean_g_cm2"],
        }
        cut = rec.get("pf_cut", {})
        for name, bodies in NEEDS.items():
            status, reasons = _status(rec, bodies)
            why = []
            if status == "failed" or (status == "suspect" and not keep_suspect):
                why.append(f"registration {status}: " + "; ".join(reasons))
            if name == "B" and cut.get("by_radiograph_edge"):
                # Its PF-DRR, and the BMD read from it, would be a part of the region's.
                why.append(_cut_reason("the PF region is cut by the radiograph's",
                                       cut.get("radiograph_edges")))  # fmt: skip
            if why:
                excluded.append(
                    {
                        "subject_id": s,
                        "image": rec["image"],
                        "dataset": name,
                        "reason": "; ".join(why),
                    }
                )
                continue
            if cut.get("by_pair_crop"):
                reasons = [*reasons, _cut_reason("the pair's crop cuts the PF region at its",
                                                 cut.get("pair_edges"))]  # fmt: skip
            rows[name].append(
                {
                    **base,
                    "status": status,
                    "reasons": "; ".join(reasons),
                    "pf_cut_by_pair_crop": bool(cut.get("by_pair_crop", False)),
                }
            )
    tables = [pd.DataFrame(rows[n], columns=COLUMNS) for n in ("A", "B")]
    exclusions = pd.DataFrame(excluded, columns=["subject_id", "image", "dataset", "reason"])
    return tables[0], tables[1], exclusions


def stratification_bmd(table: pd.DataFrame) -> tuple[pd.Series, str]:
    """Per subject, the BMD folds are stratified by: DXA where every subject has it, else
    the CT's areal BMD (always there)."""
    per_subject = table.groupby("subject_id").first()
    if per_subject["dxa_bmd_g_cm2"].notna().all() and len(per_subject):
        return per_subject["dxa_bmd_g_cm2"], "dxa_bmd_g_cm2"
    return per_subject["ct_abmd_g_cm2"], "ct_abmd_g_cm2"
