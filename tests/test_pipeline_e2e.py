"""The whole default target on a minutes-long config: artifacts, provenance, scores, CoMD's and LLaVA-MoD's
tables, reruns."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import job_counts, merged_config, reordered_config
from mmdistill.comd.baselines import answer_count

from mmdistill.provenance import hash_path

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
TINY = yaml.safe_load((ROOT / "tests" / "tiny_config.yaml").read_text())
SEEDS = TINY["seeds"]
TEACHERS = ("teacher", "weak_teacher")  # one model each, scored under its own name


def score(workdir, model, bench, seed=None):
    """A score record: a teacher's one, or a student's with training seed `seed`."""
    folder = model if model in TEACHERS else f"seed{seed}/{model}"
    return json.loads((workdir / f"results/scores/{folder}/{bench}.json").read_text())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """The run every test reads: a fresh directory, or the one MMDISTILL_E2E_WORKDIR names, where an
    interrupted run resumes (a job killed from outside on a shared machine need not cost the whole run)."""
    given = os.environ.get("MMDISTILL_E2E_WORKDIR")
    directory = Path(given) if given else tmp_path_factory.mktemp("pipeline")
    command = [sys.executable, "-m", "snakemake", "all", "comd_stage2", "--snakefile", str(ROOT / "Snakefile"), "--directory",
               str(directory), "--cores", "2", "--rerun-incomplete", "--configfile",
               str(ROOT / "tests" / "tiny_config.yaml")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=7200)  # CoMD and LLaVA-MoD, shared cores
    assert result.returncode == 0, result.stderr[-5000:]
    return directory


def test_every_stage_left_its_artifacts(workdir):
    results = workdir / "results"
    for path in ["world/scenes.jsonl", "world/raw_captions.jsonl", "world/instruction_seed.json",
                 "comd/stage1/filtered_captions.jsonl", "comd/stage1/filter_report.json",
                 "models/teacher/config.json", *(f"models/seed{s}/student_stage1/model.safetensors" for s in SEEDS),
                 "teacher_quality.json", "summary.md", "summary.png", "learning_curves.png"]:
        assert (results / path).exists(), path
    curves = _csv(results / "learning_curves.csv")
    assert {(row["panel"], row["seed"]) for row in curves} >= {("teacher", "0"), *(("student stage 1", str(s)) for s in SEEDS)}
    teacher = [float(row["loss"]) for row in curves if row["series"] == "instruction tuning"]
    assert teacher[-1] < teacher[0], "the teacher's instruction-tuning loss falls"
    probes = json.loads((results / "teacher_quality.json").read_text())["vision_probes"]
    for point in ("vision", "projected"):  # the toy CLIP codes every cell's colour and shape
        assert probes[point]["color"] > probes["chance"]["color"] + 0.3 and 0 <= probes[point]["token cell"] <= 1
    for model, seed in (("teacher", None), *(("student_stage1", s) for s in SEEDS)):
        for bench in ("mc", "seed", "pope", "open"):
            record = score(workdir, model, bench, seed)
            assert record["n"] > 0 and 0 <= record["score"] <= 100
            assert record["ci95"][0] <= record["score"] <= record["ci95"][1]
    summary = (results / "summary.md").read_text()
    assert "| teacher |" in summary and all(f"| student_stage1 (seed {s}) |" in summary for s in SEEDS)


def test_stage1_trains_only_the_projector_of_the_vision_ready_llm_once_per_training_seed(workdir):
    from safetensors.torch import load_file

    ready = json.loads((workdir / "results/models/llm_student_vision_ready.training.json").read_text())
    assert set(ready["trainable_parts"]) == {"projector", "language_model"}
    assert ready["loss_curve"][-1]["loss"] < ready["loss_curve"][0]["loss"], "the readiness step learned"
    before = load_file(workdir / "results/models/llm_student_vision_ready/model.safetensors")
    text_only = load_file(workdir / "results/models/llm_student/model.safetensors")
    assert any((before[name] != text_only[name]).any() for name in text_only), "stage 1 starts from the ready LLM"
    projectors = []
    for seed in SEEDS:
        after = load_file(workdir / f"results/models/seed{seed}/student_stage1/model.safetensors")
        # saved in the original LLaVA checkpoint layout: the LLM's weights under `language_model.`
        for name, weight in before.items():
            assert (after[f"language_model.{name}"] == weight).all(), f"{name} changed in stage 1"
        projectors.append({name: weight for name, weight in after.items() if "projector" in name})
        summary = json.loads((workdir / f"results/models/seed{seed}/student_stage1.training.json").read_text())
        assert list(summary["trainable_parts"]) == ["projector"]
        trained, initial = _stage1_caption_losses(workdir, seed)
        assert trained < initial, f"the projector did not learn: caption loss {trained:.3f}, initially {initial:.3f}"
    assert projectors[0] and any((projectors[0][name] != projectors[1][name]).any() for name in projectors[0]), \
        "the training seed reaches stage 1: the seeds' projectors differ"


def _stage1_caption_losses(workdir, seed):
    """Stage 1's caption loss on its first 64 filtered captions: (trained student, the same student with the
    projector it started from). The ready LLM already models captions, so the loss curve alone barely falls."""
    import torch

    from mmdistill.models.llava import assemble_llava, load_llava, num_image_tokens
    from mmdistill.stages import caption_records
    from mmdistill.training import ConversationCollator, ConversationDataset

    records = caption_records(workdir / "results/comd/stage1/filtered_captions.jsonl")[:64]
    trained = load_llava(workdir / f"results/models/seed{seed}/student_stage1")
    initial = assemble_llava(workdir / "results/models/clip", workdir / "results/models/llm_student_vision_ready",
                             seed=seed)
    losses = []
    for model, processor in (trained, initial):
        dataset = ConversationDataset(records, workdir / "results/world", processor, num_image_tokens(model.config),
                                      chat_template="toy")
        batch = ConversationCollator(processor.tokenizer.pad_token_id)([dataset[i] for i in range(len(dataset))])
        with torch.no_grad():
            losses.append(model.eval()(**batch).loss.item())
    return losses


def _jsonl(path):
    return [json.loads(line) for line in open(path)]


@pytest.mark.parametrize("seed", SEEDS)
def test_comd_iterations_replace_the_tuning_pool_and_merge_the_cache_pool(workdir, seed):
    stage2 = workdir / f"results/comd/seed{seed}/main"
    seed_pool = _jsonl(workdir / "results/comd/iter0/tuning_pool.jsonl")
    assert seed_pool == _jsonl(workdir / "results/comd/iter0/cache_pool.jsonl") and seed_pool
    previous_cache = seed_pool
    for k in (1, 2):
        report = json.loads((stage2 / f"iter{k}/report.json").read_text())
        tuning, cache = _jsonl(stage2 / f"iter{k}/tuning_pool.jsonl"), _jsonl(stage2 / f"iter{k}/cache_pool.jsonl")
        assert report["generated"] == report["valid"] + report["rejected"]
        assert len(tuning) == report["valid"] == report["tuning_pool_size"]
        assert cache == previous_cache + tuning
        assert all(r["iteration"] == k and r["parent"] for r in tuning)
        assert report["assessed"] == len(previous_cache) == report["scored"] + report["judge_failures"]
        for judgement in _jsonl(stage2 / f"iter{k}/assessment.jsonl"):
            assert {o["order"] for o in judgement["judgements"]} == {"student_first", "teacher_first"}
            assert judgement["S"] == pytest.approx((abs(judgement["R_S"] - judgement["R_T"]) + 1)
                                                   / max(judgement["R_S"], judgement["R_T"]))
        assert (workdir / f"results/models/seed{seed}/comd-main-iter{k}/config.json").exists()
        assert report["checkpoints"]["student"] == f"results/models/seed{seed}/comd-main-iter{k}"
        previous_cache = cache


def _csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def per_seed_scores(workdir, model, bench):
    """{training seed: score record} of a model: the teacher's one (key None), a student's per seed."""
    return {None: score(workdir, model, bench)} if model in TEACHERS else \
        {seed: score(workdir, model, bench, seed) for seed in SEEDS}


def test_tables_pool_each_models_per_seed_score_files(workdir):
    results = workdir / "results"
    models = ["teacher", "student_stage1", "unidirectional", "comd-main-iter1", "comd-main-iter2"]
    for table, bench in (("table1", "mc"), ("table2", "seed"), ("table3", "open")):
        rows = _csv(results / f"{table}.csv")
        assert [row["model"] for row in rows] == models
        assert (results / f"{table}.md").read_text().startswith("# ")
        for row in rows:
            records = per_seed_scores(workdir, row["model"], bench)
            # the cell is the mean of the per-seed scores, each seed's score is its own column
            mean = sum(r["score"] for r in records.values()) / len(records)
            assert float(row["Average"]) == pytest.approx(mean, abs=0.01)
            for seed in SEEDS:
                expected = "n/a" if row["model"] == "teacher" else pytest.approx(records[seed]["score"], abs=0.01)
                assert (row[f"Average_seed{seed}"] if expected == "n/a" else float(row[f"Average_seed{seed}"])) == expected
            assert int(row["Average_n"]) == min(r["n"] for r in records.values()) > 0
            assert row["seed"] == "0" and int(row["n_seeds"]) == len(records)
            assert row["seeds"] == ("" if row["model"] == "teacher" else " ".join(map(str, SEEDS)))
            assert float(row["Average_ci_low"]) <= float(row["Average"]) <= float(row["Average_ci_high"])
        averages = {row["model"]: float(row["Average"]) for row in rows}
        gap = averages["teacher"] - averages["student_stage1"]
        for row in rows:  # the share of the teacher-student gap each row closes, where there is one
            if gap <= 0:
                assert row["gap closed %"] == "n/a"
                continue
            closed = 100 * (averages[row["model"]] - averages["student_stage1"]) / gap
            assert float(row["gap closed %"]) == pytest.approx(closed, abs=0.1 + 2 / gap)  # CSV Averages are rounded
    categories = score(workdir, "teacher", "mc")["by_category"]
    expected = [*sorted(categories["subject"]), *(m.upper() for m in ("txt", "img", "no") if m in categories["context_modality"]),
                *sorted(categories["grade"]), "Average"]
    extra_fields = ("row", "model", "seed", "seeds", "n_seeds", "protocol", "chance", "gap closed %")
    assert [column for column in _csv(results / "table1.csv")[0] if column not in extra_fields and
            not column.endswith(("_n", "_ci_low", "_ci_high", *(f"_seed{s}" for s in SEEDS)))] == expected
    assert {row["judge"] for row in _csv(results / "table3.csv")} == {"reference"}
    tau = _csv(results / "table4.csv")
    assert [(row["tau"], row["model"]) for row in tau] == [("0.33", "comd-main-iter2")]
    assert [row["model"] for row in _csv(results / "table5.csv")] == ["comd-main-iter2", "comd-no-stage1"]
    figure = _csv(results / "figure4.csv")
    assert {(row["benchmark"], row["iteration"]) for row in figure} == {(b, str(k)) for b in ("mc", "seed", "open")
                                                                          for k in range(3)}
    last = next(row for row in figure if row["benchmark"] == "mc" and row["iteration"] == "2")
    assert [float(last[f"seed{s}"]) for s in SEEDS] == [pytest.approx(score(workdir, "comd-main-iter2", "mc", s)["score"],
                                                                      abs=0.01) for s in SEEDS]
    assert (results / "figure4.png").read_bytes()[:4] == b"\x89PNG"



MOD_ROWS = {  # LLaVA-MoD tables: the models of their rows (tiny config: E4T2, response tokens, online teacher)
    2: ["teacher", "mod-sft-dense", "comd-main-iter2", "mod-kd-e4t2-pref"],
    3: ["teacher", "mod-sft-dense", "comd-main-iter2", "mod-kd-e4t2-pref"],
    4: ["teacher", "mod-sft-dense", "mod-kd-e4t2", "mod-kd-e4t2-pref"],
    5: ["teacher", "mod-sft-dense", "mod-kd-e4t2", "mod-kd-e4t2-pref"],
    6: ["teacher", "mod-sft-dense", "mod-sft-e4t2", "mod-kd-e4t2"],
    7: ["teacher", "mod-sft-dense", "mod-kd-all-e4t2", "mod-kd-e4t2"],
    8: ["teacher", "mod-sft-dense", "mod-kd-e1t1", "mod-kd-e4t1"],
    9: ["teacher", "mod-sft-dense", "weak_teacher", "mod-kd-weak-e4t2", "mod-kd-e4t2"],
}
COMPREHENSION = {"MC": "mc", "SEED": "seed", "Open-ended": "open"}


def _rate(records, column):
    """A hallucination rate pooled as the tables do: the mean over the seeds that measured it of each seed's
    rate; "n/a" when none did (a student whose descriptions name no object has no mention rate)."""
    rates = []
    for record in records.values():
        described = [s for s in record["samples"] if "object_mentions" in s]
        if column == "hallucinated responses":
            hallucinated, total = sum(s["hallucinated_mentions"] > 0 for s in described), len(described)
        else:
            hallucinated = sum(s["hallucinated_mentions"] for s in described)
            total = sum(s["object_mentions"] for s in described)
        if total:
            rates.append(100 * hallucinated / total)
    return pytest.approx(sum(rates) / len(rates), abs=0.01) if rates else "n/a"


@pytest.mark.parametrize("n", sorted(MOD_ROWS))
def test_mod_tables_pool_each_models_per_seed_score_files(workdir, n):
    rows = _csv(workdir / f"results/mod_table{n}.csv")
    assert [row["model"] for row in rows] == MOD_ROWS[n]
    assert (workdir / f"results/mod_table{n}.md").read_text().startswith("# ")
    hallucination = n in (3, 5)
    for row in rows:
        columns = {"POPE": "pope"} if hallucination else COMPREHENSION
        for column, bench in columns.items():
            records = per_seed_scores(workdir, row["model"], bench)
            assert float(row[column]) == pytest.approx(sum(r["score"] for r in records.values()) / len(records),
                                                       abs=0.01), (row["model"], column)
            if row["model"] not in TEACHERS:
                assert [float(row[f"{column}_seed{s}"]) for s in SEEDS] == \
                    [pytest.approx(records[s]["score"], abs=0.01) for s in SEEDS]
        if hallucination:
            records = per_seed_scores(workdir, row["model"], "open")
            for column in ("hallucinated responses", "hallucinated mentions"):
                cell = row[column] if row[column] == "n/a" else float(row[column])
                assert cell == _rate(records, column), (row["model"], column)
            assert row["MMHal score"] == row["MMHal hallucination rate"] == "n/a"
        else:
            by_seed = [per_seed_scores(workdir, row["model"], bench) for bench in COMPREHENSION.values()]
            keys = list(by_seed[0])
            mean = sum(sum(records[key]["score"] for records in by_seed) / 3 for key in keys) / len(keys)
            assert float(row["Average"]) == pytest.approx(mean, abs=0.01), row["model"]
            assert float(row["Average_ci_low"]) <= float(row["Average"]) <= float(row["Average_ci_high"])
        assert int(row["n_seeds"]) == (1 if row["model"] in TEACHERS else len(SEEDS))
        assert 0 < int(row["params_active"]) <= int(row["params_total"])
    params = {row["model"]: (int(row["params_total"]), int(row["params_active"])) for row in rows}
    dense = params["mod-sft-dense"]
    assert params["teacher"][0] > dense[0]
    for model, (total, active) in params.items():
        if model.startswith("mod-") and "e4" in model:
            assert total > dense[0] and dense[0] < active < total, model  # experts added, the top-k active
        elif model not in TEACHERS:
            assert active == total, model
    if n == 8:
        # E1T1 and E4T1 activate as many parameters but for the routers' three more rows per layer
        assert 0 < params["mod-kd-e4t1"][1] - params["mod-kd-e1t1"][1] < 0.01 * params["mod-kd-e1t1"][1]
    if n == 9:  # the weak teacher has fewer layers than the strong one, and its student distils from it alone
        assert params["weak_teacher"][0] < params["teacher"][0]
        for stage in ("dense", "e4t2"):
            inputs = json.loads((workdir / f"results/provenance/models/seed0/mod-kd-weak-{stage}.json").read_text())["inputs"]
            used = {teacher for teacher in TEACHERS if f"results/models/{teacher}" in inputs}
            assert used == {"weak_teacher"}, stage
    if n in (4, 5):
        preference = rows[-1]
        reports = [json.loads((workdir / f"results/mod/seed{s}/mod-kd-e4t2/preference_report.json").read_text())
                   for s in SEEDS]
        assert float(preference["preference_pairs"]) == pytest.approx(sum(r["pairs"] for r in reports) / len(SEEDS))


def test_routing_shares_and_learning_curves_of_the_mod_students(workdir):
    rows = _csv(workdir / "results/mod_routing.csv")
    assert (workdir / "results/mod_routing.png").exists()
    assert {row["type"] for row in rows} >= {"image tokens", "color", "count", "describe"}
    totals = {}
    for row in rows:
        totals[(row["type"], row["layer"])] = totals.get((row["type"], row["layer"]), 0) + float(row["share"])
    assert all(total == pytest.approx(1.0, abs=1e-3) for total in totals.values())
    assert {int(row["expert"]) for row in rows} == {0, 1, 2, 3}
    curves = _csv(workdir / "results/mod_learning_curves.csv")
    assert {(row["series"], row["seed"]) for row in curves} == {(series, str(s)) for s in SEEDS
                                                               for series in ("mimic", "preference", "SFT")}


@pytest.mark.parametrize("seed", SEEDS)
def test_mod_stages_train_their_parts_from_the_comd_stage1_student(workdir, seed):
    models = workdir / f"results/models/seed{seed}"

    def summary(name):
        return json.loads((models / f"{name}.training.json").read_text())

    for name, parts, terms in (("mod-kd-dense", {"projector", "language_model"}, {"kl"}),
                               ("mod-kd-all-dense", {"projector", "language_model"}, {"kl"}),
                               ("mod-kd-e4t2", {"projector", "experts", "router"}, {"kl", "ce", "aux"}),
                               ("mod-kd-e1t1", {"projector", "experts", "router"}, {"kl", "ce", "aux"}),
                               ("mod-sft-e4t2", {"projector", "experts", "router"}, {"ce", "aux"}),
                               ("mod-kd-e4t2-pref", {"projector", "experts", "router"}, {"dpo", "aux"})):
        record = summary(name)
        assert set(record["trainable_parts"]) == parts, name
        assert terms <= set(record["loss_curve"][0]) and record["global_steps"] > 0, name
        assert ("kl" in record["loss_curve"][0]) == ("kl" in terms), name
    assert summary("mod-kd-dense")["tokens"] == "response" and summary("mod-kd-all-dense")["tokens"] == "all"
    assert summary("mod-kd-dense")["teacher_logits"] == "online"
    seed_set = json.loads((workdir / "results/world/instruction_seed.json").read_text())
    assert summary("mod-kd-dense")["examples"] == summary("mod-sft-dense")["examples"] == len(seed_set)
    # initialization (eq. 5) is CoMD's stage-1 student of the same seed
    init = json.loads((workdir / f"results/provenance/models/seed{seed}/mod-kd-dense.json").read_text())
    assert f"results/models/seed{seed}/student_stage1" in init["inputs"]
    report = json.loads((workdir / f"results/mod/seed{seed}/mod-kd-e4t2/preference_report.json").read_text())
    pairs = _jsonl(workdir / f"results/mod/seed{seed}/mod-kd-e4t2/preference_pairs.jsonl")
    rejects = _jsonl(workdir / f"results/mod/seed{seed}/mod-kd-e4t2/preference_rejects.jsonl")
    assert report["source"] == "student_samples" and report["prompts"] == 40 == len(pairs) + len(rejects)
    assert report["pairs"] == len(pairs) == summary("mod-kd-e4t2-pref")["examples"] > 0
    assert all(p["chosen"] != p["rejected"] and p["chosen_score"] > p["rejected_score"] for p in pairs)
    assert report["oracle"]["pairs"] == len(pairs)


def test_teacher_logits_are_measured_and_their_shards_have_provenance(workdir):
    bench = json.loads((workdir / "results/bench/teacher_logits_response.json").read_text())
    assert bench["k"] == 16 and bench["tokens"] > 0 and 0 <= bench["kl_nats_per_token"]
    assert bench["bytes_per_token"] < 150 and bench["bytes_per_token_152k_vocabulary"] == 6 * 16 + 2
    record = json.loads((workdir / "results/provenance/mod/teacher_logits/response.json").read_text())
    assert record["rule"] == "mod_teacher_logits" and "results/mod/teacher_logits/response" in record["outputs"]
    index = json.loads((workdir / "results/mod/teacher_logits/response/index.json").read_text())
    assert len(index["vocabulary_sha256"]) == 64  # students of another vocabulary are refused

@pytest.mark.parametrize("seed", SEEDS)
def test_baselines_train_on_the_main_runs_data_of_their_seed(workdir, seed):
    comd = workdir / f"results/comd/seed{seed}"
    comd_data = [json.loads((comd / f"main/iter{k}/tuning_data.json").read_text()) for k in (1, 2)]
    comd_answers = sum(answer_count(record) for records in comd_data for record in records)
    initial = comd_data[0]
    baseline = json.loads((comd / "unidirectional/tuning_data.json").read_text())
    assert sum(answer_count(record) for record in baseline) == comd_answers
    assert {r["id"] for r in baseline} <= {r["id"] for r in initial}
    summary = json.loads((workdir / f"results/models/seed{seed}/unidirectional.training.json").read_text())
    assert summary["examples"] == len(baseline)
    no_stage1 = json.loads((workdir / f"results/models/seed{seed}/comd-no-stage1.training.json").read_text())
    assert no_stage1["examples"] == sum(len(records) for records in comd_data)


def test_the_multiple_choice_test_follows_fine_tuning_on_its_train_split(workdir):
    train = sum(1 for _ in open(workdir / "results/world/mc_train.jsonl"))
    for model in ("teacher", *(f"seed{s}/{name}" for s in SEEDS for name in ("student_stage1", "comd-main-iter2"))):
        summary = json.loads((workdir / f"results/models/finetuned_mc/{model}.training.json").read_text())
        assert summary["examples"] == train
        record = json.loads((workdir / f"results/scores/{model}/mc.json").read_text())
        assert record["model"].endswith(f"finetuned_mc/{model}")
    assert score(workdir, "teacher", "seed")["model"].endswith("models/teacher")


def test_distillation_improves_the_student_over_stage1(workdir):
    def summed(model):  # over benchmarks, mean over training seeds
        return sum(score(workdir, model, b, s)["score"] for b in ("mc", "seed", "pope", "open") for s in SEEDS) / len(SEEDS)

    before, after = summed("student_stage1"), summed("comd-main-iter2")
    assert after > before + 10, f"stage 1: {before:.1f}, after two CoMD iterations: {after:.1f} (summed %)"


def test_filter_report_counts_add_up(workdir):
    report = json.loads((workdir / "results/comd/stage1/filter_report.json").read_text())
    kept = sum(1 for _ in open(workdir / "results/comd/stage1/filtered_captions.jsonl"))
    assert report["kept_pairs"] == kept > 0
    assert report["skipped_phrases"] > 0, "the toy corpus has rare phrases for the filter to skip"


def test_provenance_records_match_the_artifacts(workdir):
    records = list((workdir / "results" / "provenance").rglob("*.json"))
    assert len(records) >= 20
    for record_file in records:
        record = json.loads(record_file.read_text())
        for path, digest in record["outputs"].items():
            assert hash_path(workdir / path) == digest, f"{record_file}: {path} changed after its job"
        assert len(record["code"]["commit"]) == 40 and record["packages"]["transformers"]  # a clone has a commit
    teacher = json.loads((workdir / "results/provenance/models/teacher.json").read_text())
    assert teacher["rule"] == "teacher_instruct"
    tiny = yaml.safe_load((ROOT / "tests" / "tiny_config.yaml").read_text())
    assert teacher["params"]["train"] == tiny["teacher"]["instruct"]["train"]
    assert "results/world/teacher_gold.json" in teacher["inputs"]
    assert "results/models/teacher_grounded" in teacher["inputs"]  # align, ground, then instruct
    # each model fine-tuned at its own rate: the teacher at teacher_learning_rate, the students at train's
    default = yaml.safe_load((ROOT / "config.yaml").read_text())["evaluation"]["finetune"]
    rates = {model: json.loads((workdir / f"results/provenance/models/finetuned_mc/{model}.json").read_text())
             ["params"]["train"]["learning_rate"] for model in ("teacher", "seed0/unidirectional")}
    assert rates == {"teacher": default["teacher_learning_rate"],
                     "seed0/unidirectional": default["train"]["learning_rate"]}
    # the training seed reaches every student-side job: training, stage-2 sampling, fine-tuning, evaluation
    for artifact in ("models/seed1/student_stage1", "comd/seed1/main/iter1/teacher_answers.jsonl",
                     "comd/seed1/main/iter1/report.json", "models/seed1/comd-main-iter2",
                     "models/finetuned_mc/seed1/unidirectional", "scores/seed1/comd-no-stage1/open.json"):
        assert json.loads((workdir / f"results/provenance/{artifact}.json").read_text())["seed"] == 1, artifact
    default_seed = yaml.safe_load((ROOT / "config.yaml").read_text())["seed"]  # the world's and the teacher's
    assert json.loads((workdir / "results/provenance/scores/teacher/mc.json.json").read_text())["seed"] == default_seed


def test_audit_walks_table1_down_to_the_raw_world_and_every_output_has_a_record(workdir):
    """The input-to-upstream chain, not only output hashes: audit follows table 1 to the toy world's first job."""
    result = subprocess.run([sys.executable, "-m", "mmdistill", "audit", "results/table1.csv", "--directory",
                             str(workdir)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for rule in ("benchmark_table", "evaluate", "downstream_finetune", "comd_instruction_tuning", "teacher_instruct",
                 "student_stage1", "noun_phrase_filter", "toy_scenes"):
        assert f"[{rule}]" in result.stdout, rule
    for record_file in (workdir / "results" / "provenance").rglob("*.json"):
        for output in json.loads(record_file.read_text())["outputs"]:
            assert (workdir / "results/provenance" / f"{Path(output).relative_to('results')}.json").is_file(), output


# what a second cold run of table 1 must reproduce byte for byte: the table, every pool, report, judgement and
# teacher answer of CoMD, the students' weights and every score behind the table
DETERMINISTIC = ("table1.csv", "comd/iter0", "comd/stage1/filtered_captions.jsonl", "comd/seed0", "comd/seed1",
                 "models/seed0/student_stage1", "models/seed1/comd-main-iter2", "scores/seed0", "scores/seed1",
                 "scores/teacher")


def test_a_second_cold_run_writes_the_same_tables_pools_reports_and_weights(workdir, tmp_path):
    """Table 1 built again from nothing in another directory: every artifact it shares with the first run has the
    same sha256 (same machine and thread count; README: what cannot be bit-identical elsewhere)."""
    command = [sys.executable, "-m", "snakemake", "results/table1.csv", "--snakefile", str(ROOT / "Snakefile"),
               "--directory", str(tmp_path), "--cores", "2", "--configfile", str(ROOT / "tests" / "tiny_config.yaml")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stderr[-5000:]
    compared = 0
    for artifact in DETERMINISTIC:
        second = hash_path(tmp_path / "results" / artifact)
        first = hash_path(workdir / "results" / artifact)
        if isinstance(second, dict):  # table 1 needs fewer files than `all`: compare the ones it built
            assert second and set(second) <= set(first), artifact
            first = {name: first[name] for name in second}
            compared += len(second)
        else:
            compared += 1
        assert second == first, f"{artifact} differs between two cold runs"
    assert compared >= 50  # both seeds' pools, reports and judgements, two checkpoints, the MC scores


def test_stage_bench_sums_every_jobs_startup_and_compute(workdir):
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_stages.py"), str(workdir / "results")],
                   check=True, capture_output=True, text=True)
    bench = json.loads((workdir / "results/bench/stages.json").read_text())
    assert bench["untimed_jobs"] == 0 and bench["total"]["jobs"] >= 100
    assert {"teacher_instruct", "evaluate", "comd_instruction_tuning"} <= set(bench["by_rule"])
    assert 0 < bench["total"]["startup_share"] < 1 and bench["total"]["compute_s"] < bench["span_s"] * 2


def test_logs_per_job(workdir):
    logs = list((workdir / "results" / "logs").rglob("*.log"))
    assert {log.parent.name for log in logs} >= {"toy_scenes", "teacher_instruct", "evaluate", "summary"}


def _planned_jobs(workdir, *configfiles, target="all") -> dict[str, int]:
    command = [sys.executable, "-m", "snakemake", target, "-n", "--quiet", "rules", "--snakefile",
               str(ROOT / "Snakefile"), "--directory", str(workdir), "--configfile", *map(str, configfiles)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return job_counts(result.stdout + result.stderr)


def test_nothing_reruns_when_nothing_changed(workdir):
    assert _planned_jobs(workdir, ROOT / "tests" / "tiny_config.yaml") == {}


def test_a_reordered_config_plans_nothing_on_the_whole_run(workdir, tmp_path):
    """Every mapping of the whole config reordered and every whole number written as a float (as a YAML tool that
    sorts keys would save it) plans nothing, on every rule's params (tests/test_reruns.py: on a cheap run)."""
    config = merged_config(yaml.safe_load((ROOT / "config.yaml").read_text()),
                           yaml.safe_load((ROOT / "tests" / "tiny_config.yaml").read_text()))
    reordered = tmp_path / "reordered.yaml"
    reordered.write_text(yaml.safe_dump(reordered_config(config), sort_keys=False))
    assert _planned_jobs(workdir, reordered) == {}


def test_a_config_edit_reruns_only_the_affected_jobs(workdir, tmp_path):
    edit = tmp_path / "edit.yaml"
    edit.write_text("evaluation:\n  finetune:\n    train: {learning_rate: 1.0e-3, epochs: 2, batch_size: 16}\n")
    planned = _planned_jobs(workdir, ROOT / "tests" / "tiny_config.yaml", edit)
    # every model of the tables (the two teachers, five CoMD and eight more MoD students per seed) is fine-tuned
    # again and retested on MC, and the tables that show MC are rebuilt (MoD's 2, 4, 6, 7, 8, 9); nothing upstream
    assert planned == {"downstream_finetune": 28, "evaluate": 28, "benchmark_table": 1, "tau_table": 1,
                       "stage1_table": 1, "iteration_figure": 1, "summary": 1, "mod_table": 6, "all": 1}


def test_switching_the_open_ended_judge_rescores_only_open_ended_answers(workdir, tmp_path):
    edit = tmp_path / "edit.yaml"
    edit.write_text("evaluation:\n  open_ended_judge: teacher\n")
    planned = _planned_jobs(workdir, ROOT / "tests" / "tiny_config.yaml", edit)
    assert planned == {"evaluate": 28, "benchmark_table": 1, "tau_table": 1, "stage1_table": 1,
                       "iteration_figure": 1, "summary": 1, "mod_table": 8, "all": 1}


def test_a_teacher_edit_reruns_the_teacher_and_what_reads_it(workdir, tmp_path):
    edit = tmp_path / "edit.yaml"
    edit.write_text("teacher:\n  instruct:\n    trainable: [projector, language_model, vision_tower]\n")
    planned = _planned_jobs(workdir, ROOT / "tests" / "tiny_config.yaml", edit, target="results/summary.md")
    assert planned == {"teacher_instruct": 1, "teacher_quality": 1, "downstream_finetune": 1, "evaluate": 4,
                       "summary": 1}


def test_snakemake_report_renders(workdir):
    report = workdir / "report.html"
    command = [sys.executable, "-m", "snakemake", "all", "--report", str(report), "--snakefile", str(ROOT / "Snakefile"),
               "--directory", str(workdir), "--configfile", str(ROOT / "tests" / "tiny_config.yaml")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert report.stat().st_size > 10_000


def test_one_more_iteration_plans_only_that_iteration(workdir, tmp_path):
    edit = tmp_path / "edit.yaml"
    edit.write_text("comd:\n  stage2:\n    iterations: 3\n")
    planned = _planned_jobs(workdir, ROOT / "tests" / "tiny_config.yaml", edit, target="comd_stage2")
    # once per training seed
    assert planned == {"comd_teacher_answers": 2, "comd_instruction_tuning": 2, "comd_assess_augment": 2,
                       "downstream_finetune": 2, "evaluate": 8, "comd_stage2": 1}


def test_adding_a_tau_value_plans_only_that_run(workdir, tmp_path):
    assert _planned_jobs(workdir, ROOT / "tests" / "tiny_config.yaml", target="results/table4.csv") == {}, \
        "tau 0.33 is the main run, already built"
    edit = tmp_path / "edit.yaml"
    edit.write_text("comd:\n  tau_ablation: [0.33, 0.67]\n")
    planned = _planned_jobs(workdir, ROOT / "tests" / "tiny_config.yaml", edit, target="results/table4.csv")
    # per training seed, the new run shares the seed pools and iteration 1's tuning with the main run: tau acts
    # from its assessment on
    assert planned == {"comd_assess_augment": 2, "comd_teacher_answers": 2, "comd_instruction_tuning": 2,
                       "downstream_finetune": 2, "evaluate": 6, "tau_table": 1}


def _planned_outputs(workdir, *configfiles, target="all") -> dict[str, list[str]]:
    """{rule: the outputs of its planned jobs} of a dry-run."""
    command = [sys.executable, "-m", "snakemake", target, "-n", "--snakefile", str(ROOT / "Snakefile"), "--directory",
               str(workdir), "--configfile", *map(str, configfiles)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    outputs: dict[str, list[str]] = {}
    rule = None
    for line in (result.stdout + result.stderr).splitlines():
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            rule = line.split()[1].rstrip(":")
            outputs.setdefault(rule, [])
        elif line.strip().startswith("output:") and rule:
            outputs[rule].append(line.split("output:", 1)[1].strip())
    return outputs


def test_adding_a_training_seed_plans_only_that_seeds_jobs(workdir, tmp_path):
    edit = tmp_path / "edit.yaml"
    new_seed = max(SEEDS) + 1
    edit.write_text(f"seeds: {[*SEEDS, new_seed]}\n")
    planned = _planned_jobs(workdir, ROOT / "tests" / "tiny_config.yaml", edit)
    # the new seed's stage 1, two CoMD iterations (the second's assessment is comd_stage2's, not the tables'),
    # its baselines, its MoD students (dense KD of either tokens and from the weak teacher, E4T2 of the three,
    # E1T1, E4T1, the SFT twins, pairs and DPO: the teachers' logits are shared), MC fine-tuning of its thirteen
    # table students and their evaluations (POPE for the hallucination tables' three MoD students and the last
    # CoMD iteration); then the tables, summary, learning curves and routing shares, which pool every seed
    assert planned == {"student_stage1": 1, "comd_teacher_answers": 2, "comd_instruction_tuning": 2,
                       "comd_assess_augment": 1, "unidirectional_data": 1, "unidirectional_tuning": 1,
                       "without_stage1_data": 1, "without_stage1_tuning": 1, "mod_dense_distillation": 3,
                       "mod_sparse_distillation": 5, "mod_sft_dense": 1, "mod_sft_sparse": 1,
                       "mod_preference_pairs": 1, "mod_preference_distillation": 1, "downstream_finetune": 13,
                       "evaluate": 44, "benchmark_table": 3, "tau_table": 1, "stage1_table": 1, "iteration_figure": 1,
                       "summary": 1, "mod_table": 8, "learning_curves": 1, "mod_learning_curves": 1, "mod_routing": 1,
                       "all": 1}
    reports = {"benchmark_table", "tau_table", "stage1_table", "iteration_figure", "summary", "mod_table", "all",
               "learning_curves", "mod_learning_curves", "mod_routing"}
    for rule, outputs in _planned_outputs(workdir, ROOT / "tests" / "tiny_config.yaml", edit).items():
        if rule not in reports:
            assert outputs and all(f"seed{new_seed}/" in output for output in outputs), (rule, outputs)
