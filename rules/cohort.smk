# Import every CT and radiograph into canonical, header-free files; fingerprint the cohort.


rule import_ct:
    input:
        ct=ct_source,
    output:
        volume="results/subjects/{subject}/ct/ct_hu.nii.gz",
        fingerprint="results/subjects/{subject}/ct/fingerprint.json",
    params:
        code=source_hash("cohort"),
    conda:
        "../envs/cohort.yaml"
    log:
        "logs/import_ct/{subject}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    shell:
        "python -m cohort import-ct --subject {wildcards.subject} --ct {input.ct:q}"
        " --out-volume {output.volume} --out-fingerprint {output.fingerprint} > {log} 2>&1"


rule import_radiograph:
    input:
        unpack(radiograph_inputs),
    output:
        image="results/subjects/{subject}/radiographs/{image}/radiograph.mha",
        geometry="results/subjects/{subject}/radiographs/{image}/geometry.json",
        fingerprint="results/subjects/{subject}/radiographs/{image}/fingerprint.json",
    params:
        code=source_hash("cohort"),
        pose=lambda wc: radiograph_row(wc)["pose"],
        geometry=geometry_argument,
        site=site_defaults_arguments(),
    conda:
        "../envs/cohort.yaml"
    log:
        "logs/import_radiograph/{subject}/{image}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "python -m cohort import-radiograph --subject {wildcards.subject} --image {wildcards.image}"
        " --path {input.image:q} {params.geometry} --pose {params.pose} {params.site}"
        " --out-image {output.image} --out-geometry {output.geometry}"
        " --out-fingerprint {output.fingerprint} > {log} 2>&1"


rule cohort_fingerprint:
    input:
        subjects=MANIFEST_SUBJECTS,
        ct=expand("results/subjects/{subject}/ct/fingerprint.json", subject=SUBJECTS),
        radiographs=[
            f"results/subjects/{s}/radiographs/{i}/fingerprint.json" for s, i in radiograph_pairs()
        ],
    output:
        json="results/cohort/fingerprint.json",
        tsv=report(
            "results/cohort/fingerprint.tsv",
            caption="../report/fingerprint.rst",
            category="Cohort",
            labels={"table": "fingerprint"},
        ),
    params:
        code=source_hash("cohort"),
    conda:
        "../envs/cohort.yaml"
    log:
        "logs/cohort_fingerprint.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m cohort fingerprint --subjects {input.subjects:q} --ct {input.ct}"
        " --radiographs {input.radiographs} --out-json {output.json} --out-tsv {output.tsv}"
        " > {log} 2>&1"


# A subject's products, each with its size and SHA-256: the one target that stands for
# everything of one subject (rerun a subject: docs/cluster.md). Cheap, so it runs where
# Snakemake runs, not as a cluster job.
rule subject_products:
    input:
        # One output per job: the whole list as inputs made a third of a large cohort's
        # DAG edges (benchmarks/dag_scale.py).
        lambda wc: subject_products(wc.subject, first_only=True),
    output:
        "results/subjects/{subject}/products.tsv",
    params:
        code=source_hash("cohort"),
        files=lambda wc: subject_products(wc.subject),
    conda:
        "../envs/cohort.yaml"
    log:
        "logs/subject_products/{subject}.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m cohort inventory --subject {wildcards.subject}"
        " --root results/subjects/{wildcards.subject} --files {params.files} --out {output}"
        " > {log} 2>&1"
