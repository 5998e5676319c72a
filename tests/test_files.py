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
