"""Dataset tables and folds: exclusions by registration status, patient-wise folds."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from dataset.folds import fold_document, stratified_folds
from dataset.tables import dataset_tables, stratification_bmd
from qc.dataset import exclusion_counts, qct_agreement


def record(subject, image, pelvis="ok", femur="ok", reasons=()):
    return {
        "subject_id": subject,
        "image": image,
        "pose": image,
        "side": "L",
        "pair": f"results/subjects/{subject}/dataset/{image}/pair.npz",
        "registration": {
            "pelvis": {
                "status": pelvis,
                "gc": 0.4,
                "reasons": list(reasons) if pelvis != "ok" else [],
            },
            "femur": {
                "status": femur,
                "gc": 0.5,
                "reasons": list(reasons) if femur != "ok" else [],
            },
        },
        "pf_drr_mean_g_cm2": 0.8,
    }


@pytest.fixture
def cohort():
    records = [
        record("S1", "supine"),
        record("S1", "standing", femur="suspect", reasons=["GC margin 0.05 < 0.07"]),
        record("S2", "supine", pelvis="failed", reasons=["GC 0.05 < 0.1"]),
        record("S2", "standing", femur="failed", reasons=["off the image"]),
    ]
    subjects = pd.DataFrame({"subject_id": ["S1", "S2"], "dxa_bmd_g_cm2": [0.7, 0.9]})
    ct_bmd = {
        "S1": {"qct_bmd_mg_cm3": 250.0, "areal_bmd_g_cm2": 0.72},
        "S2": {"qct_bmd_mg_cm3": 300.0, "areal_bmd_g_cm2": 0.88},
    }
    return records, subjects, ct_bmd


def test_failed_registrations_are_excluded_with_reasons_and_suspect_ones_flagged(cohort):
    a, b, excluded = dataset_tables(*cohort, keep_suspect=True)
    # A needs both bodies: S2's two radiographs fail one each.
    assert list(zip(a.subject_id, a.image, strict=True)) == [("S1", "standing"), ("S1", "supine")]
    # B needs the femur: S2 supine (pelvis failed) stays, S2 standing (femur failed) goes.
    assert ("S2", "supine") in set(zip(b.subject_id, b.image, strict=True))
    assert ("S2", "standing") not in set(zip(b.subject_id, b.image, strict=True))
    listed = set(zip(excluded.subject_id, excluded.image, excluded.dataset, strict=True))
    assert listed == {("S2", "supine", "A"), ("S2", "standing", "A"), ("S2", "standing", "B")}
    assert excluded.reason.str.contains("registration failed").all()
    assert "off the image" in excluded.loc[excluded.image == "standing", "reason"].iloc[0]
    for table, name in ((a, "A"), (b, "B")):
        out = set(
            excluded.loc[excluded.dataset == name, ["subject_id", "image"]].itertuples(index=False)
        )
        assert not out & set(table[["subject_id", "image"]].itertuples(index=False))
    flagged = b.set_index(["subject_id", "image"]).loc[("S1", "standing")]
    assert flagged.status == "suspect" and "GC margin" in flagged.reasons
    assert b.set_index("subject_id").loc["S2", "dxa_bmd_g_cm2"] == 0.9
    assert b.set_index("subject_id").loc["S2", "qct_bmd_mg_cm3"] == 300.0


def test_suspect_registrations_leave_both_datasets_by_default(cohort):
    a, b, excluded = dataset_tables(*cohort)
    for table in (a, b):
        assert ("S1", "standing") not in set(zip(table.subject_id, table.image, strict=True))
        assert (table.status == "ok").all()
    suspect = excluded[(excluded.subject_id == "S1") & (excluded.image == "standing")]
    assert sorted(suspect.dataset) == ["A", "B"]
    assert suspect.reason.str.startswith("registration suspect: femur: GC margin").all()


def test_the_manifest_qct_is_the_target_and_the_pipeline_value_stays_beside_it(cohort):
    records, subjects, ct_bmd = cohort
    subjects = subjects.assign(qct_bmd_mg_cm3=[180.0, None])  # measured for S1 only
    _, b, _ = dataset_tables(records, subjects, ct_bmd)
    per_subject = b.groupby("subject_id").first()
    assert per_subject.loc["S1", "qct_bmd_mg_cm3"] == 180.0
    assert per_subject.loc["S1", "ct_qct_bmd_mg_cm3"] == 250.0
    assert per_subject.loc["S2", "qct_bmd_mg_cm3"] == 300.0  # none measured: the CT's
    agreement = qct_agreement(b)
    assert list(agreement.subject_id) == ["S1"]
    assert agreement.relative_difference.iloc[0] == pytest.approx(250 / 180 - 1)
    assert agreement.disagrees.iloc[0]  # 39 % apart: calibration, region or side


def test_the_audit_counts_exclusions_per_reason(cohort):
    records, subjects, ct_bmd = cohort
    records[0]["pf_cut"] = {"by_radiograph_edge": True, "radiograph_edges": ["left"]}
    _, _, excluded = dataset_tables(records, subjects, ct_bmd)
    counts = exclusion_counts(excluded).set_index(["dataset", "reason"])["pairs"]
    assert counts.to_dict() == {
        ("A", "a needed body's registration failed"): 2,
        ("A", "a needed body's registration is suspect"): 1,
        ("B", "a needed body's registration failed"): 1,
        ("B", "a needed body's registration is suspect"): 1,
        ("B", "the PF region is cut by the radiograph's edge"): 1,
    }


def test_a_pf_region_the_radiograph_cuts_leaves_dataset_b_and_a_crop_is_flagged(cohort):
    records, subjects, ct_bmd = cohort
    cut = {"by_radiograph_edge": True, "radiograph_edges": ["bottom"], "by_pair_crop": True}
    records[0]["pf_cut"] = {**cut, "pair_edges": ["inferior"]}
    records[1]["pf_cut"] = {**cut, "by_radiograph_edge": False, "radiograph_edges": [],
                            "pair_edges": ["lateral", "inferior"]}  # fmt: skip
    a, b, excluded = dataset_tables(records, subjects, ct_bmd, keep_suspect=True)
    assert ("S1", "supine") in set(zip(a.subject_id, a.image, strict=True))
    assert ("S1", "supine") not in set(zip(b.subject_id, b.image, strict=True))
    row = excluded[(excluded.subject_id == "S1") & (excluded.dataset == "B")]
    assert row.reason.iloc[0] == "the PF region is cut by the radiograph's bottom edge"
    kept = b.set_index(["subject_id", "image"]).loc[("S1", "standing")]
    assert kept.pf_cut_by_pair_crop
    crop = "the pair's crop cuts the PF region at its lateral and inferior edges"
    assert crop in kept.reasons


def test_folds_partition_the_subjects_and_span_the_bmd_range():
    rng = np.random.default_rng(3)
    subjects = [f"P{i:03d}" for i in range(53)]
    bmd = rng.normal(0.8, 0.15, len(subjects))
    folds = stratified_folds(subjects, bmd, k=5, seed=11)
    flat = [s for f in folds for s in f]
    assert sorted(flat) == sorted(subjects) and len(flat) == len(set(flat))
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    value = dict(zip(subjects, bmd, strict=True))
    means = [np.mean([value[s] for s in f]) for f in folds]
    # Stratified: the folds' means spread over less than 0.4 SD; a random split into
    # folds of ~10 has means with an SE of 0.3 SD, spreading ~0.7 SD.
    assert np.ptp(means) < 0.4 * bmd.std()
    assert stratified_folds(subjects, bmd, k=5, seed=11) == folds  # deterministic
    assert stratified_folds(subjects[::-1], bmd[::-1], k=5, seed=11) == folds  # order-free
    assert stratified_folds(subjects, bmd, k=5, seed=12) != folds
    doc = fold_document(folds, 11, "dxa_bmd_g_cm2")
    for f in doc["folds"]:
        assert not set(f["test"]) & set(f["train"])
        assert sorted(f["test"] + f["train"]) == sorted(subjects)


def test_folds_refuse_what_cannot_be_split():
    with pytest.raises(ValueError, match="cannot fill"):
        stratified_folds(["A", "B"], [0.7, 0.8], k=5)
    with pytest.raises(ValueError, match="repeat"):
        stratified_folds(["A", "A", "B"], [0.7, 0.8, 0.9], k=2)


def test_folds_stratify_by_the_ct_when_dxa_is_missing(cohort):
    _, b, _ = dataset_tables(*cohort)
    b.loc[b.subject_id == "S2", "dxa_bmd_g_cm2"] = np.nan
    values, by = stratification_bmd(b)
    assert by == "ct_abmd_g_cm2" and values["S2"] == 0.88


def test_tables_and_folds_cli(cohort, tmp_path):
    records, subjects, ct_bmd = cohort
    paths = []
    for r in records:
        p = tmp_path / f"{r['subject_id']}_{r['image']}.json"
        p.write_text(json.dumps(r))
        paths.append(str(p))
    bmd_paths = []
    for s, doc in ct_bmd.items():
        p = tmp_path / f"{s}_ct_bmd.json"
        p.write_text(json.dumps({"subject_id": s, **doc}))
        bmd_paths.append(str(p))
    subjects.to_csv(tmp_path / "subjects.tsv", sep="\t", index=False)
    out = {k: tmp_path / f"{k}.tsv" for k in ("a", "b", "x")}
    run = [sys.executable, "-m", "dataset"]
    subprocess.run(
        [*run, "tables", "--subjects", str(tmp_path / "subjects.tsv"), "--records", *paths,
         "--ct-bmd", *bmd_paths, "--out-a", str(out["a"]), "--out-b", str(out["b"]),
         "--out-excluded", str(out["x"])],
        check=True, capture_output=True,
    )  # fmt: skip
    assert len(pd.read_csv(out["b"], sep="\t")) == 2  # S1's suspect one left
    p = subprocess.run(
        [*run, "folds", "--table", str(out["b"]), "--k", "5", "--out", str(tmp_path / "f.json")],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2 and "cannot fill 5 folds" in p.stderr  # two subjects
