# The built-in toy world: seeded scenes with a ground-truth oracle, and every raw
# dataset the papers use, in miniature. Only built when config says `toy`.


rule toy_scenes:
    """Scenes of every split; the held-out split's scene graphs occur in no training split."""
    output:
        scenes=f"{WORLD}/scenes.jsonl",
        images=directory(f"{WORLD}/images"),
    log:
        log_path("toy_scenes"),
    conda:
        "../envs/world.yaml"
    params:
        seed=config["seed"],
        splits=config["toy_world"]["scenes"],
        held_out_split="bench_test",
        world=toy_world_params(),
    script:
        "../scripts/toy_scenes.py"


rule toy_raw_captions:
    """The raw caption corpus, playing CC3M+SBU+LAION, and one detailed caption per image."""
    input:
        scenes=rules.toy_scenes.output.scenes,
    output:
        raw=f"{WORLD}/raw_captions.jsonl",
        detailed=f"{WORLD}/detailed_captions.jsonl",
    log:
        log_path("toy_raw_captions"),
    conda:
        "../envs/world.yaml"
    params:
        seed=config["seed"],
        captions_per_scene=config["toy_world"]["captions_per_scene"],
    script:
        "../scripts/toy_raw_captions.py"


rule toy_vision_ready_captions:
    """Captions that make the toy student LLM ready to read image tokens: detailed ones of the pretraining
    scenes, raw-style ones of the instruct scenes."""
    input:
        scenes=rules.toy_scenes.output.scenes,
    output:
        captions=f"{WORLD}/vision_ready_captions.jsonl",
    log:
        log_path("toy_vision_ready_captions"),
    conda:
        "../envs/world.yaml"
    params:
        seed=config["seed"],
        captions_per_scene=lambda wildcards: config["toy_models"][
            "student_vision_ready"
        ]["captions_per_scene"],
    script:
        "../scripts/toy_vision_ready_captions.py"


rule toy_instruction_seed:
    """The instruction seed set (LLaVA-80K analog): conversations about the first instruct scenes."""
    input:
        scenes=rules.toy_scenes.output.scenes,
    output:
        seed_set=f"{WORLD}/instruction_seed.json",
    log:
        log_path("toy_instruction_seed"),
    conda:
        "../envs/world.yaml"
    params:
        seed=config["seed"],
        turns=config["toy_world"]["instruction_turns"],
        scenes=config["toy_world"]["seed_set_scenes"],
    script:
        "../scripts/toy_instruction_seed.py"


rule toy_instructions:
    """The teacher's gold supervised data (LLaVA-158K analog, all instruct scenes) and LLM pretraining text."""
    input:
        scenes=rules.toy_scenes.output.scenes,
    output:
        teacher_gold=f"{WORLD}/teacher_gold.json",
        lm_text=f"{WORLD}/lm_text.jsonl",
    log:
        log_path("toy_instructions"),
    conda:
        "../envs/world.yaml"
    params:
        seed=config["seed"],
        gold_answers_per_scene=config["toy_world"]["gold_answers_per_scene"],
        category_questions_per_scene=config["toy_world"]["category_questions_per_scene"],
        grounding_questions_per_scene=config["toy_world"][
            "grounding_questions_per_scene"
        ],
        word_questions_per_scene=config["toy_world"]["word_questions_per_scene"],
        judge_examples_per_scene=config["toy_world"]["judge_examples_per_scene"],
        augment_examples_per_scene=config["toy_world"]["augment_examples_per_scene"],
        augment_refer_by_cell=config["toy_world"]["augment_refer_by_cell"],
        lm_text_sentences=config["toy_world"]["lm_text_sentences"],
    script:
        "../scripts/toy_instructions.py"


rule toy_grounding_questions:
    """The teacher's grounding stage data: existence and content-search questions about the pretrain and instruct scenes."""
    input:
        scenes=rules.toy_scenes.output.scenes,
    output:
        questions=f"{WORLD}/teacher_grounding.json",
    log:
        log_path("toy_grounding_questions"),
    conda:
        "../envs/world.yaml"
    params:
        seed=config["seed"],
        existence_per_scene=config["toy_world"]["existence_questions_per_scene"],
        search_per_scene=config["toy_world"]["search_questions_per_scene"],
        search_word_per_scene=config["toy_world"]["search_word_questions_per_scene"],
    script:
        "../scripts/toy_grounding_questions.py"


rule toy_benchmarks:
    """ScienceQA-, SEED-, POPE- and LLaVA-test-like benchmarks, train and test splits."""
    input:
        scenes=rules.toy_scenes.output.scenes,
    output:
        expand(
            f"{WORLD}/{{bench}}_{{split}}.jsonl",
            bench=BENCHMARKS,
            split=["train", "test"],
        ),
    log:
        log_path("toy_benchmarks"),
    conda:
        "../envs/world.yaml"
    params:
        seed=config["seed"],
        items_per_scene=config["toy_world"]["benchmark_items_per_scene"],
    script:
        "../scripts/toy_benchmarks.py"
