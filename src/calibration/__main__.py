"""``python -m calibration``: calibrate one CT to mg/cm³ hydroxyapatite with its phantom."""

from __future__ import annotations

import argparse
import sys

from calibration.fit import calibrate_to_ha_density, calibrate_with_rods
from calibration.rods import find_rods
from conventions.ct import read_ct, write_volume
from conventions.errors import InputError
from conventions.files import write_json
from conventions.units import BMAS200_ROD_DENSITIES_MG_CM3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m calibration", description=__doc__)
    ap.add_argument("--subject", required=True)
    ap.add_argument("--ct", required=True, help="the imported CT (HU)")
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
    ap.add_argument("--out-density", required=True)
    ap.add_argument("--out-json", required=True)
    a = ap.parse_args(argv)
    try:
        densities = [float(v) for v in a.rods.split(",")]
        ct = read_ct(a.ct)
        rods = find_rods(ct, len(densities)) if a.phantom == "present" else []
        if rods:
            record = calibrate_with_rods(rods, densities)
        else:
            why = (
                f"no row of {len(densities)} calibration rods found"
                if a.phantom == "present"
                else "the manifest says no phantom"
            )
            if a.scanner_line is None:
                raise InputError(
                    a.ct,
                    f"cannot calibrate: {why}, and the config gives no calibration line "
                    "for this scanner (calibration.scanners)",
                    subject=a.subject,
                )
            slope, intercept = (float(v) for v in a.scanner_line.split(","))
            record = {
                "method": "scanner",
                "slope_hu_per_mg_cm3": slope,
                "intercept_hu": intercept,
                "fallback_reason": why,
            }
        record = {"subject_id": a.subject, **record}
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    density = calibrate_to_ha_density(ct, record["slope_hu_per_mg_cm3"], record["intercept_hu"])
    write_volume(a.out_density, density)
    write_json(a.out_json, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
