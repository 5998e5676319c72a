# The models per experiment and fold: stage 1 (radiograph → bone DRR, dataset A), stage 2
# (radiograph → PF-DRR, dataset B, from stage 1's weights), stage 3 (stage 2's encoder and
# a regression head, per BMD target) and the conventional baseline (a CNN on the PF ROI,
# per target); then each fold's test subjects' BMD by every method, gathered into the
# experiment's predictions. The experiments (common.smk: EXPERIMENT_SETTINGS) are "main",
# the robustness studies' "limited_poses" and "uncalibrated_ct", and the ablation
# "without_hierarchy".
#
# Each job takes one thread: the demo's networks are too small to use two (two one-thread
# trainings finish in 8.8 s where one of two threads takes 8.5 s); on a GPU the thread
# only feeds it. --set-threads raises it.


rule train_stage1:
    input:
        table=experiment_table("A"),
        folds="results/cohort/folds.json",
    output:
        model="results/models/{experiment}/fold{fold}/stage1/final.pt",
        history="results/models/{experiment}/fold{fold}/stage1/history.json",
    params:
        code=source_hash("models"),
        config=lambda wc: shlex.quote(json.dumps(stage_config(1))),
        out_dir=lambda wc, output: str(Path(output.model).parent),
    conda:
        "../envs/models.yaml"
    log:
        "logs/train_stage1/{experiment}/fold{fold}.log",
    threads: 1
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=MODELS["gpus"],
    shell:
        "python -m models train --stage 1 --table {input.table}"
        " --folds {input.folds} --fold {wildcards.fold} --config {params.config}"
        " --out-dir {params.out_dir} --out-history {output.history} --quiet > {log} 2>&1"


rule train_stage2:
    input:
        unpack(stage2_inputs),
    output:
        model="results/models/{experiment}/fold{fold}/stage2/final.pt",
        history="results/models/{experiment}/fold{fold}/stage2/history.json",
    params:
        code=source_hash("models"),
        config=lambda wc: shlex.quote(json.dumps(stage_config(2))),
        init=lambda wc, input: f"--init {input.init}" if "init" in input.keys() else "",
        poses=poses_argument,
        out_dir=lambda wc, output: str(Path(output.model).parent),
    conda:
        "../envs/models.yaml"
    log:
        "logs/train_stage2/{experiment}/fold{fold}.log",
    threads: 1
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=MODELS["gpus"],
    shell:
        "python -m models train --stage 2 --table {input.table}"
        " --folds {input.folds} --fold {wildcards.fold} {params.init} --config {params.config}"
        " {params.poses}"
        " --out-dir {params.out_dir} --out-history {output.history} --quiet > {log} 2>&1"


# One job predicts an experiment's folds in turn: its work is ~1 s a fold, its start-up
# (torch, timm) ~4.5 s (docs/performance.md, round nine). The outputs stay per fold.
rule predict_folds:
    input:
        models=expand("results/models/{{experiment}}/fold{fold}/stage2/final.pt", fold=FOLDS),
        regressors=experiment_regressors,
        table=experiment_table("B"),
        folds="results/cohort/folds.json",
    output:
        predictions=expand("results/models/{{experiment}}/fold{fold}/predictions.tsv", fold=FOLDS),
        calibration=expand("results/models/{{experiment}}/fold{fold}/calibration.json", fold=FOLDS),
        checks=expand("results/models/{{experiment}}/fold{fold}/pf_drr_checks.tsv", fold=FOLDS),
        intensities=expand(
            "results/models/{{experiment}}/fold{fold}/pf_roi_intensities.tsv", fold=FOLDS
        ),
    params:
        code=source_hash("models"),
        factor=MODELS["factor"],
        folds=FOLDS,
        poses=poses_argument,
        bmd_fit=MODELS["bmd_fit"],
    conda:
        "../envs/models.yaml"
    log:
        "logs/predict_folds/{experiment}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30 * len(FOLDS),  # 30 min a fold, as when each fold was a job
    shell:
        "python -m models predict-fold --fold {params.folds} --model {input.models}"
        " --table {input.table} --folds {input.folds}"
        " --factor {params.factor} --bmd-fit {params.bmd_fit} {params.poses}"
        " --regressors {input.regressors}"
        " --out-predictions {output.predictions} --out-calibration {output.calibration}"
        " --out-checks {output.checks} --out-intensities {output.intensities} > {log} 2>&1"


# Stage three and the baseline: one job per fold trains both BMD targets in turn (one
# start-up of torch and timm, 3.9 s, instead of two; docs/performance.md, round five).
rule train_stage3:
    input:
        init="results/models/{experiment}/fold{fold}/stage2/final.pt",
        table=experiment_table("B"),
        folds="results/cohort/folds.json",
    output:
        frozen=expand("results/models/{{experiment}}/fold{{fold}}/stage3_{t}/frozen.pt", t=REGRESSION_TARGETS),
        model=expand("results/models/{{experiment}}/fold{{fold}}/stage3_{t}/final.pt", t=REGRESSION_TARGETS),
        history=expand(
            "results/models/{{experiment}}/fold{{fold}}/stage3_{t}/history.json", t=REGRESSION_TARGETS
        ),
    params:
        code=source_hash("models"),
        config=lambda wc: shlex.quote(json.dumps(regressor_config("decomposition"))),
        columns=list(REGRESSION_TARGETS.values()),
        out_dirs=lambda wc, output: [str(Path(m).parent) for m in output.model],
        poses=poses_argument,
    conda:
        "../envs/models.yaml"
    log:
        "logs/train_stage3/{experiment}/fold{fold}.log",
    threads: 1
    resources:
        mem_mb=6000,
        runtime=240 * len(REGRESSION_TARGETS),
        gpu=MODELS["gpus"],
    shell:
        "python -m models train-regressor --kind decomposition"
        " --target {params.columns} --table {input.table} --folds {input.folds}"
        " --fold {wildcards.fold} --init {input.init} --config {params.config} {params.poses}"
        " --out-dir {params.out_dirs} --out-history {output.history} --quiet > {log} 2>&1"


# The baseline's jobs are the models' longest (~35 s on the demo, two targets of 40
# epochs) and need only the tables: started first, they do not leave one core working
# alone at the end of the run (round nine: 32 s alone at the end of 12:27).
rule train_baseline:
    input:
        table=experiment_table("B"),
        folds="results/cohort/folds.json",
    output:
        model=expand("results/models/{{experiment}}/fold{{fold}}/baseline_{t}/final.pt", t=REGRESSION_TARGETS),
        history=expand(
            "results/models/{{experiment}}/fold{{fold}}/baseline_{t}/history.json", t=REGRESSION_TARGETS
        ),
    params:
        code=source_hash("models"),
        config=lambda wc: shlex.quote(json.dumps(regressor_config("conventional"))),
        columns=list(REGRESSION_TARGETS.values()),
        out_dirs=lambda wc, output: [str(Path(m).parent) for m in output.model],
    conda:
        "../envs/models.yaml"
    log:
        "logs/train_baseline/{experiment}/fold{fold}.log",
    priority: 1
    threads: 1
    resources:
        mem_mb=6000,
        runtime=240 * len(REGRESSION_TARGETS),
        gpu=MODELS["gpus"],
    shell:
        "python -m models train-regressor --kind conventional"
        " --target {params.columns} --table {input.table} --folds {input.folds}"
        " --fold {wildcards.fold} --config {params.config}"
        " --out-dir {params.out_dirs} --out-history {output.history} --quiet > {log} 2>&1"


rule gather_predictions:
    input:
        predictions=expand("results/models/main/fold{fold}/predictions.tsv", fold=FOLDS),
        checks=expand("results/models/main/fold{fold}/pf_drr_checks.tsv", fold=FOLDS),
    output:
        predictions="results/cohort/predictions.tsv",
        checks="results/cohort/pf_drr_checks.tsv",
    params:
        code=source_hash("models"),
    conda:
        "../envs/models.yaml"
    log:
        "logs/gather_predictions.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "(python -m models gather --predictions {input.predictions}"
        " --out {output.predictions} && python -m models gather --predictions {input.checks}"
        " --out {output.checks}) > {log} 2>&1"


rule gather_experiment_predictions:
    input:
        expand("results/models/{{experiment}}/fold{fold}/predictions.tsv", fold=FOLDS),
    output:
        "results/cohort/robustness/{experiment}/predictions.tsv",
    wildcard_constraints:
        experiment="|".join(e for e in EXPERIMENTS if e != "main") or "no_experiment",
    params:
        code=source_hash("models"),
    conda:
        "../envs/models.yaml"
    log:
        "logs/gather_predictions/{experiment}.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m models gather --predictions {input} --out {output} > {log} 2>&1"


rule training_curves:
    input:
        expand("results/models/main/fold{fold}/stage{stage}/history.json", fold=FOLDS, stage=[1, 2]),
        expand(
            "results/models/main/fold{fold}/{model}_{target}/history.json",
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
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m qc training --histories {input} --out {output} > {log} 2>&1"


# The deployable model: stages one to three trained on every usable subject (fold "all",
# through the rules above), packaged with its BMD lines (fitted as each fold's are), the
# PF-DRRs' plausible range, the T-score reference and a model card that carries the
# cross-validated metrics estimating its accuracy.
rule package_model:
    input:
        generator="results/models/main/foldall/stage2/final.pt",
        regressors=expand(
            "results/models/main/foldall/stage3_{target}/final.pt", target=REGRESSION_TARGETS
        ),
        table="results/cohort/dataset_B.tsv",
        folds="results/cohort/folds.json",
        metrics="results/cohort/metrics.tsv",
    output:
        model="results/model/model.json",
        generator="results/model/generator.pt",
        regressors=expand(
            "results/model/regressor_{column}.pt", column=REGRESSION_TARGETS.values()
        ),
        card=report(
            "results/model/model_card.md",
            caption="../report/model_card.rst",
            category="Models",
            labels={"document": "model card"},
        ),
    params:
        code=source_hash("models"),
        factor=MODELS["factor"],
        bmd_fit=MODELS["bmd_fit"],
        t_mean=EVALUATION["t_score_reference"]["mean_g_cm2"],
        t_sd=EVALUATION["t_score_reference"]["sd_g_cm2"],
        out_dir=lambda wc, output: str(Path(output.model).parent),
    conda:
        "../envs/models.yaml"
    log:
        "logs/package_model.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m models package --generator {input.generator}"
        " --regressors {input.regressors} --table {input.table} --folds {input.folds}"
        " --factor {params.factor} --bmd-fit {params.bmd_fit} --metrics {input.metrics}"
        " --t-mean {params.t_mean} --t-sd {params.t_sd} --out-dir {params.out_dir} > {log} 2>&1"
