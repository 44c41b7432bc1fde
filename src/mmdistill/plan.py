"""A capacity plan on paper: GPU-hours and GPU memory per rule of a real config at the paper's scale.

    python -m mmdistill.plan --config configs/comd.yaml        (make plan CONFIG=configs/comd.yaml)

Not measured: every figure is model FLOPs (from the checkpoints' layer sizes) and token counts (from the
config and the papers' data sizes) divided by a stated throughput. Each assumption is a named constant
below, and the command prints them with the table. The config is read as the Snakefile reads it:
config.yaml, then the given file merged over it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------- hardware and per-token costs (stated)

GPU = "A100-80GB"
PEAK_BF16_FLOPS = 312e12            # A100 dense bf16
MODEL_FLOPS_UTILIZATION = 0.40      # training and prefill: 125 TFLOP/s per GPU
DECODE_TOKENS_PER_S_13B = 2000.0    # vLLM, batched, new tokens per second per GPU for a 13B model;
                                    # decoding is memory-bound, so it scales as 13e9 / active parameters
HF_GENERATE_SLOWDOWN = 10.0         # HF `generate` against vLLM at the same batch
GB = 1e9

# ---------------------------------------------------------------- data sizes and token counts (stated)

CAPTION_TEXT_TOKENS = 34            # prompt template and one caption
QUESTION_TOKENS = 30                # one instruction, template included
ANSWER_TOKENS = 200                 # a teacher's or student's answer (mean, well under max_new_tokens)
JUDGE_PROMPT_TEXT_TOKENS = 500      # judge instructions, the question and both answers
JUDGEMENT_TOKENS = 50               # the judge's scores and reason
NEW_INSTRUCTION_TOKENS = 40         # one augmented instruction
SCIENCEQA_TEXT_TOKENS = 124         # question, context, options and the answer

COMD_PRETRAINING_PAIRS = 885_000    # §4.1.3: CC3M + SBU + LAION filtered to 885K pairs
COMD_SEED_IMAGES = 80_000           # LLaVA-80K: one conversation per image
COMD_SEED_QUESTIONS = 220_000       # §4.1.3: LLaVA-80K as 220K single-turn questions (the first pools)
COMD_POOL_GROWTH = (84_000, 90_000, 110_000)   # §4.1.3: new instructions after iterations 1, 2, 3
# Benchmarks' sizes (items), and new tokens per item where the protocol generates.
BENCHMARK_ITEMS = {"mc": 4_241, "seed": 14_233, "pope": 8_910, "open": 90}
BENCHMARK_NEW_TOKENS = {"mc": 8, "seed": 0, "pope": 4, "open": 300}
SEED_OPTIONS = 4                    # likelihood protocol: one forward pass per option
SCIENCEQA_TRAIN_ITEMS = 12_726

# LLaVA-MoD §4.1 and appendix A: samples per stage (0.6M + 2.4M + 1.4M + 0.8M = 5M) and their tokens.
MOD_SAMPLES = {"mod_init": 600_000, "mod_dense_distillation": 2_400_000,
               "mod_sparse_distillation": 1_400_000, "mod_preference_distillation": 800_000}
MOD_TEXT_TOKENS = {"mod_init": CAPTION_TEXT_TOKENS, "mod_dense_distillation": 400,
                   "mod_sparse_distillation": 150, "mod_preference_distillation": 250}
MOD_PAPER_GPU_HOURS = 960           # §4.1: 16 A100s, one epoch per stage, about 960 GPU-hours in all
MOD_BENCHMARK_ITEMS = {"mc": 2_017, "pope": 8_910, "open": 300}   # SQA-IMG, POPE, Object HalBench

# ---------------------------------------------------------------- the checkpoints the configs name

# config.json fields of the known checkpoints, keyed by the folder name of `models.*`; a checkpoint on
# disk is read from its own config.json instead. Parameter counts follow from these (`decoder_params`).
KNOWN_CHECKPOINTS = {
    "vicuna-7b-v1.1": {"hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 11008,
                       "vocab_size": 32000},
    "qwen1.5-1.8b-chat": {"hidden_size": 2048, "num_hidden_layers": 24, "intermediate_size": 5504,
                          "vocab_size": 151936},
    "clip-vit-large-patch14": {"vision_config": {"hidden_size": 1024, "num_hidden_layers": 24,
                                                 "intermediate_size": 4096, "image_size": 224, "patch_size": 14}},
    "clip-vit-large-patch14-336": {"vision_config": {"hidden_size": 1024, "num_hidden_layers": 24,
                                                     "intermediate_size": 4096, "image_size": 336, "patch_size": 14}},
}
CLIP_L_336 = KNOWN_CHECKPOINTS["clip-vit-large-patch14-336"]["vision_config"]
KNOWN_CHECKPOINTS |= {
    "llava-1.5-13b-hf": {"text_config": {"hidden_size": 5120, "num_hidden_layers": 40, "intermediate_size": 13824,
                                         "vocab_size": 32000}, "vision_config": CLIP_L_336},
    "llava-qwen1.5-7b-hf": {"text_config": {"hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 11008,
                                            "vocab_size": 151936}, "vision_config": CLIP_L_336},
    "llava-qwen1.5-4b-hf": {"text_config": {"hidden_size": 2560, "num_hidden_layers": 40, "intermediate_size": 6912,
                                            "vocab_size": 151936}, "vision_config": CLIP_L_336},
}


@dataclass(frozen=True)
class Decoder:
    """A LLaMA/Qwen-style decoder: attention 4h², gated MLP 3hi per layer, untied input and output embeddings."""
    hidden: int
    layers: int
    intermediate: int
    vocab: int

    @property
    def ffn_params(self) -> float:
        return 3 * self.hidden * self.intermediate * self.layers

    @property
    def params(self) -> float:
        return self.layers * 4 * self.hidden ** 2 + self.ffn_params + 2 * self.vocab * self.hidden

    def kv_bytes_per_token(self, dtype_bytes: int = 2) -> float:
        return 2 * self.layers * self.hidden * dtype_bytes


@dataclass(frozen=True)
class VisionTower:
    """A CLIP ViT: attention 4h², MLP 2hi per layer; one token per patch."""
    hidden: int
    layers: int
    intermediate: int
    image_size: int
    patch_size: int

    @property
    def params(self) -> float:
        return self.layers * (4 * self.hidden ** 2 + 2 * self.hidden * self.intermediate)

    @property
    def image_tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2


@dataclass(frozen=True)
class Llava:
    """Vision tower, 2-layer MLP projector, decoder; `experts`/`top_k` > 1 for an upcycled MoE decoder."""
    decoder: Decoder
    vision: VisionTower
    experts: int = 1
    top_k: int = 1

    @property
    def projector_params(self) -> float:
        return self.vision.hidden * self.decoder.hidden + self.decoder.hidden ** 2

    @property
    def params(self) -> float:
        """All weights held (every expert)."""
        return self.vision.params + self.projector_params + self.decoder.params + \
            (self.experts - 1) * self.decoder.ffn_params

    @property
    def active_params(self) -> float:
        """Weights one token passes through (top_k experts), which set its FLOPs."""
        return self.decoder.params + (self.top_k - 1) * self.decoder.ffn_params

    def upcycled(self, experts: int, top_k: int) -> Llava:
        return Llava(self.decoder, self.vision, experts, top_k)


def checkpoint_config(path: str) -> dict:
    """config.json of a checkpoint on disk, else the known checkpoint of the folder's name."""
    config_file = Path(path) / "config.json"
    if config_file.is_file():
        return json.loads(config_file.read_text())
    name = Path(path).name
    if name not in KNOWN_CHECKPOINTS:
        raise KeyError(f"{path}: no config.json there and not a known checkpoint ({', '.join(KNOWN_CHECKPOINTS)}); "
                       "add its config.json fields to mmdistill.plan.KNOWN_CHECKPOINTS")
    return KNOWN_CHECKPOINTS[name]


def decoder_of(fields: dict) -> Decoder:
    fields = fields.get("text_config", fields)
    return Decoder(fields["hidden_size"], fields["num_hidden_layers"], fields["intermediate_size"],
                   fields["vocab_size"])


def vision_of(fields: dict) -> VisionTower:
    fields = fields["vision_config"]
    return VisionTower(fields["hidden_size"], fields["num_hidden_layers"], fields["intermediate_size"],
                       fields["image_size"], fields["patch_size"])


def teacher_model(models: dict, key: str = "teacher") -> Llava:
    fields = checkpoint_config(models[key])
    return Llava(decoder_of(fields), vision_of(fields))


def student_model(models: dict) -> Llava:
    return Llava(decoder_of(checkpoint_config(models["student_llm"])),
                 vision_of(checkpoint_config(models["vision_tower"])))


# ---------------------------------------------------------------- cost primitives


def train_flops(model: Llava, tokens: float, images: float, llm_trained: bool, checkpointing: bool) -> float:
    """Hardware FLOPs of one pass over the data: 6·N·T when the decoder learns, 4·N·T when only the
    projector does (forward, and the backward through the frozen decoder to reach it), one more
    forward (2·N·T) when gradient checkpointing recomputes it; the frozen vision tower's forward on top."""
    per_token = (6 if llm_trained else 4) + (2 if checkpointing else 0)
    return per_token * model.active_params * tokens + 2 * model.vision.params * model.vision.image_tokens * images


def forward_flops(model: Llava, tokens: float, images: float) -> float:
    """A forward pass (prefill, scoring, a frozen teacher's logits): 2·N·T, and the vision tower's."""
    return 2 * model.active_params * tokens + 2 * model.vision.params * model.vision.image_tokens * images


def compute_hours(flops: float) -> float:
    return flops / (PEAK_BF16_FLOPS * MODEL_FLOPS_UTILIZATION) / 3600


def decode_hours(model: Llava, new_tokens: float, backend: str) -> float:
    per_s = DECODE_TOKENS_PER_S_13B * 13e9 / model.active_params
    return new_tokens / (per_s / (1 if backend == "vllm" else HF_GENERATE_SLOWDOWN)) / 3600


@dataclass
class Cost:
    """GPU-hours of one job, by where they go (train, prefill, decode, teacher forward)."""
    hours: dict[str, float] = field(default_factory=dict)

    def add(self, part: str, hours: float) -> Cost:
        self.hours[part] = self.hours.get(part, 0.0) + hours
        return self

    @property
    def total(self) -> float:
        return sum(self.hours.values())

    def __add__(self, other: Cost) -> Cost:
        total = Cost(dict(self.hours))
        for part, hours in other.hours.items():
            total.add(part, hours)
        return total


def generation_cost(model: Llava, requests: float, prompt_text_tokens: float, new_tokens: float,
                    backend: str, part: str) -> Cost:
    """Requests with one image each: prefill at the training throughput, decoding at the decode rate."""
    prompt_tokens = requests * (model.vision.image_tokens + prompt_text_tokens)
    return (Cost().add(f"{part} prefill", compute_hours(forward_flops(model, prompt_tokens, requests)))
            .add(f"{part} decode", decode_hours(model, requests * new_tokens, backend)))


# ---------------------------------------------------------------- memory per GPU


@dataclass(frozen=True)
class Parallelism:
    """How a training rule runs: GPUs (cluster profile), DeepSpeed ZeRO stage and offload, dtype."""
    gpus: int
    zero_stage: int
    offload_optimizer: bool
    bf16: bool
    checkpointing: bool


def training_memory_gb(total_params: float, trainable_params: float, setup: Parallelism,
                       activation_bytes: float, frozen_extra_params: float = 0.0) -> float:
    """Weights, gradients and Adam states per GPU under ZeRO, plus activations and any frozen model
    held beside (a teacher for distillation). Mixed precision: 2-byte weights and gradients, fp32 master
    weights and two moments (12 bytes) per trainable parameter; ZeRO-1 shards the 12, ZeRO-2 the
    gradients too, ZeRO-3 the weights too; offload moves the 12 to the CPU."""
    dtype = 2 if setup.bf16 else 4
    master = 4 if setup.bf16 else 0         # fp32 master weights; fp32 training has them already
    weights = dtype * total_params / (setup.gpus if setup.zero_stage >= 3 else 1)
    grads = dtype * trainable_params / (setup.gpus if setup.zero_stage >= 2 else 1)
    states = 0 if setup.offload_optimizer else \
        (8 + master) * trainable_params / (setup.gpus if setup.zero_stage >= 1 else 1)
    return (weights + grads + states + activation_bytes + dtype * frozen_extra_params) / GB


def activation_bytes(decoder: Decoder, micro_batch: int, sequence: float, checkpointing: bool,
                     logits_copies: int = 1) -> float:
    """Per GPU: with checkpointing the 2-byte layer inputs (one hidden vector per token and layer),
    without it about 34 bytes per hidden unit, token and layer (Korthikanti et al. 2022, flash
    attention); plus fp32 logits over the vocabulary (twice when a teacher's are compared)."""
    per_unit = 2 if checkpointing else 34
    layers = micro_batch * sequence * decoder.hidden * decoder.layers * per_unit
    return layers + logits_copies * micro_batch * sequence * decoder.vocab * 4


def inference_memory_gb(models: list[Llava], batch: int, sequence: float) -> float:
    """bf16 weights of every model loaded, and the first one's KV cache for a batch of full sequences."""
    weights = sum(2 * m.params for m in models)
    return (weights + batch * sequence * models[0].decoder.kv_bytes_per_token()) / GB


# ---------------------------------------------------------------- the config


def deep_merge(base: dict, override: dict) -> dict:
    """Snakemake's --configfile semantics: mappings merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def load_config(path: str | Path) -> dict:
    base = yaml.safe_load((ROOT / "config.yaml").read_text())
    return deep_merge(base, yaml.safe_load(Path(path).read_text()) or {})


def cluster_gpus(rule: str) -> int:
    """GPUs a rule's job holds in the cluster profile (slurm/config.yaml `set-resources`)."""
    profile = yaml.safe_load((ROOT / "slurm" / "config.yaml").read_text())
    return profile["set-resources"].get(rule, {}).get("gpu", 0)


def parallelism(rule: str, train: dict) -> Parallelism:
    """The train block's DeepSpeed config (its ZeRO stage and optimizer offload), dtype and checkpointing."""
    zero = {}
    if train.get("deepspeed"):
        zero = json.loads((ROOT / train["deepspeed"]).read_text()).get("zero_optimization", {})
    offload = zero.get("offload_optimizer", {}).get("device", "none") != "none"
    return Parallelism(max(1, cluster_gpus(rule)), zero.get("stage", 0), offload, bool(train.get("bf16")),
                       bool(train.get("gradient_checkpointing")))


# ---------------------------------------------------------------- rows


@dataclass
class Row:
    rule: str
    jobs: int                # per training seed, or in all for `once`
    gpus: int
    cost: Cost               # all jobs of the row together
    memory_gb: float         # per GPU, the largest job
    work: str
    once: bool = False       # the teacher's: not repeated per training seed


def training_row(rule: str, model: Llava, train: dict, records: float, text_tokens: float, llm_trained: bool,
                 trainable: float, work: str = "", teacher: Llava | None = None) -> Row:
    """A training rule over `records` one-image examples of `text_tokens` each, for the train block's epochs;
    a teacher, when given, adds its forward pass per token (online distillation) and sits in memory."""
    setup = parallelism(rule, train)
    sequence = model.vision.image_tokens + text_tokens
    tokens = train["epochs"] * records * sequence
    cost = Cost().add("train", compute_hours(train_flops(model, tokens, train["epochs"] * records, llm_trained,
                                                       setup.checkpointing)))
    if teacher is not None:
        cost.add("teacher forward", compute_hours(forward_flops(teacher, tokens, train["epochs"] * records)))
    micro_batch = max(1, train["batch_size"] // setup.gpus)
    activations = activation_bytes(model.decoder, micro_batch, sequence, setup.checkpointing,
                                   logits_copies=2 if teacher else 1)
    memory = training_memory_gb(model.params, trainable, setup, activations,
                                frozen_extra_params=teacher.params if teacher else 0.0)
    summary = f"{train['epochs']} x {records / 1e3:,.0f}K x {sequence:,.0f} tokens, {model.active_params / 1e9:.1f}B"
    return Row(rule, 1, setup.gpus, cost, memory, f"{summary}; {work}".rstrip("; "))


def evaluation_row(rule: str, model: Llava, models: int, config: dict, items: dict[str, int],
                   once: bool = False) -> Row:
    """`evaluate` of `models` models of one size on every benchmark of the config."""
    benchmarks = config["evaluation"]["benchmarks"]
    cost = Cost()
    for bench in benchmarks:
        passes = SEED_OPTIONS if config["evaluation"]["protocol"].get(bench) == "likelihood" else 1
        cost += generation_cost(model, models * items[bench] * passes, QUESTION_TOKENS + SCIENCEQA_TEXT_TOKENS,
                                BENCHMARK_NEW_TOKENS.get(bench, 0), config["generation"]["backend"], "eval")
    sequence = model.vision.image_tokens + QUESTION_TOKENS + SCIENCEQA_TEXT_TOKENS + \
        config["evaluation"]["open_ended_max_new_tokens"]
    memory = inference_memory_gb([model], config["evaluation"]["batch_size"], sequence)
    sizes = ", ".join(f"{b} {items[b]:,}" for b in benchmarks)
    return Row(rule, models * len(benchmarks), cluster_gpus("evaluate"), cost, memory,
               f"{models} model(s) x {len(benchmarks)} benchmarks ({sizes} items)", once=once)


def _scaled(cost: Cost, factor: float) -> Cost:
    return Cost({part: hours * factor for part, hours in cost.hours.items()})


# ---------------------------------------------------------------- CoMD


def comd_pool_sizes(iterations: int) -> list[int]:
    """Tuning-pool size per iteration: the seed questions, then each iteration's new instructions
    (the tuning pool is replaced by them, §3.3.3); past the paper's three, its last growth again."""
    growth = list(COMD_POOL_GROWTH) + [COMD_POOL_GROWTH[-1]] * max(0, iterations - 1 - len(COMD_POOL_GROWTH))
    return [COMD_SEED_QUESTIONS, *growth][:iterations]


def comd_rows(config: dict) -> list[Row]:
    teacher, student = teacher_model(config["models"]), student_model(config["models"])
    stage2, backend = config["comd"]["stage2"], config["generation"]["backend"]
    tuning = comd_pool_sizes(stage2["iterations"])
    cache = [sum(tuning[:k + 1]) for k in range(len(tuning))]   # the cache pool keeps every instruction
    stage1 = training_row("student_stage1", student, config["comd"]["stage1"]["train"], COMD_PRETRAINING_PAIRS,
                          CAPTION_TEXT_TOKENS, llm_trained=False, trainable=student.projector_params,
                          work="projector only")
    return [stage1, *comd_stage2_rows(config, teacher, student, tuning, cache, backend),
            *comd_downstream_rows(config, teacher, student, len(tuning))]


def comd_stage2_rows(config: dict, teacher: Llava, student: Llava, tuning: list[int], cache: list[int],
                     backend: str) -> list[Row]:
    stage2, iterations = config["comd"]["stage2"], len(tuning)
    answered = [cache[0], *tuning[1:]]          # later iterations answer only the new instructions
    answers = sum((generation_cost(teacher, n, QUESTION_TOKENS, ANSWER_TOKENS, backend, "answer")
                   for n in answered), Cost())
    turns = [n / COMD_SEED_IMAGES for n in tuning]   # regrouped per image (§3.3.1)
    train = stage2["train"]
    tunings = [training_row("comd_instruction_tuning", student, train, COMD_SEED_IMAGES,
                            t * (QUESTION_TOKENS + ANSWER_TOKENS), llm_trained=True, trainable=student.params
                            - student.vision.params) for t in turns]
    assess = sum((assessment_cost(teacher, student, n, next_pool, config, backend)
                  for n, next_pool in zip(cache, [*tuning[1:], COMD_POOL_GROWTH[-1]])), Cost())
    memory_gen = inference_memory_gb([teacher, student], config["generation"]["batch_size"],
                                     teacher.vision.image_tokens + JUDGE_PROMPT_TEXT_TOKENS
                                     + config["generation"]["max_new_tokens"])
    unidirectional = training_row("unidirectional_tuning", student, train, COMD_SEED_IMAGES * sum(tuning) / tuning[0],
                                  turns[0] * (QUESTION_TOKENS + ANSWER_TOKENS), llm_trained=True,
                                  trainable=student.params - student.vision.params,
                                  work="iteration 1's answers repeated to as many as CoMD trained on")
    pools = ", ".join(f"{n / 1e3:.0f}K" for n in tuning)
    return [
        Row("comd_teacher_answers", iterations, cluster_gpus("comd_teacher_answers"), answers,
            inference_memory_gb([teacher], config["generation"]["batch_size"], teacher.vision.image_tokens
                                + QUESTION_TOKENS + config["generation"]["max_new_tokens"]),
            f"{sum(answered) / 1e3:,.0f}K answers x {ANSWER_TOKENS} tokens, "
            f"{teacher.active_params / 1e9:.0f}B ({backend})"),
        Row("comd_instruction_tuning", iterations, tunings[0].gpus, sum((r.cost for r in tunings), Cost()),
            max(r.memory_gb for r in tunings),
            f"tuning pools {pools} questions on {COMD_SEED_IMAGES / 1e3:.0f}K images, {train['epochs']} epoch(s) each"),
        Row("comd_assess_augment", iterations, cluster_gpus("comd_assess_augment"), assess, memory_gen,
            f"cache pools {', '.join(f'{n / 1e3:.0f}K' for n in cache)}: fresh teacher + student answers, "
            "2 judge orders, augmentation"),
        unidirectional,
    ]


def assessment_cost(teacher: Llava, student: Llava, cache: int, new_instructions: int, config: dict,
                    backend: str) -> Cost:
    """One iteration's phases 2-3 over the cache pool: a fresh teacher draw (comd.stage2.assess_teacher_answers),
    the student's answers, two judge orders per instruction, and the augmentor's new instructions."""
    cost = generation_cost(student, cache, QUESTION_TOKENS, ANSWER_TOKENS, backend, "student")
    if config["comd"]["stage2"]["assess_teacher_answers"] == "fresh":
        cost += generation_cost(teacher, cache, QUESTION_TOKENS, ANSWER_TOKENS, backend, "answer")
    cost += generation_cost(teacher, 2 * cache, JUDGE_PROMPT_TEXT_TOKENS, JUDGEMENT_TOKENS, backend, "judge")
    return cost + generation_cost(teacher, new_instructions, QUESTION_TOKENS, NEW_INSTRUCTION_TOKENS, backend,
                                  "augment")


def comd_downstream_rows(config: dict, teacher: Llava, student: Llava, iterations: int) -> list[Row]:
    """Table 1's models (stage-1 student, unidirectional, each iteration; the teacher once): ScienceQA
    fine-tuning (evaluation.finetune) and every benchmark."""
    finetune = config["evaluation"]["finetune"]
    students = 2 + iterations
    rows = []
    if finetune["benchmarks"]:
        text = SCIENCEQA_TEXT_TOKENS
        student_ft = training_row("downstream_finetune", student, finetune["train"], SCIENCEQA_TRAIN_ITEMS, text,
                                  True, student.params - student.vision.params)
        teacher_ft = training_row("downstream_finetune", teacher, finetune["train"], SCIENCEQA_TRAIN_ITEMS, text,
                                  True, teacher.params - teacher.vision.params)
        rows += [Row("downstream_finetune", students, student_ft.gpus, _scaled(student_ft.cost, students),
                     student_ft.memory_gb, f"{students} students: {student_ft.work}"),
                 Row("downstream_finetune (teacher)", 1, teacher_ft.gpus, teacher_ft.cost, teacher_ft.memory_gb,
                     f"the teacher: {teacher_ft.work}", once=True)]
    return rows + [evaluation_row("evaluate", student, students, config, BENCHMARK_ITEMS),
                   evaluation_row("evaluate (teacher)", teacher, 1, config, BENCHMARK_ITEMS, once=True)]


# ---------------------------------------------------------------- LLaVA-MoD


def mod_rows(config: dict) -> list[Row]:
    """The main student's stages (§3.2): initialization, dense and sparse mimic distillation, preference
    distillation, then its and the teacher's evaluation. Tables 6-9's variants rerun some stages: not planned."""
    mod, models = config["mod"], config["models"]
    teacher, dense = teacher_model(models), student_model(models)
    sparse = dense.upcycled(mod["experts"], mod["top_k"])
    online = mod["teacher_logits"]["source"] == "online"
    language = dense.params - dense.vision.params
    experts = mod["experts"] * sparse.decoder.ffn_params + dense.projector_params
    stages = [("mod_init", dense, False, dense.projector_params, None, 1),
              ("mod_dense_distillation", dense, True, language, teacher if online else None, 1),
              ("mod_sparse_distillation", sparse, True, experts, teacher if online else None, 1),
              ("mod_preference_distillation", sparse, True, experts, teacher, 2)]   # DPO: chosen and rejected
    rows = [training_row(rule, model, mod[rule.removeprefix("mod_").split("_")[0]]["train"],
                         sequences * MOD_SAMPLES[rule], MOD_TEXT_TOKENS[rule], llm_trained, trainable,
                         teacher=reference, work=mod_work(rule, sparse))
            for rule, model, llm_trained, trainable, reference, sequences in stages]
    return rows + [evaluation_row("evaluate", sparse, 1, config, MOD_BENCHMARK_ITEMS),
                   evaluation_row("evaluate (teacher)", teacher, 1, config, MOD_BENCHMARK_ITEMS, once=True)]


def mod_work(rule: str, sparse: Llava) -> str:
    if rule == "mod_init":
        return "projector only"
    moe = f"E{sparse.experts}T{sparse.top_k}, {sparse.params / 1e9:.1f}B held"
    return {"mod_dense_distillation": "dense student, KL to the online teacher",
            "mod_sparse_distillation": f"{moe}, CE + KL to the online teacher",
            "mod_preference_distillation": f"{moe}, DPO against the frozen teacher (pairs as 2 sequences)"}[rule]


# ---------------------------------------------------------------- the printed plan


def method_of(config_path: str | Path) -> str:
    """llava-mod when the given file sets `mod:` (LLaVA-MoD's config), else comd."""
    return "llava-mod" if "mod" in (yaml.safe_load(Path(config_path).read_text()) or {}) else "comd"


def time_shares(cost: Cost, top: int = 3) -> str:
    parts = sorted(cost.hours.items(), key=lambda item: -item[1])
    return ", ".join(f"{part} {hours / cost.total:.0%}" for part, hours in parts[:top] if hours >= 0.005 * cost.total)


def render_table(rows: list[Row]) -> list[str]:
    lines = ["| rule | jobs | GPUs/job | GPU-hours | memory/GPU (GB) | where the time goes | work |",
             "|---|---:|---:|---:|---:|---|---|"]
    for row in rows:
        flag = " (over 80)" if row.memory_gb > 80 else ""
        lines.append(f"| {row.rule} | {row.jobs} | {row.gpus} | {row.cost.total:,.1f} | {row.memory_gb:,.0f}{flag} "
                     f"| {time_shares(row.cost)} | {row.work} |")
    return lines


def render_totals(rows: list[Row], seeds: int) -> list[str]:
    per_seed = sum((r.cost for r in rows if not r.once), Cost())
    once = sum((r.cost for r in rows if r.once), Cost())
    everything = _scaled(per_seed, seeds) + once
    return [f"Per training seed: {per_seed.total:,.0f} GPU-hours; the teacher's rules, once: {once.total:,.1f}; "
            f"all {seeds} training seeds (config `seeds`): {everything.total:,.0f} GPU-hours.",
            f"Where the time goes: {time_shares(everything, top=6)}."]


def render_assumptions(method: str, config: dict) -> list[str]:
    lines = [f"Assumptions: {GPU}, bf16 at {MODEL_FLOPS_UTILIZATION:.0%} of {PEAK_BF16_FLOPS / 1e12:.0f} TFLOP/s "
             f"for training and prefill; decoding {DECODE_TOKENS_PER_S_13B:,.0f} new tokens/s per GPU for 13B "
             f"parameters with vLLM (scaled by 13B / active parameters), {HF_GENERATE_SLOWDOWN:.0f}x slower with "
             f"HF generate; backend here: {config['generation']['backend']} (generation.backend).",
             "Training FLOPs 6·N·T (4·N·T when only the projector learns), +2·N·T with gradient checkpointing, "
             "+2·N·T of a frozen teacher's forward; the vision tower's forward per image. Parameter counts from "
             "the checkpoints' layer sizes (config.json, or mmdistill.plan.KNOWN_CHECKPOINTS by folder name).",
             "Memory per GPU: bf16 weights, gradients and fp32 Adam states (12 bytes per trainable parameter) "
             "under the train block's DeepSpeed ZeRO stage, over the cluster profile's GPUs; activations of "
             "batch_size / GPUs sequences; a teacher held beside; generation: weights and the KV cache of "
             "generation.batch_size full sequences."]
    if method == "comd":
        lines.append(f"Data: {COMD_PRETRAINING_PAIRS / 1e3:.0f}K caption pairs of {CAPTION_TEXT_TOKENS} text tokens; "
                     f"{COMD_SEED_QUESTIONS / 1e3:.0f}K seed questions on {COMD_SEED_IMAGES / 1e3:.0f}K images, "
                     f"then {', '.join(f'{n / 1e3:.0f}K' for n in COMD_POOL_GROWTH)} new ones (§4.1.3); questions "
                     f"{QUESTION_TOKENS} tokens, answers {ANSWER_TOKENS}, judge prompts {JUDGE_PROMPT_TEXT_TOKENS} "
                     f"text tokens and {JUDGEMENT_TOKENS} new; ScienceQA {SCIENCEQA_TRAIN_ITEMS:,} train items of "
                     f"{SCIENCEQA_TEXT_TOKENS} text tokens. Planned: table 1's models (tables 1-3), not the tau "
                     "ablation nor the run without stage 1.")
    else:
        samples = ", ".join(f"{rule.removeprefix('mod_')} {n / 1e6:.1f}M" for rule, n in MOD_SAMPLES.items())
        lines.append(f"Data (§4.1): {samples} samples; the main student only, not tables 6-9's variants. "
                     f"Preference pairs: mod.preference.pairs = {config['mod']['preference']['pairs']} "
                     "(rlaif_v reads published pairs, so mod_preference_pairs has no model work); teacher "
                     f"logits: {config['mod']['teacher_logits']['source']} (online: the teacher's forward in "
                     "each distillation job, no mod_teacher_logits job).")
    return lines


def paper_check(method: str, rows: list[Row]) -> list[str]:
    """LLaVA-MoD states its training's GPU-hours: the utilization that figure implies."""
    if method != "llava-mod":
        return []
    training = sum(r.cost.total for r in rows if r.rule.startswith("mod_"))
    implied = MODEL_FLOPS_UTILIZATION * training / MOD_PAPER_GPU_HOURS
    return [f"The paper's own figure: about {MOD_PAPER_GPU_HOURS} A100-hours for its four training stages against "
            f"{training:,.0f} here, i.e. {implied:.0%} utilization there (its mimic and preference stages ran ZeRO-2 "
            "with optimizer offload, whose CPU optimizer steps this plan does not price)."]


def plan_rows(config: dict, method: str) -> list[Row]:
    return comd_rows(config) if method == "comd" else mod_rows(config)


def backend_comparison(config: dict, method: str, rows: list[Row]) -> list[str]:
    """The per-seed total under vLLM, when the config generates with HF."""
    if config["generation"]["backend"] == "vllm":
        return []
    vllm = deep_merge(config, {"generation": {"backend": "vllm"}})
    per_seed = sum(r.cost.total for r in plan_rows(vllm, method) if not r.once)
    current = sum(r.cost.total for r in rows if not r.once)
    if round(per_seed) == round(current):
        return []
    return [f"With generation.backend: vllm, one training seed takes {per_seed:,.0f} GPU-hours instead of "
            f"{current:,.0f}."]


def plan(config_path: str | Path) -> str:
    config, method = load_config(config_path), method_of(config_path)
    rows = plan_rows(config, method)
    header = f"Capacity plan for {config_path} ({method}), on paper: not measured."
    lines = [header, "", *render_table(rows), "", *render_totals(rows, len(config["seeds"])),
             *backend_comparison(config, method, rows), *paper_check(method, rows), "",
             *render_assumptions(method, config)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="a real config, merged over config.yaml")
    print(plan(parser.parse_args(argv).config), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
