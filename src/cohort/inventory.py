"""A subject's products with their sizes and SHA-256 checksums.

The inventory is the one file that stands for all of a subject's per-subject products
(the target that reruns one subject, docs/cluster.md), and its checksums show which
products two runs share byte for byte.
"""

from __future__ import annotations

from pathlib import Path

from conventions.errors import InputError
from conventions.files import file_record, folder_files, write_index


def product_files(products: list[str]) -> list[Path]:
    """The files of a list of products: a folder (a per-subject job's, such as
    registration/) stands for every file below it."""
    files = []
    for p in map(Path, products):
        files += folder_files(p) if p.is_dir() else [p]
    return files


def subject_inventory(subject: str, root: str | Path, files: list[str]) -> list[dict]:
    """One row per product file (``file`` relative to ``root``, ``bytes``, ``sha256``),
    sorted by file, folders expanded to their files; every file must lie under ``root``."""
    root = Path(root).resolve()
    rows = []
    for f in product_files(files):
        path = f.resolve()
        if not path.is_relative_to(root):
            raise InputError(f, f"a product outside {root}", subject=subject)
        if not path.is_file():
            raise InputError(f, "a product is missing", subject=subject)
        rows.append(file_record(path, root))
    return sorted(rows, key=lambda r: r["file"])


def write_inventory(subject: str, root: str | Path, files: list[str], out_tsv: str) -> None:
    write_index(subject_inventory(subject, root, files), out_tsv)
