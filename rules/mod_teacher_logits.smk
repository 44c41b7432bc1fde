# LLaVA-MoD §3 (issue #8): the teacher's top-k log-probs for every response token of the
# distillation set, the input of offline mimic distillation, and their measurements.
# DRAFT, not included in the Snakefile yet: the `mod` config block and the toy
# distillation set (captions and conversations) are still to be settled; until then it
# reads the teacher's gold conversations.


rule mod_teacher_logits:
    """Top-k ids, log-probs and residual mass per response token, as shards that stream from disk."""
    input:
        teacher=teacher_checkpoint(),
        data=rules.toy_instructions.output.teacher_gold,
        images=rules.toy_scenes.output.images,
    output:
        logits=directory("results/mod/teacher_logits"),
        bench="results/bench/teacher_logits.json",
    params:
        seed=config["seed"],
        image_root=image_root("teacher_gold"),
        k=config["mod"]["teacher_logits"]["k"],
        batch_size=config["mod"]["teacher_logits"]["batch_size"],
    log:
        log_path("mod_teacher_logits"),
    threads: max_threads()
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/mod_teacher_logits.py"
