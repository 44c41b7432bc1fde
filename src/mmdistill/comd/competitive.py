"""CoMD's multi-modal competitive distillation stage (§3.3): pools, assessment, augmentation.

One iteration of the stage, with the functions that implement each step:

1. Pools (eq. 4). `seed_pool` turns the LLaVA multi-turn conversations into the
   single-turn question set D_T; the instruction tuning pool and the instruction
   cache pool both start as that set. After augmentation the tuning pool is
   *replaced* by the new instructions (`replace_tuning_pool`) and the cache pool is
   *merged* with them (`merge_cache_pool`).
2. Assessment (§3.3.2). For every instruction of the cache pool the assessor scores
   the student's and the teacher's answers twice, once with each answer in each
   position (`assessment_requests`, `assess`); the two runs are averaged
   (`order_averaged_scores`, eq. 5), turned into a difficulty (`difficulty`, eq. 6)
   and thresholded (`is_difficult`, τ = 0.33).
3. Augmentation (§3.3.3). Every difficult instruction and an equal number of
   sampled easy ones (`easy_sample_size`, `sample_easy`; when none is difficult, as
   many easy ones as the tuning pool held) are given to the augmentor
   (`augmentation_requests`); its outputs become candidate instructions
   (`candidates_from_outputs`), kept only when they are new enough against every
   other instruction of their image (ROUGE-L < 0.7, `rouge_l`) and pass the
   validity checks of `filter_new_instructions`.
4. `iteration_report` counts what happened, and says when nothing changed.

Instruction records (both pools) have the fields
``{"id", "image", "question", "task", "parent", "iteration"}``: seed instructions
have ``parent=None`` and ``iteration=0``; an instruction generated in iteration
t (counted from 1) has the id of the instruction it was generated from as
``parent`` and ``iteration=t``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from random import Random
from typing import Any

from mmdistill.conversation import from_llava_record, strip_image_placeholder
from mmdistill.generation import GenerationBackend, GenerationRequest
from mmdistill.io import DataError, RejectLog
from mmdistill.roles import (
    JUDGE_SCORE_MAX,
    JUDGE_SCORE_MIN,
    JudgeParseError,
    augment_prompt,
    judge_prompt,
    parse_judge_output,
)
from mmdistill.toyworld.language import task_type_of

DIFFICULTY_THRESHOLD = 0.33  # τ of §3.3.2
ROUGE_L_THRESHOLD = 0.7  # §3.3.3
STUDENT_FIRST = "student_first"  # judge order: answer 1 = student, answer 2 = teacher
TEACHER_FIRST = "teacher_first"  # judge order: answer 1 = teacher, answer 2 = student
JUDGE_ORDERS = (STUDENT_FIRST, TEACHER_FIRST)
MIN_QUESTION_WORDS = 3
# Lower-case phrases that mark an augmentor output as a refusal / "cannot answer" rather than a question.
UNANSWERABLE_MARKERS = (
    "unanswerable",
    "not answerable",
    "cannot be answered",
    "can not be answered",
    "can't be answered",
    "cannot answer",
    "can't answer",
    "i'm sorry",
    "i am sorry",
    "as an ai",
)
# Reasons `filter_new_instructions` gives to the RejectLog, in the order they are checked.
REJECT_REASONS = ("empty", "unanswerable", "degenerate", "same_as_source", "task_type_changed",
                  "task_type_unknown", "too_similar")


# ---------------------------------------------------------------- pools (eq. 4)


def instruction_record(record_id: str, image: str, question: str, task: str | None, parent: str | None,
                       iteration: int) -> dict[str, Any]:
    """One instruction of a pool: a single-turn question about an image, without answer."""
    return {"id": record_id, "image": image, "question": question, "task": task, "parent": parent,
            "iteration": iteration}


def _check_unique_ids(records: Iterable[dict], what: str) -> None:
    seen: set[str] = set()
    for record in records:
        if record["id"] in seen:
            raise ValueError(f"{what}: instruction id {record['id']!r} occurs more than once")
        seen.add(record["id"])


TEXT_ONLY = "text-only record (no image): CoMD's pools hold questions about an image"


def seed_pool(llava_records: Iterable[dict], rejects: RejectLog | None = None, source: str = "the seed set") -> list[dict]:
    """D_T of eq. (4): LLaVA multi-turn conversations as single-turn questions, answers removed.

    Turn t (counted from 1) of record r becomes ``{"id": f"{r['id']}-q{t}", "image",
    "question", "task", "parent": None, "iteration": 0}``; the `<image>` marker is
    stripped from the question (`conversation.from_llava_record`). The task is the
    record's ``"tasks"[t-1]`` when the record has a "tasks" list (the toy corpora
    do; its length must equal the number of turns), else `task_type_of(question)`,
    which is None for questions outside the toy language. The same list
    initialises both the tuning pool and the cache pool (§3.3). Duplicate ids are
    an error. The pools hold image instructions (V, X): a text-only record of a mixed
    seed set (LLaVA-665K) is left out (`text_only_records` counts them), and goes to
    `rejects` with reason TEXT_ONLY when one is given. An empty pool is an error: every
    iteration would train on nothing and copy the stage-1 student.
    """
    pool = []
    for record in llava_records:
        if record.get("image") is None:
            if rejects is not None:
                rejects.add(TEXT_ONLY, record, source)
            continue
        questions, _answers = from_llava_record(record)
        tasks = record.get("tasks")
        if tasks is not None and (not isinstance(tasks, list) or len(tasks) != len(questions)):
            raise ValueError(f"record {record.get('id')!r}: 'tasks' must be a list with one task per turn "
                             f"({len(questions)} turns)")
        for turn, question in enumerate(questions, start=1):
            task = tasks[turn - 1] if tasks is not None else task_type_of(question)
            pool.append(instruction_record(f"{record['id']}-q{turn}", record["image"], question, task,
                                           parent=None, iteration=0))
    if not pool:
        raise DataError(f"{source}: no questions about an image (empty seed set"
                        + (f", {len(rejects)} text-only records left out)" if rejects else ")")
                        + "; every CoMD iteration would copy the stage-1 student")
    _check_unique_ids(pool, "seed pool")
    return pool


def text_only_records(llava_records: Iterable[dict]) -> int:
    """How many records have no image, which `seed_pool` leaves out."""
    return sum(record.get("image") is None for record in llava_records)


def replace_tuning_pool(new_instructions: Sequence[dict]) -> list[dict]:
    """§3.3.2: the instruction tuning pool is refreshed by *replacing* its instructions.

    The new tuning pool is exactly the newly generated (valid) instructions, in
    their order; the old tuning pool is not needed and not an argument. Duplicate
    ids are an error.
    """
    _check_unique_ids(new_instructions, "tuning pool")
    return list(new_instructions)


def merge_cache_pool(cache_pool: Sequence[dict], new_instructions: Sequence[dict]) -> list[dict]:
    """§3.3.2: the instruction cache pool is refreshed by *merging* in the new instructions.

    Returns the old pool followed by the new instructions, order kept. A new
    instruction whose id is already in the pool (or twice among the new ones)
    raises ValueError naming the id: ids identify judgements and parents across
    iterations, so a collision would silently mix two instructions.
    """
    merged = list(cache_pool)
    ids = {record["id"] for record in merged}
    for record in new_instructions:
        if record["id"] in ids:
            raise ValueError(f"cache pool: instruction id {record['id']!r} is already in the pool")
        ids.add(record["id"])
        merged.append(record)
    return merged


def group_by_image(instructions: Iterable[dict]) -> dict[str, list[dict]]:
    """Instructions by image, order kept (the `existing_by_image` of `filter_new_instructions`)."""
    groups: dict[str, list[dict]] = {}
    for record in instructions:
        groups.setdefault(record["image"], []).append(record)
    return groups


def _image_path(image: str, image_root: str | Path | None) -> str:
    return str(Path(image_root) / image) if image_root is not None else image


# ---------------------------------------------------------------- assessment (eq. 5, 6)


def judge_request_id(instruction_id: str, order: str) -> str:
    return f"{instruction_id}/{order}"


def assessment_requests(instruction: dict, teacher_answer: str, student_answer: str, temperature: float,
                        image_root: str | Path | None = None, max_new_tokens: int = 48) -> list[GenerationRequest]:
    """The two assessor requests of eq. (5) for one instruction, in `JUDGE_ORDERS` order.

    The first puts the student's answer in position 1 and the teacher's in
    position 2 (`STUDENT_FIRST`); the second swaps them (`TEACHER_FIRST`), the
    paper's remedy for the judge's position bias. Prompts are `roles.judge_prompt`;
    request ids are ``f"{instruction_id}/{order}"``. The image path is
    ``image_root / instruction["image"]`` when `image_root` is given.
    """
    image = _image_path(instruction["image"], image_root)
    answers = {STUDENT_FIRST: (student_answer, teacher_answer), TEACHER_FIRST: (teacher_answer, student_answer)}
    return [
        GenerationRequest(image=image, question=judge_prompt(instruction["question"], *answers[order]),
                          temperature=temperature, max_new_tokens=max_new_tokens,
                          id=judge_request_id(instruction["id"], order))
        for order in JUDGE_ORDERS
    ]


def order_averaged_scores(student_first: tuple[float, float],
                          teacher_first: tuple[float, float]) -> tuple[float, float]:
    """R^S and R^T of eq. (5), each averaged over the two answer orders (§3.3.2).

    `student_first` is the judge's (position 1, position 2) score pair with the
    student's answer in position 1; `teacher_first` the pair with the teacher's
    answer in position 1. Returns ``(R_S, R_T)`` with
    R_S = (student_first[0] + teacher_first[1]) / 2 and
    R_T = (student_first[1] + teacher_first[0]) / 2.
    """
    r_student = (student_first[0] + teacher_first[1]) / 2
    r_teacher = (student_first[1] + teacher_first[0]) / 2
    return r_student, r_teacher


def scores_from_judgements(output_student_first: str, output_teacher_first: str) -> tuple[float, float]:
    """(R_S, R_T) from the assessor's raw outputs for the two orders (eq. 5, order-averaged).

    Each output is read by `roles.parse_judge_output`; an unparsable one raises
    `JudgeParseError` (no score is ever invented).
    """
    return order_averaged_scores(parse_judge_output(output_student_first), parse_judge_output(output_teacher_first))


def _check_score(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not JUDGE_SCORE_MIN <= value <= JUDGE_SCORE_MAX:
        raise ValueError(f"{name} must be within [{JUDGE_SCORE_MIN}, {JUDGE_SCORE_MAX}], got {value!r}")


def difficulty(r_student: float, r_teacher: float) -> float:
    """S_k of eq. (6): (|R_S − R_T| + 1) / max(R_S, R_T).

    Scores must lie in the judge's range [1, 10] (averages such as 7.5 included),
    otherwise ValueError; S then lies in [0.1, 1]. Worked example of the paper:
    R_S = R_T = 1 gives 1.0, R_S = R_T = 9 gives 1/9 = 0.111…

    Note the paper's prose contradicts its formula: it says that for this pair
    "obviously Q_n (9/9) is much more difficult than Q_m (1/1)", but eq. (6) gives
    the 1/1 pair the *higher* difficulty (1.0, difficult at τ = 0.33) and the 9/9
    pair the lower one (0.111, easy). We implement the formula as written: equal
    low scores (both models fail) count as difficult, equal high scores as easy,
    which matches the stated aim of finding instructions the student finds hard.
    """
    _check_score("R_S", r_student)
    _check_score("R_T", r_teacher)
    return (abs(r_student - r_teacher) + 1) / max(r_student, r_teacher)


def is_difficult(s: float, tau: float = DIFFICULTY_THRESHOLD) -> bool:
    """§3.3.2: an instruction is difficult when S_k ≥ τ (τ = 0.33 in the paper), easy when S_k < τ.

    τ = 1 makes every instruction easy: Table 4 reads it as "w/o diff. Inst." (as τ = 0
    is "w/o easy Inst."). S_k ≥ 1 alone would not do that, since S_k = 1 exactly when
    one of the two scores is 1 (e.g. an empty answer).
    """
    return tau < 1 and s >= tau


def _judge_entry(request: GenerationRequest, order: str) -> dict[str, Any]:
    return {"order": order, "prompt": request.question, "outputs": [], "errors": [], "scores": None}


def assess(backend: GenerationBackend, instructions: Sequence[dict], teacher_answers: Mapping[str, str],
           student_answers: Mapping[str, str], image_root: str | Path | None, temperature: float,
           max_new_tokens: int, max_retries: int, tau: float = DIFFICULTY_THRESHOLD,
           retry_temperature: float | None = None) -> tuple[list[dict], list[dict]]:
    """Multi-modal assessment (§3.3.2) of `instructions`: judge, average over orders, S_k, difficult flag.

    `teacher_answers` and `student_answers` map instruction id → answer text; a
    missing answer is an error. All 2·N judge requests (`assessment_requests`) go
    to `backend.generate` in one call. Outputs that raise `JudgeParseError` are
    re-generated, all of a round in one batched call, up to `max_retries` times
    (so at most 1 + max_retries attempts per request); only the failed order is
    re-generated, an already parsed order is kept. Retries use
    `retry_temperature` (default: `temperature`); with greedy decoding (0) a
    deterministic backend repeats the same output, so retries only help when
    sampling or with a non-deterministic backend.

    An instruction is scored only when *both* orders parsed — a single order would
    bring back the position bias the averaging removes. Otherwise it goes to the
    failures with the reason, never with a score.

    Returns ``(judgements, failures)``, both in instruction order. Each record has
    "id", "image", "question", "teacher_answer", "student_answer" and "judgements":
    one entry per order with "order", "prompt", "outputs" (every raw output,
    first attempt first), "errors" (the parse errors) and "scores" ({"student",
    "teacher"} or None). Judgements add "R_S", "R_T", "S", "tau" and "difficult";
    failures add "reason" and "failed_orders".
    """
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries}")
    _check_unique_ids(instructions, "assessment")
    records: list[dict[str, Any]] = []
    pending: list[tuple[GenerationRequest, dict[str, Any]]] = []  # (request, judge entry)
    for instruction in instructions:
        iid = instruction["id"]
        for name, answers in (("teacher", teacher_answers), ("student", student_answers)):
            if iid not in answers:
                raise ValueError(f"assessment: no {name} answer for instruction {iid!r}")
        requests = assessment_requests(instruction, teacher_answers[iid], student_answers[iid], temperature,
                                       image_root=image_root, max_new_tokens=max_new_tokens)
        entries = [_judge_entry(request, order) for request, order in zip(requests, JUDGE_ORDERS)]
        records.append({"id": iid, "image": instruction["image"], "question": instruction["question"],
                        "teacher_answer": teacher_answers[iid], "student_answer": student_answers[iid],
                        "judgements": entries})
        pending.extend(zip(requests, entries))

    retry_temperature = temperature if retry_temperature is None else retry_temperature
    for attempt in range(max_retries + 1):
        if not pending:
            break
        if attempt:
            pending = [(GenerationRequest(image=r.image, question=r.question, temperature=retry_temperature,
                                          max_new_tokens=r.max_new_tokens, id=r.id), e) for r, e in pending]
        outputs = backend.generate([request for request, _ in pending])
        if len(outputs) != len(pending):
            raise RuntimeError(f"judge backend returned {len(outputs)} outputs for {len(pending)} requests")
        still_pending = []
        for (request, entry), output in zip(pending, outputs):
            entry["outputs"].append(output)
            try:
                first, second = parse_judge_output(output)
            except JudgeParseError as error:
                entry["errors"].append(str(error))
                still_pending.append((request, entry))
                continue
            student, teacher = (first, second) if entry["order"] == STUDENT_FIRST else (second, first)
            entry["scores"] = {"student": student, "teacher": teacher}
        pending = still_pending

    judgements, failures = [], []
    for record in records:
        by_order = {entry["order"]: entry for entry in record["judgements"]}
        failed = [order for order in JUDGE_ORDERS if by_order[order]["scores"] is None]
        if failed:
            reasons = "; ".join(f"{order}: {by_order[order]['errors'][-1]}" for order in failed)
            attempts = len(by_order[failed[0]]["outputs"])
            failures.append({**record, "failed_orders": failed,
                             "reason": f"judge output unparsable after {attempts} attempt(s) ({reasons})"})
            continue
        sf, tf = by_order[STUDENT_FIRST]["scores"], by_order[TEACHER_FIRST]["scores"]
        r_student, r_teacher = order_averaged_scores((sf["student"], sf["teacher"]), (tf["teacher"], tf["student"]))
        s = difficulty(r_student, r_teacher)
        judgements.append({**record, "R_S": r_student, "R_T": r_teacher, "S": s, "tau": tau,
                           "difficult": is_difficult(s, tau)})
    return judgements, failures


def split_by_difficulty(instructions: Sequence[dict], judgements: Iterable[dict]) -> tuple[list[dict], list[dict]]:
    """(difficult, easy) instructions, in pool order; instructions without a judgement are in neither."""
    flags = {judgement["id"]: judgement["difficult"] for judgement in judgements}
    difficult = [record for record in instructions if flags.get(record["id"]) is True]
    easy = [record for record in instructions if flags.get(record["id"]) is False]
    return difficult, easy


# ---------------------------------------------------------------- augmentation (§3.3.3)


def easy_sample_size(n_difficult: int, tuning_pool_size: int) -> int:
    """§3.3.3: how many easy instructions go to the augmentor with the `n_difficult` difficult ones.

    As many as there are difficult ones (the paper's balance). When none is difficult
    (τ = 1, Table 4's "w/o diff. Inst." row, or a student level with the teacher) that
    rule would augment nothing and every later iteration would copy the student; we
    then take as many easy ones as the tuning pool the student was just trained on, so
    the tuning pool is replaced by (at most) as many new instructions as it held. The
    number depends only on the run's own previous iteration, never on another run.
    """
    return n_difficult if n_difficult else tuning_pool_size


def sample_easy(easy: Sequence[dict], n: int, seed: int) -> list[dict]:
    """§3.3.3: sample n easy instructions (n from `easy_sample_size`), seeded.

    Draws without replacement with `random.Random(seed)`; the result keeps the
    input order of the chosen items, and is a function of (easy, n, seed). When
    there are fewer easy instructions than n, *all* easy instructions are taken
    (the paper wants equal numbers but has nothing more to draw; we neither
    resample easy ones twice nor drop difficult ones, so difficult ones then
    outnumber easy ones).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n >= len(easy):
        return list(easy)
    chosen = sorted(Random(seed).sample(range(len(easy)), n))
    return [easy[index] for index in chosen]


def augmentation_requests(sources: Sequence[dict], image_root: str | Path | None, temperature: float,
                          max_new_tokens: int) -> list[GenerationRequest]:
    """Augmentor requests (§3.3.3): one `roles.augment_prompt` per source instruction, on its image."""
    return [
        GenerationRequest(image=_image_path(source["image"], image_root), question=augment_prompt(source["question"]),
                          temperature=temperature, max_new_tokens=max_new_tokens, id=source["id"])
        for source in sources
    ]


def new_instruction_id(parent_id: str, iteration: int) -> str:
    """Id of the instruction generated from `parent_id` in `iteration`: unique while each
    instruction is augmented at most once per iteration."""
    return f"{parent_id}-it{iteration}"


def candidates_from_outputs(sources: Sequence[dict], outputs: Sequence[str], iteration: int) -> list[dict]:
    """Augmentor outputs as candidate instruction records, one per source, in order.

    The question is the output with the `<image>` marker and surrounding
    whitespace removed (nothing else is cleaned: `filter_new_instructions` judges
    it). Each candidate has the source's image, id `new_instruction_id(source id,
    iteration)`, "parent" = the source id, "iteration" and "task" =
    `task_type_of(question)` (None when unknown, e.g. outside the toy language).
    """
    if len(sources) != len(outputs):
        raise ValueError(f"{len(outputs)} augmentor outputs for {len(sources)} source instructions")
    if iteration < 1:
        raise ValueError(f"generated instructions belong to an iteration >= 1, got {iteration}")
    _check_unique_ids(sources, "augmentation sources")
    candidates = []
    for source, output in zip(sources, outputs):
        question = strip_image_placeholder(output).strip()
        candidates.append(instruction_record(new_instruction_id(source["id"], iteration), source["image"], question,
                                             task_type_of(question) if question else None, parent=source["id"],
                                             iteration=iteration))
    return candidates


@lru_cache(maxsize=1)
def _rouge_l_scorer():
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer(["rougeL"])


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F-measure of two texts (§3.3.3), by the `rouge-score` package.

    `RougeScorer(["rougeL"])` with its defaults: lower-cased, non-alphanumeric
    characters dropped, no stemming. Symmetric in (a, b); 0.0 when either text
    has no tokens.
    """
    return _rouge_l_scorer().score(a, b)["rougeL"].fmeasure


_WORD = re.compile(r"[a-z0-9']+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def is_degenerate(question: str, min_words: int = MIN_QUESTION_WORDS) -> bool:
    """True for fewer than `min_words` words, or one word making up more than half of the words."""
    words = _words(question)
    if len(words) < min_words:
        return True
    return Counter(words).most_common(1)[0][1] > len(words) / 2


def is_unanswerable_like(question: str) -> bool:
    """True when the text contains one of `UNANSWERABLE_MARKERS` (a refusal, not a question)."""
    text = " ".join(question.lower().split())
    return any(marker in text for marker in UNANSWERABLE_MARKERS)


def _normalized(text: str) -> str:
    return " ".join(_words(text))


def filter_new_instructions(candidates: Sequence[dict], existing_by_image: Mapping[str, Sequence[dict]],
                            threshold: float = ROUGE_L_THRESHOLD,
                            require_known_task: bool = False) -> tuple[list[dict], RejectLog]:
    """Valid new instructions (§3.3.3) and a RejectLog with the reason of every rejection.

    `existing_by_image` maps image → the instruction records already there (pass
    `group_by_image(cache_pool)`: the cache pool holds every instruction so far);
    a candidate's parent must be among its image's existing instructions
    (ValueError otherwise). Candidates are checked in order; the first failing
    check names the rejection:

    * "empty": no text.
    * "unanswerable": a refusal / "cannot be answered" output (`is_unanswerable_like`).
    * "degenerate": fewer than 3 words, or one word repeated more than half the time.
    * "same_as_source": equal to the parent's question up to case, punctuation and spacing.
    * "task_type_changed": "must align with the task type of the original
      instruction". We read that as: when both the parent's task (its "task"
      field) and the candidate's (`task_type_of`, the toy-language parser) are
      known and differ, reject. When either is unknown (real data: the parser
      knows only the toy language) the type cannot be checked and is not held
      against the candidate — unless `require_known_task`, which rejects a
      candidate of unknown type whose parent's type is known as
      "task_type_unknown" (useful in the toy world, where such text lies outside
      the language).
    * "too_similar": ROUGE-L ≥ `threshold` against some *other* instruction of the
      same image — every existing one (parent included) and every new one
      accepted before it in this call. Valid iff the maximum is < threshold, so a
      score exactly at the threshold is rejected. The rejected record carries
      "rouge_l" (the maximum) and "most_similar" (that instruction's text).

    Rejected candidates are not compared against later ones. Every candidate ends
    up either in the valid list (order kept) or in the log (source "augmentation").
    """
    rejects = RejectLog()
    valid: list[dict] = []
    accepted_by_image: dict[str, list[str]] = {}
    for candidate in candidates:
        image, question = candidate["image"], candidate["question"]
        existing = existing_by_image.get(image, ())
        parent = next((record for record in existing if record["id"] == candidate.get("parent")), None)
        if parent is None:
            raise ValueError(f"candidate {candidate['id']!r}: parent {candidate.get('parent')!r} is not an existing "
                             f"instruction of image {image!r}")
        reason, detail = None, {}
        candidate_task = task_type_of(question) if question.strip() else None
        if not question.strip():
            reason = "empty"
        elif is_unanswerable_like(question):
            reason = "unanswerable"
        elif is_degenerate(question):
            reason = "degenerate"
        elif _normalized(question) == _normalized(parent["question"]):
            reason = "same_as_source"
        elif parent.get("task") is not None and candidate_task is not None and candidate_task != parent["task"]:
            reason = "task_type_changed"
            detail = {"source_task": parent["task"], "detected_task": candidate_task}
        elif require_known_task and parent.get("task") is not None and candidate_task is None:
            reason = "task_type_unknown"
            detail = {"source_task": parent["task"]}
        else:
            others = [record["question"] for record in existing] + accepted_by_image.get(image, [])
            scored = [(rouge_l(question, other), other) for other in others]
            best, most_similar = max(scored, key=lambda pair: pair[0], default=(0.0, None))
            if best >= threshold:
                reason = "too_similar"
                detail = {"rouge_l": best, "most_similar": most_similar}
        if reason is not None:
            rejects.add(reason, {**candidate, **detail}, source="augmentation")
            continue
        valid.append(candidate)
        accepted_by_image.setdefault(image, []).append(question)
    return valid, rejects


# ---------------------------------------------------------------- report


def iteration_report(iteration: int, tuning_pool: Sequence[dict], cache_pool: Sequence[dict],
                     judgements: Sequence[dict], judge_failures: Sequence[dict], sampled_easy: Sequence[dict],
                     candidates: Sequence[dict], valid: Sequence[dict], rejects: RejectLog) -> dict[str, Any]:
    """Counts of one CoMD iteration; pools are the ones *after* the refresh.

    "changed" is False when no new instruction is valid: the next tuning pool is then
    empty and the next iteration's student a copy of this one; "note" says so and why
    (None when the iteration changed something). Checks that every candidate is
    accounted for (generated = valid + rejected), raising ValueError otherwise.
    """
    if len(candidates) != len(valid) + len(rejects):
        raise ValueError(f"iteration {iteration}: {len(candidates)} candidates but {len(valid)} valid "
                         f"+ {len(rejects)} rejected")
    difficult = sum(1 for judgement in judgements if judgement["difficult"])
    failure_reasons = Counter(order for failure in judge_failures for order in failure["failed_orders"])
    note = None
    if not valid:
        why = f"{len(candidates)} generated, all rejected" if candidates else "nothing was augmented"
        note = (f"no valid new instruction ({why}): the next tuning pool is empty, so iteration {iteration + 1}'s "
                f"student is a copy of iteration {iteration}'s")
    return {
        "iteration": iteration,
        "tuning_pool_size": len(tuning_pool),
        "cache_pool_size": len(cache_pool),
        "assessed": len(judgements) + len(judge_failures),
        "scored": len(judgements),
        "difficult": difficult,
        "easy": len(judgements) - difficult,
        "easy_sampled": len(sampled_easy),
        "judge_failures": len(judge_failures),
        "judge_failed_orders": dict(sorted(failure_reasons.items())),
        "generated": len(candidates),
        "valid": len(valid),
        "rejected": len(rejects),
        "rejected_by_reason": rejects.counts,
        "changed": bool(valid),
        "note": note,
    }
