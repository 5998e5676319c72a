"""The bad-input corpus (tests/data/bad/, written by tests/data/make_bad_inputs.py): every
case gives its stated outcome, first through the stage's CLI, then end to end through
the workflow with --keep-going beside a good subject that must finish untouched."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from cohort.__main__ import main as cohort_cli
from cohort.manifest import ManifestError, read_cohort
from conftest import IDENTIFIERS, REPO, snakemake
from conventions.errors import InputError
from conventions.landmarks import read_slicer_landmarks

CORPUS = REPO / "tests" / "data" / "bad"
CASES = pd.read_csv(CORPUS / "cases.tsv", sep="\t", keep_default_na=False)
# The workflow rule (and so its log) where each stage's case is decided.
LOG_OF_STAGE = {"import_ct": "import_ct", "import_radiograph": "import_radiograph",
                "segment": "segment", "landmarks": "landmarks"}  # fmt: skip


def _cases(*kinds: str) -> list:
    rows = CASES[CASES.kind.isin(kinds)]
    return [pytest.param(r, id=r.case) for r in rows.itertuples()]


def test_the_committed_corpus_is_what_its_script_writes(tmp_path):
    subprocess.run(
        [sys.executable, str(REPO / "tests/data/make_bad_inputs.py"), "--out", str(tmp_path)],
        check=True,
    )
    written = {p.relative_to(tmp_path): p for p in tmp_path.rglob("*") if p.is_file()}
    committed = {p.relative_to(CORPUS): p for p in CORPUS.rglob("*") if p.is_file()}
    assert written.keys() == committed.keys()
    for rel, p in written.items():
        assert p.read_bytes() == committed[rel].read_bytes(), rel
    assert sum(p.stat().st_size for p in committed.values()) < 1_000_000  # small


@pytest.mark.parametrize("case", _cases("ct"))
def test_each_ct_case_has_its_outcome_at_import(case, tmp_path, capsys):
    if case.stage != "import_ct":
        pytest.skip(f"decided at {case.stage}: see the workflow test")
    args = ["import-ct", "--subject", "P07", "--ct", str(CORPUS / case.case),
            "--out-volume", str(tmp_path / "ct.nii.gz"),
            "--out-fingerprint", str(tmp_path / "fp.json")]  # fmt: skip
    _check_cli(case, args, tmp_path / "fp.json", capsys)


@pytest.mark.parametrize("case", _cases("radiograph", "geometry"))
def test_each_radiograph_case_has_its_outcome_at_import(case, tmp_path, capsys):
    path, geometry = CORPUS / case.case, []
    if case.kind == "geometry":
        path, geometry = CORPUS / "rad_ok.dcm", ["--geometry", str(CORPUS / case.case)]
    args = ["import-radiograph", "--subject", "P07", "--image", "ap", "--path", str(path),
            *geometry, "--out-image", str(tmp_path / "r.mha"),
            "--out-geometry", str(tmp_path / "g.json"),
            "--out-fingerprint", str(tmp_path / "fp.json")]  # fmt: skip
    _check_cli(case, args, tmp_path / "fp.json", capsys)
    if case.case == "rad_12bit_junk_high_bits.dcm":  # the junk above bit 12 is masked off
        from conventions.radiograph import read_radiograph

        clean = read_radiograph(CORPUS / "rad_ok.dcm").pixels
        assert np.array_equal(read_radiograph(path).pixels, clean)


def _check_cli(case, args: list[str], fingerprint: Path, capsys) -> None:
    code = cohort_cli(args)
    err = capsys.readouterr().err
    if case.outcome == "error":
        assert code == 2, err
        assert "subject P07" in err and case.case in err and case.expect in err, err
        assert not fingerprint.exists()  # nothing that looks finished
        assert not list(fingerprint.parent.glob("*.nii.gz")) + list(
            fingerprint.parent.glob("*.mha")
        )
    else:
        assert code == 0, err
        notes = json.loads(fingerprint.read_text())["import_notes"]
        if case.outcome == "fallback":
            assert any(case.expect in n for n in notes), notes
            assert case.expect in err and "subject P07" in err  # and the log says so
        else:
            assert notes == []


@pytest.mark.parametrize("case", _cases("landmarks"))
def test_landmark_files_that_do_not_say_their_frame_are_refused(case):
    with pytest.raises(InputError, match=case.expect) as e:
        read_slicer_landmarks(CORPUS / case.case)
    assert case.case in str(e.value)


@pytest.mark.parametrize("case", _cases("manifest"))
def test_each_manifest_case_has_its_outcome(case, capsys):
    subjects = CORPUS / case.case / "subjects.tsv"
    if case.outcome == "error":
        with pytest.raises(ManifestError) as e:
            read_cohort(subjects, None)
        assert case.expect in str(e.value) and str(subjects) in str(e.value)
        assert cohort_cli(["validate", str(subjects)]) == 2
        assert case.expect in capsys.readouterr().err
    else:  # Windows line endings and a BOM read as the plain file does
        cohort = read_cohort(subjects, None)
        assert cohort.subject_ids == ["P01"]
        row = cohort.subject("P01")
        assert row["ct"] == str(CORPUS / case.case / "ct.nii.gz")
        assert row["target_side"] == "L" and row["phantom"] == "absent"
        assert row["ct_scanner"] in (None, "Scanner X")


def test_a_data_root_in_the_config_admits_a_path_outside_the_manifest_folder():
    subjects = CORPUS / "manifest_path_outside" / "subjects.tsv"
    with pytest.raises(ManifestError) as e:
        read_cohort(subjects, None, extra_roots=[CORPUS])
    # ../ct_empty.nii.gz is now inside a root; /etc/hostname still is not
    assert len(e.value.problems) == 1 and "/etc/hostname" in e.value.problems[0]


# --- end to end through the workflow


def _sha256_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _set_read_only(root: Path, read_only: bool) -> None:
    for p in [root, *root.rglob("*")]:
        mode = p.stat().st_mode
        if read_only:
            p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        else:
            p.chmod(mode | stat.S_IWUSR)


# Shell metacharacters in file names: an unquoted use in any rule breaks the run or
# creates PWNED.
NASTY = "it's a $(touch PWNED) `touch PWNED` name"


def _good_subject(data: Path) -> tuple[Path, list[tuple[str, Path, str]]]:
    """A synthetic subject as a hospital would send it: DICOM CT and radiographs with
    identifying tags, in folders and files named with shell metacharacters."""
    out = data / "G"
    subprocess.run(
        [sys.executable, "-m", "phantom", "subject", "--subject", "S001", "--seed", "7",
         "--voxel-mm", "2.5", "2.5", "4.0", "--out-dir", str(out), "--poses", "supine",
         "--ct-format", "dicom"],
        check=True, cwd=REPO, capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )  # fmt: skip
    ct = data / f"CT {NASTY}"
    (out / "ct_dicom").rename(ct)
    rad = data / f"supine {NASTY}.dcm"
    (out / "radiographs" / "supine.dcm").rename(rad)
    for f in [*ct.iterdir(), rad]:
        ds = pydicom.dcmread(f)
        for k, v in IDENTIFIERS.items():
            setattr(ds, k, v)
        ds.save_as(f)
    shutil.rmtree(out)
    return ct, [("supine", rad, "supine")]


def _readable_text(f: Path) -> bytes:
    """A file's bytes plus whatever it holds compressed: gzip, zip members (npz, the
    report), PNG zTXt/iTXt/tEXt chunks."""
    data = f.read_bytes()
    parts = [data]
    if data[:2] == b"\x1f\x8b":
        parts.append(gzip.decompress(data))
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            parts += [z.read(n) for n in z.namelist()]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        i = 8
        while i + 8 <= len(data):
            n = int.from_bytes(data[i : i + 4], "big")
            kind, body = data[i + 4 : i + 8], data[i + 8 : i + 8 + n]
            if kind == b"zTXt":
                parts.append(zlib.decompress(body.split(b"\0", 1)[1][1:]))
            elif kind in (b"tEXt", b"iTXt"):
                parts.append(body)
            i += 12 + n
    return b"\n".join(parts)


@pytest.mark.slow
def test_bad_inputs_fail_alone_through_the_workflow(workflow, tmp_path):
    """Each corpus case as a subject of one cohort, run with --keep-going: errors name
    subject and file in the job's log, fallbacks are recorded, the good subject's products
    are all built; the inputs stay byte for byte as they were (and read-only); no shell
    command runs a file name; no identifier reaches results, logs or the report; the good
    subject's products are the same bytes when built again."""
    data = tmp_path / "cohort"
    corpus = data / f"bad {NASTY}"  # every corpus path passes through the shell quoted
    shutil.copytree(CORPUS, corpus)
    good_ct, good_rads = _good_subject(data)
    subjects = ["subject_id\tct\ttarget_side\tphantom\tct_scanner\tlandmarks"]
    radiographs = ["subject_id\timage_id\tpath\tpose\tgeometry"]
    subjects.append(f"G\t{good_ct}\tL\tpresent\t\t")
    for image, path, pose in good_rads:
        radiographs.append(f"G\t{image}\t{path}\t{pose}\t")
    targets = ["results/subjects/G/products.tsv"]
    expected = {}  # subject -> case
    for n, case in enumerate(CASES.itertuples()):
        s = f"B{n:02d}"
        bad = corpus / case.case
        if case.kind == "manifest":
            continue  # a bad manifest stops the whole workflow: see the test above
        if case.kind == "ct":
            subjects.append(f"{s}\t{bad}\tL\tabsent\t\t")
            targets.append(
                f"results/subjects/{s}/ct/"
                + ("labels.nii.gz" if case.stage == "segment" else "ct_hu.nii.gz")
            )
        elif case.kind == "landmarks":
            subjects.append(f"{s}\t{good_ct}\tL\tpresent\t\t{bad}")
            targets.append(f"results/subjects/{s}/ct/landmarks.json")
        else:
            path, geometry = (bad, "") if case.kind == "radiograph" else (
                corpus / "rad_ok.dcm", bad)  # fmt: skip
            subjects.append(f"{s}\t{good_ct}\tL\tpresent\t\t")
            radiographs.append(f"{s}\tap\t{path}\tstanding\t{geometry}")
            targets.append(f"results/subjects/{s}/radiographs/ap/radiograph.mha")
        expected[s] = case
    (data / "subjects.tsv").write_text("\n".join(subjects) + "\n")
    (data / "radiographs.tsv").write_text("\n".join(radiographs) + "\n")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"cohort:\n  subjects: {data / 'subjects.tsv'}\n"
        f"  radiographs: {data / 'radiographs.tsv'}\n"
        "evaluation: {uncalibrated_ct: {enabled: false}}\n"
    )
    before = _sha256_tree(data)
    _set_read_only(data, True)
    try:
        p = snakemake(workflow, "--configfile", str(cfg), "--keep-going", *targets, check=False)
    finally:
        _set_read_only(data, False)
    assert _sha256_tree(data) == before  # inputs untouched
    assert p.returncode != 0
    assert not list(workflow.rglob("PWNED")) and not list(data.rglob("PWNED"))

    res, logs = workflow / "results" / "subjects", workflow / "logs"
    assert (res / "G" / "products.tsv").is_file(), p.stderr[-3000:]
    for s, case in expected.items():
        if case.outcome == "error":
            log = (logs / LOG_OF_STAGE[case.stage] / s).with_suffix(".log")
            if case.kind in ("radiograph", "geometry"):
                log = logs / "import_radiograph" / s / "ap.log"
            text = log.read_text()
            # A stage after the import names the product it read (the CT's density).
            named = case.case if case.stage != "segment" else "density_mg_cm3.nii.gz"
            assert f"subject {s}" in text and named in text and case.expect in text, (
                case.case, text[-2000:])  # fmt: skip
        else:
            fp = (res / s / "ct" / "fingerprint.json") if case.kind == "ct" else (
                res / s / "radiographs" / "ap" / "fingerprint.json")  # fmt: skip
            notes = json.loads(fp.read_text())["import_notes"]
            assert (case.expect in " ".join(notes)) if case.expect else notes == [], notes

    # Privacy: nothing the pipeline wrote names the patient.
    report = tmp_path / "report.zip"
    snakemake(workflow, "results/subjects/G/products.tsv", "--report", str(report),
              "--configfile", str(cfg))  # fmt: skip
    written = [workflow / "results", workflow / "logs", workflow / ".snakemake" / "log", report]
    files = [f for w in written for f in ([w] if w.is_file() else w.rglob("*")) if f.is_file()]
    assert any(f.suffix == ".png" for f in files)
    for f in files:
        text = _readable_text(f)
        for value in IDENTIFIERS.values():
            assert value.encode() not in text, (f, value)

    # Determinism: the good subject built again from nothing gives the same bytes.
    first = (res / "G" / "products.tsv").read_text()
    shutil.rmtree(res / "G")
    snakemake(workflow, "results/subjects/G/products.tsv", "--configfile", str(cfg))
    assert (res / "G" / "products.tsv").read_text() == first


def test_site_defaults_fill_only_missing_geometry_and_are_recorded_as_assumed(tmp_path, capsys):
    """A radiograph without geometry tags imports with the site's defaults (config
    cohort.site_defaults), each recorded in its fingerprint as assumed; without a
    source-to-patient distance that is assumed as SDD - 160 mm, recorded too. A file
    that has its tags keeps them."""
    out = {k: str(tmp_path / f"{k}") for k in ("image.mha", "geometry.json", "fp.json")}
    base = ["import-radiograph", "--subject", "P07", "--image", "ap",
            "--out-image", out["image.mha"], "--out-geometry", out["geometry.json"],
            "--out-fingerprint", out["fp.json"]]  # fmt: skip
    bare = ["--path", str(CORPUS / "rad_no_geometry.dcm")]
    assert cohort_cli([*base, *bare]) == 2  # no defaults: the tags it lacks, named
    assert "DistanceSourceToDetector" in capsys.readouterr().err
    site = ["--default-pixel-spacing-mm", "0.2", "--default-sdd-mm", "1150"]
    assert cohort_cli([*base, *bare, *site]) == 0
    fp = json.loads(Path(out["fp.json"]).read_text())
    assert fp["sdd_mm"] == 1150.0 and fp["pixel_spacing_mm"] == [0.2, 0.2]
    assert fp["source_to_patient_mm"] == 990.0
    assert fp["geometry_sources"]["sdd_mm"] == "site default (config)"
    assert fp["geometry_sources"]["source_to_patient_mm"].startswith("assumed: SDD - 160 mm")
    assert set(fp["geometry_assumed"]) == {"pixel_spacing_mm", "sdd_mm", "source_to_patient_mm"}
    geometry = json.loads(Path(out["geometry.json"]).read_text())
    assert geometry["source_to_patient_mm"] == 990.0
    # A file with its own tags keeps them: the defaults fill gaps only.
    assert cohort_cli([*base, "--path", str(CORPUS / "rad_ok.dcm"), *site]) == 0
    fp = json.loads(Path(out["fp.json"]).read_text())
    assert fp["sdd_mm"] != 1150.0 and "sdd_mm" not in fp["geometry_assumed"]
