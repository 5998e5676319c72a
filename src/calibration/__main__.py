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

import SimpleITK as sitk

from calibration.fit import calibrate_to_ha_density, calibrate_with_rods
from calibration.internal import FAT_MG_CM3, MUSCLE_MG_CM3, internal_calibration
from calibration.rods import find_rods
from conventions.ct import read_ct, write_volume
from conventions.errors import InputError
from conventions.files import write_json
from conventions.units import BMAS200_ROD_DENSITIES_MG_CM3

METHODS = ("auto", "phantom", "scanner", "internal")
NO_SCANNER_LINE = "the config gives no calibration line for this scanner (calibration.scanners)"


def calibrate(ct: sitk.Image, a: argparse.Namespace) -> dict:
    """The calibration record of the first method that works, in the order of
    ``--method``; raises InputError saying why each one tried failed."""
    failed: list[str] = []
    if a.method in ("auto", "phantom"):
        densities = [float(v) for v in a.rods.split(",")]
        if a.phantom == "absent":
            failed.append("the manifest says no phantom")
        else:
            rods = find_rods(ct, len(densities))
            if rods:
                return {**calibrate_with_rods(rods, densities), "fallback_reason": None}
            failed.append(f"no row of {len(densities)} calibration rods found")
    if a.method in ("auto", "scanner"):
        if a.scanner_line is not None:
            slope, intercept = (float(v) for v in a.scanner_line.split(","))
            return {
                "method": "scanner",
                "slope_hu_per_mg_cm3": slope,
                "intercept_hu": intercept,
                "fallback_reason": "; ".join(failed) or None,
            }
        failed.append(NO_SCANNER_LINE)
    if a.method in ("auto", "internal"):
        try:
            record = internal_calibration(ct, a.fat_mg_cm3, a.muscle_mg_cm3)
            return {**record, "fallback_reason": "; ".join(failed) or None}
        except InputError as e:
            failed.append(f"no internal calibration: {e.problem}")
    raise InputError(a.ct, "cannot calibrate: " + "; ".join(failed))


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
    try:
        ct = read_ct(a.ct)
        record = {"subject_id": a.subject, "method_requested": a.method, **calibrate(ct, a)}
    except InputError as e:
        print(f"error: {e.for_subject(a.subject)}", file=sys.stderr)
        return 2
    density = calibrate_to_ha_density(ct, record["slope_hu_per_mg_cm3"], record["intercept_hu"])
    write_volume(a.out_density, density)
    write_json(a.out_json, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
