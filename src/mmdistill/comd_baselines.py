"""Training data of the runs CoMD is compared with: what each baseline rule trains on.

* The unidirectional baseline (not in the paper): instruction tuning on the teacher's
  answers to the *initial* pool only, with as many training examples as the CoMD run
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


def unidirectional_records(initial_records: Sequence[dict], total_examples: int, seed: int) -> list[dict]:
    """`initial_records` repeated until `total_examples` examples: whole passes, then a seeded sample.

    With N initial records, the result holds ``total_examples // N`` full passes and
    ``total_examples % N`` distinct records drawn with `seed` (the teacher answered
    each question once, so a repeated record repeats its answer). Every record keeps
    its id; repeats are marked with "repeat" (0 for the first pass).
    """
    if total_examples < 0:
        raise ValueError(f"total_examples must be >= 0, got {total_examples}")
    if not initial_records:
        if total_examples:
            raise ValueError(f"no initial records to make {total_examples} training examples from")
        return []
    passes, remainder = divmod(total_examples, len(initial_records))
    extra = random.Random(seed).sample(list(initial_records), remainder)
    return [{**record, "repeat": index} for index in range(passes) for record in initial_records] + \
        [{**record, "repeat": passes} for record in extra]


def without_stage1_records(per_iteration: Sequence[Sequence[dict]]) -> list[dict]:
    """Every iteration's tuning data in iteration order, each record marked with its "iteration" (1-based)."""
    return [{**record, "iteration": k} for k, records in enumerate(per_iteration, start=1) for record in records]
