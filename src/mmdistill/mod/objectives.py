"""LLaVA-MoD's objectives (§3.2) as `mmdistill.training.Objective`s: what the one training loop minimises.

* `MimicDistillation`: eq. 6 (dense-to-dense, KL to the teacher) or eq. 7
  (dense-to-sparse, cross-entropy plus KL), with the teacher online (the model in
  memory, full vocabulary) or offline (its stored top-k, `mmdistill.mod.teacher_logits`).
* `PreferenceDistillation`: eq. 8, DPO with the frozen teacher as the reference model.
* `SparseFineTuning`: Table 6's SFT baseline of the sparse student, cross-entropy only.

Both add the MoE student's load-balancing term (`aux`) once per forward pass when
the student has routers; the Llava model's own loss never holds it
(`mmdistill.mod.upcycling`). The terms are returned by name for the loss curve.
"""

from __future__ import annotations

from typing import Any

import torch

from mmdistill.models.llava import num_image_tokens
from mmdistill.mod.losses import (
    TopK,
    mimic_distillation_loss,
    predicting_positions,
    preference_distillation_loss,
    sequence_log_probs,
    sparse_mimic_distillation_loss,
)
from mmdistill.mod.teacher_logits import MODEL_INPUTS, TeacherLogitsReader, vocabulary_digest
from mmdistill.mod.upcycling import recorded_router_logits, router_aux_loss


def vocabulary_size(model) -> int:
    return model.get_output_embeddings().out_features


def check_teacher(student, teacher) -> None:
    """Teacher and student must share the vocabulary and the image tokens of their inputs: KL and DPO compare them."""
    if vocabulary_size(student) != vocabulary_size(teacher):
        raise ValueError(f"the teacher's vocabulary has {vocabulary_size(teacher)} tokens and the student's "
                         f"{vocabulary_size(student)}: LLaVA-MoD needs teacher and student of one tokenizer family")
    layout = [(model.config.image_token_id, num_image_tokens(model.config)) for model in (student, teacher)]
    if layout[0] != layout[1]:
        raise ValueError(f"(image token id, image tokens) is {layout[0]} for the student and {layout[1]} for the "
                         "teacher: both must read the same input ids")


def check_tokenizers(student_tokenizer, teacher_tokenizer, teacher_name: str = "the teacher") -> None:
    """KL and DPO compare distributions id by id, so every token must have the same id in both tokenizers
    (equal sizes are not enough; other code bases truncate the larger vocabulary and compare mismatched ids)."""
    student, teacher = student_tokenizer.get_vocab(), teacher_tokenizer.get_vocab()
    if student == teacher:
        return
    differing = sorted(token for token in student.keys() | teacher.keys() if student.get(token) != teacher.get(token))
    examples = ", ".join(f"{token!r}: {student.get(token)} / {teacher.get(token)}" for token in differing[:3])
    raise ValueError(f"the student's tokenizer and {teacher_name}'s differ in {len(differing)} of "
                     f"{len(student.keys() | teacher.keys())} tokens (token: student id / teacher id, e.g. {examples}); "
                     "LLaVA-MoD needs teacher and student of one tokenizer family")


def check_stored_vocabulary(student_tokenizer, index: dict[str, Any], directory) -> None:
    """The stored teacher top-k (rule mod_teacher_logits) must come from the student's vocabulary."""
    stored = index.get("vocabulary_sha256")
    if stored is not None and stored != vocabulary_digest(student_tokenizer):
        raise ValueError(f"{directory}: the teacher's stored top-k come from another vocabulary than the student's "
                         f"tokenizer (vocabulary sha256 {stored[:12]}... against "
                         f"{vocabulary_digest(student_tokenizer)[:12]}...)")


def frozen(model):
    """The teacher as every objective uses it: eval mode, no parameter needing gradients."""
    return model.eval().requires_grad_(False)


def forward_with_aux(model, inputs: dict[str, Any], **kwargs) -> tuple[Any, torch.Tensor | None]:
    """The model's outputs on the batch, and its load-balancing term (None for a dense model)."""
    with recorded_router_logits(model) as router_logits:
        outputs = model(**{key: inputs[key] for key in MODEL_INPUTS if key in inputs}, **kwargs)
    if not router_logits:
        return outputs, None
    unwrapped = getattr(model, "module", model)  # DDP and DeepSpeed hold the model as `.module`
    return outputs, router_aux_loss(unwrapped, router_logits, inputs["attention_mask"])


@torch.no_grad()
def teacher_logits(teacher, inputs: dict[str, Any]) -> torch.Tensor:
    device = inputs["input_ids"].device
    return teacher.to(device)(**{key: inputs[key] for key in MODEL_INPUTS if key in inputs}).logits


class MimicDistillation:
    """Mimic distillation on `DistillationCollator` batches (`mmdistill.mod.data`).

    Eq. 6 (`cross_entropy=False`): KL(pi_T || pi_S) averaged over the distilled tokens
    (`distill_labels`: the response, or response and instruction). Eq. 7
    (`cross_entropy=True`): plus the student's cross-entropy on the response (`labels`).
    The teacher is `teacher`, run frozen on the same inputs (online, full vocabulary),
    or `teacher_top_k`, its stored rows found by each example's `example_index` (offline).
    """

    components = ("kl", "ce", "aux")

    def __init__(self, teacher=None, teacher_top_k: TeacherLogitsReader | None = None,
                 cross_entropy: bool = False) -> None:
        if (teacher is None) == (teacher_top_k is None):
            raise ValueError("mimic distillation needs the teacher model (online) or its stored top-k (offline), "
                             "exactly one of them")
        self.teacher = None if teacher is None else frozen(teacher)
        self.teacher_top_k = teacher_top_k
        self.cross_entropy = cross_entropy

    def __call__(self, model, inputs: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        distill_labels = inputs["distill_labels"]
        outputs, aux = forward_with_aux(model, inputs, labels=inputs["labels"] if self.cross_entropy else None)
        if self.teacher is not None:
            kl = mimic_distillation_loss(outputs.logits, teacher_logits(self.teacher, inputs), distill_labels)
        else:
            kl = sparse_mimic_distillation_loss(outputs.logits, self.stored_top_k(inputs), distill_labels)
        terms = {"kl": kl}
        if self.cross_entropy:
            terms["ce"] = outputs.loss
        if aux is not None:
            terms["aux"] = aux
        return sum(terms.values()), terms

    def stored_top_k(self, inputs: dict[str, Any]) -> TopK:
        """The batch's teacher rows in `sparse_mimic_distillation_loss`'s order: by example, then position."""
        positions = predicting_positions(inputs["distill_labels"])
        rows = []
        for row, example in enumerate(inputs["example_index"].tolist()):
            top = self.teacher_top_k[example]
            if len(top.indices) != positions[row].sum():
                raise ValueError(f"example {example}: {len(top.indices)} stored teacher rows for "
                                 f"{int(positions[row].sum())} distilled tokens; were they written from another "
                                 "distillation set or for other distillation tokens?")
            rows.append(top)
        device = inputs["input_ids"].device
        return TopK(*(torch.cat(parts).to(device) for parts in zip(*rows)))


class PreferenceDistillation:
    """Eq. 8 on `PreferenceCollator` batches: DPO with the frozen `teacher` as the reference model.

    Besides the loss it reports DPO's implicit rewards beta * log(pi_S(y|x) / pi_T(y|x))
    of the chosen and rejected responses, their margin and how often the chosen one's
    is higher, as TRL's DPO trainer does.
    """

    components = ("dpo", "aux", "reward_chosen", "reward_rejected", "reward_margin", "reward_accuracy")

    def __init__(self, teacher, beta: float = 0.1) -> None:
        self.teacher = frozen(teacher)
        self.beta = beta

    def __call__(self, model, inputs: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        labels = inputs["labels"]
        pairs = len(labels) // 2  # chosen rows first, then the rejected ones
        outputs, aux = forward_with_aux(model, inputs)
        student = sequence_log_probs(outputs.logits, labels)
        teacher = sequence_log_probs(teacher_logits(self.teacher, inputs), labels)
        dpo = preference_distillation_loss(student[:pairs], student[pairs:], teacher[:pairs], teacher[pairs:],
                                           self.beta)
        rewards = self.beta * (student - teacher).detach()
        chosen, rejected = rewards[:pairs], rewards[pairs:]
        terms = {"dpo": dpo, "reward_chosen": chosen.mean(), "reward_rejected": rejected.mean(),
                 "reward_margin": (chosen - rejected).mean(), "reward_accuracy": (chosen > rejected).float().mean()}
        if aux is None:
            return dpo, terms
        return dpo + aux, {**terms, "aux": aux}


class SparseFineTuning:
    """Table 6's SFT of the sparse student: eq. 7 without its KL term, the cross-entropy on the
    response (`labels`) plus the load-balancing term once, on the same batches as `MimicDistillation`."""

    components = ("ce", "aux")

    def __call__(self, model, inputs: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        outputs, aux = forward_with_aux(model, inputs, labels=inputs["labels"])
        terms = {"ce": outputs.loss}
        if aux is not None:
            terms["aux"] = aux
        return sum(terms.values()), terms
