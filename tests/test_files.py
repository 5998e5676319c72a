"""Atomic writes: a failed write leaves neither a product nor a temporary file."""

from __future__ import annotations

import json

import pytest

from conventions.files import atomic_path, write_json


def test_failed_write_leaves_nothing_and_keeps_the_old_product(tmp_path):
    target = tmp_path / "out" / "volume.nii.gz"
    write_json(tmp_path / "out" / "keep.json", {"a": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.name.endswith(".nii.gz") and tmp.parent == target.parent
        tmp.write_bytes(b"half a volume")
        raise RuntimeError("killed mid-write")
    assert not target.exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["keep.json"]
    # Overwriting an existing product replaces it whole.
    write_json(tmp_path / "out" / "keep.json", {"a": 2})
    assert json.loads((tmp_path / "out" / "keep.json").read_text()) == {"a": 2}


def test_products_get_ordinary_permissions(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        write_json(tmp_path / "p.json", {})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "p.json").stat().st_mode) == 0o644


def test_every_product_is_written_through_a_temporary_name():
    """Crash safety, by reading the code: each call that writes a file in src/ writes to a
    temporary name that ``atomic_path`` renames on success, or into memory (a BytesIO),
    so a killed job never leaves a file that looks complete. A new raw write fails this."""
    import ast

    from conftest import REPO

    writers = {"savefig", "WriteImage", "write_text", "write_bytes", "dcmwrite", "save_as",
               "savez", "savez_compressed", "save", "to_csv", "imwrite", "to_parquet"}  # fmt: skip
    # Writes allowed outside atomic_path, and why.
    allowed = {
        # a DICOM series: written into a hidden .part folder that is renamed whole
        ("conventions/ct.py", "dcmwrite"),
    }
    problems = []
    for f in sorted((REPO / "src").rglob("*.py")):
        rel = str(f.relative_to(REPO / "src"))
        tree = ast.parse(f.read_text())
        safe: set[str] = set()
        for node in ast.walk(tree):  # names bound to temporary paths or to memory
            if isinstance(node, ast.With):
                for item in node.items:
                    call = item.context_expr
                    if (isinstance(call, ast.Call) and getattr(call.func, "id", getattr(
                            call.func, "attr", "")) == "atomic_path"
                            and isinstance(item.optional_vars, ast.Name)):  # fmt: skip
                        safe.add(item.optional_vars.id)
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "attr", "") == "BytesIO"
            ):
                safe |= {t.id for t in node.targets if isinstance(t, ast.Name)}

        def target_is_safe(expr, safe=safe) -> bool:
            if isinstance(expr, ast.Name):
                return expr.id in safe
            if isinstance(expr, ast.Call) and getattr(expr.func, "id", "") == "str":
                return bool(expr.args) and target_is_safe(expr.args[0])
            if isinstance(expr, ast.BinOp):  # tmp / "name"
                return target_is_safe(expr.left)
            return False

        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", None)
            if name == "write" or (name is None and getattr(node.func, "id", "") == "open"):
                mode = node.args[1] if len(node.args) > 1 else None
                if getattr(mode, "value", "r")[:1] in "wax":
                    problems.append(f"{rel}:{node.lineno} open() for writing")
                continue
            if name not in writers:
                continue
            if name in ("write_text", "write_bytes"):
                target = node.func.value
            elif name == "to_csv" and not node.args:
                continue  # returns the text
            else:  # sitk.WriteImage(image, path) and torch.save(obj, path) take it second
                second = name == "WriteImage" or getattr(node.func.value, "id", "") == "torch"
                target = node.args[int(second)] if len(node.args) > int(second) else None
            if target is None or target_is_safe(target) or (rel, name) in allowed:
                continue
            problems.append(f"{rel}:{node.lineno} {name}() writes to {ast.unparse(target)}")
    assert not problems, "\n".join(problems)


def test_a_folder_index_changes_exactly_when_a_files_bytes_do(tmp_path):
    """What the rules downstream of a per-subject folder depend on (registration/,
    dataset/): every file's SHA-256, relative and sorted, hidden files left out; the same
    bytes written again give the same index, one byte changed a different one."""
    import hashlib

    from conventions.files import write_folder_index

    folder = tmp_path / "registration"
    (folder / "supine").mkdir(parents=True)
    (folder / "ap").mkdir()
    (folder / "supine" / "pose_femur.json").write_bytes(b'{"gc": 0.5}\n')
    (folder / "ap" / "pose_pelvis.json").write_bytes(b"{}\n")
    (folder / ".snakemake_timestamp").write_bytes(b"")
    (folder / "ap" / ".pose_femur.json.x.part.json").write_bytes(b"{")  # a killed write
    write_folder_index(folder, tmp_path / "index.tsv")
    first = (tmp_path / "index.tsv").read_text()
    rows = [line.split("\t") for line in first.splitlines()]
    assert rows[0] == ["file", "bytes", "sha256"]
    assert [r[0] for r in rows[1:]] == ["ap/pose_pelvis.json", "supine/pose_femur.json"]
    assert rows[2][1:] == ["12", hashlib.sha256(b'{"gc": 0.5}\n').hexdigest()]
    (folder / "supine" / "pose_femur.json").write_bytes(b'{"gc": 0.5}\n')  # rewritten
    write_folder_index(folder, tmp_path / "index.tsv")
    assert (tmp_path / "index.tsv").read_text() == first
    (folder / "supine" / "pose_femur.json").write_bytes(b'{"gc": 0.6}\n')
    write_folder_index(folder, tmp_path / "index.tsv")
    assert (tmp_path / "index.tsv").read_text() != first
