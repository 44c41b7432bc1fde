"""Rule script: the instruction seed set, the teacher's gold data and the LLM pretraining text."""

from mmdistill.io import read_jsonl, write_json, write_jsonl
from mmdistill.jobs import snakemake_job
from mmdistill.toyworld.corpora import (
    make_augment_data,
    make_gold_answer_data,
    make_instruction_seed,
    make_judge_data,
    make_lm_pretraining_text,
)

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    seed = job.params["seed"]
    scenes = [s for s in read_jsonl(job.input.scenes) if s["split"] == "instruct"]
    min_turns, max_turns = job.params["turns"]
    seed_set = make_instruction_seed(scenes, seed, min_turns=min_turns, max_turns=max_turns)
    gold = (make_gold_answer_data(scenes, seed, job.params["gold_answers_per_scene"])
            + make_judge_data(scenes, seed, job.params["judge_examples_per_scene"])
            + make_augment_data(scenes, seed, job.params["augment_examples_per_scene"]))
    text = make_lm_pretraining_text(scenes, seed, job.params["lm_text_sentences"])
    write_json(job.output.seed_set, seed_set)
    write_json(job.output.teacher_gold, gold)
    write_jsonl(job.output.lm_text, ({"text": t} for t in text))
    job.log.info("seed set %d conversations; teacher gold %d records; LM text %d sentences",
                 len(seed_set), len(gold), len(text))
