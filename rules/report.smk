# A person's view: the summary page, the paper's tables 1-5 and Figure 4, all from
# measured score files (mmdistill.tables). Every table is a CSV plus a Markdown render;
# every cell pools a model's training seeds (the mean and an interval over seeds and items).

PAPER_BENCHMARKS = ["mc", "seed", "open"]  # ScienceQA, SEED-Bench, LLaVA test set
TABLE_BENCHMARK = {"table1": "mc", "table2": "seed", "table3": "open"}
LAST_MAIN = comd_models("main")[-1]


rule summary:
    input:
        scores=score_files(SCORED_MODELS, config["evaluation"]["benchmarks"]),
        teacher_quality=(
            rules.teacher_quality.output
            if is_toy(config["data"]["benchmarks"])
            else []
        ),
        filter_report=rules.noun_phrase_filter.output.report,
    output:
        markdown=report(
            "results/summary.md", caption="../report/summary.rst", category="Summary"
        ),
        figure=report(
            "results/summary.png", caption="../report/summary.rst", category="Summary"
        ),
    log:
        log_path("summary"),
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/summary.py"


rule benchmark_table:
    """Tables 1-3: one benchmark by category, one row per model the pipeline built."""
    input:
        scores=lambda wildcards: score_files(
            [model for _, model in comparison_rows()],
            [TABLE_BENCHMARK[wildcards.table]],
        ),
    output:
        csv=report(
            "results/{table}.csv",
            caption="../report/table.rst",
            category="CoMD tables",
        ),
        markdown="results/{table}.md",
    log:
        log_path("benchmark_table", "{table}"),
    wildcard_constraints:
        table="table1|table2|table3",
    conda:
        "../envs/report.yaml"
    params:
        benchmark=lambda wildcards: TABLE_BENCHMARK[wildcards.table],
        rows=comparison_rows(),
        gap_between=["teacher", "student_stage1"],
        seed=config["seed"],
    script:
        "../scripts/benchmark_table.py"


rule tau_table:
    """Table 4: the last iteration of one run per tau in comd.tau_ablation, on the three benchmarks."""
    input:
        scores=score_files(
            [comd_models(run)[-1] for run in tau_runs()], PAPER_BENCHMARKS
        ),
    output:
        csv=report(
            "results/table4.csv", caption="../report/table.rst", category="CoMD tables"
        ),
        markdown="results/table4.md",
    log:
        log_path("tau_table"),
    conda:
        "../envs/report.yaml"
    params:
        title="Tau ablation: the student after the last iteration",
        rows=[
            (f"tau = {run_tau(run):g}", comd_models(run)[-1], {"tau": run_tau(run)})
            for run in tau_runs()
        ],
        benchmarks=evaluated(PAPER_BENCHMARKS),
        seed=config["seed"],
    script:
        "../scripts/benchmarks_table.py"


rule stage1_table:
    """Table 5: CoMD after its last iteration against the same data trained without stage-1 pretraining."""
    input:
        scores=score_files([LAST_MAIN, "comd-no-stage1"], PAPER_BENCHMARKS),
    output:
        csv=report(
            "results/table5.csv", caption="../report/table.rst", category="CoMD tables"
        ),
        markdown="results/table5.md",
    log:
        log_path("stage1_table"),
    conda:
        "../envs/report.yaml"
    params:
        title="Ablation of stage-1 pretraining",
        rows=[
            ("CoMD (stage 1 + stage 2)", LAST_MAIN, {}),
            ("CoMD without stage 1", "comd-no-stage1", {}),
        ],
        benchmarks=evaluated(PAPER_BENCHMARKS),
        seed=config["seed"],
    script:
        "../scripts/benchmarks_table.py"


rule iteration_figure:
    """Figure 4: each benchmark's score after each iteration (0: after stage 1), teacher and baseline as lines."""
    input:
        scores=score_files(
            ["student_stage1", *comd_models("main"), "teacher", "unidirectional"],
            PAPER_BENCHMARKS,
        ),
    output:
        figure=report(
            "results/figure4.png",
            caption="../report/figure4.rst",
            category="CoMD tables",
        ),
        csv="results/figure4.csv",
    log:
        log_path("iteration_figure"),
    conda:
        "../envs/report.yaml"
    params:
        iterations=["student_stage1", *comd_models("main")],
        references={"teacher": "teacher", "unidirectional baseline": "unidirectional"},
        benchmarks=evaluated(PAPER_BENCHMARKS),
        seed=config["seed"],
    script:
        "../scripts/iteration_figure.py"


rule learning_curves:
    """Training loss against steps, one panel per stage, a line per training seed."""
    input:
        summaries=[path for *_, path in learning_curve_inputs()],
    output:
        figure="results/learning_curves.png",
        csv="results/learning_curves.csv",
    log:
        log_path("learning_curves"),
    conda:
        "../envs/report.yaml"
    params:
        curves=[curve for *curve, _ in learning_curve_inputs()],
    script:
        "../scripts/learning_curves.py"


rule tables:
    """Tables 1-5 and Figure 4."""
    input:
        expand("results/table{n}.csv", n=range(1, 6)),
        rules.iteration_figure.output,
