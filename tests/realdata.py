"""The real CT the tests measure against (TotalSegmentator's example, from PyPI).

Offline, a test that needs it is skipped; in CI (``CI=true``), which can reach the
package index, its absence is a failure: a skip there would hide that the real-CT checks
stopped running.
"""

from __future__ import annotations

import os

import pytest

from cohort.example_data import totalsegmentator_example, totalsegmentator_example_in_lps


def _unavailable(e: Exception):
    reason = f"TotalSegmentator's example CT cannot be had: {e}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the package index must be reachable)")
    pytest.skip(f"{reason} (offline?)")


def real_ct_paths() -> dict:
    """The example CT's and labels' paths (downloaded once), or skip / fail."""
    try:
        return totalsegmentator_example()
    except RuntimeError as e:
        _unavailable(e)


def real_ct_in_lps():
    """The example CT and its bone labels in LPS storage order, or skip / fail."""
    try:
        return totalsegmentator_example_in_lps()
    except RuntimeError as e:
        _unavailable(e)
