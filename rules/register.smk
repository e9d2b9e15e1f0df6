# Stage 3: per specimen, marker-to-CT registration and the engine's precomputation;
# per sweep, the frames' poses T_CT<-US (from the raw layout: simulate or raw mode).


if RAW_LAYOUT:

    rule register_specimen:
        input:
            specimen=get_specimen,
        output:
            registration="results/register/{specimen}/ct_from_specimen.json",
        log:
            "logs/register_specimen/{specimen}.log",
        benchmark:
            "benchmarks/register_specimen/{specimen}.tsv"
        conda:
            "../envs/ultrabones.yaml"
        threads: 1
        params:
            folder=specimen_folder,
            max_fre_mm=config["register"]["max_fre_mm"],
        shell:
            "ultrabones register {params.folder:q} --max-fre-mm {params.max_fre_mm:q}"
            " --out {output.registration:q} > {log:q} 2>&1"

    rule compute_poses:
        input:
            sweep=get_sweep,
            calibration=get_calibration_input,
            registration="results/register/{specimen}/ct_from_specimen.json",
        output:
            directory("results/poses/{specimen}/{sweep}"),
        log:
            "logs/compute_poses/{specimen}/{sweep}.log",
        benchmark:
            "benchmarks/compute_poses/{specimen}/{sweep}.tsv"
        conda:
            "../envs/ultrabones.yaml"
        threads: 1
        params:
            folder=sweep_folder,
            calibration=get_calibration,
            max_gap_ms=config["poses"]["max_gap_ms"],
            models=models_option,
        shell:
            "ultrabones poses {params.folder:q} --calibration {params.calibration:q}"
            " --registration {input.registration:q} --max-gap-ms {params.max_gap_ms:q}"
            " {params.models} --out {output:q} > {log:q} 2>&1"


rule prepare_specimen:
    input:
        bones=get_specimen_bones,
    output:
        model=directory("results/model/{specimen}"),
    log:
        "logs/prepare_specimen/{specimen}.log",
    benchmark:
        "benchmarks/prepare_specimen/{specimen}.tsv"
    conda:
        "../envs/ultrabones.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        folder=bones_folder,
        spacing_mm=config["engine"]["sample_spacing_mm"],
    shell:
        "ultrabones prepare-specimen --bones {params.folder:q}"
        " --sample-spacing-mm {params.spacing_mm:q} --out {output.model:q} > {log:q} 2>&1"
