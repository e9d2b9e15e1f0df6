# ultrabones: tracked-ultrasound bone labels, from acquisitions to an audited release.
# The rules live in rules/, the code they call in the `ultrabones` package (workflow/).
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


# For --sdm apptainer: the image built from envs/ultrabones.def (see the README).
container: "ultrabones.sif"


report: "report/workflow.rst"


include: "rules/common.smk"


wildcard_constraints:
    specimen=SPECIMEN_PATTERN,
    sweep=SWEEP_PATTERN,


include: "rules/ingest.smk"
include: "rules/calibrate.smk"
include: "rules/register.smk"
include: "rules/label.smk"
include: "rules/qc.smk"
include: "rules/export.smk"
include: "rules/model.smk"


# Bookkeeping jobs of seconds: on a cluster they run on the submitting node.
localrules:
    all,
    plot_release_qa,
    audit_release_index,
    write_manifest,


rule all:
    default_target: True
    input:
        get_final_output(),
