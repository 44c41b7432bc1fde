# Downstream evaluation (CoMD §4.1): fine-tuning on a benchmark's train split where the
# paper does (ScienceQA), then scores through lmms-eval, one JSON per (model id, benchmark):
# `results/scores/teacher/<bench>.json`, `results/scores/seed<s>/<model>/<bench>.json`.


rule finetune_data:
    """A benchmark's train split as one-turn conversations, answers as the model should give them."""
    input:
        data=lambda wildcards: benchmark_file(wildcards.bench, "train"),
    output:
        data="results/downstream/{bench}_train.json",
    log:
        log_path("finetune_data", "{bench}"),
    wildcard_constraints:
        bench="|".join(BENCHMARKS),
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/finetune_data.py"


rule downstream_finetune:
    """The model fine-tuned on the benchmark's train split before its test (ScienceQA: 6 epochs, lr 2e-5)."""
    input:
        init=lambda wildcards: model_checkpoint(wildcards.model),
        data=rules.finetune_data.output.data,
        images=source("benchmarks", f"{WORLD}/images"),
    output:
        model=directory(f"{MODELS}/finetuned_{{bench}}/{{model}}"),
        summary=f"{MODELS}/finetuned_{{bench}}/{{model}}.training.json",
    log:
        log_path("downstream_finetune", "{model}_{bench}"),
    wildcard_constraints:
        model=SCORED_MODEL_PATTERN,
        bench="|".join(BENCHMARKS),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        max_reject_rate=config["max_reject_rate"],
        chat_template=CHAT_TEMPLATE,
        seed=lambda wildcards: model_seed(wildcards.model),
        data_format="conversations",
        image_root=lambda wildcards: os.path.dirname(
            benchmark_file(wildcards.bench, "train")
        ),
        trainable=["projector", "language_model"],
        train=lambda wildcards: finetune_train(wildcards.model),
    script:
        "../scripts/train_llava.py"


rule evaluate:
    """One model on one benchmark's test split, scored by its evaluation.protocol; open-ended ones by the judge."""
    input:
        checkpoint=lambda wildcards: evaluated_checkpoint(
            wildcards.model, wildcards.bench
        ),
        data=lambda wildcards: benchmark_file(wildcards.bench, "test"),
        # the images the items name (relative to the benchmark folder): hashed into the record, and a rerun trigger
        images=(
            f"{WORLD}/images"
            if is_toy(config["data"]["benchmarks"])
            else config["data"]["benchmarks"]
        ),
        scenes=(
            rules.toy_scenes.output.scenes
            if is_toy(config["data"]["benchmarks"])
            else []
        ),
        judge_model=lambda wildcards: open_ended_judge_checkpoint(wildcards.bench),
    output:
        "results/scores/{model}/{bench}.json",
    log:
        log_path("evaluate", "{model}_{bench}"),
    wildcard_constraints:
        model=SCORED_MODEL_PATTERN,
        bench="|".join(BENCHMARKS),
    conda:
        "../envs/eval.yaml"
    threads: max_threads()
    params:
        chat_template=CHAT_TEMPLATE,
        seed=lambda wildcards: model_seed(wildcards.model),
        batch_size=config["evaluation"]["batch_size"],
        temperature=config["evaluation"]["temperature"],
        protocol=lambda wildcards: config["evaluation"]["protocol"][wildcards.bench],
        open_ended_max_new_tokens=config["evaluation"]["open_ended_max_new_tokens"],
        judge=lambda wildcards: open_ended_judge_settings(wildcards.bench),
    script:
        "../scripts/evaluate.py"
