"""``python -m calibration``: calibrate one CT to mg/cm³ hydroxyapatite.

With ``--method auto`` (the default) the methods are tried in this order: the phantom's
rods, when the manifest says a phantom is present and its rods are found; else the
scanner's own line from the config (``--scanner-line``), when given, as the user's
explicit choice; else internal calibration from the subject's fat and muscle. A CT none
of them can calibrate is an error (exit status 2) saying why each failed: no subject
ever gets an uncalibrated volume. ``calibration.json`` records the method used and why
the ones before it were passed over (``fallback_reason``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import SimpleITK as sitk

from calibration.fit import calibrate_to_ha_density, calibrate_with_rods, fit_problems
from calibration.internal import FAT_MG_CM3, MUSCLE_MG_CM3, internal_calibration
from calibration.rods import find_rods
from conventions.ct import read_ct, write_volume
from conventions.errors import InputError, run_cli
from conventions.files import write_json
from conventions.units import BMAS200_ROD_DENSITIES_MG_CM3

METHODS = ("auto", "phantom", "scanner", "internal")
NO_SCANNER_LINE = "the config gives no calibration line for this scanner (calibration.scanners)"


def calibrate(
    ct: sitk.Image,
    ct_path: str | Path,
    method: str = "auto",
    rod_densities_mg_cm3=BMAS200_ROD_DENSITIES_MG_CM3,
    phantom_present: bool = True,
    scanner_line: tuple[float, float] | None = None,
    fat_mg_cm3: float = FAT_MG_CM3,
    muscle_mg_cm3: float = MUSCLE_MG_CM3,
) -> dict:
    """The calibration record of the first method that works, in the order of
    ``method`` ("auto": the phantom, else the scanner's line (slope, intercept) from the
    config, else the subject's own fat and muscle; or only the one named); raises
    InputError naming ``ct_path`` and saying why each method tried failed. A phantom fit
    that fails its quality gate (:func:`calibration.fit.fit_problems`) falls back like an
    absent phantom, the reason recorded."""
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}: one of {METHODS}")
    failed: list[str] = []
    if method in ("auto", "phantom"):
        densities = [float(v) for v in rod_densities_mg_cm3]
        if not phantom_present:
            failed.append("the manifest says no phantom")
        else:
            rods = find_rods(ct, len(densities))
            if not rods:
                failed.append(f"no row of {len(densities)} calibration rods found")
            else:
                fit = calibrate_with_rods(rods, densities)
                problems = fit_problems(fit)
                if not problems:
                    return {**fit, "fallback_reason": None}
                failed.append("the phantom fit fails its quality gate: " + "; ".join(problems))
    if method in ("auto", "scanner"):
        if scanner_line is not None:
            slope, intercept = (float(v) for v in scanner_line)
            return {
                "method": "scanner",
                "slope_hu_per_mg_cm3": slope,
                "intercept_hu": intercept,
                "fallback_reason": "; ".join(failed) or None,
            }
        failed.append(NO_SCANNER_LINE)
    if method in ("auto", "internal"):
        try:
            record = internal_calibration(ct, fat_mg_cm3, muscle_mg_cm3)
            return {**record, "fallback_reason": "; ".join(failed) or None}
        except InputError as e:
            failed.append(f"no internal calibration: {e.problem}")
    raise InputError(ct_path, "cannot calibrate: " + "; ".join(failed))


def _numbers(text: str, option: str, count: int | None = None) -> list[float]:
    """Comma-separated numbers of a command-line option."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(None, f"{option} must be comma-separated numbers, got {text!r}") from None
    if count is not None and len(values) != count:
        raise InputError(None, f"{option} takes {count} numbers, got {text!r}")
    return values


def calibration_command(a: argparse.Namespace) -> int:
    """Read the CT, calibrate it, write its density and the record."""
    ct = read_ct(a.ct)
    line = None if a.scanner_line is None else _numbers(a.scanner_line, "--scanner-line", 2)
    found = calibrate(
        ct, a.ct, a.method, _numbers(a.rods, "--rods"), a.phantom == "present", line,
        a.fat_mg_cm3, a.muscle_mg_cm3,
    )  # fmt: skip
    record = {"subject_id": a.subject, "method_requested": a.method, **found}
    density = calibrate_to_ha_density(ct, record["slope_hu_per_mg_cm3"], record["intercept_hu"])
    write_volume(a.out_density, density)
    write_json(a.out_json, record)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m calibration",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--subject", required=True)
    ap.add_argument("--ct", required=True, help="the imported CT (HU)")
    ap.add_argument(
        "--method",
        choices=METHODS,
        default="auto",
        help="auto: phantom, else the scanner line, else internal (default); or only one",
    )
    ap.add_argument(
        "--rods",
        default=",".join(f"{d:g}" for d in BMAS200_ROD_DENSITIES_MG_CM3),
        help="rod densities in mg/cm³, comma-separated",
    )
    ap.add_argument(
        "--phantom",
        choices=["present", "absent"],
        default="present",
        help="whether the manifest says a phantom is in the field of view",
    )
    ap.add_argument(
        "--scanner-line",
        default=None,
        metavar="SLOPE,INTERCEPT",
        help="the scanner's own HU = intercept + slope·ρ line (config), used when "
        "there is no phantom or it is not found",
    )
    ap.add_argument(
        "--fat-mg-cm3",
        type=float,
        default=FAT_MG_CM3,
        help="fat's HA-equivalent density for internal calibration (depends on kVp)",
    )
    ap.add_argument(
        "--muscle-mg-cm3",
        type=float,
        default=MUSCLE_MG_CM3,
        help="skeletal muscle's HA-equivalent density for internal calibration",
    )
    ap.add_argument("--out-density", required=True)
    ap.add_argument("--out-json", required=True)
    a = ap.parse_args(argv)
    return run_cli(lambda: calibration_command(a), a.subject)


if __name__ == "__main__":
    sys.exit(main())
