# The training pairs (per radiograph), the cohort's dataset tables and folds, and the
# dataset audit's figures.


rule project:
    input:
        density="results/subjects/{subject}/ct/density_mg_cm3.nii.gz",
        labels="results/subjects/{subject}/ct/labels.nii.gz",
        region="results/subjects/{subject}/ct/pf_region.nii.gz",
        mineral="results/subjects/{subject}/ct/pf_mineral_mg_cm3.nii.gz",
        landmarks="results/subjects/{subject}/ct/landmarks.json",
        image="results/subjects/{subject}/radiographs/{image}/radiograph.mha",
        geometry="results/subjects/{subject}/radiographs/{image}/geometry.json",
        pelvis="results/subjects/{subject}/registration/{image}/pose_pelvis.json",
        femur="results/subjects/{subject}/registration/{image}/pose_femur.json",
    output:
        projection="results/subjects/{subject}/dataset/{image}/projection.npz",
        pair="results/subjects/{subject}/dataset/{image}/pair.npz",
        record="results/subjects/{subject}/dataset/{image}/pair.json",
    params:
        code=source_hash("dataset"),
        side=target_side,
        pose=lambda wc: radiograph_row(wc)["pose"],
        shape=",".join(map(str, DATASET["pair_shape"])),
    conda:
        "../envs/dataset.yaml"
    log:
        "logs/project/{subject}/{image}.log",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=5,
        gpu=DRR_GPUS,
    shell:
        "python -m dataset project --subject {wildcards.subject} --image {wildcards.image}"
        f" {DRR_DEVICE}"
        " --pose {params.pose:q} --side {params.side} --density {input.density}"
        " --labels {input.labels} --pf-region {input.region} --pf-mineral {input.mineral}"
        " --landmarks {input.landmarks} --xray {input.image} --geometry {input.geometry}"
        " --pose-pelvis {input.pelvis} --pose-femur {input.femur}"
        " --pair-shape {params.shape} --out-projection {output.projection}"
        " --out-pair {output.pair} --out-record {output.record} > {log} 2>&1"


rule dataset_tables:
    input:
        subjects=MANIFEST_SUBJECTS,
        records=[f"results/subjects/{s}/dataset/{i}/pair.json" for s, i in radiograph_pairs()],
        ct_bmd=expand("results/subjects/{subject}/ct/ct_bmd.json", subject=SUBJECTS),
    output:
        a="results/cohort/dataset_A.tsv",
        b="results/cohort/dataset_B.tsv",
        excluded="results/cohort/excluded.tsv",
    params:
        code=source_hash("dataset"),
        keep_suspect="--keep-suspect" if config["dataset"]["keep_suspect_registrations"] else "",
    conda:
        "../envs/dataset.yaml"
    log:
        "logs/dataset_tables.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m dataset tables --subjects {input.subjects:q} --records {input.records}"
        " --ct-bmd {input.ct_bmd} --out-a {output.a} --out-b {output.b}"
        " --out-excluded {output.excluded} {params.keep_suspect} > {log} 2>&1"


rule folds:
    input:
        "results/cohort/dataset_B.tsv",
    output:
        "results/cohort/folds.json",
    params:
        code=source_hash("dataset"),
        k=DATASET["folds"],
        seed=DATASET["seed"],
    conda:
        "../envs/dataset.yaml"
    log:
        "logs/folds.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m dataset folds --table {input} --k {params.k} --seed {params.seed}"
        " --out {output} > {log} 2>&1"


# One QC job per subject, not per radiograph: the registration overlays and the pairs of
# all its radiographs, the CT read once (a cohort's DAG and queue stay small).
rule radiograph_qc:
    input:
        ct="results/subjects/{subject}/ct/ct_hu.nii.gz",
        labels="results/subjects/{subject}/ct/labels.nii.gz",
        xrays=lambda wc: subject_radiograph_files(wc, "radiographs/{image}/radiograph.mha"),
        geometries=lambda wc: subject_radiograph_files(wc, "radiographs/{image}/geometry.json"),
        pelvis=lambda wc: subject_radiograph_files(wc, "registration/{image}/pose_pelvis.json"),
        femur=lambda wc: subject_radiograph_files(wc, "registration/{image}/pose_femur.json"),
        records=lambda wc: subject_radiograph_files(wc, "dataset/{image}/pair.json"),
    output:
        registration=report(
            "results/subjects/{subject}/qc/registration.png",
            caption="../report/registration_qc.rst",
            category="Registration",
            subcategory="{subject}",
            labels={"subject": "{subject}", "figure": "registration"},
        ),
        pairs=report(
            "results/subjects/{subject}/qc/pairs.png",
            caption="../report/pairs_qc.rst",
            category="Training pairs",
            subcategory="{subject}",
            labels={"subject": "{subject}", "figure": "pairs"},
        ),
    params:
        code=source_hash("qc"),
        side=target_side,
        images=lambda wc: IMAGES[wc.subject],
    conda:
        "../envs/qc.yaml"
    log:
        "logs/radiograph_qc/{subject}.log",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    shell:
        "python -m qc radiographs --subject {wildcards.subject} --side {params.side}"
        " --ct {input.ct} --labels {input.labels} --images {params.images:q}"
        " --xrays {input.xrays} --geometries {input.geometries}"
        " --poses-pelvis {input.pelvis} --poses-femur {input.femur}"
        " --records {input.records} --out-registration {output.registration}"
        " --out-pairs {output.pairs} > {log} 2>&1"


rule dataset_audit:
    input:
        a="results/cohort/dataset_A.tsv",
        b="results/cohort/dataset_B.tsv",
        excluded="results/cohort/excluded.tsv",
        folds="results/cohort/folds.json",
    output:
        scatter=report(
            "results/cohort/audit/pf_drr_vs_bmd.png",
            caption="../report/pf_drr_vs_bmd.rst",
            category="Dataset audit",
            labels={"figure": "PF-DRR mean vs BMD"},
        ),
        summary=report(
            "results/cohort/audit/summary.html",
            caption="../report/dataset_summary.rst",
            category="Dataset audit",
            labels={"figure": "cohort, exclusions and folds"},
        ),
        checks="results/cohort/audit/checks.json",
    params:
        code=source_hash("qc"),
    conda:
        "../envs/qc.yaml"
    log:
        "logs/dataset_audit.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m qc dataset --dataset-a {input.a} --dataset-b {input.b}"
        " --excluded {input.excluded} --folds {input.folds} --out-scatter {output.scatter}"
        " --out-summary {output.summary} --out-checks {output.checks} > {log} 2>&1"
