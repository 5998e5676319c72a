# HU → mg/cm³ hydroxyapatite with the subject's calibration phantom (or its scanner's line).


rule calibrate:
    input:
        ct="results/subjects/{subject}/ct/ct_hu.nii.gz",
    output:
        density="results/subjects/{subject}/ct/density_mg_cm3.nii.gz",
        calibration="results/subjects/{subject}/ct/calibration.json",
    params:
        rods=",".join(str(d) for d in CALIBRATION["rod_densities_mg_cm3"]),
        phantom=subject_phantom,
        scanner_line=scanner_line_argument,
    conda:
        "../envs/calibration.yaml"
    log:
        "logs/calibrate/{subject}.log",
    resources:
        mem_mb=3000,
        runtime=10,
    shell:
        "python -m calibration --subject {wildcards.subject} --ct {input.ct} --rods {params.rods}"
        " --phantom {params.phantom} {params.scanner_line}"
        " --out-density {output.density} --out-json {output.calibration} > {log} 2>&1"
