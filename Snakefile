# BMD from hip radiographs by CT-based X-ray decomposition (Gu et al., MedIA 2023):
# dataset preparation and models. Thin by design: logic lives in src/ packages,
# rules in rules/*.smk call their CLIs.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/phantom.smk"
include: "rules/cohort.smk"
include: "rules/calibration.smk"
include: "rules/segmentation.smk"
include: "rules/anatomy.smk"
include: "rules/registration.smk"
include: "rules/dataset.smk"
include: "rules/models.smk"
include: "rules/evaluation.smk"
include: "rules/robustness.smk"


rule all:
    input:
        all_products(),
    default_target: True
