# The evaluation of the cohort's cross-validated predictions: the paper's metrics per
# method and target, Table 2, the WHO categories against DXA's, and the figures.


rule evaluate:
    input:
        "results/cohort/predictions.tsv",
    output:
        metrics="results/cohort/metrics.tsv",
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
    conda:
        "../envs/evaluation.yaml"
    log:
        "logs/evaluate.log",
    localrule: True
    shell:
        "python -m evaluation summarise --predictions {input} --out-metrics {output.metrics}"
        " --out-table {output.table} --t-mean {params.t_mean} --t-sd {params.t_sd}"
        " --out-categories {output.categories} > {log} 2>&1"


rule evaluation_plots:
    input:
        "results/cohort/predictions.tsv",
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
    params:
        code=source_hash("evaluation"),
    conda:
        "../envs/evaluation.yaml"
    log:
        "logs/evaluation_plots.log",
    localrule: True
    shell:
        "python -m evaluation plots --predictions {input} --out-scatter {output.scatter}"
        " --out-bland-altman {output.bland_altman} > {log} 2>&1"
