# What CoMD is compared with: the unidirectional baseline (tables 1-3) and CoMD without
# stage-1 pretraining (table 5). Both train on the main run's data; see mmdistill.comd_baselines.

MAIN_TUNING_DATA = expand("results/comd/main/iter{k}/tuning_data.json", k=ITERATIONS)


rule unidirectional_data:
    """Teacher answers to the initial pool, repeated to as many examples as CoMD trained on."""
    input:
        initial="results/comd/main/iter1/tuning_data.json",
        comd_data=MAIN_TUNING_DATA,
    output:
        data="results/comd/unidirectional/tuning_data.json",
        report="results/comd/unidirectional/report.json",
    params:
        seed=config["seed"],
    log:
        log_path("unidirectional_data"),
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/unidirectional_data.py"


rule unidirectional_tuning:
    """The baseline student: instruction-tuned from stage 1 in one run, no assessment, no augmentation."""
    input:
        init=f"{MODELS}/student_stage1",
        data=rules.unidirectional_data.output.data,
        images=source("instruction_seed_image_root", f"{WORLD}/images"),
    output:
        model=directory(f"{MODELS}/unidirectional"),
        summary=f"{MODELS}/unidirectional.training.json",
    params:
        seed=config["seed"],
        data_format="conversations",
        image_root=image_root("instruction_seed_image_root"),
        trainable=["projector", "language_model"],
        train=config["comd"]["stage2"]["train"],
    log:
        log_path("unidirectional_tuning"),
    threads: max_threads()
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/train_llava.py"


rule without_stage1_data:
    """Every iteration's tuning data of the main run, in iteration order (table 5)."""
    input:
        comd_data=MAIN_TUNING_DATA,
    output:
        data="results/comd/no_stage1/tuning_data.json",
    log:
        log_path("without_stage1_data"),
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
        model=directory(f"{MODELS}/comd-no-stage1"),
        summary=f"{MODELS}/comd-no-stage1.training.json",
    params:
        seed=config["seed"],
        data_format="conversations",
        image_root=image_root("instruction_seed_image_root"),
        trainable=["projector", "language_model"],
        train=config["comd"]["stage2"]["train"],
    log:
        log_path("without_stage1_tuning"),
    threads: max_threads()
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/train_llava.py"
