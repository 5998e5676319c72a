# The evaluation of the cohort's cross-validated predictions: the paper's metrics per
# method and target (Table 2, with the robustness experiments' rows), pose-wise metrics,
# significance tests, failure detection, the WHO categories against DXA's, and the
# figures.


rule evaluate:
    input:
        unpack(evaluation_inputs),
    output:
        metrics="results/cohort/metrics.tsv",
        posewise="results/cohort/posewise.tsv",
        statistics="results/cohort/statistics.tsv",
        failure="results/cohort/failure_detection.tsv",
        categories="results/cohort/who_categories.tsv",
        table=report(
            "results/cohort/table2.md",
            caption="../report/table2.rst",
            category="Evaluation",
            labels={"table": "Table 2"},
        ),
    params:
        code=source_hash("evaluation"),
        t_mean=EVALUATION["t_score_reference"]["mean_g_cm2"],
        t_sd=EVALUATION["t_score_reference"]["sd_g_cm2"],
        experiments=experiment_arguments,
        bmd_fit=MODELS["bmd_fit"],
    conda:
        "../envs/evaluation.yaml"
    log:
        "logs/evaluate.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m evaluation summarise --predictions {input.predictions} {params.experiments}"
        " --out-metrics {output.metrics} --out-table {output.table}"
        " --t-mean {params.t_mean} --t-sd {params.t_sd} --bmd-fit {params.bmd_fit}"
        " --out-posewise {output.posewise} --out-statistics {output.statistics}"
        " --checks {input.checks} --out-failure {output.failure}"
        " --out-categories {output.categories} > {log} 2>&1"


rule evaluation_plots:
    input:
        unpack(evaluation_inputs),
    output:
        scatter=report(
            "results/cohort/evaluation/scatter.png",
            caption="../report/evaluation_scatter.rst",
            category="Evaluation",
            labels={"figure": "predicted vs reference"},
        ),
        bland_altman=report(
            "results/cohort/evaluation/bland_altman.png",
            caption="../report/evaluation_bland_altman.rst",
            category="Evaluation",
            labels={"figure": "Bland-Altman"},
        ),
        absolute_error=report(
            "results/cohort/evaluation/absolute_error.png",
            caption="../report/evaluation_absolute_error.rst",
            category="Evaluation",
            labels={"figure": "absolute error"},
        ),
        posewise=report(
            "results/cohort/evaluation/posewise.png",
            caption="../report/evaluation_posewise.rst",
            category="Evaluation",
            labels={"figure": "pose-wise PCC"},
        ),
    params:
        code=source_hash("evaluation"),
        experiments=experiment_arguments,
    conda:
        "../envs/evaluation.yaml"
    log:
        "logs/evaluation_plots.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m evaluation plots --predictions {input.predictions} {params.experiments}"
        " --out-scatter {output.scatter}"
        " --out-bland-altman {output.bland_altman} --out-absolute-error {output.absolute_error}"
        " --out-posewise {output.posewise} > {log} 2>&1"


# The paper's Fig. 1: what the PF region's mean intensity of the radiograph, of the
# ground-truth PF-DRR and of the predicted PF-DRR tells about BMD (main's test pairs).
rule pf_intensities:
    input:
        expand("results/models/main/fold{fold}/pf_roi_intensities.tsv", fold=FOLDS),
    output:
        table="results/cohort/pf_roi_intensities.tsv",
        correlations="results/cohort/pf_roi_intensity_pcc.tsv",
        figure=report(
            "results/cohort/evaluation/pf_roi_intensity.png",
            caption="../report/evaluation_pf_intensity.rst",
            category="Evaluation",
            labels={"figure": "PF-region intensity vs BMD (Fig. 1)"},
        ),
    params:
        code=source_hash("evaluation"),
    conda:
        "../envs/evaluation.yaml"
    log:
        "logs/pf_intensities.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m evaluation intensities --intensities {input}"
        " --out-table {output.table} --out-correlations {output.correlations}"
        " --out-figure {output.figure} > {log} 2>&1"
