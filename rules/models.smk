# The decomposition models per fold: stage 1 (radiograph → bone DRR, dataset A), stage 2
# (radiograph → PF-DRR, dataset B, from stage 1's weights), then each fold's test
# subjects' PF-DRRs and BMD, gathered into the cohort's predictions.


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


rule gather_predictions:
    input:
        expand("results/models/fold{fold}/predictions.tsv", fold=FOLDS),
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
