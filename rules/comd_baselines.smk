# What CoMD is compared with: the unidirectional baseline (tables 1-3) and CoMD without
# stage-1 pretraining (table 5). Both train on the main run's data of their training seed;
# see mmdistill.comd.baselines.


rule unidirectional_data:
    """Teacher answers to the initial pool, repeated to as many examples as CoMD trained on."""
    input:
        initial=lambda wildcards: stage2_file(
            wildcards.seed, "main", 1, "tuning_data.json"
        ),
        comd_data=lambda wildcards: main_tuning_data(wildcards.seed),
    output:
        data=f"{SEEDED_COMD}/unidirectional/tuning_data.json",
        report=f"{SEEDED_COMD}/unidirectional/report.json",
    log:
        log_path("unidirectional_data", "seed{seed}"),
    conda:
        "../envs/train.yaml"
    params:
        seed=lambda wildcards: int(wildcards.seed),
    script:
        "../scripts/unidirectional_data.py"


rule unidirectional_tuning:
    """The baseline student: instruction-tuned from stage 1 in one run, no assessment, no augmentation."""
    input:
        init=rules.student_stage1.output.model,
        data=rules.unidirectional_data.output.data,
        images=source("instruction_seed_image_root", f"{WORLD}/images"),
    output:
        model=directory(f"{SEEDED_MODELS}/unidirectional"),
        summary=f"{SEEDED_MODELS}/unidirectional.training.json",
    log:
        log_path("unidirectional_tuning", "seed{seed}"),
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
    script:
        "../scripts/train_llava.py"


rule without_stage1_data:
    """Every iteration's tuning data of the main run, in iteration order (table 5)."""
    input:
        comd_data=lambda wildcards: main_tuning_data(wildcards.seed),
    output:
        data=f"{SEEDED_COMD}/no_stage1/tuning_data.json",
    log:
        log_path("without_stage1_data", "seed{seed}"),
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/without_stage1_data.py"


rule without_stage1_tuning:
    """Table 5: the student assembled with a fresh projector, trained on all generated data, no stage 1."""
    input:
        vision_tower=vision_tower_checkpoint(),
        llm=student_llm_checkpoint(),
        data=rules.without_stage1_data.output.data,
        images=source("instruction_seed_image_root", f"{WORLD}/images"),
    output:
        model=directory(f"{SEEDED_MODELS}/comd-no-stage1"),
        summary=f"{SEEDED_MODELS}/comd-no-stage1.training.json",
    log:
        log_path("without_stage1_tuning", "seed{seed}"),
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
    script:
        "../scripts/train_llava.py"
