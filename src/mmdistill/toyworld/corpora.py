"""Training corpora of the toy world, all deterministic in `seed`.

* `make_raw_captions`: noisy web-style captions with a long tail of noun phrases
  (stands in for CC3M + SBU + LAION, CoMD §3.2); `make_detailed_captions`: one complete
  description per image.
* `make_vision_ready_captions`: the captions that make the student's toy LLM ready to
  read image tokens before its projector-only stage 1.
* `make_instruction_seed`: multi-turn conversations with gold answers (LLaVA-80K).
* `make_gold_answer_data`: supervised data for the teacher, open and multiple choice.
* `make_grounding_data` / `make_grounding_stage_data`: short content-search questions for
  the teacher, in its gold data and in its grounding stage; `make_word_data`: questions
  about the words on objects, for its gold data.
* `make_judge_data` / `make_augment_data`: supervised data for the assessor and
  augmentor roles (prompts from `mmdistill.roles`).
* `make_lm_pretraining_text`: plain text for pretraining the tiny language models.

Conversation records use the LLaVA format: {"id", "scene_id", "image", "conversations":
[{"from": "human", "value": "<image>\\n..."}, {"from": "gpt", "value": ...}, ...],
"tasks" or "task", "role"}. Records of one scene depend only on (seed, scene).
"""

from __future__ import annotations

from itertools import accumulate
from random import Random

from mmdistill import roles
from mmdistill.conversation import IMAGE_PLACEHOLDER
from mmdistill.toyworld import oracle
from mmdistill.toyworld.benchmarks import (
    MC_SUBJECTS,
    SEED_DIMENSIONS,
    SUBJECT_KINDS,
    adversarial_negatives,
    make_category_item,
    make_mc_item,
    make_seed_item,
    pope_question,
)
from mmdistill.toyworld.language import (
    CAPTION_ADJECTIVES,
    CAPTION_FRAMES,
    CAPTION_NOUNS,
    CAPTION_PREPOSITIONS,
    CAPTION_WORD_FRAMES,
    HEDGED_ANSWER,
    LM_QA_TEMPLATE,
    NO,
    NOTHING,
    OPEN_TASK_TYPES,
    UNANSWERABLE,
    VERBOSE_ANSWER,
    YES,
    describe_objects,
    list_names,
    make_question,
    object_name,
    with_article,
)
from mmdistill.toyworld.scenes import (
    COLORS,
    SHAPES,
    SIZES,
    WORDS,
    all_cell_names,
    image_path,
    object_cell,
    scene_grid,
    scene_rng,
)

# ---------------------------------------------------------------- raw captions

RARE_PHRASE_PROBABILITY = 0.25  # a caption gets "<preposition> a <adjective> <noun>"
OFF_TOPIC_PROBABILITY = 0.03  # a caption is only such phrases, like a web caption unrelated to the image
_RARE_PHRASES = [f"{adjective} {noun}" for adjective in CAPTION_ADJECTIVES for noun in CAPTION_NOUNS]
Random("caption-lexicon").shuffle(_RARE_PHRASES)  # a fixed popularity order
# Zipf-like popularity: a few phrases are common, most occur once or twice in 20k captions.
_RARE_CUMULATIVE = list(accumulate(1.0 / (rank + 1) ** 1.1 for rank in range(len(_RARE_PHRASES))))


def _rare_phrase(rng: Random) -> str:
    return with_article(rng.choices(_RARE_PHRASES, cum_weights=_RARE_CUMULATIVE)[0])


def _caption_object(scene: dict, obj: dict, rng: Random) -> str:
    """A noun phrase for one object, with a random level of detail."""
    words = [obj["size"] if rng.random() < 0.35 else None, obj["color"] if rng.random() < 0.85 else None, obj["shape"]]
    phrase = " ".join(word for word in words if word)
    phrase = f"the {phrase}" if rng.random() < 0.15 else with_article(phrase)
    if rng.random() < 0.2:
        phrase += f" in the {object_cell(scene, obj)}"
    if obj["text"] and rng.random() < 0.6:
        phrase = rng.choice(CAPTION_WORD_FRAMES).format(object=phrase, word=obj["text"])
    return phrase


def _caption(scene: dict, rng: Random) -> str:
    if rng.random() < OFF_TOPIC_PROBABILITY:
        return f"{_rare_phrase(rng)} {rng.choice(CAPTION_PREPOSITIONS)} {_rare_phrase(rng)}"
    objects = rng.sample(scene["objects"], rng.randint(1, len(scene["objects"])))
    caption = rng.choice(CAPTION_FRAMES).format(
        objects=list_names([_caption_object(scene, obj, rng) for obj in objects])
    )
    if rng.random() < RARE_PHRASE_PROBABILITY:
        caption += f" {rng.choice(CAPTION_PREPOSITIONS)} {_rare_phrase(rng)}"
    return caption


def make_raw_captions(scenes: list[dict], captions_per_scene: int, seed: int) -> list[dict]:
    """Web-style captions {"id", "image", "caption"}: mostly true, varied in phrasing and detail,
    with a long tail of rare noun phrases ("a vintage postcard") for the frequency filter."""
    records = []
    for scene in scenes:
        rng = scene_rng(seed, "captions", scene["scene_id"])
        for k in range(captions_per_scene):
            records.append(
                {"id": f"cap-{scene['scene_id']}-{k}", "image": image_path(scene), "caption": _caption(scene, rng)}
            )
    return records


def make_detailed_captions(scenes: list[dict]) -> list[dict]:
    """One caption per image naming every object with its attributes and cell (`oracle.describe`)."""
    return [{"id": f"detail-{scene['scene_id']}", "image": image_path(scene), "caption": oracle.describe(scene)}
            for scene in scenes]


def make_vision_ready_captions(scenes: list[dict], seed: int, captions_per_scene: int) -> list[dict]:
    """Captions for the student LLM's readiness step: the detailed captions of the pretraining
    scenes and `captions_per_scene` raw-style captions of each instruct scene.

    Detailed captions alone leave an LLM that cannot model the raw captions of stage 1, and
    a fresh projector trained through it learns little; with both styles it re-learns to
    read the image (README, "A vision-ready student LLM").
    """
    pretrain = [scene for scene in scenes if scene["split"] == "pretrain"]
    instruct = [scene for scene in scenes if scene["split"] == "instruct"]
    return make_detailed_captions(pretrain) + make_raw_captions(instruct, captions_per_scene, seed)


# ---------------------------------------------------------------- conversations


def llava_record(record_id: str, scene: dict, turns: list[tuple[str, str]], **extra) -> dict:
    """A LLaVA-format record; the image placeholder opens the first human turn."""
    conversations = []
    for index, (question, answer) in enumerate(turns):
        prefix = f"{IMAGE_PLACEHOLDER}\n" if index == 0 else ""
        conversations += [{"from": "human", "value": prefix + question}, {"from": "gpt", "value": answer}]
    return {
        "id": record_id,
        "scene_id": scene["scene_id"],
        "image": image_path(scene),
        "conversations": conversations,
        **extra,
    }


def _random_qa(scene: dict, rng: Random, count: int) -> list[tuple[str, str, str]]:
    """Up to `count` distinct (task, question, gold answer) turns; at most one description."""
    turns: list[tuple[str, str, str]] = []
    for _ in range(count * 5):
        if len(turns) == count:
            break
        task = rng.choice(OPEN_TASK_TYPES)
        question = make_question(task, scene, rng)
        if question is None or any(question == q or (task == t == "describe") for t, q, _ in turns):
            continue
        turns.append((task, question, oracle.answer(scene, question)))
    return turns


def random_question(scene: dict, rng: Random) -> tuple[str, str]:
    """(task, question) for a random open task type that has a question about this scene."""
    while True:
        task = rng.choice(OPEN_TASK_TYPES)
        question = make_question(task, scene, rng)
        if question is not None:
            return task, question


def _qa_record(record_id: str, scene: dict, turns: list[tuple[str, str, str]], **extra) -> dict:
    return llava_record(
        record_id, scene, [(q, a) for _, q, a in turns], tasks=[t for t, _, _ in turns], role="answer", **extra
    )


def make_instruction_seed(scenes: list[dict], seed: int, min_turns: int = 2, max_turns: int = 4) -> list[dict]:
    """One multi-turn conversation per scene with gold answers (the LLaVA-80K stand-in)."""
    records = []
    for scene in scenes:
        rng = scene_rng(seed, "instruction-seed", scene["scene_id"])
        turns = _random_qa(scene, rng, rng.randint(min_turns, max_turns))
        records.append(_qa_record(f"inst-{scene['scene_id']}", scene, turns))
    return records


GOLD_FORMAT_WEIGHTS = {"single": 4, "multi": 3, "mc": 2, "seed": 1}


def make_gold_answer_data(scenes: list[dict], seed: int, per_scene: int) -> list[dict]:
    """Supervised teacher data: single- and multi-turn open QA over all task types, and
    multiple-choice prompts in the benchmark formats answered with the text of the right
    option (`oracle.answer` of the prompt, the item's "answer_text").
    Each record's "format" is single / multi / mc / seed."""
    records = []
    for scene in scenes:
        rng = scene_rng(seed, "gold", scene["scene_id"])
        for k in range(per_scene):
            records.append(_gold_record(f"gold-{scene['scene_id']}-{k}", scene, rng))
    return records


def _gold_record(record_id: str, scene: dict, rng: Random) -> dict:
    kind = rng.choices(list(GOLD_FORMAT_WEIGHTS), weights=list(GOLD_FORMAT_WEIGHTS.values()))[0]
    if kind in ("single", "multi"):
        turns = _random_qa(scene, rng, 1 if kind == "single" else rng.randint(2, 4))
        return _qa_record(record_id, scene, turns, format=kind)
    item = None
    while item is None:  # an item is impossible only for some tasks / dimensions, e.g. text without words
        if kind == "mc":
            item = make_mc_item(scene, record_id, rng)
        else:
            item = make_seed_item(scene, record_id, rng.choice(list(SEED_DIMENSIONS)), rng)
    return _qa_record(record_id, scene, [(item["task"], item["prompt"], item["answer_text"])], format=kind)


def make_category_data(scenes: list[dict], seed: int, per_scene: int) -> list[dict]:
    """Text-only multiple choice ("which of these words is a color ?") answered with the right option's
    text, `per_scene` per scene, of a subject drawn from those that have such items. The gold mixture held
    about 80, and the teacher answered a word of the asked kind that was not an option (README, "Method
    notes"). Each record's "format" is category."""
    subjects = [subject for subject in MC_SUBJECTS if SUBJECT_KINDS[subject]]
    records = []
    for scene in scenes:
        rng = scene_rng(seed, "category", scene["scene_id"])
        for k in range(per_scene):
            record_id = f"category-{scene['scene_id']}-{k}"
            item = make_category_item(scene, record_id, rng.choice(subjects), rng)
            records.append(_qa_record(record_id, scene, [(item["task"], item["prompt"], item["answer_text"])],
                                      format="category"))
    return records


# Short single-turn questions that can only be answered by finding an object by its content.
# Existence is half of them: a yes/no answer rewards the search only once it works, so the toy
# teacher learned it only from tens of thousands of examples (docs/TOY_TEACHER.md).
GROUNDING_TASKS = ("exist", "exist", "exist", "position", "relation", "count")


def make_grounding_data(scenes: list[dict], seed: int, per_scene: int) -> list[dict]:
    """Supervised teacher data for content search: `per_scene` one-turn questions per scene, task k
    of a scene being GROUNDING_TASKS[k % 6], answered by the oracle. Each record's "format" is grounding."""
    records = []
    for scene in scenes:
        rng = scene_rng(seed, "grounding", scene["scene_id"])
        for k in range(per_scene):
            task = GROUNDING_TASKS[k % len(GROUNDING_TASKS)]
            records.append(_oracle_answered(f"grounding-{scene['scene_id']}-{k}", scene, task, rng, "grounding"))
    return records


def make_word_data(scenes: list[dict], seed: int, per_scene: int) -> list[dict]:
    """Supervised teacher data for reading: in each scene with a word, `per_scene` one-turn questions about
    the words on its objects ("what does the <ref> say ?"), answered by the oracle. Each record's "format"
    is word."""
    records = []
    for scene in scenes:
        if not any(obj["text"] for obj in scene["objects"]):
            continue
        rng = scene_rng(seed, "word", scene["scene_id"])
        for k in range(per_scene):
            records.append(_oracle_answered(f"word-{scene['scene_id']}-{k}", scene, "text", rng, "word"))
    return records


def _oracle_answered(record_id: str, scene: dict, task: str, rng: Random, record_format: str) -> dict:
    """A one-turn record: a random question of `task` about `scene` (the task must have one) and the oracle's answer."""
    question = None
    while question is None:
        question = make_question(task, scene, rng)
    return _qa_record(record_id, scene, [(task, question, oracle.answer(scene, question))], format=record_format)


# The grounding stage's other questions: find an object by its content, then read where it is, its
# word, or its neighbour (docs/TOY_TEACHER.md: with them the existence circuit forms too).
SEARCH_TASKS = ("position", "text", "relation")


def make_grounding_stage_data(scenes: list[dict], seed: int, existence_per_scene: int,
                              search_per_scene: int, search_word_per_scene: int = 0) -> list[dict]:
    """The teacher's grounding stage, per scene: `existence_per_scene` one-turn "is there a <colour> <shape>
    in the image ?" questions, a present kind and an absent one in turn, half of the absent kinds sharing a
    colour or a shape with a present object (POPE's adversarial negatives), the rest any absent kind; then
    `search_per_scene` one-turn questions of SEARCH_TASKS in turn (position in place of a word where the
    scene has none), answered by the oracle; then, in scenes with a word, `search_word_per_scene` more questions
    about the words ("what does the <ref> say ?"). Records' "format" is existence, search or search-word."""
    kinds = [(color, shape) for color in COLORS for shape in SHAPES]
    records = []
    for scene in scenes:
        rng = scene_rng(seed, "existence", scene["scene_id"])
        present = sorted({(obj["color"], obj["shape"]) for obj in scene["objects"]})
        absent = [kind for kind in kinds if kind not in present]
        near = adversarial_negatives(absent, present)
        for k in range(existence_per_scene):
            if k % 2 == 0:
                kind, answer = rng.choice(present), YES
            else:
                kind, answer = rng.choice(near if near and rng.random() < 0.5 else absent), NO
            records.append(_qa_record(f"existence-{scene['scene_id']}-{k}", scene,
                                      [("exist", pope_question(*kind), answer)], format="existence"))
        has_word = any(obj["text"] for obj in scene["objects"])
        for k in range(search_per_scene):
            task = SEARCH_TASKS[k % len(SEARCH_TASKS)]
            if task == "text" and not has_word:
                task = "position"
            records.append(_oracle_answered(f"search-{scene['scene_id']}-{k}", scene, task, rng, "search"))
        for k in range(search_word_per_scene if has_word else 0):
            records.append(_oracle_answered(f"search-word-{scene['scene_id']}-{k}", scene, "text", rng, "search-word"))
    return records


# ---------------------------------------------------------------- judge data

JUDGE_QUALITY_WEIGHTS = {"right": 4, "partial": 2.5, "wrong": 3, "empty": 0.5}


def _other(values, gold: str, rng: Random) -> str:
    return rng.choice([value for value in values if value != gold])


def _edited_scene(scene: dict, rng: Random) -> dict:
    """The scene with one object dropped or one attribute changed (for partly right descriptions)."""
    objects = [dict(obj) for obj in scene["objects"]]
    index = rng.randrange(len(objects))
    if len(objects) > 1 and rng.random() < 0.4:
        objects.pop(index)
    else:
        field, values = rng.choice((("color", COLORS), ("shape", SHAPES), ("size", SIZES)))
        objects[index][field] = _other(values, objects[index][field], rng)
    return {**scene, "objects": objects}


def _random_scene(scene: dict, rng: Random) -> dict:
    """A random unrelated arrangement on the same grid (for wrong descriptions)."""
    cells = [(row, col) for row in range(scene_grid(scene)) for col in range(scene_grid(scene))]
    kinds = rng.sample([(c, s) for c in COLORS for s in SHAPES], len(cells))
    objects = [
        {"row": row, "col": col, "color": color, "shape": shape, "size": rng.choice(SIZES), "text": None}
        for (row, col), (color, shape) in zip(rng.sample(cells, rng.randint(1, len(cells))), kinds)
    ]
    return {**scene, "objects": objects}


def _imperfect_answer(scene: dict, task: str, gold: str, quality: str, rng: Random) -> str:
    """A `partial` or `wrong` answer to a question whose gold answer is `gold`."""
    values = {"color": COLORS, "shape": SHAPES, "size": SIZES, "text": WORDS}.get(task)
    if task in ("exist", "compare"):
        return NO if gold == YES else YES
    if task == "count":
        number = int(gold)
        if quality == "partial":
            return str(number + 1 if number == 0 or rng.random() < 0.5 else number - 1)
        return _other([str(n) for n in range(7) if abs(n - number) > 1], gold, rng)
    if values:
        wrong = _other(values, gold, rng)
        return HEDGED_ANSWER.format(answer=gold, other=wrong) if quality == "partial" else wrong
    if task == "position":
        cells = all_cell_names(scene_grid(scene))
        row, column = gold.split()
        half = [cell for cell in cells if cell != gold and (cell.split()[0] == row or cell.split()[1] == column)]
        far = [cell for cell in cells if cell != gold and cell not in half]
        return rng.choice(half if quality == "partial" or not far else far)
    if task in ("relation", "identity"):
        names = [f"{c} {s}" for c in COLORS for s in SHAPES]
        if gold == NOTHING:
            return rng.choice(names)
        color, shape = gold.split()
        near = [name for name in names if name != gold and (name.split()[0] == color or name.split()[1] == shape)]
        far = [name for name in names if name.split()[0] != color and name.split()[1] != shape] + [NOTHING]
        return rng.choice(near if quality == "partial" else far)
    changed = _edited_scene(scene, rng) if quality == "partial" else _random_scene(scene, rng)
    if task == "list":
        return list_names([object_name(obj) for obj in sorted(changed["objects"], key=lambda o: (o["row"], o["col"]))])
    return describe_objects(changed)


def _candidate_answer(scene: dict, task: str, gold: str, rng: Random) -> str:
    quality = rng.choices(list(JUDGE_QUALITY_WEIGHTS), weights=list(JUDGE_QUALITY_WEIGHTS.values()))[0]
    if quality == "empty":
        return rng.choice(("", UNANSWERABLE))
    if quality == "right":
        short = task not in ("list", "describe")
        return VERBOSE_ANSWER.format(answer=gold) if short and rng.random() < 0.2 else gold
    return _imperfect_answer(scene, task, gold, quality, rng)


def make_judge_data(scenes: list[dict], seed: int, per_scene: int) -> list[dict]:
    """Assessor data: `roles.judge_prompt(q, a1, a2)` -> "s1 s2" with s = oracle.score_answer.

    Answers are drawn independently (right, verbose, partly right, wrong, empty), so
    every pairing and both orders occur; records keep "question", "answers" and "scores".
    """
    records = []
    for scene in scenes:
        rng = scene_rng(seed, "judge", scene["scene_id"])
        for k in range(per_scene):
            task, question = random_question(scene, rng)
            gold = oracle.answer(scene, question)
            answers = [_candidate_answer(scene, task, gold, rng) for _ in range(2)]
            scores = [oracle.score_answer(scene, question, answer) for answer in answers]
            records.append(
                llava_record(
                    f"judge-{scene['scene_id']}-{k}",
                    scene,
                    [(roles.judge_prompt(question, *answers), roles.format_judge_output(*scores))],
                    task=task,
                    role="judge",
                    question=question,
                    answers=answers,
                    scores=scores,
                )
            )
    return records


# ---------------------------------------------------------------- augment data


def make_augment_data(scenes: list[dict], seed: int, per_scene: int, by_cell: bool = False) -> list[dict]:
    """Augmentor data: `roles.augment_prompt(q)` -> a different answerable question of the
    same task type about the same image; records keep q as "source_question". `by_cell`: the
    new questions name objects by their cell where the task allows (`language.choose_ref`)."""
    records = []
    for scene in scenes:
        rng = scene_rng(seed, "augment", scene["scene_id"])
        for k in range(per_scene):
            task, question = random_question(scene, rng)
            new_question = next(
                (q for q in (make_question(task, scene, rng, by_cell) for _ in range(10)) if q != question), None
            )
            if new_question is None:
                continue
            records.append(
                llava_record(
                    f"augment-{scene['scene_id']}-{k}",
                    scene,
                    [(roles.augment_prompt(question), new_question)],
                    task=task,
                    role="augment",
                    source_question=question,
                )
            )
    return records


# ---------------------------------------------------------------- language-model text

LM_TEXT_WEIGHTS = {"caption": 4, "qa": 4, "description": 2}


def make_lm_pretraining_text(scenes: list[dict], seed: int, n: int) -> list[str]:
    """`n` plain-text lines: captions, "question : ... answer : ..." lines and descriptions."""
    rng = scene_rng(seed, "lm-text", "all")
    texts = []
    while len(texts) < n:
        scene = scenes[len(texts) % len(scenes)]
        kind = rng.choices(list(LM_TEXT_WEIGHTS), weights=list(LM_TEXT_WEIGHTS.values()))[0]
        if kind == "caption":
            texts.append(_caption(scene, rng))
        elif kind == "description":
            texts.append(describe_objects(scene))
        else:
            _, question = random_question(scene, rng)
            texts.append(LM_QA_TEMPLATE.format(question=question, answer=oracle.answer(scene, question)))
    return texts
