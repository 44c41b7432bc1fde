"""Rule script: one model on one benchmark through lmms-eval, scores as JSON."""

from mmdistill.evaluation.runner import evaluate
from mmdistill.io import read_jsonl
from mmdistill.jobs import snakemake_job
from mmdistill.judges import reference_judge

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    judge = None
    if job.wildcards["bench"] == "open":
        judge = reference_judge(list(read_jsonl(job.input.scenes)))
    result = evaluate(job.input.checkpoint, job.wildcards["bench"], job.input.data, job.output[0],
                      batch_size=job.params["batch_size"], seed=job.params["seed"],
                      temperature=job.params["temperature"], judge=judge)
    low, high = result["ci95"]
    job.log.info("%s on %s: %.1f [%.1f, %.1f] over %d items", job.wildcards["model"], job.wildcards["bench"],
                 result["score"], low, high, result["n"])
