# LLaVA-MoD §3.2, mimic distillation: initialization (eq. 5), dense-to-dense (eq. 6) and
# dense-to-sparse (eq. 7), each a rule with its own checkpoint, once per training seed, all on
# the instruction seed set (MOD_DATA). Beside them the SFT students: the same data and
# stages with cross-entropy alone (table 6, and every MoD table's dense baseline).
# Model names: see MOD_RECIPES in common.smk.


wildcard_constraints:
    recipe="|".join(MOD_RECIPES),
    experts="[0-9]+",
    top_k="[0-9]+",


rule mod_init:
    """Eq. 5: the adaptor alone on captions (CoMD's stage-1 data and machinery). Planned only when mod.init
    differs from CoMD's stage 1; otherwise CoMD's stage-1 student is the initialization.
    """
    input:
        vision_tower=vision_tower_checkpoint(),
        llm=student_llm_checkpoint(),
        data=rules.noun_phrase_filter.output.filtered,
        images=source("raw_captions_image_root", f"{WORLD}/images"),
    output:
        model=directory(f"{SEEDED_MODELS}/mod-init"),
        summary=f"{SEEDED_MODELS}/mod-init.training.json",
    log:
        log_path("mod_init", "seed{seed}"),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        max_reject_rate=config["max_reject_rate"],
        chat_template=CHAT_TEMPLATE,
        seed=lambda wildcards: int(wildcards.seed),
        data_format="captions",
        image_root=image_root("raw_captions_image_root"),
        trainable=MOD["init"]["trainable"],
        train=MOD["init"]["train"],
    script:
        "../scripts/train_llava.py"


rule mod_dense_distillation:
    """Eq. 6: KL from the teacher's distribution on the recipe's tokens; ViT frozen, LLM and adaptor trained."""
    input:
        unpack(lambda wildcards: mod_teacher_inputs(wildcards.recipe)),
        init=lambda wildcards: mod_init_checkpoint(wildcards.seed),
        data=MOD_DATA,
        images=MOD_IMAGES,
    output:
        model=directory(f"{SEEDED_MODELS}/mod-{{recipe}}-dense"),
        summary=f"{SEEDED_MODELS}/mod-{{recipe}}-dense.training.json",
    log:
        log_path("mod_dense_distillation", "seed{seed}_{recipe}"),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        chat_template=CHAT_TEMPLATE,
        seed=lambda wildcards: int(wildcards.seed),
        image_root=image_root("instruction_seed_image_root"),
        tokens=lambda wildcards: MOD_RECIPES[wildcards.recipe],
        teacher_logits=MOD["teacher_logits"]["source"],
        trainable=MOD["dense"]["trainable"],
        train=MOD["dense"]["train"],
    script:
        "../scripts/mod_dense_distillation.py"


rule mod_sparse_distillation:
    """Eq. 7: the dense student upcycled to E experts, k active, then CE plus KL plus the load-balancing
    loss; experts, routers and adaptor trained."""
    input:
        unpack(lambda wildcards: mod_teacher_inputs(wildcards.recipe)),
        init=f"{SEEDED_MODELS}/mod-{{recipe}}-dense",
        data=MOD_DATA,
        images=MOD_IMAGES,
    output:
        model=directory(f"{SEEDED_MODELS}/mod-{{recipe}}-e{{experts}}t{{top_k}}"),
        summary=f"{SEEDED_MODELS}/mod-{{recipe}}-e{{experts}}t{{top_k}}.training.json",
    log:
        log_path("mod_sparse_distillation", "seed{seed}_{recipe}_e{experts}t{top_k}"),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        chat_template=CHAT_TEMPLATE,
        seed=lambda wildcards: int(wildcards.seed),
        image_root=image_root("instruction_seed_image_root"),
        tokens=lambda wildcards: MOD_RECIPES[wildcards.recipe],
        teacher_logits=MOD["teacher_logits"]["source"],
        experts=lambda wildcards: int(wildcards.experts),
        top_k=lambda wildcards: int(wildcards.top_k),
        aux_loss_coef=MOD["aux_loss_coef"],
        trainable=MOD["sparse"]["trainable"],
        train=MOD["sparse"]["train"],
    script:
        "../scripts/mod_sparse_distillation.py"


rule mod_sft_dense:
    """The dense SFT student: eq. 6's stage on the same data with cross-entropy on the answers, no teacher."""
    input:
        init=lambda wildcards: mod_init_checkpoint(wildcards.seed),
        data=MOD_DATA,
        images=MOD_IMAGES,
    output:
        model=directory(f"{SEEDED_MODELS}/mod-sft-dense"),
        summary=f"{SEEDED_MODELS}/mod-sft-dense.training.json",
    log:
        log_path("mod_sft_dense", "seed{seed}"),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        max_reject_rate=config["max_reject_rate"],
        chat_template=CHAT_TEMPLATE,
        seed=lambda wildcards: int(wildcards.seed),
        data_format="conversations",
        image_root=image_root("instruction_seed_image_root"),
        trainable=MOD["dense"]["trainable"],
        train=MOD["dense"]["train"],
    script:
        "../scripts/train_llava.py"


rule mod_sft_sparse:
    """Table 6's SFT: the dense SFT student upcycled as for eq. 7, then cross-entropy plus the load-balancing
    loss on the same data; experts, routers and adaptor trained."""
    input:
        init=rules.mod_sft_dense.output.model,
        data=MOD_DATA,
        images=MOD_IMAGES,
    output:
        model=directory(f"{SEEDED_MODELS}/mod-sft-e{{experts}}t{{top_k}}"),
        summary=f"{SEEDED_MODELS}/mod-sft-e{{experts}}t{{top_k}}.training.json",
    log:
        log_path("mod_sft_sparse", "seed{seed}_e{experts}t{top_k}"),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        chat_template=CHAT_TEMPLATE,
        seed=lambda wildcards: int(wildcards.seed),
        image_root=image_root("instruction_seed_image_root"),
        experts=lambda wildcards: int(wildcards.experts),
        top_k=lambda wildcards: int(wildcards.top_k),
        aux_loss_coef=MOD["aux_loss_coef"],
        trainable=MOD["sparse"]["trainable"],
        train=MOD["sparse"]["train"],
    script:
        "../scripts/mod_sft_sparse.py"
