"""LLaVA-MoD's objectives through the one training loop: each term as its loss function computes it."""

import copy
import math

import pytest
import torch

from mmdistill.conversation import IGNORE_INDEX
from mmdistill.models.llava import load_llava, num_image_tokens
from mmdistill.mod.data import DistillationCollator, DistillationDataset, PreferenceCollator, PreferenceDataset
from mmdistill.mod.losses import mimic_distillation_loss
from mmdistill.mod.objectives import (
    MimicDistillation,
    PreferenceDistillation,
    check_stored_vocabulary,
    check_teacher,
    check_tokenizers,
)
from mmdistill.mod.teacher_logits import TeacherLogitsReader, vocabulary_digest, write_teacher_top_k
from mmdistill.mod.upcycling import recorded_router_logits, router_aux_loss, upcycle_llava
from mmdistill.training import TrainSettings, train

from conftest import build_tiny_llava

QUESTIONS = ["what color is the circle ?", "is there a red circle ?", "what shape is the object in the top left ?"]
ANSWERS = ["red circle", "yes", "a circle"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mod_models")
    student = build_tiny_llava(directory / "student")
    teacher = build_tiny_llava(directory / "teacher", hidden_size=48, seed=1)
    return load_llava(student), load_llava(teacher)[0]


@pytest.fixture(scope="module")
def records():
    return [{"id": str(i), "image": f"images/{i % 4}.png",
             "conversations": [{"from": "human", "value": f"<image>\n{QUESTIONS[i % 3]}"},
                               {"from": "gpt", "value": ANSWERS[i % 3]}]} for i in range(4)]


def distillation_data(models, records, image_root, tokens="response"):
    (student, processor), _ = models
    dataset = DistillationDataset(records, image_root, processor, num_image_tokens(student.config), tokens)
    return dataset, DistillationCollator(processor.tokenizer.pad_token_id)


def first_step(model, dataset, collator, objective):
    """The loss curve's first point: one step over the whole dataset as one batch, logged before the update."""
    settings = TrainSettings(learning_rate=1e-3, epochs=1, batch_size=len(dataset), seed=0)
    summary = train(model, dataset, collator, settings, loss=objective)
    assert summary["global_steps"] == 1
    return summary["loss_curve"][0]


def whole_batch(dataset, collator):
    return collator([dataset[i] for i in range(len(dataset))])


def test_kl_in_the_trainer_equals_the_loss_function_on_the_same_batch(models, records, benchmark_files, tmp_path):
    (student, _), teacher = models
    dataset, collator = distillation_data(models, records, benchmark_files["mc"].parent)
    batch = whole_batch(dataset, collator)
    inputs = {key: batch[key] for key in ("input_ids", "attention_mask", "pixel_values")}
    with torch.no_grad():
        expected = mimic_distillation_loss(student(**inputs).logits, teacher(**inputs).logits, batch["labels"])
    point = first_step(copy.deepcopy(student), dataset, collator, MimicDistillation(teacher=teacher))
    assert point["kl"] == pytest.approx(expected.item(), rel=1e-5)
    assert point["loss"] == pytest.approx(point["kl"]) and "ce" not in point and "aux" not in point
    assert not any(parameter.requires_grad for parameter in teacher.parameters()) and not teacher.training


def test_response_tokens_are_the_answers_and_all_tokens_add_the_instruction(models, records, benchmark_files):
    (student, processor), _ = models
    response, _ = distillation_data(models, records, benchmark_files["mc"].parent, "response")
    everything, _ = distillation_data(models, records, benchmark_files["mc"].parent, "all")
    item, item_all = response[0], everything[0]
    assert item["distill_labels"] == item["labels"] == item_all["labels"]
    image_id = student.config.image_token_id
    tokens = processor.tokenizer.convert_ids_to_tokens(item["input_ids"])
    distilled = {position for position, label in enumerate(item["distill_labels"]) if label != IGNORE_INDEX}
    distilled_all = {position for position, label in enumerate(item_all["distill_labels"]) if label != IGNORE_INDEX}
    instruction = distilled_all - distilled
    assert distilled < distilled_all
    assert image_id not in [item["input_ids"][p] for p in distilled_all] and 0 not in distilled_all
    assert {tokens[p] for p in instruction} >= {"what", "color", "circle", "?", "assistant", "user"}
    assert len(distilled_all) == len(item["input_ids"]) - 1 - num_image_tokens(student.config)


def test_online_and_offline_teachers_give_nearly_the_same_loss(models, records, benchmark_files, tmp_path):
    """With k = V - 1 the stored residual sits on one token: only float16 rounding sets the two apart."""
    (student, _), teacher = models
    dataset, collator = distillation_data(models, records, benchmark_files["mc"].parent, "all")
    k = student.get_output_embeddings().out_features - 1
    write_teacher_top_k(teacher, dataset, collator, tmp_path / "logits", k=k, batch_size=3)
    online = first_step(copy.deepcopy(student), dataset, collator, MimicDistillation(teacher=teacher))
    reader = TeacherLogitsReader(tmp_path / "logits")
    offline = first_step(copy.deepcopy(student), dataset, collator, MimicDistillation(teacher_top_k=reader))
    assert offline["kl"] == pytest.approx(online["kl"], abs=2e-4)


def test_offline_rows_written_for_other_tokens_are_an_error(models, records, benchmark_files, tmp_path):
    (student, _), teacher = models
    response, collator = distillation_data(models, records, benchmark_files["mc"].parent, "response")
    write_teacher_top_k(teacher, response, collator, tmp_path, k=4)
    everything, _ = distillation_data(models, records, benchmark_files["mc"].parent, "all")
    objective = MimicDistillation(teacher_top_k=TeacherLogitsReader(tmp_path))
    with pytest.raises(ValueError, match="other distillation tokens"):
        objective(student, whole_batch(everything, collator))


def test_the_aux_loss_is_added_once_to_ce_and_kl(models, records, benchmark_files, tmp_path):
    (student, _), teacher = models
    moe = upcycle_llava(student, num_experts=4, top_k=2, aux_loss_coef=0.01)
    dataset, collator = distillation_data(models, records, benchmark_files["mc"].parent)
    batch = whole_batch(dataset, collator)
    with recorded_router_logits(moe) as router_logits, torch.no_grad():
        moe(**{key: batch[key] for key in ("input_ids", "attention_mask", "pixel_values")})
    expected_aux = router_aux_loss(moe, router_logits, batch["attention_mask"]).item()
    point = first_step(moe, dataset, collator, MimicDistillation(teacher=teacher, cross_entropy=True))
    assert point["aux"] == pytest.approx(expected_aux, rel=1e-5) and point["aux"] > 0
    assert point["loss"] == pytest.approx(point["kl"] + point["ce"] + point["aux"], rel=1e-6)


def preference_data(models, benchmark_files):
    (student, processor), _ = models
    pairs = [{"id": f"p{i}", "image": f"images/{i}.png", "question": QUESTIONS[i % 3],
              "chosen": ANSWERS[i % 3], "rejected": "no circle there is"} for i in range(3)]
    dataset = PreferenceDataset(pairs, benchmark_files["mc"].parent, processor, num_image_tokens(student.config))
    return dataset, PreferenceCollator(processor.tokenizer.pad_token_id)


def test_preference_collator_puts_the_chosen_rows_before_the_rejected(models, benchmark_files):
    dataset, collator = preference_data(models, benchmark_files)
    batch = collator([dataset[0], dataset[1]])
    assert batch["input_ids"].shape[0] == batch["pixel_values"].shape[0] == 4
    torch.testing.assert_close(batch["pixel_values"][:2], batch["pixel_values"][2:])
    assert batch["labels"][0].tolist()[:len(dataset[0]["chosen"][1])] == dataset[0]["chosen"][1]
    assert batch["labels"][2].tolist()[:len(dataset[0]["rejected"][1])] == dataset[0]["rejected"][1]


def test_dpo_through_the_trainer_starts_at_log_2_for_a_copy_of_the_reference(models, benchmark_files, tmp_path):
    _, teacher = models
    dataset, collator = preference_data(models, benchmark_files)
    point = first_step(copy.deepcopy(teacher).requires_grad_(True), dataset, collator,
                       PreferenceDistillation(teacher, beta=0.1))
    assert point["dpo"] == pytest.approx(math.log(2), abs=1e-6) and point["loss"] == point["dpo"]
    assert point["reward_margin"] == pytest.approx(0.0, abs=1e-6)
    # the upcycled copy computes the same logits, so the same DPO term, and adds its aux term once
    moe = upcycle_llava(teacher, num_experts=4, top_k=2)
    point = first_step(moe, dataset, collator, PreferenceDistillation(teacher, beta=0.1))
    assert point["dpo"] == pytest.approx(math.log(2), abs=1e-5)
    assert point["loss"] == pytest.approx(point["dpo"] + point["aux"], rel=1e-6) and point["aux"] > 0


def test_a_teacher_of_another_vocabulary_is_refused(models, tmp_path):
    (student, _), _ = models
    other, _ = load_llava(build_tiny_llava(tmp_path, emit_only=["a"]))
    other.resize_token_embeddings(other.config.text_config.vocab_size + 3)
    with pytest.raises(ValueError, match="one tokenizer family"):
        check_teacher(student, other)


def test_a_teacher_tokenizer_with_the_same_size_but_other_ids_is_refused(models):
    (_, processor), _ = models
    tokenizer = processor.tokenizer
    check_tokenizers(tokenizer, copy.deepcopy(tokenizer))  # the same vocabulary passes
    swapped = copy.deepcopy(tokenizer)
    vocabulary = swapped.get_vocab()
    swapped.get_vocab = lambda: {**vocabulary, "red": vocabulary["blue"], "blue": vocabulary["red"]}
    with pytest.raises(ValueError, match=r"differ in 2 of \d+ tokens .*'blue': \d+ / \d+"):
        check_tokenizers(tokenizer, swapped)


def test_stored_top_k_of_another_vocabulary_is_refused(models, tmp_path):
    (_, processor), _ = models
    digest = vocabulary_digest(processor.tokenizer)
    check_stored_vocabulary(processor.tokenizer, {"vocabulary_sha256": digest}, tmp_path)
    with pytest.raises(ValueError, match=f"{tmp_path}: the teacher's stored top-k come from another vocabulary"):
        check_stored_vocabulary(processor.tokenizer, {"vocabulary_sha256": "0" * 64}, tmp_path)
