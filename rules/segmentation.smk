# Bone labels (hip bones, femurs, sacrum) on the CT grid: the user's masks from the
# manifest when given, else the configured method (weight-free threshold by default).


rule segment:
    input:
        unpack(segmentation_inputs),
    output:
        labels="results/subjects/{subject}/ct/labels.nii.gz",
        record="results/subjects/{subject}/ct/segmentation.json",
    params:
        code=source_hash("segmentation"),
        masks=masks_argument,
        method=segmentation_method,
    conda:
        "../envs/segmentation.yaml"
    log:
        "logs/segment/{subject}.log",
    threads: 1
    resources:
        mem_mb=6000,
        runtime=20,
    shell:
        "python -m segmentation --subject {wildcards.subject} --density {input.density}"
        " --ct {input.ct} --method {params.method} {params.masks}"
        " --out-labels {output.labels} --out-json {output.record} > {log} 2>&1"
