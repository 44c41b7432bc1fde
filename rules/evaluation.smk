# Benchmark scores through lmms-eval: one JSON per (model, benchmark).


rule evaluate:
    input:
        checkpoint=lambda wc: model_checkpoint(wc.model),
        data=lambda wc: benchmark_file(wc.bench, "test"),
        scenes=rules.toy_scenes.output.scenes if is_toy(config["data"]["benchmarks"]) else [],
    output:
        "results/scores/{model}/{bench}.json",
    wildcard_constraints:
        model="teacher|student_stage1|comd-(main|tau[0-9.]+)-iter[0-9]+",
        bench="|".join(BENCHMARKS),
    params:
        seed=config["seed"],
        batch_size=config["evaluation"]["batch_size"],
        temperature=config["evaluation"]["temperature"],
        max_new_tokens=config["generation"]["max_new_tokens"],
        open_ended_judge=config["evaluation"]["open_ended_judge"],
    log:
        log_path("evaluate", "{model}_{bench}"),
    threads: max_threads()
    conda:
        "../envs/eval.yaml"
    script:
        "../scripts/evaluate.py"
