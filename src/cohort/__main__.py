"""``python -m cohort``: validate the manifest, import CTs and radiographs, fingerprint,
and list a subject's products with their checksums."""

from __future__ import annotations

import argparse
import sys

from conventions.errors import run_cli

# Each command imports what it uses: pandas (0.3 s) is the manifest's and the tables',
# not the per-file imports', which a cohort runs once per CT and radiograph.


def cohort_command(a: argparse.Namespace) -> int:
    from cohort import ingest

    if a.command == "validate":
        from cohort.manifest import read_cohort

        cohort = read_cohort(a.subjects, a.radiographs, extra_roots=a.data_root)
        print(f"{len(cohort.subjects)} subjects, {len(cohort.radiographs)} radiographs: valid")
    elif a.command == "import-ct":
        ingest.import_ct(a.subject, a.ct, a.out_volume, a.out_fingerprint)
    elif a.command == "import-radiograph":
        ingest.import_radiograph(
            a.subject,
            a.image,
            a.path,
            a.out_image,
            a.out_geometry,
            a.out_fingerprint,
            geometry_json=a.geometry or None,
            pose_label=a.pose,
            site_defaults={
                "pixel_spacing_mm": a.default_pixel_spacing_mm,
                "sdd_mm": a.default_sdd_mm,
                "source_to_patient_mm": a.default_source_to_patient_mm,
            },
        )
    elif a.command == "fingerprint":
        ingest.cohort_fingerprint(a.subjects, a.ct, a.radiographs, a.out_json, a.out_tsv)
    elif a.command == "inventory":
        from cohort.inventory import write_inventory

        write_inventory(a.subject, a.root, a.files, a.out)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cohort", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="validate subjects.tsv and radiographs.tsv")
    v.add_argument("subjects")
    v.add_argument("radiographs", nargs="?")
    v.add_argument(
        "--data-root",
        action="append",
        default=[],
        help="a folder besides the manifests' own that paths may point into",
    )

    c = sub.add_parser("import-ct", help="read one CT, write canonical NIfTI + fingerprint")
    c.add_argument("--subject", required=True)
    c.add_argument("--ct", required=True)
    c.add_argument("--out-volume", required=True)
    c.add_argument("--out-fingerprint", required=True)

    r = sub.add_parser("import-radiograph", help="read one radiograph, write MHA + geometry")
    r.add_argument("--subject", required=True)
    r.add_argument("--image", required=True)
    r.add_argument("--path", required=True)
    r.add_argument("--geometry", default=None, help="geometry JSON supplying missing values")
    r.add_argument("--pose", default="other")
    r.add_argument(
        "--default-pixel-spacing-mm",
        type=float,
        default=None,
        help="the site's detector pixel spacing, where the file lacks it",
    )
    r.add_argument(
        "--default-sdd-mm",
        type=float,
        default=None,
        help="the site's source-detector distance, where the file lacks it",
    )
    r.add_argument("--default-source-to-patient-mm", type=float, default=None,
                   help="the site's source-patient distance (else SDD - 160 mm)")  # fmt: skip
    r.add_argument("--out-image", required=True)
    r.add_argument("--out-geometry", required=True)
    r.add_argument("--out-fingerprint", required=True)

    f = sub.add_parser("fingerprint", help="summarise per-image fingerprints for the cohort")
    f.add_argument("--subjects", required=True, help="the cohort's subjects.tsv")
    f.add_argument("--ct", nargs="*", default=[])
    f.add_argument("--radiographs", nargs="*", default=[])
    f.add_argument("--out-json", required=True)
    f.add_argument("--out-tsv", required=True)

    i = sub.add_parser("inventory", help="a subject's products: size and SHA-256 each")
    i.add_argument("--subject", required=True)
    i.add_argument("--root", required=True, help="the subject's results folder")
    i.add_argument("--files", nargs="+", required=True)
    i.add_argument("--out", required=True)

    a = ap.parse_args(argv)
    return run_cli(lambda: cohort_command(a), getattr(a, "subject", None))


if __name__ == "__main__":
    sys.exit(main())
