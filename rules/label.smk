# Stage 4: refine every frame's pose and label it, on Dask, into one Zarr store per sweep.


rule label_sweep:
    input:
        record="results/poses/{specimen}/{sweep}",
        model="results/model/{specimen}",
    output:
        store=directory("results/label/{specimen}/{sweep}.zarr"),
    log:
        "logs/label_sweep/{specimen}/{sweep}.log",
    benchmark:
        "benchmarks/label_sweep/{specimen}/{sweep}.tsv"
    conda:
        "../envs/ultrabones.yaml"
    threads: config["label"]["threads"]
    resources:
        mem_mb=config["label"]["mem_mb"],
        runtime=config["label"]["runtime"],
    params:
        engine=" ".join(
            f"--{k.replace('_', '-')} "
            + (" ".join(map(str, v)) if isinstance(v, list) else str(v))
            for k, v in config["engine"].items()
        ),
        chunk_frames=config["label"]["chunk_frames"],
        max_failed=config["label"]["max_failed_fraction"],
        scheduler=(
            f"--scheduler {config['label']['scheduler']}"
            if config["label"]["scheduler"]
            else ""
        ),
        config_hash=config_hash("input", "calibrate", "register", "poses", "engine"),
    shell:
        "ultrabones label-sweep {input.record} --model {input.model}"
        " --specimen {wildcards.specimen} --sweep {wildcards.sweep} {params.engine}"
        " --chunk-frames {params.chunk_frames} --max-failed-fraction {params.max_failed}"
        " --threads {threads} {params.scheduler} --config-hash {params.config_hash}"
        " --out {output.store} > {log} 2>&1"
