# The models per fold: stage 1 (radiograph → bone DRR, dataset A), stage 2 (radiograph →
# PF-DRR, dataset B, from stage 1's weights), stage 3 (stage 2's encoder and a regression
# head, per BMD target) and the conventional baseline (a CNN on the PF ROI, per target);
# then each fold's test subjects' BMD by every method, gathered into the cohort's
# predictions.


rule train_stage1:
    input:
        table="results/cohort/dataset_A.tsv",
        folds="results/cohort/folds.json",
    output:
        model="results/models/fold{fold}/stage1/final.pt",
        history="results/models/fold{fold}/stage1/history.json",
    params:
        code=source_hash("models"),
        config=lambda wc: shlex.quote(json.dumps(stage_config(1))),
        out_dir=lambda wc, output: str(Path(output.model).parent),
    conda:
        "../envs/models.yaml"
    log:
        "logs/train_stage1/fold{fold}.log",
    threads: 2
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=MODELS["gpus"],
    shell:
        "OMP_NUM_THREADS={threads} python -m models train --stage 1 --table {input.table}"
        " --folds {input.folds} --fold {wildcards.fold} --config {params.config}"
        " --out-dir {params.out_dir} --out-history {output.history} --quiet > {log} 2>&1"


rule train_stage2:
    input:
        unpack(stage2_inputs),
    output:
        model="results/models/fold{fold}/stage2/final.pt",
        history="results/models/fold{fold}/stage2/history.json",
    params:
        code=source_hash("models"),
        config=lambda wc: shlex.quote(json.dumps(stage_config(2))),
        init=lambda wc, input: f"--init {input.init}" if "init" in input.keys() else "",
        out_dir=lambda wc, output: str(Path(output.model).parent),
    conda:
        "../envs/models.yaml"
    log:
        "logs/train_stage2/fold{fold}.log",
    threads: 2
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=MODELS["gpus"],
    shell:
        "OMP_NUM_THREADS={threads} python -m models train --stage 2 --table {input.table}"
        " --folds {input.folds} --fold {wildcards.fold} {params.init} --config {params.config}"
        " --out-dir {params.out_dir} --out-history {output.history} --quiet > {log} 2>&1"


rule predict_fold:
    input:
        model="results/models/fold{fold}/stage2/final.pt",
        table="results/cohort/dataset_B.tsv",
        folds="results/cohort/folds.json",
    output:
        predictions="results/models/fold{fold}/predictions.tsv",
        calibration="results/models/fold{fold}/calibration.json",
    params:
        code=source_hash("models"),
        factor=MODELS["factor"],
    conda:
        "../envs/models.yaml"
    log:
        "logs/predict_fold/fold{fold}.log",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "OMP_NUM_THREADS={threads} python -m models predict-fold --model {input.model}"
        " --table {input.table} --folds {input.folds} --fold {wildcards.fold}"
        " --factor {params.factor} --out-predictions {output.predictions}"
        " --out-calibration {output.calibration} > {log} 2>&1"


rule train_stage3:
    input:
        init="results/models/fold{fold}/stage2/final.pt",
        table="results/cohort/dataset_B.tsv",
        folds="results/cohort/folds.json",
    output:
        frozen="results/models/fold{fold}/stage3_{target}/frozen.pt",
        model="results/models/fold{fold}/stage3_{target}/final.pt",
        history="results/models/fold{fold}/stage3_{target}/history.json",
    params:
        code=source_hash("models"),
        config=lambda wc: shlex.quote(json.dumps(regressor_config("decomposition"))),
        column=lambda wc: REGRESSION_TARGETS[wc.target],
        out_dir=lambda wc, output: str(Path(output.model).parent),
    conda:
        "../envs/models.yaml"
    log:
        "logs/train_stage3/fold{fold}_{target}.log",
    threads: 2
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=MODELS["gpus"],
    shell:
        "OMP_NUM_THREADS={threads} python -m models train-regressor --kind decomposition"
        " --target {params.column} --table {input.table} --folds {input.folds}"
        " --fold {wildcards.fold} --init {input.init} --config {params.config}"
        " --out-dir {params.out_dir} --out-history {output.history} --quiet > {log} 2>&1"


rule train_baseline:
    input:
        table="results/cohort/dataset_B.tsv",
        folds="results/cohort/folds.json",
    output:
        model="results/models/fold{fold}/baseline_{target}/final.pt",
        history="results/models/fold{fold}/baseline_{target}/history.json",
    params:
        code=source_hash("models"),
        config=lambda wc: shlex.quote(json.dumps(regressor_config("conventional"))),
        column=lambda wc: REGRESSION_TARGETS[wc.target],
        out_dir=lambda wc, output: str(Path(output.model).parent),
    conda:
        "../envs/models.yaml"
    log:
        "logs/train_baseline/fold{fold}_{target}.log",
    threads: 2
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=MODELS["gpus"],
    shell:
        "OMP_NUM_THREADS={threads} python -m models train-regressor --kind conventional"
        " --target {params.column} --table {input.table} --folds {input.folds}"
        " --fold {wildcards.fold} --config {params.config}"
        " --out-dir {params.out_dir} --out-history {output.history} --quiet > {log} 2>&1"


rule predict_regressors:
    input:
        models=fold_regressors,
        table="results/cohort/dataset_B.tsv",
        folds="results/cohort/folds.json",
    output:
        "results/models/fold{fold}/regression_predictions.tsv",
    params:
        code=source_hash("models"),
    conda:
        "../envs/models.yaml"
    log:
        "logs/predict_regressors/fold{fold}.log",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "OMP_NUM_THREADS={threads} python -m models predict-regressors --models {input.models}"
        " --table {input.table} --folds {input.folds} --fold {wildcards.fold}"
        " --out {output} > {log} 2>&1"


rule gather_predictions:
    input:
        expand("results/models/fold{fold}/predictions.tsv", fold=FOLDS),
        expand("results/models/fold{fold}/regression_predictions.tsv", fold=FOLDS),
    output:
        "results/cohort/predictions.tsv",
    params:
        code=source_hash("models"),
    conda:
        "../envs/models.yaml"
    log:
        "logs/gather_predictions.log",
    localrule: True
    shell:
        "python -m models gather --predictions {input} --out {output} > {log} 2>&1"


rule training_curves:
    input:
        expand("results/models/fold{fold}/stage{stage}/history.json", fold=FOLDS, stage=[1, 2]),
        expand(
            "results/models/fold{fold}/{model}_{target}/history.json",
            fold=FOLDS,
            model=["stage3", "baseline"],
            target=REGRESSION_TARGETS,
        ),
    output:
        report(
            "results/cohort/models/training_curves.png",
            caption="../report/training_curves.rst",
            category="Models",
            labels={"figure": "training curves"},
        ),
    params:
        code=source_hash("qc"),
    conda:
        "../envs/qc.yaml"
    log:
        "logs/training_curves.log",
    localrule: True
    shell:
        "python -m qc training --histories {input} --out {output} > {log} 2>&1"
