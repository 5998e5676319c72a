"""CT calibration: HU to hydroxyapatite-equivalent density (mg/cm³).

- :mod:`calibration.rods`  find a calibration phantom's rods under the patient and
                           measure their HU robustly
- :mod:`calibration.fit`   the linear HU → density fit and the calibrated volume
- :mod:`calibration.internal`  phantom-less calibration from the subject's own fat and
                           muscle, with air as the check that the CT is in HU
"""
