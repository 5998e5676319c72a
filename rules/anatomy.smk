# Femoral landmarks, the proximal-femur region and the CT's own BMD (QCT-BMD, and areal
# BMD in the DXA view), then the per-subject CT quality-control montage.


rule landmarks:
    input:
        unpack(landmarks_inputs),
    output:
        "results/subjects/{subject}/ct/landmarks.json",
    params:
        code=source_hash("anatomy"),
        side=target_side,
        slicer=slicer_argument,
    conda:
        "../envs/anatomy.yaml"
    log:
        "logs/landmarks/{subject}.log",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    shell:
        "python -m anatomy landmarks --subject {wildcards.subject} --labels {input.labels}"
        " --segmentation {input.segmentation} --target-side {params.side} {params.slicer}"
        " --out {output} > {log} 2>&1"


rule ct_bmd:
    input:
        density="results/subjects/{subject}/ct/density_mg_cm3.nii.gz",
        labels="results/subjects/{subject}/ct/labels.nii.gz",
        landmarks="results/subjects/{subject}/ct/landmarks.json",
    output:
        record="results/subjects/{subject}/ct/ct_bmd.json",
        region="results/subjects/{subject}/ct/pf_region.nii.gz",
        drr="results/subjects/{subject}/ct/pf_areal_density_dxa_view.mha",
        mineral="results/subjects/{subject}/ct/pf_mineral_mg_cm3.nii.gz",
    params:
        code=source_hash("anatomy"),
        side=target_side,
    conda:
        "../envs/anatomy.yaml"
    log:
        "logs/ct_bmd/{subject}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    shell:
        "python -m anatomy ct-bmd --subject {wildcards.subject} --density {input.density}"
        " --labels {input.labels} --landmarks {input.landmarks} --side {params.side}"
        " --out-json {output.record} --out-region {output.region} --out-drr {output.drr}"
        " --out-mineral {output.mineral}"
        " > {log} 2>&1"


rule ct_qc:
    input:
        density="results/subjects/{subject}/ct/density_mg_cm3.nii.gz",
        calibration="results/subjects/{subject}/ct/calibration.json",
        labels="results/subjects/{subject}/ct/labels.nii.gz",
        segmentation="results/subjects/{subject}/ct/segmentation.json",
        landmarks="results/subjects/{subject}/ct/landmarks.json",
        record="results/subjects/{subject}/ct/ct_bmd.json",
        region="results/subjects/{subject}/ct/pf_region.nii.gz",
        drr="results/subjects/{subject}/ct/pf_areal_density_dxa_view.mha",
    output:
        report(
            "results/subjects/{subject}/qc/ct.png",
            caption="../report/ct_qc.rst",
            category="CT stages",
            subcategory="{subject}",
            labels={"subject": "{subject}", "figure": "CT QC"},
        ),
    params:
        code=source_hash("qc"),
    conda:
        "../envs/qc.yaml"
    log:
        "logs/ct_qc/{subject}.log",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=5,
    shell:
        "python -m qc ct --subject {wildcards.subject} --density {input.density}"
        " --calibration {input.calibration} --labels {input.labels}"
        " --segmentation {input.segmentation} --landmarks {input.landmarks}"
        " --ct-bmd {input.record} --region {input.region} --drr {input.drr}"
        " --out {output} > {log} 2>&1"
