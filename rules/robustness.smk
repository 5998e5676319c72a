# The robustness studies (Gu et al. 2023, Sec. 4.2.3-4.2.5), each switched by config
# `evaluation`:
# - compression: every test radiograph compressed (lower bit depth, JPEG), predicted by
#   the main experiment's models;
# - uncalibrated CT: the CT's density from a fixed HU line instead of the phantom, and
#   from it the decomposition targets (bone and PF-DRRs), the datasets and every
#   CT-trained model (experiment "uncalibrated_ct"; the BMD references stay the QCT's);
# - limited poses: models.smk's experiment "limited_poses".


rule compress_radiographs:
    input:
        table="results/cohort/dataset_B.tsv",
    output:
        images=directory("results/cohort/robustness/compression/{condition}"),
        index="results/cohort/robustness/compression/{condition}.tsv",
    params:
        code=source_hash("evaluation"),
    conda:
        "../envs/evaluation.yaml"
    log:
        "logs/compress_radiographs/{condition}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m evaluation compress --table {input.table} --condition {wildcards.condition}"
        " --out-dir {output.images} --out-index {output.index} > {log} 2>&1"


# One job for the main experiment's folds, in turn (one start-up of torch and timm).
rule predict_compressed:
    input:
        models=expand("results/models/main/fold{fold}/stage2/final.pt", fold=FOLDS),
        calibrations=expand("results/models/main/fold{fold}/calibration.json", fold=FOLDS),
        regressors=experiment_regressors,
        table="results/cohort/dataset_B.tsv",
        folds="results/cohort/folds.json",
        compressed=expand(
            "results/cohort/robustness/compression/{condition}.tsv", condition=COMPRESSION
        ),
    output:
        expand("results/models/main/fold{fold}/compression_predictions.tsv", fold=FOLDS),
    params:
        code=source_hash("models"),
        folds=FOLDS,
    conda:
        "../envs/models.yaml"
    log:
        "logs/predict_compressed.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30 * len(FOLDS),  # 30 min a fold, as when each fold was a job
    shell:
        "python -m models predict-compressed --fold {params.folds} --model {input.models}"
        " --calibration {input.calibrations} --regressors {input.regressors}"
        " --table {input.table} --folds {input.folds}"
        " --compressed {input.compressed} --out {output} > {log} 2>&1"


rule compression_study:
    input:
        expand("results/models/main/fold{fold}/compression_predictions.tsv", fold=FOLDS),
    output:
        predictions="results/cohort/robustness/compression_predictions.tsv",
        table="results/cohort/robustness/compression.tsv",
        figure=report(
            "results/cohort/robustness/compression.png",
            caption="../report/compression.rst",
            category="Robustness",
            labels={"figure": "compression"},
        ),
    params:
        code=source_hash("evaluation"),
    conda:
        "../envs/evaluation.yaml"
    log:
        "logs/compression_study.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m evaluation compression --predictions {input}"
        " --out-predictions {output.predictions} --out-table {output.table}"
        " --out-figure {output.figure} > {log} 2>&1"


# The uncalibrated CT: the same CT stages with the fixed line in place of the phantom
# (rules reused from calibration.smk, anatomy.smk and dataset.smk, products under
# ct/uncalibrated/, dataset_uncalibrated/ and results/cohort/uncalibrated_ct/).


use rule calibrate as calibrate_fixed_line with:
    output:
        density="results/subjects/{subject}/ct/uncalibrated/density_mg_cm3.nii.gz",
        calibration="results/subjects/{subject}/ct/uncalibrated/calibration.json",
    params:
        code=source_hash("calibration"),
        rods=",".join(str(d) for d in CALIBRATION["rod_densities_mg_cm3"]),
        phantom="absent",
        scanner_line=f"--scanner-line {UNCALIBRATED['slope_hu_per_mg_cm3']},"
        f"{UNCALIBRATED['intercept_hu']}",
        method="scanner",
        fat=CALIBRATION["internal"]["fat_mg_cm3"],
        muscle=CALIBRATION["internal"]["muscle_mg_cm3"],
    log:
        "logs/calibrate_fixed_line/{subject}.log",


use rule ct_bmd as ct_bmd_uncalibrated with:
    input:
        density="results/subjects/{subject}/ct/uncalibrated/density_mg_cm3.nii.gz",
        labels="results/subjects/{subject}/ct/labels.nii.gz",
        landmarks="results/subjects/{subject}/ct/landmarks.json",
    output:
        record="results/subjects/{subject}/ct/uncalibrated/ct_bmd.json",
        region="results/subjects/{subject}/ct/uncalibrated/pf_region.nii.gz",
        drr="results/subjects/{subject}/ct/uncalibrated/pf_areal_density_dxa_view.mha",
        mineral="results/subjects/{subject}/ct/uncalibrated/pf_mineral_mg_cm3.nii.gz",
    log:
        "logs/ct_bmd_uncalibrated/{subject}.log",


use rule project as project_uncalibrated with:
    input:
        unpack(subject_radiograph_inputs),
        density="results/subjects/{subject}/ct/uncalibrated/density_mg_cm3.nii.gz",
        labels="results/subjects/{subject}/ct/labels.nii.gz",
        region="results/subjects/{subject}/ct/uncalibrated/pf_region.nii.gz",
        mineral="results/subjects/{subject}/ct/uncalibrated/pf_mineral_mg_cm3.nii.gz",
        landmarks="results/subjects/{subject}/ct/landmarks.json",
        registration="results/subjects/{subject}/registration_index.tsv",
    output:
        pairs=directory("results/subjects/{subject}/dataset_uncalibrated"),
        index="results/subjects/{subject}/dataset_uncalibrated_index.tsv",
    log:
        "logs/project_uncalibrated/{subject}.log",


use rule dataset_tables as dataset_tables_uncalibrated with:
    input:
        subjects=MANIFEST_SUBJECTS,
        datasets=expand(
            "results/subjects/{subject}/dataset_uncalibrated_index.tsv", subject=SUBJECTS
        ),
        # the references are the QCT's: the calibrated CT's BMD, as in the paper
        ct_bmd=expand("results/subjects/{subject}/ct/ct_bmd.json", subject=SUBJECTS),
    output:
        a="results/cohort/uncalibrated_ct/dataset_A.tsv",
        b="results/cohort/uncalibrated_ct/dataset_B.tsv",
        excluded="results/cohort/uncalibrated_ct/excluded.tsv",
    params:
        code=source_hash("dataset"),
        records=[
            f"results/subjects/{s}/dataset_uncalibrated/{i}/pair.json"
            for s, i in radiograph_pairs()
        ],
        keep_suspect="--keep-suspect" if config["dataset"]["keep_suspect_registrations"] else "",
    log:
        "logs/dataset_tables_uncalibrated.log",
