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
        engine=engine_options(),
        chunk_frames=config["label"]["chunk_frames"],
        max_failed=config["label"]["max_failed_fraction"],
        scheduler=scheduler_option(),
        config_hash=config_hash("input", "calibrate", "register", "poses", "engine"),
    shell:
        "ultrabones label-sweep {input.record:q} --model {input.model:q}"
        " --specimen {wildcards.specimen:q} --sweep {wildcards.sweep:q} {params.engine}"
        " --chunk-frames {params.chunk_frames:q}"
        " --max-failed-fraction {params.max_failed:q} --threads {threads}"
        " {params.scheduler} --config-hash {params.config_hash:q}"
        " --out {output.store:q} > {log:q} 2>&1"
