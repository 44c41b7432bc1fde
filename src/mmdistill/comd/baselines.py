"""Training data of the runs CoMD is compared with: what each baseline rule trains on.

* The unidirectional baseline (not in the paper): instruction tuning on the teacher's
  answers to the *initial* pool only, with as many supervised answers as the CoMD run
  saw over all its iterations, and no assessment or augmentation. The difference to
  CoMD is then what the competitive loop adds, not more training.
* Without stage 1 (Table 5, §4.2.4): "we skip the pre-training phase and utilize all
  the generated instructions datasets to train the base model": the CoMD run's tuning
  data of every iteration, in iteration order, trained once from a freshly assembled
  student (vision tower, language model and a new projector).
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def answer_count(record: dict) -> int:
    """The supervised answers of a conversation record: its assistant turns."""
    return sum(turn["from"] == "gpt" for turn in record["conversations"])


def first_turns(record: dict, turns: int) -> dict:
    """The record cut to its first `turns` question-answer pairs (the image stays with the first question)."""
    kept = {**record, "conversations": record["conversations"][:2 * turns]}
    if "question_ids" in record:
        kept["question_ids"] = record["question_ids"][:turns]
    return kept


def unidirectional_records(initial_records: Sequence[dict], total_answers: int, seed: int) -> list[dict]:
    """`initial_records` repeated until they hold `total_answers` answers: whole passes, then a seeded sample.

    The unit is the supervised answer (an assistant turn), since CoMD's tuning data are
    multi-turn conversations of varying length (§3.3.1 regrouping). The result holds
    as many whole passes over `initial_records` as fit, then records drawn in a seeded
    order until the total is reached, the last one cut to its first turns (the teacher
    answered each question once, so a repeated record repeats its answers). Every record
    keeps its id; repeats are marked with "repeat" (0 for the first pass).
    """
    if total_answers < 0:
        raise ValueError(f"total_answers must be >= 0, got {total_answers}")
    per_pass = sum(answer_count(record) for record in initial_records)
    if not per_pass:
        if total_answers:
            raise ValueError(f"no initial answers to make {total_answers} training answers from")
        return []
    passes, remainder = divmod(total_answers, per_pass)
    records = [{**record, "repeat": index} for index in range(passes) for record in initial_records]
    for record in random.Random(seed).sample(list(initial_records), len(initial_records)):
        take = min(remainder, answer_count(record))
        if take:
            records.append({**first_turns(record, take), "repeat": passes})
            remainder -= take
    return records


def without_stage1_records(per_iteration: Sequence[Sequence[dict]]) -> list[dict]:
    """Every iteration's tuning data in iteration order, each record marked with its "iteration" (1-based)."""
    return [{**record, "iteration": k} for k, records in enumerate(per_iteration, start=1) for record in records]
