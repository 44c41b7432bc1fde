import math

import pytest
import torch

from mmdistill.conversation import IGNORE_INDEX
from mmdistill.mod.losses import (
    TopK,
    dense_log_probs,
    mimic_distillation_loss,
    preference_distillation_loss,
    sequence_log_probs,
    sparse_mimic_distillation_loss,
)

# A 3-token sequence over a 3-token vocabulary: the prompt token, then two response tokens.
LABELS = torch.tensor([[IGNORE_INDEX, 2, 0]])
TEACHER_PROBS = [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.2, 0.6]]
STUDENT_PROBS = [[0.5, 0.25, 0.25], [0.2, 0.4, 0.4], [0.9, 0.05, 0.05]]


def logits(probs):
    return torch.tensor([probs]).log()


def kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def test_mimic_kl_matches_a_hand_computation():
    """Positions 0 and 1 predict the response tokens 1 and 2; position 2 predicts nothing and is left out."""
    expected = (kl(TEACHER_PROBS[0], STUDENT_PROBS[0]) + kl(TEACHER_PROBS[1], STUDENT_PROBS[1])) / 2
    loss = mimic_distillation_loss(logits(STUDENT_PROBS), logits(TEACHER_PROBS), LABELS)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_mimic_kl_off_by_one_gives_another_value():
    """Matching student position t to teacher position t + 1, as the official code does, is a different loss."""
    right = mimic_distillation_loss(logits(STUDENT_PROBS), logits(TEACHER_PROBS), LABELS)
    shifted_teacher = logits(TEACHER_PROBS[1:] + TEACHER_PROBS[-1:])
    shifted = mimic_distillation_loss(logits(STUDENT_PROBS), shifted_teacher, LABELS)
    expected = (kl(TEACHER_PROBS[1], STUDENT_PROBS[0]) + kl(TEACHER_PROBS[2], STUDENT_PROBS[1])) / 2
    assert shifted.item() == pytest.approx(expected, rel=1e-6)
    assert abs(shifted.item() - right.item()) > 0.1


def test_mimic_kl_is_zero_for_the_teacher_itself_and_ignores_unsupervised_positions():
    teacher = logits(TEACHER_PROBS)
    student = teacher.clone()
    student[0, 2] = torch.tensor([5.0, -5.0, 0.0])  # position 2 predicts past the end
    assert mimic_distillation_loss(student, teacher, LABELS).item() == pytest.approx(0.0, abs=1e-7)


def test_sparse_teacher_with_one_token_left_over_is_exact():
    """With k = V - 1 the left-over mass sits on one token, so the top-k teacher is the full one."""
    teacher = logits(TEACHER_PROBS)
    top = teacher[0, :2].topk(2, dim=-1)  # the two response-predicting positions
    residual = torch.tensor([0.1, 0.1]).log()  # what the top two leave: 1 - 0.7 - 0.2, 1 - 0.6 - 0.3
    sparse = sparse_mimic_distillation_loss(logits(STUDENT_PROBS), TopK(top.indices, top.values, residual), LABELS)
    full = mimic_distillation_loss(logits(STUDENT_PROBS), teacher, LABELS)
    assert sparse.item() == pytest.approx(full.item(), rel=1e-6)


def test_dense_log_probs_spreads_the_left_over_mass_evenly():
    top = TopK(torch.tensor([[3, 0]]), torch.tensor([[0.6, 0.2]]).log(), torch.tensor([0.2]).log())
    dense = dense_log_probs(top, vocab_size=6).exp()
    torch.testing.assert_close(dense, torch.tensor([[0.2, 0.05, 0.05, 0.6, 0.05, 0.05]]))


def test_a_teacher_without_residual_mass_gives_a_finite_kl():
    teacher = TopK(torch.tensor([[1, 0]]), torch.tensor([[0.75, 0.25]]).log(), torch.tensor([float("-inf")]))
    student = torch.tensor([[[0.0, 1.0, -1.0], [0.0, 0.0, 0.0]]])
    labels = torch.tensor([[IGNORE_INDEX, 1]])
    expected = kl([0.25, 0.75], torch.tensor([0.0, 1.0, -1.0]).softmax(dim=0).tolist()[:2])
    assert sparse_mimic_distillation_loss(student, teacher, labels).item() == pytest.approx(expected, rel=1e-5)


def test_sequence_log_probs_sum_the_supervised_tokens():
    labels = torch.tensor([[IGNORE_INDEX, 2, 0], [IGNORE_INDEX, IGNORE_INDEX, 1]])
    result = sequence_log_probs(torch.cat([logits(STUDENT_PROBS), logits(STUDENT_PROBS)]), labels)
    torch.testing.assert_close(result, torch.tensor([math.log(0.25) + math.log(0.2), math.log(0.4)]))


def test_dpo_with_the_teacher_as_student_is_log_2():
    log_probs = torch.tensor([-3.0, -7.5]), torch.tensor([-4.0, -2.0])
    loss = preference_distillation_loss(*log_probs, *log_probs, beta=0.1)
    assert loss.item() == pytest.approx(math.log(2))


def test_dpo_value_and_gradient_sign_on_a_hand_made_pair():
    chosen = torch.tensor([-5.0], requires_grad=True)
    rejected = torch.tensor([-6.0], requires_grad=True)
    teacher_chosen, teacher_rejected = torch.tensor([-6.0]), torch.tensor([-5.0])
    loss = preference_distillation_loss(chosen, rejected, teacher_chosen, teacher_rejected, beta=0.1)
    margin = 0.1 * ((-5.0 + 6.0) - (-6.0 + 5.0))
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-margin))))
    loss.backward()
    # raising log pi(y+) lowers the loss, raising log pi(y-) raises it
    assert chosen.grad.item() < 0 < rejected.grad.item()
    with torch.no_grad():
        higher_chosen = preference_distillation_loss(chosen + 0.5, rejected, teacher_chosen, teacher_rejected, beta=0.1)
    assert higher_chosen < loss
