# Stage 1: the sweeps enter, simulated (per recording, specimen and sweep) or as records;
# raw-mode folders are read where they are by calibrate, register and poses.


if SIMULATED:

    rule simulate_recording:
        output:
            directory("results/simulate/recording/{recording}"),
        log:
            "logs/simulate_recording/{recording}.log",
        benchmark:
            "benchmarks/simulate_recording/{recording}.tsv"
        conda:
            "../envs/ultrabones.yaml"
        threads: 1
        params:
            preset=config["input"]["simulate"]["preset"],
            seed=config["input"]["simulate"]["seed"],
            errors=config["input"]["simulate"]["errors"],
        shell:
            "ultrabones simulate --preset {params.preset:q} --seed {params.seed:q}"
            " --errors {params.errors:q} --recording {wildcards.recording:q}"
            " --out {output:q} > {log:q} 2>&1"

    rule simulate_specimen:
        output:
            directory("results/simulate/specimen/{specimen}"),
        log:
            "logs/simulate_specimen/{specimen}.log",
        benchmark:
            "benchmarks/simulate_specimen/{specimen}.tsv"
        conda:
            "../envs/ultrabones.yaml"
        threads: 1
        params:
            preset=config["input"]["simulate"]["preset"],
            seed=config["input"]["simulate"]["seed"],
            errors=config["input"]["simulate"]["errors"],
        shell:
            "ultrabones simulate --preset {params.preset:q} --seed {params.seed:q}"
            " --errors {params.errors:q} --specimen {wildcards.specimen:q}"
            " --out {output:q} > {log:q} 2>&1"

    rule simulate_sweep:
        output:
            directory("results/simulate/sweep/{specimen}/{sweep}"),
        log:
            "logs/simulate_sweep/{specimen}/{sweep}.log",
        benchmark:
            "benchmarks/simulate_sweep/{specimen}/{sweep}.tsv"
        conda:
            "../envs/ultrabones.yaml"
        threads: 1
        resources:
            runtime=60,
        params:
            preset=config["input"]["simulate"]["preset"],
            seed=config["input"]["simulate"]["seed"],
            errors=config["input"]["simulate"]["errors"],
            frames=(
                f"--frames {config['input']['simulate']['frames']}"
                if config["input"]["simulate"]["frames"]
                else ""
            ),
        shell:
            "ultrabones simulate --preset {params.preset:q} --seed {params.seed:q}"
            " --errors {params.errors:q} --specimen {wildcards.specimen:q}"
            " --sweep {wildcards.sweep:q} {params.frames} --out {output:q} > {log:q} 2>&1"

elif MODE == "records":

    rule ingest_record:
        input:
            record=get_record,
        output:
            directory("results/poses/{specimen}/{sweep}"),
        log:
            "logs/ingest_record/{specimen}/{sweep}.log",
        benchmark:
            "benchmarks/ingest_record/{specimen}/{sweep}.tsv"
        conda:
            "../envs/ultrabones.yaml"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        shell:
            "ultrabones ingest {input.record:q} --out {output:q} > {log:q} 2>&1"
