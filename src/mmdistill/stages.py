"""Training stages as functions of files: what each training rule of the pipeline does.

Every stage goes through `mmdistill.training.train`; they differ in model, data and
which parameters are trainable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from mmdistill.conversation import DEFAULT_TEMPLATE, IMAGE_PLACEHOLDER
from mmdistill.io import read_json, read_jsonl
from mmdistill.launch import is_main_process
from mmdistill.models.llava import (
    assemble_llava,
    load_llava,
    num_image_tokens,
    save_language_model,
    save_llava,
    set_trainable,
)
from mmdistill.roles import caption_prompt
from mmdistill.training import (
    ConversationCollator,
    ConversationDataset,
    ImageCaptionCollator,
    ImageCaptionDataset,
    TextCollator,
    TextDataset,
    TrainSettings,
    train,
)
from mmdistill.seeding import seed_everything


def settings_from_config(train_config: dict[str, Any], seed: int) -> TrainSettings:
    """`TrainSettings` from a `train:` block of the config."""
    known = {"learning_rate", "epochs", "batch_size", "warmup_ratio", "gradient_accumulation_steps", "deepspeed", "bf16",
             "gradient_checkpointing"}
    return TrainSettings(seed=seed, **{k: v for k, v in train_config.items() if k in known})


TEXT_FIELDS = ("caption", "conversations", "value", "text", "question", "prompt", "answer", "options", "context")


def texts_of(path: str | Path) -> Iterable[str]:
    """The natural-language strings of a JSON/JSONL data file (ids and paths excluded)."""
    path = Path(path)
    records = read_json(path) if path.suffix == ".json" else list(read_jsonl(path))

    def walk(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for key in TEXT_FIELDS:
                if key in value:
                    yield from walk(value[key])
        elif isinstance(value, list):
            for item in value:
                yield from walk(item)

    yield from walk(records)


def caption_records(path: str | Path) -> list[dict]:
    """Caption pairs as one-turn conversations: a fixed caption instruction, the caption as answer."""
    return [
        {"id": r["id"], "image": r["image"],
         "conversations": [{"from": "human", "value": f"{IMAGE_PLACEHOLDER}\n{caption_prompt()}"},
                           {"from": "gpt", "value": r["caption"]}]}
        for r in read_jsonl(path)
    ]


def conversation_records(path: str | Path) -> list[dict]:
    path = Path(path)
    return read_json(path) if path.suffix == ".json" else list(read_jsonl(path))


def train_toy_clip(tokenizer_dir, captions_path, image_root, output_dir, image_size, architecture, train_config,
                   seed) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from mmdistill.models.toy import clip_image_processor, tiny_clip

    seed_everything(seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    model = tiny_clip(tokenizer, image_size=image_size, **architecture)
    image_processor = clip_image_processor(image_size)
    dataset = ImageCaptionDataset(list(read_jsonl(captions_path)), image_root, tokenizer, image_processor,
                                  max_length=tokenizer.model_max_length)
    summary = train(model, dataset, ImageCaptionCollator(tokenizer.pad_token_id), settings_from_config(train_config, seed))
    model.save_pretrained(output_dir)
    image_processor.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return summary


def train_toy_llm(tokenizer_dir, text_path, output_dir, architecture, max_positions, train_config, seed) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from mmdistill.models.toy import tiny_llama

    seed_everything(seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    model = tiny_llama(tokenizer, max_positions=max_positions, **architecture)
    texts = [record["text"] for record in read_jsonl(text_path)]
    dataset = TextDataset(texts, tokenizer, max_length=max_positions)
    summary = train(model, dataset, TextCollator(tokenizer.pad_token_id), settings_from_config(train_config, seed))
    if is_main_process():
        model.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
    return summary


def train_llava_stage(output_dir, data_path, data_format, image_root, trainable, train_config, seed,
                      init_checkpoint=None, vision_tower=None, llm=None, allow_empty=False,
                      chat_template=DEFAULT_TEMPLATE, max_reject_rate=0.0) -> dict[str, Any]:
    """One LLaVA training stage: projector alignment, instruction tuning or fine-tuning.

    The model is loaded from `init_checkpoint`, or assembled from `vision_tower` and
    `llm` with a fresh projector. `data_format` is `captions` (JSONL of caption pairs)
    or `conversations` (LLaVA-format JSON/JSONL). With `allow_empty`, empty data saves
    the initial model unchanged (a CoMD iteration whose augmentor produced nothing
    valid); otherwise empty data is an error. `chat_template` names the prompt format
    (`mmdistill.conversation.TEMPLATES`). Records whose image is missing or corrupt go
    to the summary's `rejects` (the image preflight), up to `max_reject_rate` of the data.
    """
    seed_everything(seed)
    if init_checkpoint is not None:
        model, processor = load_llava(init_checkpoint)
    elif vision_tower is not None and llm is not None:
        model, processor = assemble_llava(vision_tower, llm, seed=seed)
    else:
        raise ValueError("train_llava_stage needs init_checkpoint, or both vision_tower and llm")
    if data_format == "captions":
        records = caption_records(data_path)
    elif data_format == "conversations":
        records = conversation_records(data_path)
    else:
        raise ValueError(f"data_format must be 'captions' or 'conversations', got {data_format!r}")
    if not records:
        if not allow_empty:
            raise ValueError(f"{data_path}: no training records")
        if is_main_process():
            save_llava(model, processor, output_dir)
        return {"examples": 0, "global_steps": 0, "train_loss": None, "loss_curve": [],
                "skipped": f"{data_path} holds no records; the initial model is saved unchanged"}
    summary = _fit(model, processor, records, data_path, image_root, trainable, train_config, seed, chat_template,
                   max_reject_rate)
    if is_main_process():
        save_llava(model, processor, output_dir)
    return summary


def make_llm_vision_ready(output_dir, llm, vision_tower, data_path, image_root, train_config, seed,
                          chat_template=DEFAULT_TEMPLATE, max_reject_rate=0.0) -> dict[str, Any]:
    """The toy student LLM made ready to read image tokens, as a real LLM is by its scale.

    `llm` is trained with `vision_tower` and a throwaway projector on the caption pairs of
    `data_path` (projector and LLM trainable), and only the LLM is saved, as a causal-LM
    checkpoint. The student's stage 1 then aligns a fresh projector to it, projector-only
    as CoMD prescribes: through the text-only toy LLM such a projector learns nothing
    about the image (README, "A vision-ready student LLM").
    """
    seed_everything(seed)
    model, processor = assemble_llava(vision_tower, llm, seed=seed)
    summary = _fit(model, processor, caption_records(data_path), data_path, image_root,
                   ["projector", "language_model"], train_config, seed, chat_template, max_reject_rate)
    if is_main_process():
        save_language_model(model, processor, output_dir)
    return summary


def _fit(model, processor, records, data_path, image_root, trainable, train_config, seed, chat_template,
         max_reject_rate) -> dict[str, Any]:
    """Train the `trainable` parts of a LLaVA on conversation records; the training summary."""
    parameter_counts = set_trainable(model, list(trainable))
    dataset = ConversationDataset(records, image_root, processor, num_image_tokens(model.config),
                                  max_length=model.config.text_config.max_position_embeddings,
                                  chat_template=chat_template, source=data_path, max_reject_rate=max_reject_rate)
    summary = train(model, dataset, ConversationCollator(processor.tokenizer.pad_token_id),
                    settings_from_config(train_config, seed))
    summary["trainable_parts"] = parameter_counts
    summary["rejects"] = {"total": len(dataset.rejects), "by_reason": dataset.rejects.counts,
                          "records": [{"source": r["source"], "reason": r["reason"]} for r in dataset.rejects.rejects]}
    return summary
