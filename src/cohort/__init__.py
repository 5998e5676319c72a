"""The cohort: the user's manifest (subjects.tsv, radiographs.tsv), its validation,
the import of each CT and radiograph into the pipeline's canonical form, and the
dataset fingerprint (nnU-Net style) that later stages plan from."""
