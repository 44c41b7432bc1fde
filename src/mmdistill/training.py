"""The one training loop every stage uses: HF `Trainer` with AdamW and linear warmup.

Stages differ only in the model, the dataset/collator, which parameters are
trainable and, where the model's own loss is not the objective, the `Objective`:
CLIP contrastive pretraining, causal-LM pretraining, projector alignment (CoMD
stage 1), instruction tuning (teacher and CoMD stage 2), downstream fine-tuning and
LLaVA-MoD's distillation stages (`mmdistill.mod.objectives`) all call `train`.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from PIL import Image
from torch.utils.data import Dataset
from transformers import Trainer, TrainerCallback, TrainingArguments

from mmdistill import checkpoints
from mmdistill.conversation import DEFAULT_TEMPLATE, IGNORE_INDEX, encode_conversation, from_llava_record, get_template
from mmdistill.images import preflight
from mmdistill.launch import world_size
from mmdistill.seeding import seed_everything


@dataclass
class TrainSettings:
    """Optimiser and schedule; every field is a config key of the stage that trains.

    `batch_size` is the global batch: under torchrun each of the N processes takes batch_size / N.
    """

    learning_rate: float
    epochs: float
    batch_size: int
    seed: int
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    gradient_accumulation_steps: int = 1
    lr_scheduler: str = "cosine"
    max_grad_norm: float = 1.0
    bf16: bool = False
    deepspeed: str | None = None
    gradient_checkpointing: bool = False


def _skip_deepspeed_shm_op() -> None:
    """On CPU, DeepSpeed's comm backend JIT-compiles its shared-memory all-reduce op (ninja and a C++ compiler:
    minutes, with every other rank waiting on the build lock) when it starts. Only DeepSpeed inference uses that
    op; marked incompatible, it is not built and training all-reduces over gloo."""
    import deepspeed.ops
    from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder

    deepspeed.ops.__compatible_ops__[ShareMemCommBuilder.NAME] = False


class Objective(Protocol):
    """A loss other than the model's own: (model, batch) -> (total loss, its named terms for the loss curve).

    `components` names every term it may report; the total is a mean over the batch.
    """

    components: tuple[str, ...]

    def __call__(self, model, inputs: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...


class NonFiniteError(FloatingPointError):
    """A non-finite loss or parameter during training; the message names the stage and the step."""


class _GuardedTrainer(Trainer):
    """`Trainer` that stops at the first non-finite loss, naming the stage and the step."""

    def __init__(self, stage: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stage = stage

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss).all():
            raise NonFiniteError(f"{self.stage}: non-finite loss ({float(loss)}) at step {self.state.global_step + 1} "
                                 f"of {self.state.max_steps}; training stopped, nothing is saved")
        return loss

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        """Resume a checkpoint's weights through `from_pretrained`, which maps saved names to the model's.

        `Trainer` loads the saved state dict by name and ignores names it does not know. LLaVA saves
        its legacy names (`language_model.model.*` for `model.language_model.*`), so nothing loaded and
        a killed job resumed from its initial weights with a trained optimizer. Any mismatch is an error.
        (DeepSpeed resumes through its own files; FSDP keeps Trainer's loader.)
        """
        if self.is_fsdp_enabled:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        model = self.accelerator.unwrap_model(model if model is not None else self.model)
        parameter = next(model.parameters())
        saved = type(model).from_pretrained(resume_from_checkpoint, dtype=parameter.dtype)
        model.load_state_dict(saved.state_dict(), strict=True)


class _ObjectiveTrainer(_GuardedTrainer):
    """`Trainer` whose loss is an `Objective`; each term is averaged between two logs, as the loss is."""

    loss_is_scaled_for_ga = False  # an objective returns a per-batch mean

    def __init__(self, objective: Objective, **kwargs) -> None:
        super().__init__(**kwargs)
        self.objective = objective
        self.terms: dict[str, list[float]] = defaultdict(list)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, terms = self.objective(model, inputs)
        for name, value in terms.items():
            self.terms[name].append(float(value.detach()))
        return (loss, None) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            logs.update({name: sum(values) / len(values) for name, values in self.terms.items()})
            self.terms.clear()
        super().log(logs, start_time)


class _FiniteParameters(TrainerCallback):
    """After every optimizer step: every trainable parameter is finite, or training stops naming it."""

    def __init__(self, stage: str) -> None:
        self.stage = stage

    def on_step_end(self, args, state, control, model=None, **kwargs):
        for name, parameter in model.named_parameters():
            if parameter.requires_grad and not torch.isfinite(parameter).all():
                raise NonFiniteError(f"{self.stage}: parameter {name} is not finite after step {state.global_step} "
                                     f"of {state.max_steps}; training stopped, nothing is saved")


class _MarkComplete(TrainerCallback):
    """Marks a checkpoint complete once the trainer saved it (rank 0, which wrote it)."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            (checkpoint / checkpoints.COMPLETE_MARKER).write_text("")


def _loss_curve(log_history: list[dict[str, Any]], components: tuple[str, ...]) -> list[dict[str, float]]:
    """The logged losses (the trainer's state keeps them across a resume)."""
    return [{"step": entry["step"], "loss": float(entry["loss"]),
             "learning_rate": float(entry.get("learning_rate", 0.0)),
             **{name: float(entry[name]) for name in components if name in entry}}
            for entry in log_history if "loss" in entry]


def train(model, dataset: Dataset, collator, settings: TrainSettings, loss: Objective | None = None) -> dict[str, Any]:
    """Train `model` in place on `dataset`; returns a summary with the loss curve.

    The objective is the model's own loss, or `loss` when given; then the loss curve
    also holds the terms it reports (`Objective.components`). A non-finite loss or
    parameter raises `NonFiniteError` (naming the stage and step) before anything is
    saved. Inside `checkpointing(...)` (every pipeline job) training saves a checkpoint
    every N steps to the job's work folder and a rerun resumes from the latest complete
    one: optimizer, scheduler, RNG states and the position in the data, so the final
    weights equal an uninterrupted run's.
    """
    active = checkpoints.active()
    if active is None:
        with tempfile.TemporaryDirectory() as work_dir:
            return _train(model, dataset, collator, settings, loss, Path(work_dir), None, "training")
    active.calls += 1
    work_dir = active.directory / f"train{active.calls}"
    return _train(model, dataset, collator, settings, loss, work_dir, active.every_steps, active.stage)


def _train(model, dataset, collator, settings: TrainSettings, loss: Objective | None, work_dir: Path,
           checkpoint_steps: int | None, stage: str) -> dict[str, Any]:
    seed_everything(settings.seed)
    processes = world_size()
    if settings.batch_size % processes:
        raise ValueError(f"batch_size {settings.batch_size} is the global batch and must divide among {processes} "
                         "training processes (one per GPU)")
    on_cpu = not torch.cuda.is_available()
    if settings.deepspeed and on_cpu:
        _skip_deepspeed_shm_op()
    steps_per_epoch = max(1, len(dataset) // (settings.batch_size * settings.gradient_accumulation_steps))
    args = TrainingArguments(
        output_dir=str(work_dir),
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size // processes,
        # Without a GPU, torchrun's processes train data-parallel over gloo only when told they are on CPU.
        use_cpu=processes > 1 and on_cpu,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        warmup_steps=int(settings.warmup_ratio * steps_per_epoch * settings.epochs),
        weight_decay=settings.weight_decay,
        lr_scheduler_type=settings.lr_scheduler,
        max_grad_norm=settings.max_grad_norm,
        optim="adamw_torch",
        seed=settings.seed,
        data_seed=settings.seed,
        bf16=settings.bf16,
        deepspeed=settings.deepspeed,
        # transformers 5's name for gradient checkpointing. Non-reentrant: stages that freeze the embeddings
        # (projector-only training) still get gradients.
        activation_checkpointing=settings.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if settings.gradient_checkpointing else None,
        logging_steps=max(1, steps_per_epoch // 10),
        logging_nan_inf_filter=False,  # a non-finite loss stops training (_GuardedTrainer), never hidden in the log
        # the newest checkpoint, and the one before it while the newest is being written
        **({"save_strategy": "steps", "save_steps": checkpoint_steps, "save_total_limit": 2} if checkpoint_steps
           else {"save_strategy": "no"}),
        report_to=[],
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )
    components = loss.components if loss else ()
    common = {"stage": stage, "model": model, "args": args, "train_dataset": dataset, "data_collator": collator,
              "callbacks": [_FiniteParameters(stage), _MarkComplete()]}
    trainer = _GuardedTrainer(**common) if loss is None else _ObjectiveTrainer(loss, **common)
    # An unlaunched setup trains silently in one process, or without DeepSpeed: stop instead.
    if trainer.args.world_size != processes:
        raise RuntimeError(f"{processes} processes were launched, but Trainer trains in {trainer.args.world_size}")
    if settings.deepspeed and not trainer.is_deepspeed_enabled:
        raise RuntimeError(f"DeepSpeed config {settings.deepspeed} is set, but Trainer does not train with DeepSpeed")
    resume = checkpoints.latest_checkpoint(work_dir) if checkpoint_steps else None
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return {
        "train_loss": float(result.training_loss),
        "global_steps": int(result.global_step),
        "examples": len(dataset),
        "runtime_s": float(result.metrics.get("train_runtime", 0.0)),
        "loss_curve": _loss_curve(trainer.state.log_history, components),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "gradient_checkpointing": bool(getattr(model, "is_activation_checkpointing", False)),
        "processes": trainer.args.world_size,
        "deepspeed": trainer.is_deepspeed_enabled,
        **({"zero_stage": int(trainer.deepspeed.zero_optimization_stage())} if trainer.is_deepspeed_enabled else {}),
        **({"resumed_from_step": int(resume.name.split("-")[1])} if resume else {}),
    }


def pad_batch(sequences: list[list[int]], pad_value: int, side: str = "right") -> torch.Tensor:
    width = max(len(s) for s in sequences)
    padded = [
        (s + [pad_value] * (width - len(s))) if side == "right" else ([pad_value] * (width - len(s)) + s)
        for s in sequences
    ]
    return torch.tensor(padded, dtype=torch.long)


class ConversationDataset(Dataset):
    """LLaVA-format records as (input_ids, labels, pixel_values) in the eq. (2) format of a chat template.

    A record without an `image` (or with `image: null`) is text-only: its conversation has
    no image tokens and its item no `pixel_values` (LLaVA-80K and ScienceQA mix both kinds).
    The image preflight (`mmdistill.images.preflight`) runs first: records whose image is
    missing or corrupt go to `self.rejects`; more than `max_reject_rate` of them (default
    0: any) is a `DataError` naming `source`, the record and the file.
    """

    def __init__(self, records: list[dict], image_root: str | Path, processor, num_image_tokens: int,
                 max_length: int | None = None, chat_template: str = DEFAULT_TEMPLATE,
                 source: str | Path = "training data", max_reject_rate: float = 0.0) -> None:
        self.examples = []
        self.image_root = Path(image_root)
        self.image_processor = processor.image_processor
        template = get_template(chat_template)
        records, self.rejects = preflight(records, image_root, source, max_reject_rate)
        for record in records:
            questions, answers = from_llava_record(record)
            image = record.get("image")
            input_ids, labels = encode_conversation(processor.tokenizer, questions, answers, num_image_tokens,
                                                    template, image=image is not None)
            if max_length and len(input_ids) > max_length:
                raise ValueError(f"record {record.get('id')!r} has {len(input_ids)} tokens > max_length {max_length}")
            self.examples.append((image, input_ids, labels))

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, input_ids, labels = self.examples[index]
        item = {"input_ids": input_ids, "labels": labels}
        if image is not None:
            pixels = self.image_processor(Image.open(self.image_root / image).convert("RGB"), return_tensors="pt")
            item["pixel_values"] = pixels["pixel_values"][0]
        return item


def stack_images(batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """`pixel_values` of the batch's items that have an image, in batch order (LLaVA fills image
    tokens in that order); nothing for an all-text batch."""
    pixels = [b["pixel_values"] for b in batch if "pixel_values" in b]
    return {"pixel_values": torch.stack(pixels)} if pixels else {}


class ConversationCollator:
    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        input_ids = pad_batch([b["input_ids"] for b in batch], self.pad_token_id)
        return {
            "input_ids": input_ids,
            "attention_mask": pad_batch([[1] * len(b["input_ids"]) for b in batch], 0),
            "labels": pad_batch([b["labels"] for b in batch], IGNORE_INDEX),
            **stack_images(batch),
        }


class TextDataset(Dataset):
    """Plain text for causal-LM pretraining: BOS text EOS, every token supervised."""

    def __init__(self, texts: list[str], tokenizer, max_length: int) -> None:
        self.examples = []
        for text in texts:
            ids = tokenizer.encode(text, add_special_tokens=True)[: max_length - 1] + [tokenizer.eos_token_id]
            self.examples.append(ids)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"input_ids": self.examples[index]}


class TextCollator:
    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        input_ids = pad_batch([b["input_ids"] for b in batch], self.pad_token_id)
        labels = pad_batch([b["input_ids"] for b in batch], IGNORE_INDEX)
        return {"input_ids": input_ids, "attention_mask": (labels != IGNORE_INDEX).long(), "labels": labels}


class ImageCaptionDataset(Dataset):
    """(image, caption) pairs for CLIP's contrastive objective."""

    def __init__(self, records: list[dict], image_root: str | Path, tokenizer, image_processor, max_length: int) -> None:
        self.records = records
        self.image_root = Path(image_root)
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.max_length = max_length

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        ids = self.tokenizer.encode(record["caption"], add_special_tokens=True)[: self.max_length - 1]
        pixels = self.image_processor(Image.open(self.image_root / record["image"]).convert("RGB"), return_tensors="pt")
        return {"input_ids": ids + [self.tokenizer.eos_token_id], "pixel_values": pixels["pixel_values"][0]}


class ImageCaptionCollator:
    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return {
            "input_ids": pad_batch([b["input_ids"] for b in batch], self.pad_token_id),
            "attention_mask": pad_batch([[1] * len(b["input_ids"]) for b in batch], 0),
            "pixel_values": torch.stack([b["pixel_values"] for b in batch]),
            "return_loss": True,
        }
