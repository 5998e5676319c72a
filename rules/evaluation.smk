# The evaluation of the cohort's cross-validated predictions: the paper's metrics per
# method and target, Table 2, pose-wise metrics, significance tests, the WHO categories
# against DXA's, and the figures; the robustness study against compressed radiographs.


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
        limited=limited_poses_arguments,
    conda:
        "../envs/evaluation.yaml"
    log:
        "logs/evaluate.log",
    localrule: True
    shell:
        "python -m evaluation summarise --predictions {input.predictions} {params.limited}"
        " --out-metrics {output.metrics} --out-table {output.table}"
        " --t-mean {params.t_mean} --t-sd {params.t_sd}"
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
        limited=limited_poses_arguments,
    conda:
        "../envs/evaluation.yaml"
    log:
        "logs/evaluation_plots.log",
    localrule: True
    shell:
        "python -m evaluation plots --predictions {input.predictions} {params.limited}"
        " --out-scatter {output.scatter}"
        " --out-bland-altman {output.bland_altman} --out-absolute-error {output.absolute_error}"
        " --out-posewise {output.posewise} > {log} 2>&1"


rule compress_radiographs:
    input:
        table="results/cohort/dataset_B.tsv",
    output:
        images=directory("results/cohort/robustness/compression/{condition}"),
        index="results/cohort/robustness/compression/{condition}.tsv",
    params:
        code=source_hash("evaluation"),
    conda:
        "../envs/evaluation.yaml"
    log:
        "logs/compress_radiographs/{condition}.log",
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m evaluation compress --table {input.table} --condition {wildcards.condition}"
        " --out-dir {output.images} --out-index {output.index} > {log} 2>&1"


rule predict_compressed:
    input:
        model="results/models/main/fold{fold}/stage2/final.pt",
        calibration="results/models/main/fold{fold}/calibration.json",
        regressors=fold_regressors,
        table="results/cohort/dataset_B.tsv",
        folds="results/cohort/folds.json",
        compressed=expand(
            "results/cohort/robustness/compression/{condition}.tsv", condition=COMPRESSION
        ),
    output:
        "results/models/main/fold{fold}/compression_predictions.tsv",
    params:
        code=source_hash("models"),
        factor=MODELS["factor"],
    conda:
        "../envs/models.yaml"
    log:
        "logs/predict_compressed/fold{fold}.log",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "OMP_NUM_THREADS={threads} python -m models predict-compressed --model {input.model}"
        " --calibration {input.calibration} --regressors {input.regressors}"
        " --table {input.table} --folds {input.folds} --fold {wildcards.fold}"
        " --factor {params.factor} --compressed {input.compressed} --out {output} > {log} 2>&1"


rule compression_study:
    input:
        expand("results/models/main/fold{fold}/compression_predictions.tsv", fold=FOLDS),
    output:
        predictions="results/cohort/robustness/compression_predictions.tsv",
        table="results/cohort/robustness/compression.tsv",
        figure=report(
            "results/cohort/robustness/compression.png",
            caption="../report/compression.rst",
            category="Robustness",
            labels={"figure": "compression"},
        ),
    params:
        code=source_hash("evaluation"),
    conda:
        "../envs/evaluation.yaml"
    log:
        "logs/compression_study.log",
    localrule: True
    shell:
        "python -m evaluation compression --predictions {input}"
        " --out-predictions {output.predictions} --out-table {output.table}"
        " --out-figure {output.figure} > {log} 2>&1"
