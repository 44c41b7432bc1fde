# A person's view: one page with the teacher's and the students' measured scores.


rule summary:
    input:
        scores=expand("results/scores/{model}/{bench}.json", model=SCORED_MODELS, bench=config["evaluation"]["benchmarks"]),
        teacher_quality=rules.teacher_quality.output if is_toy(config["data"]["benchmarks"]) else [],
        filter_report=rules.noun_phrase_filter.output.report,
    output:
        markdown="results/summary.md",
        figure="results/summary.png",
    log:
        log_path("summary"),
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/summary.py"
