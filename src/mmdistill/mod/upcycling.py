"""The sparse student: a dense LLaVA upcycled into a Mixtral-style MoE (LLaVA-MoD §3.1, eq. 2-4).

`upcycle_llava` turns a `LlavaForConditionalGeneration` whose language model is a Llama
into one whose language model is transformers' native `MixtralModel`: every FFN (gate,
up, down) is copied into N experts, and each layer gets a new linear router W_r
(eq. 2), seeded small random weights, of which the top-k experts are used (eq. 3).
Vision tower, projector, attention, norms, embeddings and LM head are copied as they
are. The result is a plain transformers checkpoint: `save_pretrained` and
`LlavaForConditionalGeneration.from_pretrained` run and generate it, no DeepSpeed.
Mixtral has no attention biases, so a Qwen-1.5 student (the paper's) would need
transformers' Qwen2-MoE classes instead; only Llama language models are upcycled here.

**Routing weights.** Eq. 3-4 weight expert i by its softmax value r_i as it is, so
the top-k weights sum to less than 1. Mixtral renormalizes the top-k values to sum to
1 (transformers 5 has no switch for it), and we keep Mixtral's rule, because:

* with identical experts, as right after upcycling, the MoE layer then computes
  exactly the dense FFN whatever the router says, so the upcycled student starts as
  the dense student it came from (`tests/test_mod_upcycling.py` checks the logits);
* under eq. 4 as written every FFN output would instead be scaled by the top-k mass
  sum_{i in top-k} r_i (about k/N with a fresh router: 0.5 for E4T2), which changes
  the dense model's function at upcycling (the test shows that scaling too);
* the checkpoint stays a native class that loads with `from_pretrained`.

**Load-balancing loss.** `LlavaForConditionalGeneration` drops the language model's
router logits, so its `loss` is the cross-entropy alone, and a training objective adds
`router_aux_loss` (coef * Switch-Transformer balance loss, coef 0.01 by default and
stored as the text config's `router_aux_loss_coef`) exactly once, over the router
logits that `recorded_router_logits` collects during the forward pass.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Iterator

import torch
from transformers import LlavaConfig, LlavaForConditionalGeneration, MixtralConfig
from transformers.models.mixtral.modeling_mixtral import (
    MixtralSparseMoeBlock,
    MixtralTopKRouter,
    load_balancing_loss_func,
)

# Settings a Llama and a Mixtral decoder share, copied as they are.
SHARED_TEXT_SETTINGS = (
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "hidden_act", "max_position_embeddings", "initializer_range",
    "rms_norm_eps", "pad_token_id", "bos_token_id", "eos_token_id", "tie_word_embeddings",
    "attention_dropout", "rope_parameters", "dtype",
)


def moe_text_config(dense, num_experts: int = 4, top_k: int = 2, aux_loss_coef: float = 0.01) -> MixtralConfig:
    """The Mixtral config of a Llama text config with `num_experts` experts, `top_k` of them active."""
    if dense.model_type != "llama":
        raise ValueError(f"upcycling supports a Llama language model, not {dense.model_type!r}")
    if dense.attention_bias or dense.mlp_bias:
        raise ValueError("Mixtral has no attention or MLP biases; this Llama has them")
    if not 1 <= top_k <= num_experts:
        raise ValueError(f"top_k must lie in 1..num_experts ({num_experts}), got {top_k}")
    return MixtralConfig(
        **{key: getattr(dense, key) for key in SHARED_TEXT_SETTINGS},
        num_local_experts=num_experts,
        num_experts_per_tok=top_k,
        router_aux_loss_coef=aux_loss_coef,
    )


def upcycle_llava(dense: LlavaForConditionalGeneration, num_experts: int = 4, top_k: int = 2,
                  aux_loss_coef: float = 0.01, seed: int = 0) -> LlavaForConditionalGeneration:
    """The MoE student of `dense`: N copies of every FFN as experts and a seeded linear router per layer."""
    text_config = moe_text_config(dense.config.text_config, num_experts, top_k, aux_loss_coef)
    config = LlavaConfig.from_dict({**dense.config.to_dict(), "text_config": text_config.to_dict()})
    moe = LlavaForConditionalGeneration(config).to(dense.dtype)
    moe.generation_config = copy.deepcopy(dense.generation_config)

    state = dense.state_dict()
    generator = torch.Generator().manual_seed(seed)
    for layer in range(text_config.num_hidden_layers):
        prefix = f"model.language_model.layers.{layer}.mlp."
        gate, up, down = (state.pop(f"{prefix}{name}_proj.weight") for name in ("gate", "up", "down"))
        state[f"{prefix}experts.gate_up_proj"] = torch.cat([gate, up]).expand(num_experts, -1, -1).clone()
        state[f"{prefix}experts.down_proj"] = down.expand(num_experts, -1, -1).clone()
        router = torch.randn(num_experts, text_config.hidden_size, generator=generator)
        state[f"{prefix}gate.weight"] = (router * text_config.initializer_range).to(dense.dtype)
    moe.load_state_dict(state)
    return moe


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """Total parameters, and those one token passes through (the top-k experts of each layer), as Table 2's #Param.

    Both count the whole model: vision tower, projector and language model.
    """
    total = sum(p.numel() for p in model.parameters())
    inactive = 0
    for module in model.modules():
        if isinstance(module, MixtralSparseMoeBlock):
            experts = module.experts
            per_expert = (experts.gate_up_proj.numel() + experts.down_proj.numel()) // experts.num_experts
            inactive += (experts.num_experts - module.top_k) * per_expert
    return {"total": total, "active": total - inactive}


@contextmanager
def recorded_router_logits(model: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    """A list that collects every router's logits (tokens x experts) of the forward passes run inside the block."""
    logits: list[torch.Tensor] = []
    hooks = [module.register_forward_hook(lambda module, args, output: logits.append(output[0]))
             for module in model.modules() if isinstance(module, MixtralTopKRouter)]
    try:
        yield logits
    finally:
        for hook in hooks:
            hook.remove()


def router_aux_loss(model: LlavaForConditionalGeneration, router_logits: list[torch.Tensor],
                    attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """coef * the load-balancing loss over one forward pass's router logits; add it to the objective once.

    The balance loss is Switch Transformer's N * sum_i f_i * P_i, as Mixtral computes it
    (f_i: share of top-k assignments to expert i, P_i: mean router probability), over
    the tokens the attention mask keeps; coef is the text config's `router_aux_loss_coef`.
    """
    text_config = model.config.text_config
    balance = load_balancing_loss_func(tuple(router_logits), text_config.num_local_experts,
                                       text_config.num_experts_per_tok, attention_mask)
    return text_config.router_aux_loss_coef * balance
