# ultrabones: tracked-ultrasound bone labels, from acquisitions to an audited release.
# The rules live in rules/, the code they call in the `ultrabones` package (workflow/).
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


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


rule all:
    default_target: True
    input:
        get_final_output(),
