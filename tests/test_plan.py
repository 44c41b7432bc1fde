"""The capacity plan: parameter counts, the FLOPs-to-hours arithmetic, ZeRO memory, and `make plan`."""

import json
import subprocess
from pathlib import Path

import pytest

from mmdistill import plan

ROOT = Path(__file__).resolve().parents[1]
COMD_RULES = ["student_stage1", "comd_teacher_answers", "comd_assess_augment", "comd_instruction_tuning",
              "unidirectional_tuning", "downstream_finetune", "evaluate"]
MOD_RULES = ["mod_init", "mod_dense_distillation", "mod_sparse_distillation", "mod_preference_distillation",
             "evaluate"]


@pytest.mark.parametrize("checkpoint, published", [
    ("vicuna-7b-v1.1", 6.74e9), ("qwen1.5-1.8b-chat", 1.84e9), ("llava-1.5-13b-hf", 13.0e9),
    ("llava-qwen1.5-7b-hf", 7.72e9), ("llava-qwen1.5-4b-hf", 3.95e9)])
def test_decoder_parameter_counts_match_the_published_sizes(checkpoint, published):
    decoder = plan.decoder_of(plan.KNOWN_CHECKPOINTS[checkpoint])
    assert decoder.params == pytest.approx(published, rel=0.01)


def test_clip_large_336_has_576_image_tokens_and_304m_parameters():
    tower = plan.vision_of(plan.KNOWN_CHECKPOINTS["clip-vit-large-patch14-336"])
    assert tower.image_tokens == 576
    assert tower.params == pytest.approx(0.303e9, rel=0.01)
    assert plan.vision_of(plan.KNOWN_CHECKPOINTS["clip-vit-large-patch14"]).image_tokens == 256


def test_a_checkpoint_on_disk_is_read_from_its_config_json(tmp_path):
    checkpoint = tmp_path / "vicuna-7b-v1.1"
    checkpoint.mkdir()
    fields = {"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 100}
    (checkpoint / "config.json").write_text(json.dumps(fields))
    assert plan.decoder_of(plan.checkpoint_config(str(checkpoint))) == plan.Decoder(64, 2, 128, 100)


def test_an_unknown_checkpoint_is_named_in_the_error():
    with pytest.raises(KeyError, match="/models/my-llm"):
        plan.checkpoint_config("/models/my-llm")


def test_worked_example_full_fine_tune_of_7b_on_a_billion_tokens():
    """6·N·T at 40% of 312 TFLOP/s: 6 x 6.74e9 x 1e9 = 4.04e19 FLOPs / 1.248e14 FLOP/s = 90 GPU-hours."""
    decoder = plan.decoder_of(plan.KNOWN_CHECKPOINTS["vicuna-7b-v1.1"])
    model = plan.Llava(decoder, plan.vision_of(plan.KNOWN_CHECKPOINTS["clip-vit-large-patch14"]))
    flops = plan.train_flops(model, tokens=1e9, images=0, llm_trained=True, checkpointing=False)
    assert flops == pytest.approx(6 * decoder.params * 1e9)
    assert plan.compute_hours(flops) == pytest.approx(90.0, rel=0.01)
    recomputed = plan.train_flops(model, tokens=1e9, images=0, llm_trained=True, checkpointing=True)
    assert recomputed == pytest.approx(flops * 8 / 6)


def test_worked_example_stage1_row_of_the_comd_config():
    """885K pairs of 256 image + 34 text tokens, projector only with checkpointing (6·N·T), plus the tower."""
    config = plan.load_config(ROOT / "configs" / "comd.yaml")
    row = next(r for r in plan.comd_rows(config) if r.rule == "student_stage1")
    student = plan.student_model(config["models"])
    tokens, images = 885_000 * (256 + 34), 885_000
    flops = 6 * student.active_params * tokens + 2 * student.vision.params * 256 * images
    assert row.cost.total == pytest.approx(flops / 1.248e14 / 3600)
    assert 20 < row.cost.total < 26


def test_decoding_is_slower_with_hf_generate_by_the_stated_factor():
    model = plan.teacher_model({"teacher": "/models/llava-1.5-13b-hf"})
    vllm = plan.decode_hours(model, 1e6, "vllm")
    assert vllm == pytest.approx(1e6 / (2000 * 13e9 / model.active_params) / 3600)
    assert plan.decode_hours(model, 1e6, "hf") == pytest.approx(10 * vllm)


def test_zero2_shards_gradients_and_adam_states_but_not_weights():
    n = 7e9
    zero2 = plan.Parallelism(gpus=4, zero_stage=2, offload_optimizer=False, bf16=True, checkpointing=True)
    assert plan.training_memory_gb(n, n, zero2, activation_bytes=0) == pytest.approx((2 + 2 / 4 + 12 / 4) * n / 1e9)
    ddp = plan.Parallelism(gpus=4, zero_stage=0, offload_optimizer=False, bf16=True, checkpointing=True)
    assert plan.training_memory_gb(n, n, ddp, activation_bytes=0) == pytest.approx(16 * n / 1e9)
    offload = plan.Parallelism(gpus=4, zero_stage=2, offload_optimizer=True, bf16=True, checkpointing=True)
    assert plan.training_memory_gb(n, n, offload, activation_bytes=0) == pytest.approx(2.5 * n / 1e9)


def test_the_train_blocks_deepspeed_config_sets_the_zero_stage():
    config = plan.load_config(ROOT / "configs" / "comd.yaml")
    setup = plan.parallelism("comd_instruction_tuning", config["comd"]["stage2"]["train"])
    assert (setup.gpus, setup.zero_stage, setup.offload_optimizer, setup.bf16) == (4, 2, False, True)


def test_the_config_merges_over_config_yaml_as_snakemake_does():
    merged = plan.deep_merge({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": 3}, "d": [2]})
    assert merged == {"a": {"b": 3, "c": 2}, "d": [2]}
    config = plan.load_config(ROOT / "configs" / "comd.yaml")
    assert config["comd"]["stage2"]["iterations"] == 4 and config["seeds"] == [0, 1, 2]


def test_comd_pools_follow_the_paper_and_iterations_come_from_the_config():
    assert plan.comd_pool_sizes(4) == [220_000, 84_000, 90_000, 110_000]
    assert sum(plan.comd_pool_sizes(4)) == 504_000   # §4.1.3: 504K instructions trained on
    assert plan.comd_pool_sizes(5)[-1] == 110_000


def rule_column(output: str) -> list[str]:
    return [line.split("|")[1].strip() for line in output.splitlines() if line.startswith("| ")][1:]


@pytest.mark.parametrize("config, rules", [("configs/comd.yaml", COMD_RULES), ("configs/llava-mod.yaml", MOD_RULES)])
def test_make_plan_prints_every_rule(config, rules):
    # -o venv: the tests already run in the project's venv; make would otherwise check the lock first
    result = subprocess.run(["make", "-s", "-o", "venv", "plan", f"CONFIG={config}"], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    printed = rule_column(result.stdout)
    assert set(rules) <= set(printed), f"missing: {set(rules) - set(printed)}"
    assert "Assumptions:" in result.stdout and "GPU-hours" in result.stdout
