# LLaVA-MoD's tables 2-9 on the toy world, from measured score files (mmdistill.tables.comparison_table):
# `results/mod_table<N>.csv` and `.md`, every cell pooled over a model's training seeds as in CoMD's
# tables. Every table has rows for the teacher and the dense SFT student. Comprehension tables read
# MC, SEED-like and open-ended (the paper's GQA ... MMB columns) and their mean; hallucination tables
# the CHAIR-style rates of the detail descriptions (Object HalBench) and POPE. Table 9 distils the
# same student from a weaker teacher (recipe `kd-weak`).

MOD_COMPREHENSION = [*PAPER_BENCHMARKS, "Average"]
MOD_HALLUCINATION = [
    "hallucinated responses",
    "hallucinated mentions",
    "pope",
    "MMHal score",
    "MMHal hallucination rate",
]
MOD_UNAVAILABLE = {
    "MMHal score": "MMHal-Bench's GPT-4 rating of answers to adversarial questions has no toy analog",
    "MMHal hallucination rate": "MMHal-Bench's GPT-4 rating of answers to adversarial questions has no toy analog",
}
MOD_BASE_ROWS = [("teacher", "teacher"), ("dense SFT student", MOD_SFT)]
MOD_E, MOD_K = MOD["experts"], MOD["top_k"]
# table: (title, columns, rows (label, model))
MOD_TABLES = {
    2: (
        "Comprehension: LLaVA-MoD against the CoMD student of the same LLM",
        MOD_COMPREHENSION,
        [
            *MOD_BASE_ROWS,
            ("CoMD student (last iteration)", LAST_MAIN),
            (f"LLaVA-MoD (E{MOD_E}T{MOD_K})", MOD_STUDENT),
        ],
    ),
    3: (
        "Hallucination: LLaVA-MoD against the CoMD student of the same LLM",
        MOD_HALLUCINATION,
        [
            *MOD_BASE_ROWS,
            ("CoMD student (last iteration)", LAST_MAIN),
            (f"LLaVA-MoD (E{MOD_E}T{MOD_K})", MOD_STUDENT),
        ],
    ),
    4: (
        "Preference distillation: comprehension",
        MOD_COMPREHENSION,
        [*MOD_BASE_ROWS, ("mimic", MOD_MIMIC), ("mimic + preference", MOD_STUDENT)],
    ),
    5: (
        "Preference distillation: hallucination",
        MOD_HALLUCINATION,
        [*MOD_BASE_ROWS, ("mimic", MOD_MIMIC), ("mimic + preference", MOD_STUDENT)],
    ),
    6: (
        f"KD against SFT, E{MOD_E}T{MOD_K}",
        MOD_COMPREHENSION,
        [*MOD_BASE_ROWS, ("SFT", mod_sparse("sft")), ("KD", MOD_MIMIC)],
    ),
    7: (
        "Distillation tokens",
        MOD_COMPREHENSION,
        [
            *MOD_BASE_ROWS,
            ("response + instruction", mod_sparse("kd-all")),
            ("response", mod_sparse("kd")),
        ],
    ),
    8: (
        f"Sparse (E{MOD_E}T1) against dense (E1T1) in distillation",
        MOD_COMPREHENSION,
        [
            *MOD_BASE_ROWS,
            ("dense (E1T1)", mod_sparse(MOD_MAIN_RECIPE, 1, 1)),
            (f"sparse (E{MOD_E}T1)", mod_sparse(MOD_MAIN_RECIPE, MOD_E, 1)),
        ],
    ),
}
if (
    config["models"]["weak_teacher"] is not None
):  # null: the run has no weak teacher, hence no table 9
    MOD_TABLES[9] = (
        f"Strong against weak teacher, E{MOD_E}T{MOD_K} mimic distillation",
        MOD_COMPREHENSION,
        [
            *MOD_BASE_ROWS,
            ("weak teacher", "weak_teacher"),
            ("student of the weak teacher", mod_sparse("kd-weak")),
            ("student of the strong teacher", mod_sparse("kd")),
        ],
    )


rule mod_table:
    """LLaVA-MoD table N: one row per model, one column per measure, each cell pooled over training seeds;
    #Param (total, active) from each model's checkpoint; the preference row's pairs and oracle agreement.
    """
    input:
        scores=lambda wildcards: mod_table_scores(*MOD_TABLES[int(wildcards.n)][1:]),
        checkpoints=lambda wildcards: mod_table_checkpoints(
            MOD_TABLES[int(wildcards.n)][2]
        ),
        pair_reports=lambda wildcards: mod_pair_reports(MOD_TABLES[int(wildcards.n)][2]),
    output:
        csv=report(
            "results/mod_table{n}.csv",
            caption="../report/table.rst",
            category="LLaVA-MoD tables",
        ),
        markdown="results/mod_table{n}.md",
    log:
        log_path("mod_table", "table{n}"),
    wildcard_constraints:
        n="[2-9]",
    conda:
        "../envs/report.yaml"
    params:
        title=lambda wildcards: MOD_TABLES[int(wildcards.n)][0],
        columns=lambda wildcards: MOD_TABLES[int(wildcards.n)][1],
        rows=lambda wildcards: MOD_TABLES[int(wildcards.n)][2],
        unavailable=MOD_UNAVAILABLE,
        preference_model=MOD_STUDENT,
        seed=config["seed"],
    script:
        "../scripts/mod_table.py"


rule mod_routing:
    """Do experts specialize? Each expert's share of the top-k routing per layer, by question type, of the
    LLaVA-MoD student of every training seed (pooled) on held-out scenes' questions with the oracle's answers.
    """
    input:
        students=[model_checkpoint(model) for model in model_ids(MOD_STUDENT)],
        scenes=rules.toy_scenes.output.scenes,
        images=rules.toy_scenes.output.images,
    output:
        figure="results/mod_routing.png",
        csv="results/mod_routing.csv",
    log:
        log_path("mod_routing"),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        seed=config["seed"],
        scenes=MOD["routing"]["scenes"],
        questions_per_scene=MOD["routing"]["questions_per_scene"],
        batch_size=config["evaluation"]["batch_size"],
    script:
        "../scripts/mod_routing.py"


rule mod_learning_curves:
    """Training loss against steps of each LLaVA-MoD stage, a line per training seed."""
    input:
        summaries=[path for *_, path in mod_learning_curve_inputs()],
    output:
        figure="results/mod_learning_curves.png",
        csv="results/mod_learning_curves.csv",
    log:
        log_path("mod_learning_curves"),
    conda:
        "../envs/report.yaml"
    params:
        curves=[curve for *curve, _ in mod_learning_curve_inputs()],
    script:
        "../scripts/learning_curves.py"


rule mod_tables:
    """LLaVA-MoD's tables 2-9, the teacher-logits measurements (bytes per token, top-k KL), the learning
    curves and, on the toy world, the routing shares by question type."""
    input:
        expand("results/mod_table{n}.csv", n=MOD_TABLES),
        f"results/bench/teacher_logits_{MOD['distillation_tokens']}.json",
        rules.mod_learning_curves.output,
        rules.mod_routing.output if is_toy(config["data"]["benchmarks"]) else [],
