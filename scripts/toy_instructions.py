"""Rule script: the teacher's gold data (answers, text-only multiple choice, grounding and word questions, judgements,
new questions) and the LLM pretraining text."""

from mmdistill.io import read_jsonl, write_json, write_jsonl
from mmdistill.jobs import snakemake_job
from mmdistill.toyworld.corpora import (
    make_augment_data,
    make_category_data,
    make_gold_answer_data,
    make_grounding_data,
    make_judge_data,
    make_lm_pretraining_text,
    make_word_data,
)

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    seed = job.params["seed"]
    training_scenes = [s for s in read_jsonl(job.input.scenes) if s["split"] in ("pretrain", "instruct")]
    scenes = [s for s in training_scenes if s["split"] == "instruct"]
    gold = (make_gold_answer_data(scenes, seed, job.params["gold_answers_per_scene"])
            + make_category_data(scenes, seed, job.params["category_questions_per_scene"])
            + make_grounding_data(scenes, seed, job.params["grounding_questions_per_scene"])
            # every training scene with a word: from the instruct scenes alone the teacher learns their words by
            # heart (README, "Words on objects")
            + make_word_data(training_scenes, seed, job.params["word_questions_per_scene"])
            + make_judge_data(scenes, seed, job.params["judge_examples_per_scene"])
            + make_augment_data(scenes, seed, job.params["augment_examples_per_scene"],
                                job.params["augment_refer_by_cell"]))
    text = make_lm_pretraining_text(scenes, seed, job.params["lm_text_sentences"])
    write_json(job.output.teacher_gold, gold)
    write_jsonl(job.output.lm_text, ({"text": t} for t in text))
    job.log.info("teacher gold %d records; LM text %d sentences", len(gold), len(text))
