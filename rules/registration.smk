# 2D-3D registration, one job per subject: each of its radiographs in turn (pelvis, then
# the target-side femur) in one process, the CT read and its bodies built once. The poses
# land in the subject's registration folder as registration/{image}/pose_{body}.json
# (conventions.pose.pose_path), and its index registration_index.tsv (each file's SHA-256),
# on which the rules downstream depend (conventions.files.write_folder_index); the overlays for the report are drawn per subject with the
# pairs (rule radiograph_qc, dataset.smk).


if REGISTRATION["poses"] == "true":

    # The phantom's true poses in the search's place (registration.poses: true).
    rule true_poses:
        input:
            views=lambda wc: [
                f"{SYNTHETIC_DIR}/{wc.subject}/truth/radiographs/{i}.json" for i in IMAGES[wc.subject]
            ],
        output:
            poses=directory("results/subjects/{subject}/registration"),
            index="results/subjects/{subject}/registration_index.tsv",
        params:
            code=source_hash("phantom", "drr"),
            side=target_side,
        conda:
            "../envs/phantom.yaml"
        log:
            "logs/true_poses/{subject}.log",
        localrule: True
        threads: 1
        resources:
            mem_mb=500,
            runtime=2,
        shell:
            "python -m phantom true-poses --view {input.views} --side {params.side}"
            " --out-dir {output.poses} --out-index {output.index} > {log} 2>&1"

else:

    rule register:
        input:
            unpack(registration_inputs),
        output:
            poses=directory("results/subjects/{subject}/registration"),
            index="results/subjects/{subject}/registration_index.tsv",
        params:
            code=source_hash("registration", "drr"),
            side=target_side,
            images=lambda wc: IMAGES[wc.subject],
            init=init_arguments,
            status=status_arguments,
        conda:
            "../envs/registration.yaml"
        log:
            "logs/register/{subject}.log",
        # One thread: on two cores, two one-thread registrations finish in 17 s where two of
        # two threads take 27 s in turn (docs/performance.md). For one subject's latency:
        # --set-threads register=N.
        threads: 1
        resources:
            mem_mb=3000,
            runtime=lambda wc: 15 * len(IMAGES[wc.subject]),
            gpu=DRR_GPUS,
        shell:
            "python -m registration hip --subject {wildcards.subject} --image {params.images:q}"
            f" {DRR_DEVICE}"
            " --ct {input.ct} --bone-labels {input.labels} --landmarks {input.landmarks}"
            " --xray {input.xrays} --geometry {input.geometries} --side {params.side}"
            " {params.init} {params.status} --out-dir {output.poses} --out-index {output.index}"
            " > {log} 2>&1"
