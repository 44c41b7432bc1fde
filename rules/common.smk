# Helpers shared by all rule files (config validation, sources, paths).

import re
from pathlib import Path

from mmdistill.config import ConfigError, canonical_config, validate_config
from mmdistill.conversation import TOY_TEMPLATES

validate_config(config, Path(workflow.basedir) / "config.schema.yaml", source="config")
# Params reach Snakemake in one canonical form (mappings in the schema's key order, whole numbers as ints), so a
# config that only reorders keys or writes 1.0 for 1 plans nothing (see mmdistill.config.canonical_config).
_canonical = canonical_config(config, Path(workflow.basedir) / "config.schema.yaml")
config.clear()
config.update(_canonical)
if (
    config["evaluation"]["open_ended_judge"] == "reference"
    and config["data"]["benchmarks"] != "toy"
    and "open" in config["evaluation"]["benchmarks"]
):
    raise ConfigError(
        "config: `evaluation.open_ended_judge`: the reference judge scores against toy scene graphs; "
        "with real `data.benchmarks` set it to 'teacher' or 'api', or drop 'open' from "
        "`evaluation.benchmarks`"
    )
if (
    config["evaluation"]["open_ended_judge"] == "api"
    and not config["evaluation"]["judge_api"]["model"]
):
    raise ConfigError(
        "config: `evaluation.judge_api.model`: the api judge needs the endpoint's model name"
    )

if config["models"]["chat_template"] not in TOY_TEMPLATES and "toy" in (
    config["models"]["teacher"],
    config["models"]["student_llm"],
):
    raise ConfigError(
        f"config: `models.chat_template`: {config['models']['chat_template']!r} needs real models; "
        f"the toy models' word-level tokenizer knows only the templates {TOY_TEMPLATES}"
    )

if config["mod"]["preference"]["pairs"] == "rlaif_v" and (
    "toy"
    in (
        config["data"]["preference_pairs"],
        config["data"]["preference_pairs_image_root"],
    )
):
    raise ConfigError(
        "config: `data.preference_pairs`: `mod.preference.pairs: rlaif_v` needs the RLAIF-V pairs "
        "(JSON lines, see mmdistill.adapters) and `data.preference_pairs_image_root` on disk"
    )

if config["mod"]["top_k"] > config["mod"]["experts"]:
    raise ConfigError(
        f"config: `mod.top_k`: {config['mod']['top_k']} active experts of "
        f"`mod.experts` ({config['mod']['experts']})"
    )

if config["toy_world"]["seed_set_scenes"] > config["toy_world"]["scenes"]["instruct"]:
    raise ConfigError(
        f"config: `toy_world.seed_set_scenes`: {config['toy_world']['seed_set_scenes']} is more than "
        f"`toy_world.scenes.instruct` ({config['toy_world']['scenes']['instruct']})"
    )

TOY = "toy"
CHAT_TEMPLATE = config["models"][
    "chat_template"
]  # the prompt format of every model (mmdistill.conversation)
WORLD = "results/world"
MODELS = "results/models"
BENCHMARKS = ["mc", "seed", "pope", "open"]
# The student side repeats once per training seed (config `seeds`); the world, the toy
# CLIP and LLMs and the teacher are one, made with config `seed`. A student's files lie
# under a `seed<s>` folder: its checkpoints, its CoMD runs and baselines' data.
SEEDS = config["seeds"]
SEEDED_MODELS = f"{MODELS}/seed{{seed}}"
SEEDED_COMD = "results/comd/seed{seed}"
# Iteration 0 of CoMD stage 2: the seed pools, data that every training seed and run shares.
SEED_POOLS = "results/comd/iter0"
# Models on the summary page. A scored model's id (its path under results/models/ and
# results/scores/) is `teacher` or `seed<s>/<name>` (see model_id); every id matches SCORED_MODEL_PATTERN.
SCORED_MODELS = ["teacher", "student_stage1"]
TEACHERS = (
    "teacher",
    "weak_teacher",
)  # one model each, made with config `seed`; the weak one is LLaVA-MoD table 9's
SCORED_MODEL_PATTERN = (
    "teacher|weak_teacher|seed[0-9]+/(student_stage1|unidirectional|comd-no-stage1"
    "|comd-(main|tau[0-9.]+)-iter[0-9]+|mod-(kd|kd-all|kd-weak|sft)-(dense|e[0-9]+t[0-9]+)(-pref)?)"
)


wildcard_constraints:
    seed="[0-9]+",


def is_toy(value):
    return value == TOY


def source(key, toy_path):
    """The file a `data.*` key points at, or the toy world's file when it says `toy`."""
    value = config["data"][key]
    return toy_path if is_toy(value) else value


def max_threads():
    """A multi-threaded rule's threads: the cores a local run was given (`--cores`). A cluster run has no
    `--cores`, and its threads come from the profile's `set-threads` (slurm/config.yaml), never from the
    submit host; a rule the profile leaves out gets one."""
    return workflow.resource_settings.cores or 1


def log_path(rule_name, name="job"):
    return f"results/logs/{rule_name}/{name}.log"


def teacher_checkpoint(teacher="teacher"):
    """The teacher's checkpoint, or LLaVA-MoD table 9's weaker one (`weak_teacher`): toy-built or from `models`."""
    return (
        f"{MODELS}/{teacher}"
        if is_toy(config["models"][teacher])
        else config["models"][teacher]
    )


def vision_tower_checkpoint():
    return (
        f"{MODELS}/clip"
        if is_toy(config["models"]["vision_tower"])
        else config["models"]["vision_tower"]
    )


def student_llm_checkpoint():
    """The student's LLM: a real checkpoint, or the toy one, made vision-ready unless
    toy_models.student_vision_ready is null."""
    if not is_toy(config["models"]["student_llm"]):
        return config["models"]["student_llm"]
    if config["toy_models"]["student_vision_ready"] is None:
        return f"{MODELS}/llm_student"
    return f"{MODELS}/llm_student_vision_ready"


def model_id(name, seed):
    """The id of model `name` trained with training seed `seed`: `seed<s>/<name>`; a teacher is one model, its name."""
    return name if name in TEACHERS else f"seed{seed}/{name}"


def model_ids(name):
    """The ids of model `name`: one per training seed (config `seeds`), a teacher's one."""
    return [model_id(name, seed) for seed in ([None] if name in TEACHERS else SEEDS)]


def model_seed(model):
    """The seed of the jobs that fine-tune or evaluate a model id: its training seed; a teacher's is config `seed`."""
    return (
        config["seed"]
        if model in TEACHERS
        else int(re.match(r"seed(\d+)", model).group(1))
    )


def model_checkpoint(model):
    """Checkpoint of a scored model id (see SCORED_MODEL_PATTERN)."""
    return teacher_checkpoint(model) if model in TEACHERS else f"{MODELS}/{model}"


def finetune_train(model):
    """evaluation.finetune.train for a model id; a teacher's at finetune.teacher_learning_rate where set.
    CoMD §4.1 fine-tunes at the rate of instruction tuning (2e-5); the toy teacher was tuned slower than the students.
    """
    train = config["evaluation"]["finetune"]["train"]
    rate = config["evaluation"]["finetune"].get("teacher_learning_rate")
    return {**train, "learning_rate": rate} if model in TEACHERS and rate else train


def evaluated_checkpoint(model, bench):
    """What a benchmark tests: the model fine-tuned on its train split where evaluation.finetune asks (§4.1)."""
    if bench in config["evaluation"]["finetune"]["benchmarks"]:
        return f"{MODELS}/finetuned_{bench}/{model}"
    return model_checkpoint(model)


def open_ended_judge_checkpoint(bench):
    """The judge model an evaluation needs: the teacher, for open-ended answers when it is the judge."""
    return (
        teacher_checkpoint()
        if bench == "open" and config["evaluation"]["open_ended_judge"] == "teacher"
        else []
    )


def open_ended_judge_settings(bench):
    """The judge of a benchmark's answers (None: exact-match scoring); the teacher judges as the CoMD assessor does,
    with the generation backend and the assessor's settings (which then are params of its evaluations); `api` is
    the OpenAI-compatible endpoint of `evaluation.judge_api`."""
    name = config["evaluation"]["open_ended_judge"] if bench == "open" else None
    if name == "api":
        return {"name": name, "api": config["evaluation"]["judge_api"]}
    if name != "teacher":
        return {"name": name}
    generation = config["generation"]
    return {
        "name": name,
        "backend": generation["backend"],
        "batch_size": generation["batch_size"],
        "temperature": generation["temperature"]["assessor"],
        "max_new_tokens": generation["max_new_tokens"],
        "max_retries": config["comd"]["stage2"]["judge_max_retries"],
    }


def stage2_file(seed, run, k, name):
    """A file of iteration k of a CoMD run with training seed `seed` (iteration 0: the seed pools).

    The seed pools (k = 0) are data, the same for every seed and run. Nothing depends on
    tau before iteration 1's assessment, so within a seed every run shares the main run's
    iteration-1 teacher answers and tuning; a run's own files start with iteration 1's
    assessment and new pools.
    """
    k = int(k)
    if k == 0:
        return f"{SEED_POOLS}/{name}"
    shared = k == 1 and name in ("teacher_answers.jsonl", "tuning_data.json")
    return f"{SEEDED_COMD.format(seed=seed)}/{'main' if shared else run}/iter{k}/{name}"


def main_tuning_data(seed):
    """Every iteration's tuning data of the main CoMD run with training seed `seed`, in iteration order."""
    return [
        stage2_file(seed, "main", k, "tuning_data.json")
        for k in range(1, config["comd"]["stage2"]["iterations"] + 1)
    ]


def student_model(run, k):
    """The student after iteration k of a CoMD run (0: after stage 1; 1: shared with the main run)."""
    k = int(k)
    if k == 0:
        return "student_stage1"
    return f"comd-{'main' if k == 1 else run}-iter{k}"


def student_checkpoint(seed, run, k):
    """The checkpoint of the student after iteration k of a CoMD run with training seed `seed`."""
    return model_checkpoint(model_id(student_model(run, k), seed))


def run_tau(run):
    """The difficulty threshold of a CoMD run: `main` uses comd.stage2.tau, `tau<t>` uses t."""
    return (
        config["comd"]["stage2"]["tau"]
        if run == "main"
        else float(run.removeprefix("tau"))
    )


def teacher_generation():
    """The generation settings of a CoMD run's teacher answers for training: the teacher's temperature
    only, so the other roles' temperatures are params of the assessments alone."""
    generation = config["generation"]
    return {
        **{key: generation[key] for key in ("backend", "batch_size", "max_new_tokens")},
        "temperature": generation["temperature"]["teacher"],
    }


def assessment_stage2(run):
    """The comd.stage2 keys a CoMD assessment reads, with the run's tau."""
    stage2 = config["comd"]["stage2"]
    keys = ("rouge_l_threshold", "judge_max_retries", "assess_teacher_answers")
    return {**{key: stage2[key] for key in keys}, "tau": run_tau(run)}


def tau_runs():
    """One run per comd.tau_ablation value; a value equal to the main run's tau is the main run."""
    main_tau = config["comd"]["stage2"]["tau"]
    return list(
        dict.fromkeys(
            "main" if tau == main_tau else f"tau{tau:g}"
            for tau in config["comd"]["tau_ablation"]
        )
    )


def benchmark_file(bench, split):
    return f"{source('benchmarks', WORLD)}/{bench}_{split}.jsonl"


def image_root(data_key):
    """A params function: the folder that image paths are relative to, from the job's `images` input.

    Toy records name images as `images/<id>.png` relative to the world folder; a real
    dataset's `image` fields are relative to the configured image root itself.
    """
    if is_toy(config["data"][data_key]):
        return world_image_root
    return lambda wildcards, input: input.images


def world_image_root(wildcards, input):
    """A params function for toy-world data: the world folder above the job's `images` input."""
    return str(Path(input.images).parent)


def toy_world_params():
    return {
        key: config["toy_world"][key]
        for key in (
            "image_size",
            "grid",
            "min_objects",
            "max_objects",
            "text_probability",
        )
    }


def comd_models(run):
    """The student after each iteration of a CoMD run."""
    return [
        student_model(run, k)
        for k in range(1, config["comd"]["stage2"]["iterations"] + 1)
    ]


def comparison_rows():
    """Tables 1-3: (row label, model): teacher, stage-1 student, unidirectional baseline, CoMD per iteration."""
    return [
        ("teacher", "teacher"),
        ("student after stage 1", "student_stage1"),
        ("unidirectional baseline", "unidirectional"),
        *(
            (f"CoMD iteration {k}", model)
            for k, model in enumerate(comd_models("main"), start=1)
        ),
    ]


def learning_curve_inputs():
    """(panel, series, training seed, training summary) of the stages the tables rest on: the toy
    teacher's, and each training seed's stage 1 and CoMD iterations of the main run."""
    curves = []
    if is_toy(config["models"]["teacher"]):
        curves += [
            ("teacher", stage, config["seed"], f"{MODELS}/{name}.training.json")
            for stage, name in (
                ("alignment", "teacher_aligned"),
                ("grounding", "teacher_grounded"),
                ("instruction tuning", "teacher"),
            )
        ]
    for seed in SEEDS:
        curves.append(
            (
                "student stage 1",
                "stage 1",
                seed,
                f"{MODELS}/{model_id('student_stage1', seed)}.training.json",
            )
        )
        curves += [
            (
                "CoMD iterations (main run)",
                f"iteration {k}",
                seed,
                f"{MODELS}/{model_id(model, seed)}.training.json",
            )
            for k, model in enumerate(comd_models("main"), start=1)
        ]
    return curves


def evaluated(benchmarks):
    """The benchmarks among `benchmarks` that evaluation.benchmarks asks for."""
    return [
        bench for bench in benchmarks if bench in config["evaluation"]["benchmarks"]
    ]


def score_files(models, benchmarks):
    """Score files of `models` (names) on the evaluated `benchmarks`, one per training seed (the teacher's one),
    model-major: `results/scores/<model id>/<bench>.json`."""
    return [
        f"results/scores/{model}/{bench}.json"
        for name in models
        for model in model_ids(name)
        for bench in evaluated(benchmarks)
    ]


# LLaVA-MoD (rules/mod_*.smk). Its students are `seed<s>/mod-<recipe>-<architecture>[-pref]`:
# recipe `kd` (mimic distillation of the response), `kd-all` (of response and instruction,
# table 7) or `sft` (cross-entropy on the same data, no teacher); architecture `dense` (after
# eq. 6, or its SFT) or `e<N>t<k>` (upcycled to N experts, k active, after eq. 7); `-pref` after
# preference distillation (eq. 8). All distil on the instruction seed set, with its gold answers.
MOD = config["mod"]
MOD_RECIPES = {
    "kd": "response",
    "kd-all": "all",
    "kd-weak": "response",
}  # mimic distillation recipes: their tokens
MOD_RECIPE_TEACHERS = {
    "kd-weak": "weak_teacher"
}  # the teacher a recipe distils from, if not `teacher` (table 9)
MOD_DATA = source("instruction_seed", f"{WORLD}/instruction_seed.json")
MOD_IMAGES = source("instruction_seed_image_root", f"{WORLD}/images")


def mod_recipe(tokens):
    """The mimic distillation recipe that distils `tokens` (response or all)."""
    return next(
        recipe for recipe, distilled in MOD_RECIPES.items() if distilled == tokens
    )


def mod_sparse(recipe, experts=MOD["experts"], top_k=MOD["top_k"]):
    """The student of `recipe` after the dense-to-sparse stage, E<experts>T<top_k> (default: mod.experts, mod.top_k)."""
    return f"mod-{recipe}-e{experts}t{top_k}"


MOD_MIMIC = mod_sparse(
    mod_recipe(MOD["distillation_tokens"])
)  # LLaVA-MoD after mimic distillation
MOD_STUDENT = f"{MOD_MIMIC}-pref"  # LLaVA-MoD: mimic, then preference distillation
MOD_SFT = "mod-sft-dense"  # the dense SFT student: every MoD table's baseline
MOD_MAIN_RECIPE = mod_recipe(MOD["distillation_tokens"])


def mod_reuses_comd_stage1():
    """Initialization (eq. 5) is CoMD's stage 1 (comd.stage1 on the filtered captions): with mod.init equal to it,
    the stage-1 student of the same seed is that model, and MoD starts from it."""
    return MOD["init"] == {
        "trainable": config["comd"]["stage1"]["trainable"],
        "train": config["comd"]["stage1"]["train"],
    }


def mod_init_checkpoint(seed):
    """The initialized student (eq. 5) of training seed `seed`: CoMD's stage-1 student, or rule mod_init's."""
    return model_checkpoint(
        model_id("student_stage1" if mod_reuses_comd_stage1() else "mod-init", seed)
    )


def mod_teacher_inputs(recipe):
    """What a mimic distillation job reads of the teacher: its checkpoint (online) or its stored top-k
    for the recipe's tokens (offline, rule mod_teacher_logits)."""
    teacher = MOD_RECIPE_TEACHERS.get(recipe, "teacher")
    if MOD["teacher_logits"]["source"] == "online":
        return {"teacher": teacher_checkpoint(teacher)}
    return {"logits": f"results/mod/{teacher}_logits/{MOD_RECIPES[recipe]}"}


def mod_pairs_dir(seed, sparse):
    """Where the preference pairs of sparse student `sparse` (a model name) with training seed `seed` lie."""
    return f"results/mod/seed{seed}/{sparse}"


def mod_pair_inputs(wildcards):
    """What the pairs are made of: the student and the seed set's questions, CoMD's assessment, or
    published RLAIF-V pairs (`data.preference_pairs`)."""
    if MOD["preference"]["pairs"] == "rlaif_v":
        return {
            "rlaif_v": config["data"]["preference_pairs"],
            "rlaif_v_images": config["data"]["preference_pairs_image_root"],
        }
    if MOD["preference"]["pairs"] == "comd_assessment":
        last = config["comd"]["stage2"]["iterations"]
        return {
            name: stage2_file(wildcards.seed, "main", last, f"{name}.jsonl")
            for name in ("assessment", "judge_failures")
        }
    student = mod_sparse(wildcards.recipe, wildcards.experts, wildcards.top_k)
    return {
        "student": model_checkpoint(model_id(student, wildcards.seed)),
        "prompts": f"{SEED_POOLS}/tuning_pool.jsonl",
    }


def mod_learning_curve_inputs():
    """(panel, series, training seed, training summary) of each LLaVA-MoD stage of the main student and of the
    dense SFT student, per training seed."""
    stages = [
        ("mimic: dense to dense (eq. 6)", "mimic", f"mod-{MOD_MAIN_RECIPE}-dense"),
        ("mimic: dense to sparse (eq. 7)", "mimic", MOD_MIMIC),
        ("preference (eq. 8)", "preference", MOD_STUDENT),
        ("mimic: dense to dense (eq. 6)", "SFT", MOD_SFT),
    ]
    return [
        (panel, series, seed, f"{MODELS}/{model_id(model, seed)}.training.json")
        for seed in SEEDS
        for panel, series, model in stages
    ]


def mod_table_scores(columns, rows):
    """Score files a MoD table reads: its rows' models on its benchmark columns, and on open-ended for the
    hallucination rates of the detail descriptions."""
    benchmarks = [column for column in columns if column in BENCHMARKS]
    if "hallucinated responses" in columns and "open" not in benchmarks:
        benchmarks.append("open")
    return score_files([model for _, model in rows], benchmarks)


def mod_table_checkpoints(rows):
    """One checkpoint per row, whose parameters the table counts (every training seed's has the same shape)."""
    return [model_checkpoint(model_ids(model)[0]) for _, model in rows]


def mod_pair_reports(rows):
    """The preference pairs reports, one per training seed, of the rows' student after preference distillation."""
    models = [model for _, model in rows if model.endswith("-pref")]
    return [
        f"{mod_pairs_dir(seed, model.removesuffix('-pref'))}/preference_report.json"
        for model in models
        for seed in SEEDS
    ]
