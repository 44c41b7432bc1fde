"""Toy stand-ins for the papers' benchmarks, built from the scenes of one split.

* `make_mc_benchmark`: ScienceQA-like multiple choice with subject / context-modality /
  grade axes.
* `make_seed_benchmark`: SEED-Bench-like four-option multiple choice by dimension.
* `make_pope_benchmark`: POPE-like yes/no object probing, random / popular / adversarial.
* `make_open_benchmark`: LLaVA-Bench-like open questions with oracle reference answers.

Every item: {"id", "scene_id", "split", "image", "question", "answer", "task", ...axes}.
Multiple-choice items add "options", "prompt" (the text shown to the model) and
"answer_text"; their "answer" is the gold option letter, as in ScienceQA / SEED files,
and "answer_text" the right option's text (what toy models are trained to answer, see
`oracle.answer`). Item k of a scene depends only on (seed, scene).
"""

from __future__ import annotations

from collections import Counter
from random import Random

from mmdistill.toyworld import oracle
from mmdistill.toyworld.language import (
    ALIASES,
    CONTEXT_TEMPLATES,
    NO,
    NO_TEXT,
    NOTHING,
    OPTION_LETTERS,
    POPE_TEMPLATE,
    TEMPLATES,
    YES,
    Ref,
    format_mc_prompt,
    list_names,
    object_name,
    question_slots,
    render_question,
)
from mmdistill.toyworld.scenes import (
    COLORS,
    SHAPES,
    SIZES,
    WORDS,
    all_cell_names,
    image_path,
    scene_grid,
    scene_rng,
)

MC_SUBJECTS = ("attributes", "spatial", "text")  # analogs of ScienceQA NAT / SOC / LAN
CONTEXT_MODALITIES = ("txt", "img", "no")
GRADES = ("easy", "hard")  # analogs of grades 1-6 / 7-12
SUBJECT_TASKS = {  # image-based tasks of each subject
    "attributes": ("color", "shape", "size", "exist", "compare"),
    "spatial": ("count", "position", "relation", "identity"),
    "text": ("text",),
}
SUBJECT_KINDS = {"attributes": ("color", "shape", "size"), "spatial": ("position",), "text": ()}  # text-only items
MC_CONTEXT_TASKS = ("color", "shape", "size", "position", "text")  # tasks about one referred object
HARD_TASKS = ("count", "relation", "compare")
MODALITY_WEIGHTS = {"img": 6, "txt": 3, "no": 1}

SEED_DIMENSIONS = {
    "scene": "list",
    "instance_identity": "identity",
    "instance_attributes": "color",
    "instance_location": "position",
    "instance_counting": "count",
    "spatial_relation": "relation",
    "text_recognition": "text",
}
SEED_OPTIONS = 4

POPE_NEGATIVE_TYPES = ("random", "popular", "adversarial")

OPEN_CATEGORIES = {
    "conversation": ("color", "shape", "size", "count", "exist", "position", "text", "identity", "list"),
    "complex_reasoning": ("relation", "compare"),
    "detail_description": ("describe",),
}

_KIND_VALUES = {"color": COLORS, "shape": SHAPES, "size": SIZES, "position": all_cell_names(2)}
_ALL_NAMES = [f"{color} {shape}" for color in COLORS for shape in SHAPES]


def _base_item(scene: dict, item_id: str, task: str, question: str, answer: str) -> dict:
    return {
        "id": item_id,
        "scene_id": scene["scene_id"],
        "split": scene["split"],
        "image": image_path(scene),
        "task": task,
        "question": question,
        "answer": answer,
    }


# ---------------------------------------------------------------- options


def _list_variants(scene: dict, rng: Random) -> list[str]:
    """Wrong object lists close to the right one: an object swapped, dropped or added."""
    names = [object_name(obj) for obj in sorted(scene["objects"], key=lambda obj: (obj["row"], obj["col"]))]
    absent = [name for name in _ALL_NAMES if name not in names]
    variants: dict[frozenset, str] = {frozenset(names): ""}
    while len(variants) < SEED_OPTIONS + 2:
        edit = rng.choice(("swap", "drop", "add") if len(names) > 1 else ("swap", "add"))
        changed = list(names)
        if edit == "swap":
            changed[rng.randrange(len(changed))] = rng.choice(absent)
        elif edit == "drop":
            changed.pop(rng.randrange(len(changed)))
        else:
            changed.append(rng.choice(absent))
        variants.setdefault(frozenset(changed), list_names(changed))
    return [text for text in variants.values() if text]


def _distractors(task: str, gold: str, scene: dict, rng: Random) -> tuple[list[str], list[str]]:
    """Wrong options for a task: (preferred near misses, other wrong values)."""
    if task in ("exist", "compare"):
        return [NO if gold == YES else YES], []
    if task == "count":
        value = int(gold)
        near = [str(n) for n in (value - 1, value + 1, value - 2, value + 2) if n >= 0]
        return near, [str(n) for n in range(max(5, value + 3)) if abs(n - value) > 2]
    if task in ("relation", "identity"):
        present = [object_name(obj) for obj in scene["objects"]] + [NOTHING]
        return [name for name in present if name != gold], [name for name in _ALL_NAMES if name not in present]
    if task == "list":
        return _list_variants(scene, rng), []
    values = {
        "color": COLORS,
        "shape": SHAPES,
        "size": SIZES,
        "text": (*WORDS, NO_TEXT),
        "position": all_cell_names(scene_grid(scene)),
    }[task]
    return [value for value in values if value != gold], []


def _shuffled_options(
    gold: str, preferred: list[str], others: list[str], size: int, rng: Random
) -> tuple[list[str], str]:
    """`size` options: gold at a uniformly random position, near misses first; returns (options, letter)."""
    preferred = [value for value in dict.fromkeys(preferred) if value != gold]
    others = [value for value in dict.fromkeys(others) if value != gold and value not in preferred]
    wrong = rng.sample(preferred, min(size - 1, len(preferred)))
    wrong += rng.sample(others, min(size - 1 - len(wrong), len(others)))
    rng.shuffle(wrong)
    position = rng.randrange(len(wrong) + 1)
    return wrong[:position] + [gold] + wrong[position:], OPTION_LETTERS[position]


# ---------------------------------------------------------------- ScienceQA-like


def _category_question(kind: str, rng: Random) -> tuple[str, str, list[str]]:
    """A text-only question "which of these words is a color ?": (question, gold, wrong values)."""
    gold = rng.choice(_KIND_VALUES[kind])
    wrong = [value for other, values in _KIND_VALUES.items() if other != kind for value in values] + list(WORDS)
    return render_question(rng.choice(TEMPLATES["category"]), {"kind": kind}), gold, wrong


def make_mc_item(scene: dict, item_id: str, rng: Random) -> dict | None:
    """One ScienceQA-like item, or None when the drawn task has no question for this scene.

    The subject is uniform over those the scene allows (text needs a drawn word), then
    the context modality by MODALITY_WEIGHTS, then the task.
    """
    has_word = any(obj["text"] for obj in scene["objects"])
    subject = rng.choice([subject for subject in MC_SUBJECTS if subject != "text" or has_word])
    modalities = [modality for modality in MODALITY_WEIGHTS if modality != "no" or SUBJECT_KINDS[subject]]
    modality = rng.choices(modalities, weights=[MODALITY_WEIGHTS[modality] for modality in modalities])[0]
    if modality == "no":
        return make_category_item(scene, item_id, subject, rng)
    context = None
    tasks = [task for task in SUBJECT_TASKS[subject] if modality == "img" or task in MC_CONTEXT_TASKS]
    task = rng.choice(tasks)
    slots = question_slots(task, scene, rng)
    if slots is None:
        return None
    template = rng.choice(TEMPLATES[task])
    question = render_question(template, slots)
    gold = oracle.answer(scene, question)
    if modality == "txt":
        alias = rng.choice(ALIASES)
        context = render_question(rng.choice(CONTEXT_TEMPLATES), {"alias": alias, "ref": slots["ref"]})
        question = render_question(template, {**slots, "ref": Ref(alias=alias)})
    uses_cell = any("cell" in ref.uses() for ref in (slots.get("ref"), slots.get("ref2")) if ref)
    grade = "hard" if task in HARD_TASKS or uses_cell or context else "easy"
    preferred, others = _distractors(task, gold, scene, rng)
    options, letter = _shuffled_options(gold, preferred, others, 4, rng)
    return _mc_item(scene, item_id, task, question, gold, options, letter, context, subject, modality, grade)


def make_category_item(scene: dict, item_id: str, subject: str, rng: Random) -> dict:
    """A text-only ScienceQA-like item of `subject` (context modality "no", grade easy): "which of these
    words is a color ?", one option of the kind and three of other kinds or words."""
    question, gold, wrong = _category_question(rng.choice(SUBJECT_KINDS[subject]), rng)
    options, letter = _shuffled_options(gold, [], wrong, 4, rng)
    return _mc_item(scene, item_id, "category", question, gold, options, letter, None, subject, "no", "easy")


def _mc_item(scene: dict, item_id: str, task: str, question: str, gold: str, options: list[str], letter: str,
             context: str | None, subject: str, modality: str, grade: str) -> dict:
    item = _base_item(scene, item_id, task, question, letter)
    item.update(
        {
            "answer_text": gold,
            "context": context,
            "options": options,
            "prompt": format_mc_prompt(question, options, context),
            "subject": subject,
            "context_modality": modality,
            "grade": grade,
        }
    )
    return item


def _unique_items(make_item, scene: dict, prefix: str, rng: Random, per_scene: int, key: str) -> list[dict]:
    """Up to `per_scene` items `make_item(scene, item_id, rng)` with distinct `key`, in bounded tries."""
    items: list[dict] = []
    seen: set[str] = set()
    for _ in range(per_scene * 4):
        if len(items) == per_scene:
            break
        item = make_item(scene, f"{prefix}-{scene['scene_id']}-{len(items)}", rng)
        if item is not None and item[key] not in seen:
            seen.add(item[key])
            items.append(item)
    return items


def make_mc_benchmark(scenes: list[dict], seed: int, per_scene: int) -> list[dict]:
    """ScienceQA-like items: subject (attributes / spatial / text), context_modality
    (txt: a context sentence defines an alias the question uses; img: needs the image;
    no: answerable from the text alone), grade (hard: counting, relations, comparisons,
    cell references or a context). As many options as the answer has values, at most 4
    (yes/no and size 2, shape 3)."""
    items = []
    for scene in scenes:
        rng = scene_rng(seed, "mc", scene["scene_id"])
        items += _unique_items(make_mc_item, scene, "mc", rng, per_scene, key="prompt")
    return items


# ---------------------------------------------------------------- SEED-like


def make_seed_item(scene: dict, item_id: str, dimension: str, rng: Random) -> dict | None:
    task = SEED_DIMENSIONS[dimension]
    slots = question_slots(task, scene, rng)
    if slots is None:
        return None
    question = render_question(rng.choice(TEMPLATES[task]), slots)
    gold = oracle.answer(scene, question)
    preferred, others = _distractors(task, gold, scene, rng)
    options, letter = _shuffled_options(gold, preferred, others, SEED_OPTIONS, rng)
    if len(options) != SEED_OPTIONS:
        return None
    item = _base_item(scene, item_id, task, question, letter)
    item.update(
        {
            "answer_text": gold,
            "dimension": dimension,
            "options": options,
            "prompt": format_mc_prompt(question, options),
        }
    )
    return item


def make_seed_benchmark(scenes: list[dict], seed: int, per_scene: int) -> list[dict]:
    """SEED-like four-option items; each scene gets up to `per_scene` distinct dimensions
    (text_recognition only where a word is drawn)."""
    items = []
    for scene in scenes:
        rng = scene_rng(seed, "seed", scene["scene_id"])
        dimensions = [d for d in SEED_DIMENSIONS if d != "text_recognition" or any(o["text"] for o in scene["objects"])]
        for dimension in rng.sample(dimensions, min(per_scene, len(dimensions))):
            item = make_seed_item(scene, f"seed-{scene['scene_id']}-{dimension}", dimension, rng)
            if item is not None:
                items.append(item)
    return items


# ---------------------------------------------------------------- POPE-like


def pope_question(color: str, shape: str) -> str:
    return render_question(POPE_TEMPLATE, {"np": Ref(color=color, shape=shape)})


def adversarial_negatives(absent, present) -> list[tuple[str, str]]:
    """The absent (colour, shape) pairs that share the colour or the shape of a present one (POPE's
    adversarial negatives), in the order of `absent`."""
    return [(color, shape) for color, shape in absent
            if any(color == present_color or shape == present_shape for present_color, present_shape in present)]


def _pope_negatives(present: set, ranking: list, rng: Random) -> dict[str, list]:
    """Absent (colour, shape) pairs per negative type, in the order they are used."""
    absent = [pair for pair in ranking if pair not in present]
    shares = adversarial_negatives(absent, present)
    return {
        "random": rng.sample(absent, len(absent)),
        "popular": absent,  # most frequent in the dataset first
        "adversarial": rng.sample(shares, len(shares)),
    }


def make_pope_benchmark(
    scenes: list[dict], seed: int, per_scene: int, all_scenes_for_popularity: list[dict]
) -> list[dict]:
    """POPE-like yes/no items "is there a <color> <shape> in the image ?".

    Each negative type is its own sub-split with one absent pair per present pair, so
    yes and no are balanced within it: random = any absent pair; popular = the absent
    pairs most frequent in `all_scenes_for_popularity`; adversarial = absent pairs that
    share the colour or the shape of a present object.
    """
    frequency = Counter((obj["color"], obj["shape"]) for scene in all_scenes_for_popularity for obj in scene["objects"])
    ranking = sorted(((c, s) for c in COLORS for s in SHAPES), key=lambda pair: -frequency[pair])
    items = []
    for scene in scenes:
        rng = scene_rng(seed, "pope", scene["scene_id"])
        present = [(obj["color"], obj["shape"]) for obj in scene["objects"]]
        negatives = _pope_negatives(set(present), ranking, rng)
        for negative_type in POPE_NEGATIVE_TYPES:
            positives = rng.sample(present, min(per_scene, len(present), len(negatives[negative_type])))
            for k, (positive, negative) in enumerate(zip(positives, negatives[negative_type])):
                for pair, answer in ((positive, YES), (negative, NO)):
                    item = _base_item(
                        scene,
                        f"pope-{negative_type}-{scene['scene_id']}-{k}-{answer}",
                        "exist",
                        pope_question(*pair),
                        answer,
                    )
                    item.update({"negative_type": negative_type, "object": " ".join(pair)})
                    items.append(item)
    return items


# ---------------------------------------------------------------- open-ended


def _open_item(scene: dict, item_id: str, rng: Random) -> dict | None:
    category = rng.choice(list(OPEN_CATEGORIES))
    task = rng.choice(OPEN_CATEGORIES[category])
    slots = question_slots(task, scene, rng)
    if slots is None:
        return None
    question = render_question(rng.choice(TEMPLATES[task]), slots)
    item = _base_item(scene, item_id, task, question, oracle.answer(scene, question))
    item["category"] = category
    return item


def make_open_benchmark(scenes: list[dict], seed: int, per_scene: int) -> list[dict]:
    """LLaVA-Bench-like open questions; category conversation (short facts),
    complex_reasoning (relations, comparisons) or detail_description; reference = oracle."""
    items = []
    for scene in scenes:
        rng = scene_rng(seed, "open", scene["scene_id"])
        items += _unique_items(_open_item, scene, "open", rng, per_scene, key="question")
    return items
