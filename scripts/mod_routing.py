"""Rule script: the LLaVA-MoD students' expert routing shares by question type, as PNG and CSV."""

from pathlib import Path

from mmdistill.io import read_jsonl
from mmdistill.jobs import snakemake_job
from mmdistill.models.llava import load_llava
from mmdistill.mod.routing import plot_routing, question_records, routing_counts, routing_shares
from mmdistill.tables import write_rows

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    scenes = [s for s in read_jsonl(job.input.scenes) if s["split"] == "bench_test"][:job.params["scenes"]]
    records = question_records(scenes, job.params["seed"], job.params["questions_per_scene"])
    pooled = {}
    for student in job.input.students:
        model, processor = load_llava(student)
        for kind, table in routing_counts(model, processor, records, Path(job.input.images).parent,
                                          job.params["batch_size"]).items():
            pooled[kind] = pooled[kind] + table if kind in pooled else table
    rows = routing_shares(pooled)
    write_rows(job.output.csv, ["type", "layer", "expert", "share", "assignments"], rows)
    plot_routing(rows, job.output.figure)
    job.log.info("routing of %d students over %d questions: %d types", len(job.input.students), len(records),
                 len(pooled))
