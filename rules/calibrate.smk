# Stage 2: spatio-temporal probe calibration, once per Z-phantom recording (simulated,
# or the raw folder input.raw.calibration).


if RAW_LAYOUT and is_activated("calibrate"):

    rule calibrate_probe:
        input:
            recording=get_recording,
        output:
            calibration="results/calibrate/{recording}/calibration.yaml",
            error_curve=report(
                "results/calibrate/{recording}/error_curve.png",
                caption="../report/audit_error_curve.rst",
                category="Calibration",
                labels={"recording": "{recording}"},
            ),
        log:
            "logs/calibrate_probe/{recording}.log",
        benchmark:
            "benchmarks/calibrate_probe/{recording}.tsv"
        conda:
            "../envs/ultrabones.yaml"
        threads: 1
        params:
            folder=recording_folder,
            max_gap_ms=config["calibrate"]["max_gap_ms"],
        shell:
            "ultrabones calibrate {params.folder:q}"
            " --calibration {output.calibration:q} --error-curve {output.error_curve:q}"
            " --max-gap-ms {params.max_gap_ms:q} > {log:q} 2>&1"
