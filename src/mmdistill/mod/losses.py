"""LLaVA-MoD's training objectives (§3.2) as functions of logits and labels, in the style of TRL's trainers.

Labels follow transformers' convention: `labels[b, t]` is the token at position t
where it is supervised and `IGNORE_INDEX` elsewhere, and the logits at position t
predict the token at t + 1. Which tokens count (the response only, or the response
and the instruction, Table 7) is decided by the labels the caller builds.

* `mimic_distillation_loss`, `sparse_mimic_distillation_loss`: the KL of eq. 6
  (dense-to-dense) against the full-vocabulary teacher or its `TopK` (`dense_log_probs`);
  eq. 7 (dense-to-sparse) adds the next-token cross-entropy, which is the model's own
  `loss` for the same labels.
* `preference_distillation_loss`: DPO with the frozen teacher as reference (eq. 8),
  on `sequence_log_probs` of chosen and rejected responses.

The MoE student's load-balancing term is added once by the caller
(`mmdistill.mod.upcycling.router_aux_loss`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from mmdistill.conversation import IGNORE_INDEX


def predicting_positions(labels: torch.Tensor) -> torch.Tensor:
    """Mask (batch x length) of the positions t whose next token, labels[:, t + 1], is supervised."""
    mask = torch.zeros_like(labels, dtype=torch.bool)
    mask[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    return mask


def sequence_log_probs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log pi(y | x) per sequence (eq. 8's terms): the sum of the supervised tokens' log-probs, shape (batch,)."""
    log_probs = logits[:, :-1].float().log_softmax(dim=-1)
    targets = labels[:, 1:]
    supervised = targets != IGNORE_INDEX
    token_log_probs = log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (token_log_probs * supervised).sum(dim=-1)


class TopK(NamedTuple):
    """A teacher's top-k per token: ids and log-probs (tokens x k), and the log of the mass outside them (tokens)."""

    indices: torch.Tensor
    log_probs: torch.Tensor
    log_residual: torch.Tensor


def dense_log_probs(top: TopK, vocab_size: int) -> torch.Tensor:
    """Full-vocabulary log-probs (tokens x vocabulary): the top-k values, the residual spread evenly over the rest."""
    others = max(vocab_size - top.indices.shape[-1], 1)
    log_residual = top.log_residual.float().clamp(min=-1e4)  # a zero residual stays finite: KL needs 0 * log 0 = 0
    spread = log_residual.unsqueeze(-1) - math.log(others)
    dense = spread.expand(*top.indices.shape[:-1], vocab_size).clone()
    dense.scatter_(-1, top.indices.long(), top.log_probs.float())
    return dense.log_softmax(dim=-1)  # renormalizes what rounding of the stored values left off


def mean_kl(teacher_log_probs: torch.Tensor, student_log_probs: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(pi_T || pi_S) = sum_v pi_T(v) (log pi_T(v) - log pi_S(v)); rows are tokens."""
    total = F.kl_div(student_log_probs, teacher_log_probs, log_target=True, reduction="sum")
    return total / max(len(student_log_probs), 1)


def mimic_distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                            labels: torch.Tensor) -> torch.Tensor:
    """Eq. 6: KL(pi_T || pi_S) per supervised token, averaged, with the full-vocabulary teacher.

    Student and teacher logits are compared at the same position t, where both predict
    token t + 1; the official LLaVA-MoD code is off by one here.
    """
    positions = predicting_positions(labels)
    teacher = teacher_logits[positions].float().log_softmax(dim=-1)
    return mean_kl(teacher, student_logits[positions].float().log_softmax(dim=-1))


def sparse_mimic_distillation_loss(student_logits: torch.Tensor, teacher: TopK, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 6 with the teacher's top-k: row i of `teacher` belongs to the i-th supervised-predicting position.

    Rows follow `predicting_positions(labels)` in reading order (batch, then position),
    as `mmdistill.mod.teacher_logits` stores them; the teacher's distribution is their
    `dense_log_probs`.
    """
    positions = predicting_positions(labels)
    if len(teacher.indices) != positions.sum():
        raise ValueError(f"{len(teacher.indices)} teacher rows for {int(positions.sum())} supervised tokens: "
                         "were the sequences truncated differently from when the teacher's top-k was stored?")
    student = student_logits[positions].float().log_softmax(dim=-1)
    return mean_kl(dense_log_probs(teacher, student.shape[-1]), student)


def preference_distillation_loss(student_chosen: torch.Tensor, student_rejected: torch.Tensor,
                                 teacher_chosen: torch.Tensor, teacher_rejected: torch.Tensor,
                                 beta: float = 0.1) -> torch.Tensor:
    """Eq. 8: DPO with the frozen teacher as the reference model, averaged over pairs.

    -log sigma(beta log(pi_S(y+|x) / pi_T(y+|x)) - beta log(pi_S(y-|x) / pi_T(y-|x))),
    with every argument a sequence log-prob (`sequence_log_probs`), shape (pairs,).
    """
    chosen_ratio = student_chosen - teacher_chosen
    rejected_ratio = student_rejected - teacher_rejected
    return -F.logsigmoid(beta * (chosen_ratio - rejected_ratio)).mean()
