# Stage 6: the release (stores, splits, reject statistics, card), the public loader
# layout and the manifest over every release file.


rule build_release:
    input:
        stores=per_sweep("results/label/{specimen}/{sweep}.zarr"),
    output:
        labels=directory("results/release/labels"),
        splits="results/release/splits.csv",
        stats=report(
            "results/release/reject_statistics.csv",
            caption="../report/reject_statistics.rst",
            category="Release",
        ),
        card="results/release/README.md",
    log:
        "logs/build_release/release.log",
    benchmark:
        "benchmarks/build_release/release.tsv"
    conda:
        "../envs/ultrabones.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        out=lambda wildcards, output: str(Path(output.card).parent),
        mode=config["release"]["splits"]["mode"],
        train=config["release"]["splits"]["train"],
        val=config["release"]["splits"]["val"],
        test=config["release"]["splits"]["test"],
        seed=config["release"]["splits"]["seed"],
        config_hash=config_hash(),
    shell:
        "ultrabones release {input.stores:q} --split-mode {params.mode:q}"
        " --train {params.train:q} --val {params.val:q} --test {params.test:q}"
        " --seed {params.seed:q} --config-hash {params.config_hash:q}"
        " --out {params.out:q} > {log:q} 2>&1"


rule export_public:
    input:
        store="results/label/{specimen}/{sweep}.zarr",
    output:
        record=directory("results/release/public/{specimen}/{sweep}"),
    log:
        "logs/export_public/{specimen}/{sweep}.log",
    benchmark:
        "benchmarks/export_public/{specimen}/{sweep}.tsv"
    conda:
        "../envs/ultrabones.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "ultrabones export-public {input.store:q} --out {output.record:q} > {log:q} 2>&1"


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
    params:
        root=lambda wildcards, output: str(Path(output.manifest).parent),
    shell:
        "ultrabones manifest {input.files:q} --root {params.root:q}"
        " --out {output.manifest:q} > {log:q} 2>&1"
