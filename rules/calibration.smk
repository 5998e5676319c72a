# HU → mg/cm³ hydroxyapatite with the subject's calibration phantom, else its scanner's
# line from the config, else internal calibration from its own fat and muscle.


rule calibrate:
    input:
        ct="results/subjects/{subject}/ct/ct_hu.nii.gz",
    output:
        density="results/subjects/{subject}/ct/density_mg_cm3.nii.gz",
        calibration="results/subjects/{subject}/ct/calibration.json",
    params:
        code=source_hash("calibration"),
        rods=",".join(str(d) for d in CALIBRATION["rod_densities_mg_cm3"]),
        phantom=subject_phantom,
        scanner_line=scanner_line_argument,
        method=CALIBRATION["method"],
        fat=CALIBRATION["internal"]["fat_mg_cm3"],
        muscle=CALIBRATION["internal"]["muscle_mg_cm3"],
    conda:
        "../envs/calibration.yaml"
    log:
        "logs/calibrate/{subject}.log",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    shell:
        "python -m calibration --subject {wildcards.subject} --ct {input.ct} --rods {params.rods}"
        " --method {params.method} --phantom {params.phantom} {params.scanner_line}"
        " --fat-mg-cm3 {params.fat} --muscle-mg-cm3 {params.muscle}"
        " --out-density {output.density} --out-json {output.calibration} > {log} 2>&1"
