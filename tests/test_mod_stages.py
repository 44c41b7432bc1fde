"""LLaVA-MoD's stages on tiny models: each learns, trains only its parts and saves a plain checkpoint."""

import json

import pytest
import torch
from transformers import LlavaForConditionalGeneration

from mmdistill.io import write_json, write_jsonl
from mmdistill.models.llava import load_llava, num_image_tokens, set_trainable
from mmdistill.mod.data import DistillationCollator, DistillationDataset
from mmdistill.mod.stages import distill_dense, distill_sparse, finetune_sparse, preference_distill
from mmdistill.mod.teacher_logits import write_teacher_top_k

from conftest import build_tiny_llava

TRAIN = {"learning_rate": 1e-2, "epochs": 6, "batch_size": 4}
QUESTIONS = ["what color is the circle ?", "is there a red circle ?", "how many objects are in the image ?"]
ANSWERS = ["red circle", "yes", "a"]


@pytest.fixture(scope="module")
def files(tmp_path_factory, benchmark_files):
    directory = tmp_path_factory.mktemp("mod_stages")
    conversations = [{"id": str(i), "image": f"images/{i % 4}.png",
                      "conversations": [{"from": "human", "value": f"<image>\n{QUESTIONS[i % 3]}"},
                                        {"from": "gpt", "value": ANSWERS[i % 3]}]} for i in range(4)]
    write_json(directory / "distill.json", conversations)
    pairs = [{"id": f"p{i}", "image": f"images/{i % 4}.png", "question": QUESTIONS[i % 3],
              "chosen": ANSWERS[i % 3], "rejected": "no circle there is"} for i in range(4)]
    write_jsonl(directory / "pairs.jsonl", pairs)
    return {"directory": directory, "data": directory / "distill.json", "pairs": directory / "pairs.jsonl",
            "images": benchmark_files["mc"].parent,
            "student": build_tiny_llava(directory / "student"),
            "teacher": build_tiny_llava(directory / "teacher", hidden_size=48, seed=1)}


def stage_paths(files, name):
    return files["directory"] / name, files["directory"] / f"{name}.json"


@pytest.fixture(scope="module")
def dense(files):
    output, summary = stage_paths(files, "dense")
    return output, distill_dense(output, summary, files["student"], files["data"], files["images"], TRAIN, seed=0,
                                 teacher=files["teacher"])


@pytest.fixture(scope="module")
def sparse(files, dense):
    output, summary = stage_paths(files, "sparse")
    return output, distill_sparse(output, summary, dense[0], files["data"], files["images"], TRAIN, seed=0,
                                  teacher=files["teacher"])


def weights(path):
    return dict(LlavaForConditionalGeneration.from_pretrained(path).named_parameters())


def changed(before, after, part):
    return [name for name in after if part in name and not torch.equal(before[name], after[name])]


def assert_learned(summary, term):
    curve = [point[term] for point in summary["loss_curve"]]
    assert len(curve) == TRAIN["epochs"] and curve[-1] < curve[0], f"no learning: {curve}"


def test_dense_distillation_lowers_the_kl_and_freezes_the_vision_tower(files, dense):
    output, summary = dense
    assert_learned(summary, "kl")
    assert json.loads(stage_paths(files, "dense")[1].read_text())["loss_curve"] == summary["loss_curve"]
    assert summary["stage"] == "dense_to_dense (eq. 6)" and summary["teacher_logits"] == "online"
    before, after = weights(files["student"]), weights(output)
    assert not changed(before, after, "vision_tower")
    assert changed(before, after, "language_model") and changed(before, after, "multi_modal_projector")


def test_dense_distillation_from_stored_teacher_top_k(files):
    model, processor = load_llava(files["teacher"])
    records = json.loads(files["data"].read_text())
    dataset = DistillationDataset(records, files["images"], processor, num_image_tokens(model.config))
    logits = files["directory"] / "teacher_logits"
    write_teacher_top_k(model, dataset, DistillationCollator(processor.tokenizer.pad_token_id), logits, k=8)
    output, summary_path = stage_paths(files, "dense_offline")
    summary = distill_dense(output, summary_path, files["student"], files["data"], files["images"], TRAIN, seed=0,
                            teacher_logits="offline", logits_dir=logits)
    assert_learned(summary, "kl")
    with pytest.raises(ValueError, match="distillation set has 3"):
        write_json(files["directory"] / "three.json", records[:3])
        distill_dense(output, summary_path, files["student"], files["directory"] / "three.json", files["images"],
                      TRAIN, seed=0, teacher_logits="offline", logits_dir=logits)


def test_sparse_distillation_trains_experts_router_and_projector_only(dense, sparse):
    output, summary = sparse
    assert_learned(summary, "loss")
    assert {"kl", "ce", "aux"} <= set(summary["loss_curve"][0])
    assert set(summary["trainable_parts"]) == {"projector", "experts", "router"}
    assert summary["parameters"]["active"] < summary["parameters"]["total"]
    reloaded = LlavaForConditionalGeneration.from_pretrained(output)
    assert reloaded.config.text_config.model_type == "mixtral"
    before, after = weights(dense[0]), dict(reloaded.named_parameters())
    for frozen in ("self_attn", "embed_tokens", "vision_tower", "lm_head"):
        assert not changed(before, after, frozen), frozen
    assert changed(before, after, "multi_modal_projector")
    assert [name for name in after if ".mlp." in name and name not in before]  # experts and routers are new


def test_sparse_fine_tuning_is_eq_7_without_the_teacher(files, dense):
    output, summary_path = stage_paths(files, "sparse_sft")
    summary = finetune_sparse(output, summary_path, dense[0], files["data"], files["images"], TRAIN, seed=0)
    assert_learned(summary, "ce")
    assert set(summary["loss_curve"][0]) >= {"ce", "aux"} and "kl" not in summary["loss_curve"][0]
    assert set(summary["trainable_parts"]) == {"projector", "experts", "router"}
    assert LlavaForConditionalGeneration.from_pretrained(output).config.text_config.num_local_experts == 4


def test_one_expert_is_the_dense_architecture_through_the_sparse_stage(files, dense):
    """Table 8's dense row: E1T1 trains the same parts as E4T1 with every parameter active."""
    output, summary_path = stage_paths(files, "e1t1")
    summary = distill_sparse(output, summary_path, dense[0], files["data"], files["images"],
                             {**TRAIN, "epochs": 1}, seed=0, num_experts=1, top_k=1, teacher=files["teacher"])
    assert summary["parameters"]["active"] == summary["parameters"]["total"]
    assert summary["parameters"]["total"] == sum(p.numel() for p in weights(dense[0]).values()) + \
        LlavaForConditionalGeneration.from_pretrained(output).config.text_config.num_hidden_layers * \
        LlavaForConditionalGeneration.from_pretrained(output).config.text_config.hidden_size  # one router row per layer


def test_preference_distillation_lowers_the_dpo_loss(files, sparse):
    output, summary_path = stage_paths(files, "preference")
    summary = preference_distill(output, summary_path, sparse[0], files["pairs"], files["images"],
                                 files["teacher"], TRAIN, seed=0, beta=0.1)
    assert_learned(summary, "dpo")
    assert summary["loss_curve"][-1]["reward_margin"] > summary["loss_curve"][0]["reward_margin"]
    before, after = weights(sparse[0]), weights(output)
    assert not changed(before, after, "self_attn") and changed(before, after, ".mlp.experts")


def test_experts_and_router_need_an_upcycled_model(files):
    model, _ = load_llava(files["student"])
    with pytest.raises(ValueError, match="upcycle it first"):
        set_trainable(model, ["projector", "experts"])
