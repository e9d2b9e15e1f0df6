# Optional stage (model.activate): the baseline segmentation model of issue 11, trained
# on the release's train split, scored on its test split against the release labels.


rule train_model:
    input:
        manifest="results/release/manifest.sha256",
    output:
        model=directory("results/segmentation/model"),
    log:
        "logs/train_model/model.log",
    benchmark:
        "benchmarks/train_model/model.tsv"
    conda:
        "../envs/ultrabones.yaml"
    threads: config["model"]["threads"]
    resources:
        mem_mb=8000,
        runtime=1440,
    params:
        encoder=config["model"]["encoder"],
        epochs=config["model"]["epochs"],
        max_steps=config["model"]["max_steps"],
        batch_size=config["model"]["batch_size"],
        lr=config["model"]["lr"],
        scale=config["model"]["scale"],
        crop=config["model"]["crop_px"],
        seed=config["model"]["seed"],
        device=config["model"]["device"],
    shell:
        "ultrabones train {input.manifest:q} --out {output.model:q}"
        " --encoder {params.encoder:q} --epochs {params.epochs:q}"
        " --max-steps {params.max_steps:q} --batch-size {params.batch_size:q}"
        " --lr {params.lr:q} --scale {params.scale:q} --crop {params.crop:q}"
        " --seed {params.seed:q} --device {params.device:q} --threads {threads}"
        " > {log:q} 2>&1"


rule predict_model:
    input:
        model="results/segmentation/model",
        manifest="results/release/manifest.sha256",
    output:
        predictions=directory("results/segmentation/predictions/test"),
    log:
        "logs/predict_model/test.log",
    benchmark:
        "benchmarks/predict_model/test.tsv"
    conda:
        "../envs/ultrabones.yaml"
    threads: config["model"]["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        device=config["model"]["device"],
    shell:
        "ultrabones predict {input.model:q} {input.manifest:q} --split test"
        " --out {output.predictions:q} --device {params.device:q}"
        " --threads {threads} > {log:q} 2>&1"


rule score_model:
    input:
        predictions="results/segmentation/predictions/test",
        manifest="results/release/manifest.sha256",
        otsu="results/qc/otsu.json",
    output:
        scores="results/release/model/scores.json",
        figures=directory("results/qc/model"),
    log:
        "logs/score_model/test.log",
    benchmark:
        "benchmarks/score_model/test.tsv"
    conda:
        "../envs/ultrabones.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        eps=config["model"]["eps_mm"],
    shell:
        "ultrabones score {input.predictions:q} {input.manifest:q} --split test"
        " --eps {params.eps:q} --otsu {input.otsu:q} --out {output.figures:q}"
        " --summary {output.scores:q} > {log:q} 2>&1"
