"""CT calibration: HU to hydroxyapatite-equivalent density (mg/cm³).

- :mod:`calibration.rods`  find a calibration phantom's rods under the patient and
                           measure their HU robustly
- :mod:`calibration.fit`   the linear HU → density fit and the calibrated volume
"""
