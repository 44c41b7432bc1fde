# LLaVA-MoD §3.2, preference distillation (eq. 8): preference pairs in RLAIF-V's format, then DPO
# of the sparse student with the frozen teacher as the reference model, once per training seed.
# The pairs are the student's own samples ranked by the teacher as judge (RLAIF-V's way) or,
# with mod.preference.pairs: comd_assessment, the CoMD assessor's judgements of the main run's
# last iteration (the teacher's answer against the CoMD student's).

MOD_PAIRS = mod_pairs_dir("{seed}", "mod-{recipe}-e{experts}t{top_k}")


rule mod_preference_pairs:
    """RLAIF-V-format pairs (image, question, chosen, rejected), the prompts left without a pair and why,
    and the pairs' agreement with the toy world's oracle."""
    input:
        unpack(mod_pair_inputs),
        teacher=teacher_checkpoint(),
        images=MOD_IMAGES,
        scenes=(
            rules.toy_scenes.output.scenes
            if is_toy(config["data"]["instruction_seed"])
            else []
        ),
    output:
        pairs=f"{MOD_PAIRS}/preference_pairs.jsonl",
        rejects=f"{MOD_PAIRS}/preference_rejects.jsonl",
        report=f"{MOD_PAIRS}/preference_report.json",
    log:
        log_path("mod_preference_pairs", "seed{seed}_{recipe}_e{experts}t{top_k}"),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        chat_template=CHAT_TEMPLATE,
        seed=lambda wildcards: int(wildcards.seed),
        source=MOD["preference"]["pairs"],
        prompts=MOD["preference"]["prompts"],
        samples_per_prompt=MOD["preference"]["samples_per_prompt"],
        temperature=MOD["preference"]["temperature"],
        judge_temperature=config["generation"]["temperature"]["assessor"],
        judge_max_retries=config["comd"]["stage2"]["judge_max_retries"],
        generation={
            key: config["generation"][key]
            for key in ("backend", "batch_size", "max_new_tokens")
        },
        image_root=image_root("instruction_seed_image_root"),
    script:
        "../scripts/mod_preference_pairs.py"


rule mod_preference_distillation:
    """Eq. 8: DPO on the pairs with the frozen teacher as reference (beta from config); experts, routers
    and adaptor trained."""
    input:
        init=f"{SEEDED_MODELS}/mod-{{recipe}}-e{{experts}}t{{top_k}}",
        teacher=teacher_checkpoint(),
        pairs=rules.mod_preference_pairs.output.pairs,
        images=MOD_IMAGES,
    output:
        model=directory(f"{SEEDED_MODELS}/mod-{{recipe}}-e{{experts}}t{{top_k}}-pref"),
        summary=f"{SEEDED_MODELS}/mod-{{recipe}}-e{{experts}}t{{top_k}}-pref.training.json",
    log:
        log_path(
            "mod_preference_distillation", "seed{seed}_{recipe}_e{experts}t{top_k}"
        ),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        chat_template=CHAT_TEMPLATE,
        seed=lambda wildcards: int(wildcards.seed),
        image_root=image_root("instruction_seed_image_root"),
        beta=MOD["preference"]["beta"],
        trainable=MOD["preference"]["trainable"],
        train=MOD["preference"]["train"],
    script:
        "../scripts/mod_preference_distillation.py"
