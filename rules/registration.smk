# 2D-3D registration of each radiograph (pelvis, then the target-side femur); its overlay
# for the report is drawn per subject with the pairs (rule radiograph_qc, dataset.smk).


if REGISTRATION["poses"] == "true":

    # The phantom's true poses in the search's place (registration.poses: true).
    rule true_poses:
        input:
            view=f"{SYNTHETIC_DIR}/{{subject}}/truth/radiographs/{{image}}.json",
        output:
            pelvis="results/subjects/{subject}/registration/{image}/pose_pelvis.json",
            femur="results/subjects/{subject}/registration/{image}/pose_femur.json",
        params:
            code=source_hash("phantom", "drr"),
            side=target_side,
        conda:
            "../envs/phantom.yaml"
        log:
            "logs/true_poses/{subject}/{image}.log",
        localrule: True
        threads: 1
        resources:
            mem_mb=500,
            runtime=2,
        shell:
            "python -m phantom true-poses --view {input.view} --side {params.side}"
            " --out-pelvis {output.pelvis} --out-femur {output.femur} > {log} 2>&1"

else:

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
            gpu=DRR_GPUS,
        shell:
            "python -m registration hip --subject {wildcards.subject} --image {wildcards.image}"
            f" {DRR_DEVICE}"
            " --ct {input.ct} --bone-labels {input.labels} --landmarks {input.landmarks}"
            " --xray {input.image} --geometry {input.geometry} --side {params.side}"
            " {params.init} {params.status}"
            " --out-pelvis {output.pelvis} --out-femur {output.femur} > {log} 2>&1"
