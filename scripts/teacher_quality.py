"""Rule script: the teacher's answers (by task type, image sensitivity), judge agreement and generated-question
validity on held-out scenes, and linear probes of its image features (training scenes against held-out ones)."""

from pathlib import Path

from mmdistill.generation import load_backend
from mmdistill.io import read_jsonl, write_json
from mmdistill.jobs import snakemake_job
from mmdistill.probes import vision_probes
from mmdistill.quality import answer_diagnostics, judge_agreement, question_validity
from mmdistill.toyworld.corpora import make_augment_data, make_judge_data

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    seed, num_scenes, generation = job.params["seed"], job.params["num_scenes"], job.params["generation"]
    per_scene = job.params["questions_per_scene"]
    image_root = Path(job.input.images).parent
    all_scenes = list(read_jsonl(job.input.scenes))
    scenes = [s for s in all_scenes if s["split"] == "bench_test"][:num_scenes]
    probe_train = [s for s in all_scenes if s["split"] == "instruct"][:job.params["probe_train_scenes"]]
    backend = load_backend(generation["backend"], job.input.teacher, batch_size=generation["batch_size"], seed=seed,
                           chat_template=job.params["chat_template"])
    answers = answer_diagnostics(backend, scenes, image_root, seed, per_scene,
                                 generation["max_new_tokens"])
    judge = judge_agreement(backend, make_judge_data(scenes, seed, per_scene), image_root,
                            generation["temperature"]["assessor"], generation["max_new_tokens"])
    augment = question_validity(backend, make_augment_data(scenes, seed, per_scene), {s["image"]: s for s in scenes},
                                image_root, generation["temperature"]["augmentor"], generation["max_new_tokens"])
    probes = vision_probes(backend.model, backend.processor, probe_train, scenes, image_root)
    write_json(job.output[0], {"teacher": job.input.teacher, "answers": answers, "judge": judge, "augmentor": augment,
                               "vision_probes": probes})
    job.log.info("probes (projector output): %s", {name: round(acc, 3) for name, acc in probes["projected"].items()})
    job.log.info("answers: accuracy %.3f, image sensitivity %.3f; judge: preference agreement %s, position bias %s; "
                 "augmentor: answerable %.3f, same task type %.3f", answers["accuracy"], answers["image_sensitivity"],
                 judge["preference_agreement"], judge["position_bias"], augment["answerable_share"],
                 augment["same_task_type_share"])
