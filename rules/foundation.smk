# Toy foundation models, trained here because none can be downloaded: a word-level
# tokenizer, a tiny CLIP (contrastive) and tiny Llama LLMs (causal LM), in the same
# transformers classes real checkpoints use.


rule toy_tokenizer:
    """The word-level tokenizer over training texts only: no benchmark test split."""
    input:
        # the seed set's words are the teacher gold's (same scenes, same templates)
        texts=[
            f"{WORLD}/raw_captions.jsonl",
            f"{WORLD}/teacher_gold.json",
            f"{WORLD}/lm_text.jsonl",
        ]
        + expand(f"{WORLD}/{{bench}}_train.jsonl", bench=BENCHMARKS),
    output:
        directory(f"{MODELS}/tokenizer"),
    log:
        log_path("toy_tokenizer"),
    conda:
        "../envs/train.yaml"
    params:
        max_length=config["toy_models"]["max_positions"],
    script:
        "../scripts/toy_tokenizer.py"


rule toy_clip:
    """A tiny CLIP trained contrastively on detailed toy captions."""
    input:
        tokenizer=rules.toy_tokenizer.output,
        captions=rules.toy_raw_captions.output.detailed,
        images=rules.toy_scenes.output.images,
    output:
        model=directory(f"{MODELS}/clip"),
        summary=f"{MODELS}/clip.training.json",
    log:
        log_path("toy_clip"),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        seed=config["seed"],
        image_size=config["toy_world"]["image_size"],
        architecture={
            k: v for k, v in config["toy_models"]["clip"].items() if k != "train"
        },
        train=config["toy_models"]["clip"]["train"],
    script:
        "../scripts/toy_clip.py"


rule toy_llm:
    """Tiny Llama LLMs, teacher-size (and the weaker teacher's) and student-size, pretrained as causal LMs on toy text."""
    input:
        tokenizer=rules.toy_tokenizer.output,
        text=rules.toy_instructions.output.lm_text,
    output:
        model=directory(f"{MODELS}/llm_{{size}}"),
        summary=f"{MODELS}/llm_{{size}}.training.json",
    log:
        log_path("toy_llm", "{size}"),
    wildcard_constraints:
        size="teacher|weak_teacher|student",
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        seed=config["seed"],
        architecture=lambda wc: {
            k: v
            for k, v in config["toy_models"]["llm"][wc.size].items()
            if k != "train"
        },
        max_positions=config["toy_models"]["max_positions"],
        train=lambda wc: config["toy_models"]["llm"][wc.size]["train"],
    script:
        "../scripts/toy_llm.py"


rule toy_student_vision_ready:
    """The toy student LLM trained with a throwaway projector on captions and kept alone: ready to read
    image tokens, as a real LLM is by scale, so that stage 1 can stay projector-only."""
    input:
        llm=f"{MODELS}/llm_student",
        vision_tower=vision_tower_checkpoint(),
        data=rules.toy_vision_ready_captions.output.captions,
        images=rules.toy_scenes.output.images,
    output:
        model=directory(f"{MODELS}/llm_student_vision_ready"),
        summary=f"{MODELS}/llm_student_vision_ready.training.json",
    log:
        log_path("toy_student_vision_ready"),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        max_reject_rate=config["max_reject_rate"],
        chat_template=CHAT_TEMPLATE,
        seed=config["seed"],
        image_root=world_image_root,
        train=lambda wildcards: config["toy_models"]["student_vision_ready"]["train"],
    script:
        "../scripts/toy_student_vision_ready.py"
