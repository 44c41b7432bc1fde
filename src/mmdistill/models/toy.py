"""Configurations of the toy foundation models: a tiny CLIP and tiny Llama LLMs.

They are the same transformers classes a real run loads (`CLIPModel`,
`LlamaForCausalLM`); only the sizes differ, and they are trained in the pipeline.
"""

from __future__ import annotations

import math

import torch
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
    model = CLIPModel(config)
    set_2d_sincos_positions(model.vision_model.embeddings.position_embedding.weight, image_size // patch_size)
    return model


def set_2d_sincos_positions(weight: torch.Tensor, side: int) -> None:
    """Fill a ViT's position table (CLS first, then patches row-major) with 2D sine-cosine codes.

    Half of the dimensions encode the patch's row, half its column, as harmonics of the grid
    (as in MAE's 2D table); CLS gets zeros. Default initialisation (std 0.02) makes positions 60x weaker than patch
    contents, and a toy CLIP never trains long enough to grow them, so image tokens
    would not know where they are and no question about a place could be answered.
    """
    dim = weight.shape[1]
    quarter = dim // 4
    harmonics = torch.arange(1, quarter + 1, dtype=torch.float32)  # nearly orthogonal codes on a small grid
    rows, columns = torch.meshgrid(torch.arange(side, dtype=torch.float32),
                                   torch.arange(side, dtype=torch.float32), indexing="ij")

    def encode(coordinate: torch.Tensor) -> torch.Tensor:
        angles = coordinate.reshape(-1, 1) * harmonics * math.pi / side
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    table = torch.zeros_like(weight)
    table[1:, : 4 * quarter] = torch.cat([encode(rows), encode(columns)], dim=1)
    with torch.no_grad():
        weight.copy_(table)


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
