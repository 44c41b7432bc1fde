"""Rule script: the teacher answers the cache pool; the tuning pool's answers become training data (§3.3.1)."""

from mmdistill.comd.loop import teacher_answers_for, tuning_records
from mmdistill.generation import load_backend
from mmdistill.io import read_jsonl, write_json, write_jsonl
from mmdistill.jobs import snakemake_job

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    settings, seed = job.params["generation"], job.params["seed"]
    teacher = load_backend(settings["backend"], job.input.teacher, batch_size=settings["batch_size"], seed=seed,
                           chat_template=job.params["chat_template"])
    cache_pool = list(read_jsonl(job.input.cache_pool))
    earlier = {r["id"]: r["answer"] for path in job.input.earlier_answers for r in read_jsonl(path)}
    answers, generated = teacher_answers_for(teacher, cache_pool, earlier, job.params["image_root"],
                                             settings["temperature"], settings["max_new_tokens"])
    write_jsonl(job.output.answers, ({"id": key, "answer": value} for key, value in answers.items()))
    tuning_pool = list(read_jsonl(job.input.tuning_pool))
    tuning = tuning_records(tuning_pool, answers, seed, job.params["max_turns"])
    write_json(job.output.tuning_data, tuning)
    job.log.info("teacher answered %d new cache-pool instructions (%d kept from earlier iterations); "
                 "%d tuning questions in %d conversations", generated, len(answers) - generated,
                 len(tuning_pool), len(tuning))
