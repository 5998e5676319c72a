"""Atomic file writes: a product appears under its final name only when complete.

A job killed mid-write leaves at most a hidden temporary file, never a truncated
product that Snakemake or a later stage could take for a finished one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary name keeps the final suffixes (``.nii.gz``, ``.mha``) so writers
    that choose a format by extension still do the right thing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); give it the permissions a plain open()
        # would have, so collaborators sharing the results folder can read it.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (numpy values are converted)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_to_jsonable) + "\n")


def write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Write arrays as a compressed ``.npz``, atomically (``numpy.load`` reads it; numpy
    stamps no time into it, so the same arrays give the same bytes)."""
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **{k: np.asarray(v) for k, v in arrays.items()})


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """The file's SHA-256, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def folder_files(folder: str | Path) -> list[Path]:
    """Every product file below ``folder``, sorted; hidden files left out (the
    temporary file of an interrupted write, Snakemake's .snakemake_timestamp)."""
    return sorted(f for f in Path(folder).rglob("*") if f.is_file() and not f.name.startswith("."))


INDEX_COLUMNS = ("file", "bytes", "sha256")


def file_record(path: Path, root: Path) -> dict:
    """A product's row in an index or inventory: ``file`` relative to ``root`` (POSIX),
    ``bytes`` and ``sha256``."""
    return {"file": path.relative_to(root).as_posix(), "bytes": path.stat().st_size,
            "sha256": file_sha256(path)}  # fmt: skip


def write_folder_index(folder: str | Path, out_tsv: str | Path) -> None:
    """A folder's index: one row per file (``file`` relative to the folder, ``bytes``,
    ``sha256``). A job that writes a folder of per-radiograph files (a subject's
    registration/, dataset/) writes its index last, and the rules downstream depend on
    the index: Snakemake compares a small file's checksum but only a folder's time, so a
    rerun that writes the same bytes then rebuilds nothing downstream."""
    folder = Path(folder)
    write_index([file_record(f, folder) for f in folder_files(folder)], out_tsv)


def write_index(rows: list[dict], out_tsv: str | Path) -> None:
    """Rows of :func:`file_record` as a TSV (:data:`INDEX_COLUMNS`), in their order."""
    lines = ["\t".join(INDEX_COLUMNS)] + ["\t".join(str(r[c]) for c in INDEX_COLUMNS) for r in rows]
    write_text(out_tsv, "\n".join(lines) + "\n")
