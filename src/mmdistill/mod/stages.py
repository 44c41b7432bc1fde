"""LLaVA-MoD's progressive distillation (§3.2) as functions of files, as `mmdistill.stages` is for CoMD.

Initialization (eq. 5) is projector alignment, `mmdistill.stages.train_llava_stage`
with `trainable: [projector]` on captions. Then:

* `distill_dense` (eq. 6): KL to the teacher; ViT frozen, LLM and projector trained.
* `distill_sparse` (eq. 7): the dense student upcycled into experts, then CE plus KL;
  experts, routers and projector trained.
* `preference_distill` (eq. 8): DPO with the frozen teacher as reference; experts,
  routers and projector trained.
* `finetune_sparse`: Table 6's SFT baseline, the dense student upcycled as for eq. 7 and
  trained on the same data with cross-entropy alone (no teacher).

Every stage trains through `mmdistill.training.train` with its objective
(`mmdistill.mod.objectives`), saves a checkpoint that
`LlavaForConditionalGeneration.from_pretrained` loads, and writes its summary as JSON.
The teacher of mimic distillation is online (`teacher`, a checkpoint loaded whole) or
offline (`logits_dir`, its stored top-k, `mmdistill.mod.teacher_logits`), as
`teacher_logits` says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from mmdistill.conversation import DEFAULT_TEMPLATE
from mmdistill.io import read_jsonl, write_json
from mmdistill.launch import is_main_process
from mmdistill.models.llava import load_llava, num_image_tokens, save_llava, set_trainable
from mmdistill.mod.data import DistillationCollator, DistillationDataset, PreferenceCollator, PreferenceDataset
from mmdistill.mod.objectives import (
    MimicDistillation,
    PreferenceDistillation,
    SparseFineTuning,
    check_stored_vocabulary,
    check_teacher,
    check_tokenizers,
    vocabulary_size,
)
from mmdistill.mod.teacher_logits import TeacherLogitsReader
from mmdistill.mod.upcycling import parameter_counts, upcycle_llava
from mmdistill.seeding import seed_everything
from mmdistill.stages import conversation_records, settings_from_config
from mmdistill.training import train

TEACHER_LOGITS = ("online", "offline")
DENSE_TRAINABLE = ("projector", "language_model")  # eq. 6: the ViT stays frozen
SPARSE_TRAINABLE = ("projector", "experts", "router")  # eq. 7 and 8


def stage_arguments(job) -> dict[str, Any]:
    """What every LLaVA-MoD stage's rule gives its stage function: the model and summary it writes, the checkpoint
    it starts from, the image root, training settings, seed, trainable parts and chat template."""
    return {"output_dir": job.output.model, "summary_path": job.output.summary, "init_checkpoint": job.input.init,
            "image_root": job.params["image_root"], "train_config": job.params["train"], "seed": job.params["seed"],
            "trainable": job.params["trainable"], "chat_template": job.params["chat_template"]}


def distill_dense(output_dir, summary_path, init_checkpoint, data_path, image_root, train_config, seed,
                  teacher_logits: str = "online", teacher=None, logits_dir=None, tokens: str = "response",
                  trainable: Sequence[str] = DENSE_TRAINABLE, chat_template: str = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """Dense-to-dense mimic distillation (eq. 6) of the aligned student at `init_checkpoint`.

    `data_path` holds LLaVA-format conversations (captions as one-turn ones); `tokens`
    is `response` or `all` (Table 7).
    """
    seed_everything(seed)
    model, processor = load_llava(init_checkpoint)
    return _mimic_distill(model, processor, "dense_to_dense (eq. 6)", False, output_dir, summary_path, data_path,
                          image_root, train_config, seed, teacher_logits, teacher, logits_dir, tokens, trainable,
                          chat_template)


def distill_sparse(output_dir, summary_path, init_checkpoint, data_path, image_root, train_config, seed,
                   num_experts: int = 4, top_k: int = 2, aux_loss_coef: float = 0.01,
                   teacher_logits: str = "online", teacher=None, logits_dir=None, tokens: str = "response",
                   trainable: Sequence[str] = SPARSE_TRAINABLE,
                   chat_template: str = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """Dense-to-sparse mimic distillation (eq. 7): upcycle the dense student (E`num_experts`T`top_k`), then CE + KL.

    The load-balancing term (`aux_loss_coef`) is added once per step.
    """
    seed_everything(seed)
    dense, processor = load_llava(init_checkpoint)
    model = upcycle_llava(dense, num_experts, top_k, aux_loss_coef, seed=seed)
    return _mimic_distill(model, processor, "dense_to_sparse (eq. 7)", True, output_dir, summary_path, data_path,
                          image_root, train_config, seed, teacher_logits, teacher, logits_dir, tokens, trainable,
                          chat_template)


def finetune_sparse(output_dir, summary_path, init_checkpoint, data_path, image_root, train_config, seed,
                    num_experts: int = 4, top_k: int = 2, aux_loss_coef: float = 0.01,
                    trainable: Sequence[str] = SPARSE_TRAINABLE,
                    chat_template: str = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """Table 6's SFT: the dense student upcycled as in `distill_sparse`, trained with cross-entropy plus aux only."""
    seed_everything(seed)
    dense, processor = load_llava(init_checkpoint)
    model = upcycle_llava(dense, num_experts, top_k, aux_loss_coef, seed=seed)
    records = _nonempty(conversation_records(data_path), data_path)
    dataset = DistillationDataset(records, image_root, processor, num_image_tokens(model.config),
                                  max_length=model.config.text_config.max_position_embeddings,
                                  chat_template=chat_template)
    summary = _train_and_save(model, processor, dataset, DistillationCollator(processor.tokenizer.pad_token_id),
                              SparseFineTuning(), trainable, train_config, seed, output_dir)
    summary.update(stage="sparse fine-tuning (eq. 7 without KL, Table 6)")
    if is_main_process():
        write_json(summary_path, summary)
    return summary


def _mimic_distill(model, processor, stage, cross_entropy, output_dir, summary_path, data_path, image_root,
                   train_config, seed, teacher_logits, teacher, logits_dir, tokens, trainable,
                   chat_template) -> dict[str, Any]:
    records = _nonempty(conversation_records(data_path), data_path)
    dataset = DistillationDataset(records, image_root, processor, num_image_tokens(model.config), tokens,
                                  max_length=model.config.text_config.max_position_embeddings,
                                  chat_template=chat_template)
    if teacher_logits == "online":
        if teacher is None:
            raise ValueError("teacher_logits 'online' needs the teacher checkpoint")
        teacher_model, teacher_processor = load_llava(teacher)
        check_teacher(model, teacher_model)
        check_tokenizers(processor.tokenizer, teacher_processor.tokenizer, str(teacher))
        objective = MimicDistillation(teacher=teacher_model, cross_entropy=cross_entropy)
    elif teacher_logits == "offline":
        if logits_dir is None:
            raise ValueError("teacher_logits 'offline' needs the directory of the teacher's stored top-k")
        reader = TeacherLogitsReader(logits_dir)
        check_stored_vocabulary(processor.tokenizer, reader.index, logits_dir)
        if (len(reader), reader.index["vocab_size"]) != (len(dataset), vocabulary_size(model)):
            raise ValueError(f"{logits_dir} holds {len(reader)} examples over a {reader.index['vocab_size']}-token "
                             f"vocabulary; the distillation set has {len(dataset)} and the student "
                             f"{vocabulary_size(model)} tokens")
        objective = MimicDistillation(teacher_top_k=reader, cross_entropy=cross_entropy)
    else:
        raise ValueError(f"teacher_logits must be one of {TEACHER_LOGITS}, got {teacher_logits!r}")
    summary = _train_and_save(model, processor, dataset, DistillationCollator(processor.tokenizer.pad_token_id),
                              objective, trainable, train_config, seed, output_dir)
    summary.update(stage=stage, teacher_logits=teacher_logits, tokens=tokens)
    if is_main_process():
        write_json(summary_path, summary)
    return summary


def preference_distill(output_dir, summary_path, init_checkpoint, pairs_path, image_root, teacher, train_config,
                       seed, beta: float = 0.1, trainable: Sequence[str] = SPARSE_TRAINABLE,
                       chat_template: str = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """Preference distillation (eq. 8) of the student at `init_checkpoint` on RLAIF-V-format pairs (JSONL).

    The teacher checkpoint is the frozen reference model; `beta` is DPO's.
    """
    seed_everything(seed)
    model, processor = load_llava(init_checkpoint)
    teacher_model, teacher_processor = load_llava(teacher)
    check_teacher(model, teacher_model)
    check_tokenizers(processor.tokenizer, teacher_processor.tokenizer, str(teacher))
    records = _nonempty(list(read_jsonl(pairs_path)), pairs_path)
    dataset = PreferenceDataset(records, image_root, processor, num_image_tokens(model.config), chat_template)
    summary = _train_and_save(model, processor, dataset, PreferenceCollator(processor.tokenizer.pad_token_id),
                              PreferenceDistillation(teacher_model, beta), trainable, train_config, seed, output_dir)
    summary.update(stage="preference (eq. 8)", beta=beta)
    if is_main_process():
        write_json(summary_path, summary)
    return summary


def _nonempty(records: list[dict], path) -> list[dict]:
    if not records:
        raise ValueError(f"{path}: no training records")
    return records


def _train_and_save(model, processor, dataset, collator, objective, trainable, train_config, seed,
                    output_dir) -> dict[str, Any]:
    parts = set_trainable(model, list(trainable))
    summary = train(model, dataset, collator, settings_from_config(train_config, seed), loss=objective)
    if is_main_process():
        save_llava(model, processor, output_dir)
    return {**summary, "trainable_parts": parts, "parameters": parameter_counts(model)}
