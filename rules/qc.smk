# Stage 5: quality control figures per sweep and for the whole release.


rule plot_sweep_qa:
    input:
        store="results/label/{specimen}/{sweep}.zarr",
    output:
        overlays=report(
            "results/release/qa/{specimen}/{sweep}/overlays.png",
            caption="../report/overlays.rst",
            category="Label QC",
            subcategory="{specimen}",
            labels={"sweep": "{sweep}", "figure": "overlays"},
        ),
        corrections=report(
            "results/release/qa/{specimen}/{sweep}/corrections.png",
            caption="../report/corrections.rst",
            category="Fiducial corrections",
            subcategory="{specimen}",
            labels={"sweep": "{sweep}", "figure": "corrections"},
        ),
    log:
        "logs/plot_sweep_qa/{specimen}/{sweep}.log",
    benchmark:
        "benchmarks/plot_sweep_qa/{specimen}/{sweep}.tsv"
    conda:
        "../envs/ultrabones.yaml"
    threads: 1
    resources:
        runtime=10,
    params:
        frames=config["qc"]["overlay_frames"],
        max_correction_mm=config["engine"]["max_correction_mm"],
    shell:
        "ultrabones qa {input.store:q} --frames {params.frames:q}"
        " --max-correction-mm {params.max_correction_mm:q}"
        " --overlays {output.overlays:q} --corrections {output.corrections:q}"
        " > {log:q} 2>&1"


rule plot_release_qa:
    input:
        stats=RELEASE["stats"],
    output:
        discard_rate=report(
            "results/release/qa/discard_rate.png",
            caption="../report/discard_rate.rst",
            category="Release",
        ),
    log:
        "logs/plot_release_qa/release.log",
    benchmark:
        "benchmarks/plot_release_qa/release.tsv"
    conda:
        "../envs/ultrabones.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "ultrabones qa-summary {input.stats:q} --discard-rate {output.discard_rate:q}"
        " > {log:q} 2>&1"


rule audit_sweep:
    input:
        store="results/label/{specimen}/{sweep}.zarr",
        bones=get_specimen_bones,
    output:
        audit=report(
            directory("results/qc/audit/{specimen}/{sweep}"),
            patterns=["audit_{name}.png"],
            caption="../report/audit_frames.rst",
            category="Audit",
            subcategory="{specimen}",
            labels={"sweep": "{sweep}", "figure": "audit_{name}"},
        ),
    log:
        "logs/audit_sweep/{specimen}/{sweep}.log",
    benchmark:
        "benchmarks/audit_sweep/{specimen}/{sweep}.tsv"
    conda:
        "../envs/ultrabones.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        bones=bones_folder,
        truth=lambda wildcards: (
            f"--truth {shlex.quote(truth_folder(wildcards))}" if SIMULATED else ""
        ),
    shell:
        "ultrabones audit {input.store:q} --bones {params.bones:q} {params.truth}"
        " --out {output.audit:q} > {log:q} 2>&1"


rule compute_otsu:
    input:
        stores=per_sweep("results/label/{specimen}/{sweep}.zarr"),
    output:
        otsu="results/qc/otsu.json",
        figure=report(
            "results/qc/otsu.png",
            caption="../report/otsu.rst",
            category="Release",
        ),
    log:
        "logs/compute_otsu/all.log",
    benchmark:
        "benchmarks/compute_otsu/all.tsv"
    conda:
        "../envs/ultrabones.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    shell:
        "ultrabones otsu {input.stores:q} --figure {output.figure:q}"
        " --out {output.otsu:q} > {log:q} 2>&1"


if SIMULATED:

    rule evaluate_sweep:
        input:
            store="results/label/{specimen}/{sweep}.zarr",
            sweep="results/simulate/sweep/{specimen}/{sweep}",
        output:
            scores=report(
                directory("results/qc/evaluate/{specimen}/{sweep}"),
                patterns=["eval_{name}.png"],
                caption="../report/audit_evaluation.rst",
                category="Evaluation",
                subcategory="{specimen}",
                labels={"sweep": "{sweep}", "figure": "eval_{name}"},
            ),
        log:
            "logs/evaluate_sweep/{specimen}/{sweep}.log",
        benchmark:
            "benchmarks/evaluate_sweep/{specimen}/{sweep}.tsv"
        conda:
            "../envs/ultrabones.yaml"
        threads: 1
        resources:
            mem_mb=4000,
        params:
            truth=lambda wildcards: f"{truth_folder(wildcards)}/label_visible",
        shell:
            "ultrabones evaluate --pred {input.store:q} --pred-var label"
            " --truth {params.truth:q} --out {output.scores:q} > {log:q} 2>&1"


rule audit_sweep_page:
    input:
        store="results/label/{specimen}/{sweep}.zarr",
    output:
        page=report(
            directory("results/release/audit/{specimen}/{sweep}"),
            htmlindex="index.html",
            caption="../report/audit_page.rst",
            category="Audit pages",
            subcategory="{specimen}",
            labels={"sweep": "{sweep}", "figure": "audit page"},
        ),
    log:
        "logs/audit_sweep_page/{specimen}/{sweep}.log",
    benchmark:
        "benchmarks/audit_sweep_page/{specimen}/{sweep}.tsv"
    conda:
        "../envs/ultrabones.yaml"
    threads: 1
    params:
        max_correction_mm=config["engine"]["max_correction_mm"],
    shell:
        "ultrabones audit-page {input.store:q} --max-correction-mm {params.max_correction_mm:q}"
        " --out {output.page:q} > {log:q} 2>&1"


rule audit_release_index:
    input:
        stats=RELEASE["stats"],
        stores=per_sweep("results/label/{specimen}/{sweep}.zarr"),
        pages=per_sweep("results/release/audit/{specimen}/{sweep}"),
    output:
        index=report(
            "results/release/audit/index.html",
            caption="../report/audit_index.rst",
            category="Audit pages",
        ),
        script="results/release/audit/audit.js",
        style="results/release/audit/audit.css",
    log:
        "logs/audit_release_index/release.log",
    benchmark:
        "benchmarks/audit_release_index/release.tsv"
    conda:
        "../envs/ultrabones.yaml"
    threads: 1
    resources:
        runtime=10,
    shell:
        "ultrabones audit-page {input.stores:q} --stats {input.stats:q}"
        " --index {output.index:q} --script {output.script:q}"
        " --style {output.style:q} > {log:q} 2>&1"
