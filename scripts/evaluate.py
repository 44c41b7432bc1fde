"""Rule script: one model on one benchmark through lmms-eval, scores as JSON."""

from pathlib import Path

from mmdistill.evaluation.runner import evaluate
from mmdistill.generation import load_backend
from mmdistill.io import read_jsonl
from mmdistill.jobs import snakemake_job
from mmdistill.judges import api_judge_from_settings, model_judge, reference_judge

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    settings = job.params["judge"]
    # Toy benchmarks come with their scene graphs: the reference judge and the hallucination metric read them.
    scenes = list(read_jsonl(job.input.scenes)) if job.input.get("scenes") else None
    judge = None
    if settings["name"] == "reference":
        judge = reference_judge(scenes)
    elif settings["name"] == "teacher":
        backend = load_backend(settings["backend"], job.input.judge_model, batch_size=settings["batch_size"],
                               seed=job.params["seed"], chat_template=job.params["chat_template"])
        judge = model_judge(backend, Path(job.input.data).parent, settings["temperature"], settings["max_new_tokens"],
                            settings["max_retries"])
    elif settings["name"] == "api":
        judge = api_judge_from_settings(settings["api"])
    result = evaluate(job.input.checkpoint, job.wildcards["bench"], job.input.data, job.output[0],
                      batch_size=job.params["batch_size"], seed=job.params["seed"],
                      temperature=job.params["temperature"], judge=judge, judge_name=settings["name"],
                      protocol=job.params["protocol"], scenes=scenes, chat_template=job.params["chat_template"],
                      open_ended_max_new_tokens=job.params["open_ended_max_new_tokens"])
    if result.get("judge_metadata"):
        job.log.info("judge %s", result["judge_metadata"])
    if result["score"] is None:
        job.log.warning("%s on %s: no item could be judged", job.wildcards["model"], job.wildcards["bench"])
    else:
        low, high = result["ci95"]
        job.log.info("%s on %s (%s): %.1f [%.1f, %.1f] over %d items", job.wildcards["model"],
                     job.wildcards["bench"], result["protocol"], result["score"], low, high, result["n"])
