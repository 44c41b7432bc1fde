# mmdistill: CoMD and LLaVA-MoD as file-based rules, from raw data to tables.
# Default config: the built-in toy world (config.yaml). See README.md.

import os
import sys

# The pipeline's logic is the `mmdistill` package in src/; jobs import it from there.
SRC = os.path.join(workflow.basedir, "src")
sys.path.insert(0, SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
)


configfile: os.path.join(workflow.basedir, "config.yaml")


include: "rules/common.smk"
include: "rules/world.smk"
include: "rules/foundation.smk"
include: "rules/teacher.smk"
include: "rules/comd_stage1.smk"
include: "rules/comd_stage2.smk"
include: "rules/comd_baselines.smk"
include: "rules/evaluation.smk"
include: "rules/report.smk"
include: "rules/mod_teacher_logits.smk"
include: "rules/mod_distillation.smk"
include: "rules/mod_preference.smk"
include: "rules/mod_tables.smk"


rule all:
    """Everything: the summary page, learning curves, CoMD's tables 1-5 and Figure 4, LLaVA-MoD's tables 2-9."""
    input:
        "results/summary.md",
        rules.learning_curves.output,
        rules.tables.input,
        rules.mod_tables.input,
