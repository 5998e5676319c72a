# The training pairs (per radiograph), the cohort's dataset tables and folds, and the
# dataset audit's figures.


# One job per subject: the DRRs and pairs of each of its radiographs, the CT's volumes read
# once; dataset/{image}/projection.npz, pair.npz and pair.json in the subject's folder,
# and its index dataset_index.tsv (what the rules downstream depend on).
rule project:
    input:
        unpack(subject_radiograph_inputs),
        density="results/subjects/{subject}/ct/density_mg_cm3.nii.gz",
        labels="results/subjects/{subject}/ct/labels.nii.gz",
        region="results/subjects/{subject}/ct/pf_region.nii.gz",
        mineral="results/subjects/{subject}/ct/pf_mineral_mg_cm3.nii.gz",
        landmarks="results/subjects/{subject}/ct/landmarks.json",
        registration="results/subjects/{subject}/registration_index.tsv",
    output:
        pairs=directory("results/subjects/{subject}/dataset"),
        index="results/subjects/{subject}/dataset_index.tsv",
    params:
        code=source_hash("dataset"),
        side=target_side,
        images=lambda wc: IMAGES[wc.subject],
        poses=radiograph_poses,
        registration=lambda wc: f"{subject_dir(wc.subject)}/registration",
        shape=",".join(map(str, DATASET["pair_shape"])),
    conda:
        "../envs/dataset.yaml"
    log:
        "logs/project/{subject}.log",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=lambda wc: 5 * len(IMAGES[wc.subject]),
        gpu=DRR_GPUS,
    shell:
        "python -m dataset project --subject {wildcards.subject} --image {params.images:q}"
        f" {DRR_DEVICE}"
        " --pose {params.poses:q} --side {params.side} --density {input.density}"
        " --labels {input.labels} --pf-region {input.region} --pf-mineral {input.mineral}"
        " --landmarks {input.landmarks} --xray {input.xrays} --geometry {input.geometries}"
        " --registration {params.registration} --pair-shape {params.shape}"
        " --out-dir {output.pairs} --out-index {output.index} > {log} 2>&1"


rule dataset_tables:
    input:
        subjects=MANIFEST_SUBJECTS,
        datasets=expand("results/subjects/{subject}/dataset_index.tsv", subject=SUBJECTS),
        ct_bmd=expand("results/subjects/{subject}/ct/ct_bmd.json", subject=SUBJECTS),
    output:
        a="results/cohort/dataset_A.tsv",
        b="results/cohort/dataset_B.tsv",
        excluded="results/cohort/excluded.tsv",
    params:
        code=source_hash("dataset"),
        records=[f"results/subjects/{s}/dataset/{i}/pair.json" for s, i in radiograph_pairs()],
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
        "python -m dataset tables --subjects {input.subjects:q} --records {params.records}"
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
        unpack(subject_radiograph_inputs),
        ct="results/subjects/{subject}/ct/ct_hu.nii.gz",
        labels="results/subjects/{subject}/ct/labels.nii.gz",
        registration="results/subjects/{subject}/registration_index.tsv",
        dataset="results/subjects/{subject}/dataset_index.tsv",
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
        pelvis=lambda wc: subject_radiograph_files(wc, "registration/{image}/pose_pelvis.json"),
        femur=lambda wc: subject_radiograph_files(wc, "registration/{image}/pose_femur.json"),
        records=lambda wc: subject_radiograph_files(wc, "dataset/{image}/pair.json"),
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
        " --poses-pelvis {params.pelvis} --poses-femur {params.femur}"
        " --records {params.records} --out-registration {output.registration}"
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
