# grok-or-not: every figure of "To grok or not to grok" (Doshi et al., ICLR 2024) from scratch.
#   snakemake --cores 8                                  # the paper's settings (default config)
#   snakemake --cores 2 --configfile config/quick.yaml   # laptop preset
# See README.md.
from snakemake.utils import min_version

min_version("9.27")  # callable `priority:` (longest jobs first)


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/runs.smk"
include: "workflow/rules/grids.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/explorer.smk"
include: "workflow/rules/studies.smk"
include: "workflow/rules/bundle.smk"


report: "workflow/report/workflow.rst"


onsuccess:
    print_claims_summary()


rule all:
    default_target: True
    input:
        all_targets(),
