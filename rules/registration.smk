# 2D-3D registration of each radiograph (pelvis, then the target-side femur) and its
# overlay for the report.


rule register:
    input:
        unpack(registration_inputs),
    output:
        pelvis="results/subjects/{subject}/registration/{image}/pose_pelvis.json",
        femur="results/subjects/{subject}/registration/{image}/pose_femur.json",
    params:
        code=source_hash("registration", "drr"),
        side=target_side,
        init=init_arguments,
        status=status_arguments,
    conda:
        "../envs/registration.yaml"
    log:
        "logs/register/{subject}/{image}.log",
    # One thread: on two cores, two one-thread registrations finish in 17 s where two of
    # two threads take 27 s in turn (docs/performance.md). For one subject's latency:
    # --set-threads register=N.
    threads: 1
    resources:
        mem_mb=3000,
        runtime=15,
    shell:
        "OMP_NUM_THREADS={threads} NUMBA_NUM_THREADS={threads}"
        " python -m registration hip --subject {wildcards.subject} --image {wildcards.image}"
        " --ct {input.ct} --bone-labels {input.labels} --landmarks {input.landmarks}"
        " --xray {input.image} --geometry {input.geometry} --side {params.side}"
        " {params.init} {params.status}"
        " --out-pelvis {output.pelvis} --out-femur {output.femur} > {log} 2>&1"


rule registration_qc:
    input:
        ct="results/subjects/{subject}/ct/ct_hu.nii.gz",
        labels="results/subjects/{subject}/ct/labels.nii.gz",
        image="results/subjects/{subject}/radiographs/{image}/radiograph.mha",
        geometry="results/subjects/{subject}/radiographs/{image}/geometry.json",
        pelvis="results/subjects/{subject}/registration/{image}/pose_pelvis.json",
        femur="results/subjects/{subject}/registration/{image}/pose_femur.json",
    output:
        report(
            "results/subjects/{subject}/qc/registration/{image}.png",
            caption="../report/registration_qc.rst",
            category="Registration",
            subcategory="{subject}",
            labels={"subject": "{subject}", "radiograph": "{image}"},
        ),
    params:
        code=source_hash("qc", "registration", "drr"),
        side=target_side,
    conda:
        "../envs/qc.yaml"
    log:
        "logs/registration_qc/{subject}/{image}.log",
    resources:
        mem_mb=3000,
        runtime=5,
    shell:
        "python -m qc registration --subject {wildcards.subject} --image {wildcards.image}"
        " --xray {input.image} --geometry {input.geometry} --ct {input.ct}"
        " --labels {input.labels} --side {params.side} --pose-pelvis {input.pelvis}"
        " --pose-femur {input.femur} --out {output} > {log} 2>&1"
