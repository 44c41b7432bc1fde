# CoMD stage 1 (§3.2): noun-phrase-filtered captions, then projector-only training
# of the student with the vision tower and LLM frozen, once per training seed (the
# filtered captions are data, shared by every seed).

STAGE1 = "results/comd/stage1"
SHARDS = range(config["comd"]["stage1"]["shards"])


rule noun_phrase_extract:
    """Map: spaCy noun chunks of one shard of the raw captions."""
    input:
        source("raw_captions", rules.toy_raw_captions.output.raw),
    output:
        f"{STAGE1}/shards/phrases_{{shard}}.jsonl",
    log:
        log_path("noun_phrase_extract", "{shard}"),
    conda:
        "../envs/nlp.yaml"
    params:
        shard=lambda wc: int(wc.shard),
        shards=config["comd"]["stage1"]["shards"],
        spacy_model=config["comd"]["stage1"]["spacy_model"],
        batch_size=config["comd"]["stage1"]["spacy_batch_size"],
    script:
        "../scripts/noun_phrase_extract.py"


rule noun_phrase_filter:
    """Reduce: frequency filter, rarest remaining phrase first, at most N pairs per phrase."""
    input:
        captions=source("raw_captions", rules.toy_raw_captions.output.raw),
        shards=expand(f"{STAGE1}/shards/phrases_{{shard}}.jsonl", shard=SHARDS),
    output:
        filtered=f"{STAGE1}/filtered_captions.jsonl",
        report=f"{STAGE1}/filter_report.json",
        rejects=f"{STAGE1}/filter_rejects.jsonl",
    log:
        log_path("noun_phrase_filter"),
    conda:
        "../envs/nlp.yaml"
    params:
        seed=config["seed"],
        spacy_model=config["comd"]["stage1"]["spacy_model"],
        min_frequency=config["comd"]["stage1"]["min_frequency"],
        max_pairs_per_phrase=config["comd"]["stage1"]["max_pairs_per_phrase"],
        max_reject_rate=config["comd"]["stage1"]["max_reject_rate"],
    script:
        "../scripts/noun_phrase_filter.py"


rule student_stage1:
    """Pretraining of the student's projector (CoMD §3.2, lr 2e-3; comd.stage1.trainable), once per training seed."""
    input:
        vision_tower=vision_tower_checkpoint(),
        llm=student_llm_checkpoint(),
        data=rules.noun_phrase_filter.output.filtered,
        images=source("raw_captions_image_root", f"{WORLD}/images"),
    output:
        model=directory(f"{SEEDED_MODELS}/student_stage1"),
        summary=f"{SEEDED_MODELS}/student_stage1.training.json",
    log:
        log_path("student_stage1", "seed{seed}"),
    conda:
        "../envs/train.yaml"
    threads: max_threads()
    params:
        max_reject_rate=config["max_reject_rate"],
        chat_template=CHAT_TEMPLATE,
        seed=lambda wildcards: int(wildcards.seed),
        data_format="captions",
        image_root=image_root("raw_captions_image_root"),
        trainable=config["comd"]["stage1"]["trainable"],
        train=config["comd"]["stage1"]["train"],
    script:
        "../scripts/train_llava.py"
