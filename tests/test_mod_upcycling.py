import copy

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import LlavaForConditionalGeneration, MixtralForCausalLM
from transformers.models.mixtral.modeling_mixtral import MixtralTopKRouter

from mmdistill.conversation import IGNORE_INDEX, encode_conversation
from mmdistill.models.llava import load_llava, num_image_tokens, save_llava
from mmdistill.mod.parameters import checkpoint_parameter_counts
from mmdistill.mod.upcycling import parameter_counts, recorded_router_logits, router_aux_loss, upcycle_llava

from conftest import build_tiny_llava

NUM_LAYERS = 2


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    return load_llava(build_tiny_llava(tmp_path_factory.mktemp("dense"), num_layers=NUM_LAYERS))


@pytest.fixture(scope="module")
def moe(dense):
    return upcycle_llava(dense[0], num_experts=4, top_k=2, aux_loss_coef=0.01, seed=0).eval()


@pytest.fixture(scope="module")
def batch(dense):
    """One image-question-answer example as training ids, labels and pixels."""
    model, processor = dense
    input_ids, labels = encode_conversation(processor.tokenizer, ["what color is the circle ?"], ["red circle"],
                                            num_image_tokens(model.config))
    pixels = processor.image_processor(Image.new("RGB", (64, 64), "red"), return_tensors="pt")["pixel_values"]
    return {"input_ids": torch.tensor([input_ids]), "labels": torch.tensor([labels]), "pixel_values": pixels,
            "attention_mask": torch.ones(1, len(input_ids), dtype=torch.long)}


def eq4_router_forward(self, hidden_states):
    """Mixtral's router without renormalization: the top-k softmax values as eq. 3-4 write them."""
    router_logits = F.linear(hidden_states.reshape(-1, self.hidden_dim), self.weight)
    top_values, top_indices = router_logits.float().softmax(dim=-1).topk(self.top_k, dim=-1)
    return router_logits, top_values, top_indices


def test_experts_are_copies_of_the_ffn_and_routers_are_seeded(dense, moe):
    dense_mlp = dense[0].model.language_model.layers[0].mlp
    block = moe.model.language_model.layers[0].mlp
    for expert in range(4):
        torch.testing.assert_close(block.experts.gate_up_proj[expert],
                                   torch.cat([dense_mlp.gate_proj.weight, dense_mlp.up_proj.weight]))
        torch.testing.assert_close(block.experts.down_proj[expert], dense_mlp.down_proj.weight)
    again = upcycle_llava(dense[0], seed=0).model.language_model.layers[0].mlp.gate.weight
    other = upcycle_llava(dense[0], seed=1).model.language_model.layers[0].mlp.gate.weight
    assert torch.equal(block.gate.weight, again) and not torch.equal(block.gate.weight, other)
    assert 0 < block.gate.weight.std() < 0.05


def test_renormalized_routing_keeps_the_dense_logits(dense, moe, batch):
    inputs = {key: batch[key] for key in ("input_ids", "pixel_values")}
    with torch.no_grad():
        torch.testing.assert_close(moe(**inputs).logits, dense[0](**inputs).logits)


def test_eq4_routing_scales_each_ffn_by_its_top_k_mass(dense, moe, batch, monkeypatch):
    """Documented behaviour of eq. 4 as written: the dense FFN output times sum of the top-k r_i, so logits change."""
    dense_mlp = dense[0].model.language_model.layers[0].mlp
    block = moe.model.language_model.layers[0].mlp
    hidden = torch.randn(1, 5, dense[0].config.text_config.hidden_size, generator=torch.Generator().manual_seed(0))
    top_k_mass = F.linear(hidden, block.gate.weight).softmax(dim=-1).topk(2, dim=-1).values.sum(dim=-1, keepdim=True)
    inputs = {key: batch[key] for key in ("input_ids", "pixel_values")}
    monkeypatch.setattr(MixtralTopKRouter, "forward", eq4_router_forward)
    with torch.no_grad():
        torch.testing.assert_close(block(hidden), top_k_mass * dense_mlp(hidden))
        assert (top_k_mass < 0.99).all()
        assert not torch.allclose(moe(**inputs).logits, dense[0](**inputs).logits, atol=1e-3)


def test_parameter_counts_total_and_active(dense, moe):
    config = dense[0].config.text_config
    ffn = 3 * config.hidden_size * config.intermediate_size
    router = 4 * config.hidden_size
    dense_counts = parameter_counts(dense[0])
    assert dense_counts["total"] == dense_counts["active"] == sum(p.numel() for p in dense[0].parameters())
    assert parameter_counts(moe) == {"total": dense_counts["total"] + NUM_LAYERS * (3 * ffn + router),
                                     "active": dense_counts["total"] + NUM_LAYERS * (1 * ffn + router)}


def test_saved_checkpoint_reloads_with_plain_from_pretrained_and_generates_the_same_tokens(dense, moe, batch,
                                                                                           tmp_path):
    trained = copy.deepcopy(moe)  # experts made distinct, as training makes them, so that routing matters
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in trained.named_parameters():
            if ".experts." in name:
                parameter.add_(torch.randn(parameter.shape, generator=generator))
    save_llava(trained, dense[1], tmp_path)
    reloaded = LlavaForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert reloaded.config.text_config.model_type == "mixtral"
    prompt = batch["input_ids"][:, batch["labels"][0] == IGNORE_INDEX]
    inputs = {"input_ids": prompt, "pixel_values": batch["pixel_values"], "attention_mask": torch.ones_like(prompt)}
    settings = {"max_new_tokens": 8, "min_new_tokens": 8, "do_sample": False}  # no early EOS
    generated = trained.generate(**inputs, **settings)
    assert torch.equal(reloaded.generate(**inputs, **settings), generated)
    assert not torch.equal(moe.generate(**inputs, **settings), generated)


def test_aux_loss_is_added_once(moe, batch):
    """Llava's own loss is the CE alone; CE + router_aux_loss equals what MixtralForCausalLM adds (coef * aux, once)."""
    text_only = {key: batch[key] for key in ("input_ids", "labels", "attention_mask")}
    with recorded_router_logits(moe) as router_logits, torch.no_grad():
        outputs = moe(**text_only)
    assert len(router_logits) == NUM_LAYERS
    logits, labels = outputs.logits[0, :-1], text_only["labels"][0, 1:]
    torch.testing.assert_close(outputs.loss, F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX))
    aux_term = router_aux_loss(moe, router_logits, text_only["attention_mask"])

    mixtral = MixtralForCausalLM(moe.config.text_config).eval()
    mixtral.model.load_state_dict(moe.model.language_model.state_dict())
    mixtral.lm_head.load_state_dict(moe.lm_head.state_dict())
    with torch.no_grad():
        reference = mixtral(**text_only, output_router_logits=True)
    torch.testing.assert_close(aux_term, 0.01 * reference.aux_loss)
    torch.testing.assert_close(outputs.loss + aux_term, reference.loss)
    assert aux_term > 0


def test_parameter_counts_read_from_a_saved_checkpoint_equal_the_loaded_models(dense, moe, tmp_path):
    for name, (model, processor) in {"dense": dense, "moe": (moe, dense[1])}.items():
        save_llava(model, processor, tmp_path / name)
        assert checkpoint_parameter_counts(tmp_path / name) == parameter_counts(model), name
