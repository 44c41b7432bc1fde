"""Configurations of the toy foundation models: a tiny CLIP and tiny Llama LLMs.

They are the same transformers classes a real run loads (`CLIPModel`,
`LlamaForCausalLM`); only the sizes differ, and they are trained in the pipeline.
"""

from __future__ import annotations

from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, LlamaConfig, LlamaForCausalLM


def tiny_clip(tokenizer, image_size: int, patch_size: int, hidden_size: int, num_layers: int,
              num_heads: int, projection_dim: int) -> CLIPModel:
    common = dict(hidden_size=hidden_size, intermediate_size=4 * hidden_size,
                  num_hidden_layers=num_layers, num_attention_heads=num_heads)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tokenizer), max_position_embeddings=tokenizer.model_max_length,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, **common),
        vision_config=dict(image_size=image_size, patch_size=patch_size, **common),
        projection_dim=projection_dim,
    )
    return CLIPModel(config)


def clip_image_processor(image_size: int) -> CLIPImageProcessor:
    """CLIP's preprocessing at the toy resolution (resize and centre-crop are no-ops there)."""
    return CLIPImageProcessor(size={"shortest_edge": image_size},
                              crop_size={"height": image_size, "width": image_size})


def tiny_llama(tokenizer, hidden_size: int, num_layers: int, num_heads: int, max_positions: int) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)
