# Stage 6: the release (verified stores, splits, reject statistics, card, Croissant
# and citation metadata), the export layouts and the manifest over every release file.


# A store whose chunks no longer match their digests is deleted here, so that the next
# run rebuilds it (label_sweep's output is then missing); nothing downstream uses it.
rule verify_store:
    input:
        store="results/label/{specimen}/{sweep}.zarr",
    output:
        digests="results/verify/{specimen}/{sweep}.sha256",
    log:
        "logs/verify_store/{specimen}/{sweep}.log",
    conda:
        "../envs/ultrabones.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    shell:
        "ultrabones verify-store {input.store:q} --remove-corrupt"
        " --out {output.digests:q} > {log:q} 2>&1"


rule build_release:
    input:
        stores=per_sweep("results/label/{specimen}/{sweep}.zarr"),
        verified=per_sweep("results/verify/{specimen}/{sweep}.sha256"),
    output:
        labels=directory(RELEASE["labels"]),
        splits=RELEASE["splits"],
        stats=report(
            RELEASE["stats"],
            caption="../report/reject_statistics.rst",
            category="Release",
        ),
        card=RELEASE["card"],
        croissant=RELEASE["croissant"],
        citation=RELEASE["citation"],
    log:
        "logs/build_release/release.log",
    benchmark:
        "benchmarks/build_release/release.tsv"
    conda:
        "../envs/ultrabones.yaml"
    threads: 1
    params:
        mode=config["release"]["splits"]["mode"],
        train=config["release"]["splits"]["train"],
        val=config["release"]["splits"]["val"],
        test=config["release"]["splits"]["test"],
        seed=config["release"]["splits"]["seed"],
        config_hash=config_hash(),
        licence=config["release"]["licence"],
        title=config["release"]["citation"]["title"],
        authors=config["release"]["citation"]["authors"],
        url=config["release"]["citation"]["url"],
    shell:
        "ultrabones release {input.stores:q} --split-mode {params.mode:q}"
        " --train {params.train:q} --val {params.val:q} --test {params.test:q}"
        " --seed {params.seed:q} --config-hash {params.config_hash:q}"
        " --licence {params.licence:q} --title {params.title:q}"
        " --authors {params.authors:q} --url={params.url:q}"
        " --labels {output.labels:q} --splits {output.splits:q}"
        " --stats {output.stats:q} --card {output.card:q}"
        " --croissant {output.croissant:q} --citation {output.citation:q}"
        " > {log:q} 2>&1"


rule export_public:
    input:
        store="results/label/{specimen}/{sweep}.zarr",
        verified="results/verify/{specimen}/{sweep}.sha256",
    output:
        record=directory("results/release/public/{specimen}/{sweep}"),
    log:
        "logs/export_public/{specimen}/{sweep}.log",
    benchmark:
        "benchmarks/export_public/{specimen}/{sweep}.tsv"
    conda:
        "../envs/ultrabones.yaml"
    threads: 1
    shell:
        "ultrabones export-public {input.store:q} --out {output.record:q} > {log:q} 2>&1"


rule export_published:
    input:
        stores=per_sweep("results/label/{specimen}/{sweep}.zarr"),
        verified=per_sweep("results/verify/{specimen}/{sweep}.sha256"),
        records=per_sweep("results/poses/{specimen}/{sweep}"),
        bones=[get_specimen_bones(SimpleNamespace(specimen=s)) for s in SPECIMENS],
    output:
        layout=directory("results/release/published"),
    log:
        "logs/export_published/release.log",
    benchmark:
        "benchmarks/export_published/release.tsv"
    conda:
        "../envs/ultrabones.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        bones=lambda wildcards, input: [
            f"{s}={bones_folder(SimpleNamespace(specimen=s), SimpleNamespace(bones=b))}"
            for s, b in zip(SPECIMENS, input.bones)
        ],
    shell:
        "ultrabones export-published {input.stores:q} --records {input.records:q}"
        " --bones {params.bones:q} --out {output.layout:q} > {log:q} 2>&1"


rule export_nnunet:
    input:
        stores=per_sweep("results/label/{specimen}/{sweep}.zarr"),
        verified=per_sweep("results/verify/{specimen}/{sweep}.sha256"),
        splits=RELEASE["splits"],
    output:
        dataset=directory("results/release/nnunet"),
    log:
        "logs/export_nnunet/release.log",
    benchmark:
        "benchmarks/export_nnunet/release.tsv"
    conda:
        "../envs/ultrabones.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        dataset_id=config["release"]["export_nnunet"]["dataset_id"],
        name=config["release"]["export_nnunet"]["name"],
        folds=config["release"]["export_nnunet"]["folds"],
    shell:
        "ultrabones export-nnunet {input.stores:q} --splits {input.splits:q}"
        " --dataset-id {params.dataset_id:q} --name {params.name:q}"
        " --folds {params.folds:q} --out {output.dataset:q} > {log:q} 2>&1"


rule write_manifest:
    input:
        files=release_files(),
    output:
        manifest="results/release/manifest.sha256",
    log:
        "logs/write_manifest/release.log",
    benchmark:
        "benchmarks/write_manifest/release.tsv"
    conda:
        "../envs/ultrabones.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "ultrabones manifest {input.files:q} --out {output.manifest:q} > {log:q} 2>&1"
