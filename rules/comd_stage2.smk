# CoMD stage 2 (§3.3): competitive distillation, iteration by iteration. Iteration k
# reads the pools of iteration k-1 and writes its own; iteration 0 is the seed pool.

STAGE2 = "results/comd/main"
ITERATIONS = range(1, config["comd"]["stage2"]["iterations"] + 1)


rule comd_seed_pools:
    """Instruction tuning pool and cache pool, both the seed set as single-turn questions (eq. 4)."""
    input:
        seed_set=source("instruction_seed", rules.toy_instructions.output.seed_set),
    output:
        tuning_pool=f"{STAGE2}/iter0/tuning_pool.jsonl",
        cache_pool=f"{STAGE2}/iter0/cache_pool.jsonl",
    log:
        log_path("comd_seed_pools"),
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/comd_seed_pools.py"


rule comd_teacher_answers:
    """The teacher answers every instruction of the cache pool (the tuning pool is part of it)."""
    input:
        teacher=teacher_checkpoint(),
        tuning_pool=previous(f"{STAGE2}/iter{{k}}/tuning_pool.jsonl"),
        cache_pool=previous(f"{STAGE2}/iter{{k}}/cache_pool.jsonl"),
        images=source("instruction_seed_image_root", f"{WORLD}/images"),
    output:
        answers=f"{STAGE2}/iter{{k}}/teacher_answers.jsonl",
        tuning_data=f"{STAGE2}/iter{{k}}/tuning_data.json",
    params:
        seed=config["seed"],
        generation=config["generation"],
        image_root=image_root("instruction_seed_image_root"),
    log:
        log_path("comd_teacher_answers", "iter{k}"),
    threads: max_threads()
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/comd_teacher_answers.py"


rule comd_instruction_tuning:
    """Phase 1 (§3.3.1): the student continues from the previous iteration on teacher answers."""
    input:
        init=lambda wildcards: student_after(int(wildcards.k) - 1),
        data=rules.comd_teacher_answers.output.tuning_data,
        images=source("instruction_seed_image_root", f"{WORLD}/images"),
    output:
        model=directory(f"{MODELS}/comd_iter{{k}}"),
        summary=f"{MODELS}/comd_iter{{k}}.training.json",
    params:
        seed=config["seed"],
        data_format="conversations",
        image_root=image_root("instruction_seed_image_root"),
        trainable=["projector", "language_model"],
        train=config["comd"]["stage2"]["train"],
        allow_empty_data=True,
    log:
        log_path("comd_instruction_tuning", "iter{k}"),
    threads: max_threads()
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/train_llava.py"


rule comd_assess_augment:
    """Phases 2-3 (§3.3.2-3): judge teacher vs student on the cache pool, write new instructions."""
    input:
        teacher=teacher_checkpoint(),
        student=rules.comd_instruction_tuning.output.model,
        tuning_pool=previous(f"{STAGE2}/iter{{k}}/tuning_pool.jsonl"),
        cache_pool=previous(f"{STAGE2}/iter{{k}}/cache_pool.jsonl"),
        answers=rules.comd_teacher_answers.output.answers,
        images=source("instruction_seed_image_root", f"{WORLD}/images"),
    output:
        report=f"{STAGE2}/iter{{k}}/report.json",
        assessment=f"{STAGE2}/iter{{k}}/assessment.jsonl",
        judge_failures=f"{STAGE2}/iter{{k}}/judge_failures.jsonl",
        tuning_pool=f"{STAGE2}/iter{{k}}/tuning_pool.jsonl",
        cache_pool=f"{STAGE2}/iter{{k}}/cache_pool.jsonl",
        rejects=f"{STAGE2}/iter{{k}}/augment_rejects.jsonl",
    params:
        seed=config["seed"],
        generation=config["generation"],
        stage2={k: v for k, v in config["comd"]["stage2"].items() if k not in ("train", "iterations")},
        image_root=image_root("instruction_seed_image_root"),
    log:
        log_path("comd_assess_augment", "iter{k}"),
    threads: max_threads()
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/comd_assess_augment.py"


rule comd_stage2:
    """Every iteration's report and student, with each student scored on every benchmark."""
    input:
        expand(f"{STAGE2}/iter{{k}}/report.json", k=ITERATIONS),
        expand("results/scores/comd_iter{k}/{bench}.json", k=ITERATIONS, bench=config["evaluation"]["benchmarks"]),
