# The built-in synthetic cohort (only when config.cohort.subjects is empty).


rule synthetic_subject:
    output:
        ct=synthetic_ct_output(),
        truth=f"{SYNTHETIC_DIR}/{{subject}}/truth/truth.json",
        density=f"{SYNTHETIC_DIR}/{{subject}}/truth/density_mg_cm3.nii.gz",
        labels=f"{SYNTHETIC_DIR}/{{subject}}/truth/labels.nii.gz",
        pf_region=f"{SYNTHETIC_DIR}/{{subject}}/truth/pf_region.nii.gz",
        radiographs=[f"{SYNTHETIC_DIR}/{{subject}}/radiographs/{p}.dcm" for p in SYNTHETIC_POSES],
        views=[f"{SYNTHETIC_DIR}/{{subject}}/truth/radiographs/{p}.json" for p in SYNTHETIC_POSES],
    params:
        code=source_hash("phantom"),
        seed=config["synthetic"]["seed"],
        poses=" ".join(SYNTHETIC_POSES),
        ct_format=config["synthetic"]["ct_format"],
        voxel_mm=" ".join(map(str, np.atleast_1d(config["synthetic"]["voxel_mm"]))),
        out_dir=lambda wc: f"{SYNTHETIC_DIR}/{wc.subject}",
    conda:
        "../envs/phantom.yaml"
    log:
        "logs/synthetic_subject/{subject}.log",
    threads: 1
    resources:
        mem_mb=3500,  # 2.4 GB measured at 1 × 1 × 2 mm
        runtime=20,
    shell:
        "python -m phantom subject --subject {wildcards.subject} --seed {params.seed}"
        " --voxel-mm {params.voxel_mm} --out-dir {params.out_dir} --poses {params.poses}"
        " --ct-format {params.ct_format}"
        " > {log} 2>&1"


rule synthetic_manifest:
    input:
        truth=expand(f"{SYNTHETIC_DIR}/{{subject}}/truth/truth.json", subject=SUBJECTS),
    output:
        subjects=f"{SYNTHETIC_DIR}/subjects.tsv",
        radiographs=f"{SYNTHETIC_DIR}/radiographs.tsv",
    params:
        code=source_hash("phantom"),
    conda:
        "../envs/phantom.yaml"
    log:
        "logs/synthetic_manifest.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m phantom manifest --truth {input.truth} --out-subjects {output.subjects}"
        " --out-radiographs {output.radiographs} > {log} 2>&1"
