"""Implants a femur's BMD cannot be measured around.

Segmentation finds metal, says which bone each large object lies in or next to, and
leaves it out of the labels (segmentation.metal). A femur that holds an implant (a hip
replacement's stem and head, a nail, screws) has no bone where the metal is, and the
bone beside it is remodelled by the load it carries and blurred by its streaks: no BMD
of that femur is a measurement of the patient's bone. Its side is excluded with the
reason; a subject whose target femur holds one is refused.
"""

from __future__ import annotations

from conventions.labels import BONE_LABELS, femur_label

# Metal below this is taken for a clip or a scanner artefact, not an implant.
MIN_IMPLANT_CM3 = 1.0


def femur_implant(segmentation: dict, side: str) -> str | None:
    """Why the ``side`` femur's BMD cannot be measured (its implant), or None."""
    metal = segmentation.get("metal") or {}
    if not metal.get("present"):
        return None
    name = next(k for k, v in BONE_LABELS.items() if v == femur_label(side))
    objects = metal.get("objects") or [metal]
    found = [o for o in objects if o.get("bone") == name and o.get("relation") in ("in", "next to")
             and float(o.get("volume_cm3", 0.0)) >= MIN_IMPLANT_CM3]  # fmt: skip
    if not found:
        return None
    volume = sum(float(o["volume_cm3"]) for o in found)
    where = " and ".join(sorted({o["relation"] for o in found}))
    return (f"metal {where} the {name.replace('_', ' ')} ({volume:.1f} cm³: an implant such "
            "as a hip replacement or a nail); its BMD cannot be measured")  # fmt: skip
