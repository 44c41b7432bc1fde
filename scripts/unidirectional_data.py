"""Rule script: the unidirectional baseline's training data (as many supervised answers as the CoMD run)."""

from mmdistill.comd.baselines import answer_count, unidirectional_records
from mmdistill.io import read_json, write_json
from mmdistill.jobs import snakemake_job

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    initial = read_json(job.input.initial)
    per_iteration = [sum(answer_count(record) for record in read_json(path)) for path in job.input.comd_data]
    records = unidirectional_records(initial, sum(per_iteration), seed=job.params["seed"])
    answers = sum(answer_count(record) for record in records)
    write_json(job.output.data, records)
    write_json(job.output.report, {"initial_conversations": len(initial),
                                   "initial_answers": sum(answer_count(record) for record in initial),
                                   "comd_answers_per_iteration": per_iteration, "answers": answers,
                                   "conversations": len(records)})
    job.log.info("unidirectional baseline: %d answers in %d conversations from the initial pool (CoMD: %s)",
                 answers, len(records), per_iteration)
