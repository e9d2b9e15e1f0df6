# Stage 4: refine every frame's pose and label it, on Dask, into one Zarr store per sweep,
# with the lambda that select_lambda chose on the first sweep (label.select_lambda).


rule label_sweep:
    input:
        record="results/poses/{specimen}/{sweep}",
        model="results/model/{specimen}",
        lam=LAMBDA_CHOICE if LAMBDA_SELECTED else [],
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
        engine=label_engine_options(),
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


if LAMBDA_SELECTED:

    rule select_lambda:
        input:
            unpack(get_lambda_inputs),
        output:
            table="results/release/qa/lambda/lambda.csv",
            choice=LAMBDA_CHOICE,
            figure=report(
                "results/release/qa/lambda/lambda.png",
                caption="../report/lambda.rst",
                category="Release",
            ),
        log:
            "logs/select_lambda/lambda.log",
        benchmark:
            "benchmarks/select_lambda/lambda.tsv"
        conda:
            "../envs/ultrabones.yaml"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=120,
        params:
            frames=config["label"]["select_lambda"]["frames"],
            seed=config["label"]["select_lambda"]["seed"],
            # the search that labels: every engine option but the candidate lam and
            # the engine seed (--seed samples the frames)
            engine=engine_options(exclude=("lam", "seed")),
            rule=lambda_rule_args(),
        shell:
            "ultrabones select-lambda {input.record:q} --model {input.model:q}"
            " --frames {params.frames:q} --seed {params.seed:q} {params.rule}"
            " {params.engine} --table {output.table:q} --choice {output.choice:q}"
            " --figure {output.figure:q} > {log:q} 2>&1"
