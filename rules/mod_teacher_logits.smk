# LLaVA-MoD §3 (issue #8): the teacher's top-k log-probs for every distilled token of the
# distillation set (the instruction seed set), the input of offline mimic distillation
# (mod.teacher_logits.source: offline), and their measurements in results/bench/. The
# teacher is one model, so its logits serve every training seed; table 9's weaker teacher
# (`weak_teacher`) has its own.


rule mod_teacher_logits:
    """Top-k ids, log-probs and residual mass per distilled token (`tokens`: response or all), as shards that
    stream from disk; bytes per token and the KL of the top-k approximation to the full distribution.
    """
    input:
        teacher=lambda wildcards: teacher_checkpoint(wildcards.teacher),
        data=MOD_DATA,
        images=MOD_IMAGES,
    output:
        logits=directory("results/mod/{teacher}_logits/{tokens}"),
        bench="results/bench/{teacher}_logits_{tokens}.json",
    log:
        log_path("mod_teacher_logits", "{teacher}_{tokens}"),
    wildcard_constraints:
        tokens="response|all",
        teacher="|".join(TEACHERS),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        chat_template=CHAT_TEMPLATE,
        seed=config["seed"],
        image_root=image_root("instruction_seed_image_root"),
        tokens=lambda wildcards: wildcards.tokens,
        k=MOD["teacher_logits"]["k"],
        batch_size=MOD["teacher_logits"]["batch_size"],
    script:
        "../scripts/mod_teacher_logits.py"
