# CoMD stage 2 (§3.3): competitive distillation, iteration by iteration. Iteration k
# reads the pools of iteration k-1 and writes its own; iteration 0 is the seed pool.
# A run is `main` (tau from comd.stage2.tau) or `tau<t>` for the tau ablation, repeated
# for every training seed; runs share what tau cannot change (see stage2_file in common.smk).

STAGE2 = f"{SEEDED_COMD}/{{run}}"
ITERATIONS = range(1, config["comd"]["stage2"]["iterations"] + 1)
LAST = config["comd"]["stage2"]["iterations"]


wildcard_constraints:
    run="main|tau[0-9.]+",
    k="[0-9]+",


rule comd_seed_pools:
    """Instruction tuning pool and cache pool, both the seed set as single-turn questions (eq. 4)."""
    input:
        seed_set=source("instruction_seed", rules.toy_instruction_seed.output.seed_set),
    output:
        tuning_pool=f"{SEED_POOLS}/tuning_pool.jsonl",
        cache_pool=f"{SEED_POOLS}/cache_pool.jsonl",
        rejects=f"{SEED_POOLS}/seed_rejects.jsonl",
    log:
        log_path("comd_seed_pools"),
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/comd_seed_pools.py"


rule comd_teacher_answers:
    """The teacher answers every instruction of the cache pool (the tuning pool is part of it);
    answers from the previous iteration are kept, so only the new instructions are generated.
    The tuning pool's answers are regrouped per image into multi-turn conversations (§3.3.1).
    """
    input:
        teacher=teacher_checkpoint(),
        tuning_pool=lambda wildcards: stage2_file(
            wildcards.seed, wildcards.run, int(wildcards.k) - 1, "tuning_pool.jsonl"
        ),
        cache_pool=lambda wildcards: stage2_file(
            wildcards.seed, wildcards.run, int(wildcards.k) - 1, "cache_pool.jsonl"
        ),
        earlier_answers=lambda wildcards: (
            [
                stage2_file(
                    wildcards.seed,
                    wildcards.run,
                    int(wildcards.k) - 1,
                    "teacher_answers.jsonl",
                )
            ]
            if int(wildcards.k) > 1
            else []
        ),
        images=source("instruction_seed_image_root", f"{WORLD}/images"),
    output:
        answers=f"{STAGE2}/iter{{k}}/teacher_answers.jsonl",
        tuning_data=f"{STAGE2}/iter{{k}}/tuning_data.json",
    log:
        log_path("comd_teacher_answers", "seed{seed}_{run}_iter{k}"),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        chat_template=CHAT_TEMPLATE,
        seed=lambda wildcards: int(wildcards.seed),
        generation=teacher_generation(),
        max_turns=config["comd"]["stage2"]["max_turns"],
        image_root=image_root("instruction_seed_image_root"),
    script:
        "../scripts/comd_teacher_answers.py"


rule comd_instruction_tuning:
    """Phase 1 (§3.3.1): the student continues from the previous iteration on teacher answers."""
    input:
        init=lambda wildcards: student_checkpoint(
            wildcards.seed, wildcards.run, int(wildcards.k) - 1
        ),
        data=rules.comd_teacher_answers.output.tuning_data,
        images=source("instruction_seed_image_root", f"{WORLD}/images"),
    output:
        model=directory(f"{SEEDED_MODELS}/comd-{{run}}-iter{{k}}"),
        summary=f"{SEEDED_MODELS}/comd-{{run}}-iter{{k}}.training.json",
    log:
        log_path("comd_instruction_tuning", "seed{seed}_{run}_iter{k}"),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        max_reject_rate=config["max_reject_rate"],
        chat_template=CHAT_TEMPLATE,
        seed=lambda wildcards: int(wildcards.seed),
        data_format="conversations",
        image_root=image_root("instruction_seed_image_root"),
        trainable=["projector", "language_model"],
        train=config["comd"]["stage2"]["train"],
        allow_empty_data=True,
    script:
        "../scripts/train_llava.py"


rule comd_assess_augment:
    """Phases 2-3 (§3.3.2-3): judge teacher vs student on the cache pool, write new instructions.
    The teacher's answers judged are fresh draws or its training answers (comd.stage2.assess_teacher_answers).
    """
    input:
        teacher=teacher_checkpoint(),
        student=lambda wildcards: student_checkpoint(
            wildcards.seed, wildcards.run, wildcards.k
        ),
        tuning_pool=lambda wildcards: stage2_file(
            wildcards.seed, wildcards.run, int(wildcards.k) - 1, "tuning_pool.jsonl"
        ),
        cache_pool=lambda wildcards: stage2_file(
            wildcards.seed, wildcards.run, int(wildcards.k) - 1, "cache_pool.jsonl"
        ),
        answers=lambda wildcards: stage2_file(
            wildcards.seed, wildcards.run, wildcards.k, "teacher_answers.jsonl"
        ),
        images=source("instruction_seed_image_root", f"{WORLD}/images"),
    output:
        report=f"{STAGE2}/iter{{k}}/report.json",
        assessment=f"{STAGE2}/iter{{k}}/assessment.jsonl",
        judge_failures=f"{STAGE2}/iter{{k}}/judge_failures.jsonl",
        assessment_teacher_answers=f"{STAGE2}/iter{{k}}/assessment_teacher_answers.jsonl",
        tuning_pool=f"{STAGE2}/iter{{k}}/tuning_pool.jsonl",
        cache_pool=f"{STAGE2}/iter{{k}}/cache_pool.jsonl",
        rejects=f"{STAGE2}/iter{{k}}/augment_rejects.jsonl",
    log:
        log_path("comd_assess_augment", "seed{seed}_{run}_iter{k}"),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        chat_template=CHAT_TEMPLATE,
        seed=lambda wildcards: int(wildcards.seed),
        generation=config["generation"],
        stage2=lambda wildcards: assessment_stage2(wildcards.run),
        image_root=image_root("instruction_seed_image_root"),
    script:
        "../scripts/comd_assess_augment.py"


rule comd_stage2:
    """Every iteration's report and student of the main run, per training seed, each student scored on every benchmark."""
    input:
        [
            stage2_file(seed, "main", k, "report.json")
            for seed in SEEDS
            for k in ITERATIONS
        ],
        score_files(comd_models("main"), config["evaluation"]["benchmarks"]),


rule comd_tau_ablation:
    """The last iteration of one run per tau in comd.tau_ablation (the main run serves its own tau), per training seed."""
    input:
        [
            stage2_file(seed, run, LAST, "report.json")
            for seed in SEEDS
            for run in tau_runs()
        ],
        score_files(
            [comd_models(run)[-1] for run in tau_runs()],
            config["evaluation"]["benchmarks"],
        ),
