"""Rule script: a LLaVA-MoD table, a row per model with its measures pooled over its training seeds."""

from statistics import mean

from mmdistill.io import read_json
from mmdistill.jobs import snakemake_job
from mmdistill.mod.parameters import checkpoint_parameter_counts
from mmdistill.report import load_scores
from mmdistill.tables import comparison_table, write_table

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    scores = load_scores(job.input.scores)
    pair_reports = [read_json(path) for path in job.input.pair_reports]
    rows = []
    for (label, model), checkpoint in zip(job.params["rows"], job.input.checkpoints):
        counts = checkpoint_parameter_counts(checkpoint)
        extra = {"params_total": counts["total"], "params_active": counts["active"]}
        if model == job.params["preference_model"] and pair_reports:
            # the pairs it was trained on, the mean over training seeds
            agreements = [r["oracle"]["agreement"] for r in pair_reports
                          if (r["oracle"] or {}).get("agreement") is not None]
            extra.update(preference_pairs=round(mean(r["pairs"] for r in pair_reports), 1),
                         pairs_oracle_agreement=round(100 * mean(agreements), 1) if agreements else "n/a")
        rows.append((label, model, scores.get(model, {}), extra))
    table = comparison_table(job.params["title"], job.params["columns"], rows, seed=job.params["seed"],
                             unavailable=job.params["unavailable"])
    table.notes.append("params_total, params_active: the model's parameters, and those one token passes through "
                       "(the top-k experts of each MoE layer), vision tower included (the paper's #Param).")
    if pair_reports:
        table.notes.append(f"preference_pairs: pairs per training seed ({pair_reports[0]['source']}); "
                           "pairs_oracle_agreement: % of the pairs the oracle decides where it also prefers the chosen "
                           "response.")
    write_table(table, job.output.csv, job.output.markdown)
    job.log.info("%s: %d rows, columns %s", job.output.csv, len(table.rows), table.columns)
