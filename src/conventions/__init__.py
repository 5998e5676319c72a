"""The project's shared conventions, implemented once (see docs/conventions.md).

Every stage imports geometry, poses, units, labels and image I/O from here instead
of re-deriving them:

- :mod:`conventions.units`      unit constants (mg/cm³ × mm → g/cm²)
- :mod:`conventions.geometry`   the projection geometry (``geometry.json``)
- :mod:`conventions.pose`       rigid poses (``pose.json``) and 3D → pixel projection
- :mod:`conventions.ct`         CT volumes in LPS (DICOM series, NIfTI, MHA)
- :mod:`conventions.radiograph` radiographs (DICOM, MHA, PNG) with their geometry
- :mod:`conventions.landmarks`  3D Slicer landmark files
- :mod:`conventions.labels`     bone label values shared by segmentation and DRRs
- :mod:`conventions.files`      atomic writes of JSON and images
- :mod:`conventions.similarity` gradient correlation: registration's similarity and the
                                models' GC loss
- :mod:`conventions.pairs`      the pair frame: a radiograph's hip side mirrored, resized
                                and cropped (the dataset writes pairs, the models read
                                them and map predictions back)

Stage packages import only this floor and :mod:`drr` (the projector every stage may
call), never each other; ``tests/test_architecture.py`` holds the few exceptions.
"""

from conventions.errors import InputError

__all__ = ["InputError"]
