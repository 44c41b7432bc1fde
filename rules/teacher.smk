# The toy teacher (LLaVA-13B analog): the teacher-size LLM and the toy CLIP, through
# projector alignment, a grounding stage and instruction tuning on gold data. It then plays all three
# CoMD roles from prompts: answer, judge, augment. Real runs load `models.teacher`.
# LLaVA-MoD's table 9 adds a weaker teacher (`weak_teacher`, a smaller LLM), made the same way.


wildcard_constraints:
    teacher="teacher|weak_teacher",


rule teacher_align:
    input:
        vision_tower=rules.toy_clip.output.model,
        llm=f"{MODELS}/llm_{{teacher}}",
        data=rules.toy_raw_captions.output.detailed,
        images=rules.toy_scenes.output.images,
    output:
        model=directory(f"{MODELS}/{{teacher}}_aligned"),
        summary=f"{MODELS}/{{teacher}}_aligned.training.json",
    log:
        log_path("teacher_align", "{teacher}"),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        max_reject_rate=config["max_reject_rate"],
        chat_template=CHAT_TEMPLATE,
        seed=config["seed"],
        data_format="captions",
        image_root=image_root("teacher_gold"),
        trainable=config["teacher"]["align"]["trainable"],
        train=config["teacher"]["align"]["train"],
    script:
        "../scripts/train_llava.py"


rule teacher_ground:
    """Existence and search questions at a small rate: the content search the instruction mix never taught."""
    input:
        init=rules.teacher_align.output.model,
        data=rules.toy_grounding_questions.output.questions,
        images=rules.toy_scenes.output.images,
    output:
        model=directory(f"{MODELS}/{{teacher}}_grounded"),
        summary=f"{MODELS}/{{teacher}}_grounded.training.json",
    log:
        log_path("teacher_ground", "{teacher}"),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        max_reject_rate=config["max_reject_rate"],
        chat_template=CHAT_TEMPLATE,
        seed=config["seed"],
        data_format="conversations",
        image_root=image_root("teacher_gold"),
        trainable=config["teacher"]["ground"]["trainable"],
        train=config["teacher"]["ground"]["train"],
    script:
        "../scripts/train_llava.py"


rule teacher_instruct:
    input:
        init=rules.teacher_ground.output.model,
        data=rules.toy_instructions.output.teacher_gold,
        images=rules.toy_scenes.output.images,
    output:
        model=directory(f"{MODELS}/{{teacher}}"),
        summary=f"{MODELS}/{{teacher}}.training.json",
    log:
        log_path("teacher_instruct", "{teacher}"),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        max_reject_rate=config["max_reject_rate"],
        chat_template=CHAT_TEMPLATE,
        seed=config["seed"],
        data_format="conversations",
        image_root=image_root("teacher_gold"),
        trainable=config["teacher"]["instruct"]["trainable"],
        train=config["teacher"]["instruct"]["train"],
    script:
        "../scripts/train_llava.py"


rule teacher_quality:
    """The teacher as answerer, judge and augmentor, measured against the oracle on held-out scenes."""
    input:
        teacher=teacher_checkpoint(),
        scenes=rules.toy_scenes.output.scenes,
        images=rules.toy_scenes.output.images,
    output:
        "results/teacher_quality.json",
    log:
        log_path("teacher_quality"),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        chat_template=CHAT_TEMPLATE,
        seed=config["seed"],
        num_scenes=config["evaluation"]["teacher_quality_items"],
        questions_per_scene=config["evaluation"]["teacher_quality_questions_per_scene"],
        probe_train_scenes=config["evaluation"]["probe_train_scenes"],
        generation=config["generation"],
    script:
        "../scripts/teacher_quality.py"
