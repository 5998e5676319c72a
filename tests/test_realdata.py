"""The real-CT tests' gate: skipped offline, failed in CI (tests/realdata.py)."""

from __future__ import annotations

import pytest
import realdata


def _no_download(*_, **__):
    raise RuntimeError("cannot download TotalSegmentator's sdist: no route to host")


@pytest.mark.parametrize("getter", ["real_ct_paths", "real_ct_in_lps"])
def test_a_missing_real_ct_skips_offline_and_fails_in_ci(monkeypatch, getter):
    monkeypatch.setattr(realdata, "totalsegmentator_example", _no_download)
    monkeypatch.setattr(realdata, "totalsegmentator_example_in_lps", _no_download)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no route to host"):
        getattr(realdata, getter)()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        getattr(realdata, getter)()
