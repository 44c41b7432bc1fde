"""Assembling, loading and freezing `LlavaForConditionalGeneration` models.

Toy and real runs share this code: a student is assembled from a CLIP vision
checkpoint and a causal-LM checkpoint (with its tokenizer) on disk; a teacher is
any saved LLaVA checkpoint (e.g. `llava-hf/llava-1.5-13b-hf` downloaded beforehand).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    CLIPImageProcessor,
    CLIPVisionModel,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)
from transformers.models.mixtral.modeling_mixtral import MixtralExperts, MixtralTopKRouter

from mmdistill.conversation import IMAGE_PLACEHOLDER

# experts and router: the FFN experts and routers of a mixture-of-experts LLM (mmdistill.mod.upcycling)
TRAINABLE_PARTS = ("projector", "language_model", "vision_tower", "experts", "router")
# Where a saved checkpoint keeps the CLIP tower's weights: vLLM's LLaVA loader, and checkpoints saved before
# transformers 5, name them `vision_tower.vision_model.*`; transformers 5 saves `vision_tower.*` and loads both.
VISION_TOWER, VLLM_VISION_TOWER = "vision_tower.", "vision_tower.vision_model."


def num_image_tokens(config: LlavaConfig) -> int:
    """Image tokens per image: one per patch (the CLS token is dropped by the 'default' strategy)."""
    vision = config.vision_config
    patches = (vision.image_size // vision.patch_size) ** 2
    return patches if config.vision_feature_select_strategy == "default" else patches + 1


def assemble_llava(vision_path: str | Path, llm_path: str | Path, seed: int = 0):
    """A fresh LLaVA: pretrained vision tower and LLM, randomly initialised projector.

    The `<image>` token is added to the LLM's tokenizer (and embeddings) if missing.
    Returns `(model, processor)`.
    """
    torch.manual_seed(seed)
    vision = CLIPVisionModel.from_pretrained(vision_path)
    llm = AutoModelForCausalLM.from_pretrained(llm_path)
    tokenizer = AutoTokenizer.from_pretrained(llm_path)
    if IMAGE_PLACEHOLDER not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_PLACEHOLDER]})
        llm.resize_token_embeddings(len(tokenizer))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    tokenizer.padding_side = "left"
    config = LlavaConfig(
        vision_config=vision.config,
        text_config=llm.config,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_PLACEHOLDER),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )
    model = LlavaForConditionalGeneration(config)
    model.model.vision_tower.load_state_dict(vision.state_dict())
    model.model.language_model.load_state_dict(llm.model.state_dict())
    model.lm_head.load_state_dict(llm.lm_head.state_dict())
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor.from_pretrained(vision_path),
        tokenizer=tokenizer,
        patch_size=vision.config.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        image_token=IMAGE_PLACEHOLDER,
        chat_template=tokenizer.chat_template,
    )
    return model, processor


def load_llava(path: str | Path, torch_dtype: torch.dtype | None = None):
    """Load a saved LLaVA checkpoint and its processor: `(model, processor)`."""
    model = LlavaForConditionalGeneration.from_pretrained(path, dtype=torch_dtype)
    processor = LlavaProcessor.from_pretrained(path)
    processor.tokenizer.padding_side = "left"
    return model, processor


def save_llava(model, processor, path: str | Path) -> None:
    """Save model and processor, the vision tower's weights under the names vLLM loads (VLLM_VISION_TOWER)."""
    Path(path).mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    _name_vision_tower_for_vllm(Path(path))


def save_language_model(model: LlavaForConditionalGeneration, processor, path: str | Path) -> None:
    """Save the LLaVA's language model alone, with its tokenizer, as a causal-LM checkpoint that
    `assemble_llava` accepts (the projector and vision tower are dropped)."""
    llm = AutoModelForCausalLM.from_config(model.config.text_config)
    llm.model.load_state_dict(model.model.language_model.state_dict())
    llm.lm_head.load_state_dict(model.lm_head.state_dict())
    llm.generation_config = model.generation_config
    Path(path).mkdir(parents=True, exist_ok=True)
    llm.save_pretrained(path)
    processor.tokenizer.save_pretrained(path)


def _vllm_key(key: str) -> str:
    if key.startswith(VISION_TOWER) and not key.startswith(VLLM_VISION_TOWER):
        return VLLM_VISION_TOWER + key.removeprefix(VISION_TOWER)
    return key


def _name_vision_tower_for_vllm(path: Path) -> None:
    for file in sorted(path.glob("*.safetensors")):
        with safe_open(file, "pt") as handle:
            metadata = handle.metadata()
        tensors = load_file(file)
        if any(_vllm_key(key) != key for key in tensors):
            save_file({_vllm_key(key): tensor for key, tensor in tensors.items()}, file, metadata=metadata)
    index = path / "model.safetensors.index.json"
    if index.exists():
        content = json.loads(index.read_text())
        content["weight_map"] = {_vllm_key(key): shard for key, shard in content["weight_map"].items()}
        index.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")


def set_trainable(model: LlavaForConditionalGeneration, parts: list[str]) -> dict[str, int]:
    """Freeze everything, then unfreeze the named parts. Returns trainable counts per part."""
    unknown = set(parts) - set(TRAINABLE_PARTS)
    if unknown:
        raise ValueError(f"unknown trainable part(s) {sorted(unknown)}; choose from {TRAINABLE_PARTS}")
    modules = {
        "projector": [model.model.multi_modal_projector],
        "language_model": [model.model.language_model, model.lm_head],
        "vision_tower": [model.model.vision_tower],
        "experts": [module for module in model.modules() if isinstance(module, MixtralExperts)],
        "router": [module for module in model.modules() if isinstance(module, MixtralTopKRouter)],
    }
    for part in set(parts) & {"experts", "router"}:
        if not modules[part]:
            raise ValueError(f"trainable part {part!r}: the language model has no mixture-of-experts layers; "
                             "upcycle it first (mmdistill.mod.upcycling.upcycle_llava)")
    model.requires_grad_(False)
    counts = {}
    for part in parts:
        counts[part] = 0
        for module in modules[part]:
            module.requires_grad_(True)
            counts[part] += sum(p.numel() for p in module.parameters())
    return counts
