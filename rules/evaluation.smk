# The evaluation of the cohort's cross-validated predictions: the paper's metrics per
# method and target, and Table 2.


rule evaluate:
    input:
        "results/cohort/predictions.tsv",
    output:
        metrics="results/cohort/metrics.tsv",
        table=report(
            "results/cohort/table2.md",
            caption="../report/table2.rst",
            category="Evaluation",
            labels={"table": "Table 2"},
        ),
    params:
        code=source_hash("evaluation"),
    conda:
        "../envs/evaluation.yaml"
    log:
        "logs/evaluate.log",
    localrule: True
    shell:
        "python -m evaluation summarise --predictions {input} --out-metrics {output.metrics}"
        " --out-table {output.table} > {log} 2>&1"


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
