"""Cohort manifest validation: each problem names the file, the line and the column."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cohort.manifest import ManifestError, read_cohort

SUBJECTS_HEADER = "subject_id\tct\ttarget_side\tdxa_bmd_g_cm2\tqct_bmd_mg_cm3\tphantom\tct_scanner"
RADIOGRAPHS_HEADER = "subject_id\timage_id\tpath\tpose"


@pytest.fixture
def cohort_dir(tmp_path):
    (tmp_path / "ct").mkdir()
    for s in ("P01", "P02"):
        (tmp_path / "ct" / f"{s}.nii.gz").write_bytes(b"")
        (tmp_path / f"{s}_ap.dcm").write_bytes(b"")
    (tmp_path / "subjects.tsv").write_text(
        SUBJECTS_HEADER
        + "\nP01\tct/P01.nii.gz\tL\t0.81\t245.5\tpresent\tScanner X"
        + "\nP02\tct/P02.nii.gz\tR\t\t\tabsent\t\n"
    )
    (tmp_path / "radiographs.tsv").write_text(
        RADIOGRAPHS_HEADER + "\nP01\tap1\tP01_ap.dcm\tstanding\nP02\tap1\tP02_ap.dcm\tsupine\n"
    )
    return tmp_path


def test_valid_manifest_reads(cohort_dir):
    c = read_cohort(cohort_dir / "subjects.tsv", cohort_dir / "radiographs.tsv")
    assert c.subject_ids == ["P01", "P02"]
    assert c.subject("P01")["dxa_bmd_g_cm2"] == 0.81
    assert c.subject("P02")["dxa_bmd_g_cm2"] is None
    assert c.subject("P02")["phantom"] == "absent"
    assert c.subject("P01")["ct"] == str((cohort_dir / "ct" / "P01.nii.gz").resolve())
    assert c.images_of("P02") == ["ap1"]
    assert c.radiograph("P01", "ap1")["pose"] == "standing"


def test_crlf_line_endings_and_bom_are_accepted(cohort_dir):
    f = cohort_dir / "subjects.tsv"
    f.write_bytes(b"\xef\xbb\xbf" + f.read_text().replace("\n", "\r\n").encode())
    assert read_cohort(f, None).subject_ids == ["P01", "P02"]


def _replace(path, old, new):
    path.write_text(path.read_text().replace(old, new))


@pytest.mark.parametrize(
    ("table", "old", "new", "expected"),
    [
        (
            "radiographs.tsv",
            "P02\tap1",
            "P09\tap1",
            "line 3, column 'subject_id': unknown subject 'P09'",
        ),
        ("subjects.tsv", "ct/P02.nii.gz", "ct/P99.nii.gz", "line 3, column 'ct': no such file"),
        ("subjects.tsv", "\tL\t", "\tleft\t", "line 2, column 'target_side': 'left' is not one of"),
        ("subjects.tsv", "0.81", "-0.81", "line 2, column 'dxa_bmd_g_cm2': -0.81 is less than"),
        ("subjects.tsv", "245.5", "abc", "line 2, column 'qct_bmd_mg_cm3': 'abc' is not a finite"),
        (
            "subjects.tsv",
            "P02\t",
            "P01\t",
            "line 3, column 'subject_id': duplicate P01 (first on line 2)",
        ),
        ("radiographs.tsv", "P02\tap1", "P01\tap1", "line 3, column 'image_id': duplicate P01/ap1"),
        (
            "radiographs.tsv",
            "standing",
            "sitting",
            "line 2, column 'pose': 'sitting' is not one of",
        ),
        ("subjects.tsv", "P01\t", "P 01\t", "line 2, column 'subject_id': 'P 01' does not match"),
        ("subjects.tsv", "ct_scanner", "scanner", "unknown column(s) 'scanner'"),
        ("subjects.tsv", "target_side", "side", "missing required column(s) 'target_side'"),
    ],
)
def test_bad_rows_name_file_line_and_column(cohort_dir, table, old, new, expected):
    _replace(cohort_dir / table, old, new)
    with pytest.raises(ManifestError) as e:
        read_cohort(cohort_dir / "subjects.tsv", cohort_dir / "radiographs.tsv")
    assert any(str(cohort_dir / table) in p and expected in p for p in e.value.problems), (
        e.value.problems
    )


def test_all_problems_are_reported_at_once(cohort_dir):
    _replace(cohort_dir / "subjects.tsv", "\tL\t", "\tX\t")
    _replace(cohort_dir / "radiographs.tsv", "P02\tap1", "P07\tap1")
    with pytest.raises(ManifestError) as e:
        read_cohort(cohort_dir / "subjects.tsv", cohort_dir / "radiographs.tsv")
    assert len(e.value.problems) == 2


def test_non_utf8_manifest_is_a_clear_error(cohort_dir):
    f = cohort_dir / "subjects.tsv"
    f.write_bytes(f.read_bytes().replace(b"Scanner X", "Scänner".encode("latin-1")))
    with pytest.raises(ManifestError, match="not UTF-8") as e:
        read_cohort(f, None)
    assert str(f) in str(e.value)


def test_validate_cli_exits_2_with_the_problems(cohort_dir):
    _replace(cohort_dir / "subjects.tsv", "\tR\t", "\tboth\t")
    p = subprocess.run(
        [sys.executable, "-m", "cohort", "validate", "subjects.tsv", "radiographs.tsv"],
        cwd=cohort_dir,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2
    assert "line 3, column 'target_side'" in p.stderr


def test_subject_inventory_lists_sizes_and_checksums(tmp_path):
    import hashlib

    from cohort.inventory import subject_inventory
    from conventions.errors import InputError

    root = tmp_path / "S1"
    (root / "ct").mkdir(parents=True)
    (root / "ct" / "b.json").write_bytes(b'{"x": 1}\n')
    (root / "a.bin").write_bytes(bytes(range(256)) * 5000)  # over one read chunk
    # A per-subject job's folder (registration/) stands for its files, not Snakemake's stamp.
    (root / "registration" / "ap").mkdir(parents=True)
    (root / "registration" / "ap" / "pose_femur.json").write_bytes(b"{}")
    (root / "registration" / ".snakemake_timestamp").write_bytes(b"")
    products = [str(root / "ct" / "b.json"), str(root / "a.bin"), str(root / "registration")]
    rows = subject_inventory("S1", root, products)
    # sorted, relative, POSIX
    assert [r["file"] for r in rows] == ["a.bin", "ct/b.json", "registration/ap/pose_femur.json"]
    assert [r["bytes"] for r in rows] == [256 * 5000, 9, 2]
    assert rows[0]["sha256"] == hashlib.sha256(bytes(range(256)) * 5000).hexdigest()
    with pytest.raises(InputError, match=r"subject S1: .*elsewhere\.txt: a product outside"):
        subject_inventory("S1", root, [str(tmp_path / "elsewhere.txt")])
    with pytest.raises(InputError, match=r"subject S1: .*gone\.nii\.gz: a product is missing"):
        subject_inventory("S1", root, [str(root / "gone.nii.gz")])
