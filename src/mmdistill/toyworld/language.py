"""The toy question language: templates, referring expressions, parser and closed vocabulary.

Every question is produced from a template of one task type and parsed back by the
same template table, so generation and parsing cannot drift apart. Text is
lowercase words and punctuation separated by single spaces (the form a word-level
tokenizer decodes to); `normalize` brings any input to that form.

Referring expressions ("refs") name one object: ``[size] [color] (shape | object)
[in the <cell>]`` (e.g. "red circle", "large object", "object in the top left"), or
an alias ("key", "prize", ...) that a multiple-choice context defines
("the key is the blue square ."). Groups ("red circles", "objects") are the plural
form used by counting questions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from random import Random

from mmdistill import conversation, roles
from mmdistill.toyworld.scenes import (
    COLORS,
    COLUMN_NAMES,
    ROW_NAMES,
    SHAPES,
    SIZES,
    SUPPORTED_GRIDS,
    WORDS,
    all_cell_names,
    object_cell,
    scene_grid,
)

# fmt: off
TASK_TYPES = (
    "color", "shape", "size", "count", "exist", "position", "text", "relation", "compare",
    "identity", "list", "describe", "category",
)
# fmt: on
# "category" ("which of these words is a color ?") needs options: multiple choice only.
OPEN_TASK_TYPES = tuple(task for task in TASK_TYPES if task != "category")

UNANSWERABLE = "unanswerable"  # the oracle's answer to anything it cannot answer
YES, NO = "yes", "no"
NOTHING = "nothing"  # answer of relation / identity questions about an empty cell
NO_TEXT = "none"  # answer of text questions about an object without a word
OBJECT = "object"
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", OBJECT: "objects"}
SINGULARS = {plural: singular for singular, plural in PLURALS.items()}
DIRECTIONS = {"to the left of": (0, -1), "to the right of": (0, 1), "above": (-1, 0), "below": (1, 0)}
COMPARE_ATTRIBUTES = ("color", "shape", "size")
CATEGORY_KINDS = ("color", "shape", "size", "position")
ALIASES = ("key", "prize", "target", "goal")
ASKED_FIELD = {"color": "color", "shape": "shape", "size": "size", "position": "cell"}  # what a ref must not reveal
OPTION_LETTERS = ("a", "b", "c", "d")
ALL_CELL_NAMES = tuple(dict.fromkeys(name for grid in SUPPORTED_GRIDS for name in all_cell_names(grid)))

TEMPLATES: dict[str, tuple[str, ...]] = {
    "color": ("what color is the {ref} ?", "what is the color of the {ref} ?", "which color does the {ref} have ?"),
    "shape": ("what shape is the {ref} ?", "what is the shape of the {ref} ?", "which shape does the {ref} have ?"),
    "size": ("what size is the {ref} ?", "is the {ref} small or large ?", "how big is the {ref} ?"),
    "count": ("how many {group} are there ?", "how many {group} are in the image ?", "count the {group} ."),
    "exist": ("is there {np} ?", "is there {np} in the image ?", "does the image contain {np} ?"),
    "position": ("where is the {ref} ?", "in which part of the image is the {ref} ?", "which corner is the {ref} in ?"),
    "text": ("what word is written on the {ref} ?", "what does the {ref} say ?", "which word is on the {ref} ?"),
    "relation": ("what is {dir} the {ref} ?", "which object is {dir} the {ref} ?", "name the object {dir} the {ref} ."),
    "compare": (
        "are the {ref} and the {ref2} the same {attr} ?",
        "do the {ref} and the {ref2} have the same {attr} ?",
        "is the {ref} the same {attr} as the {ref2} ?",
    ),
    "identity": ("what object is in the {cell} ?", "what is in the {cell} ?", "which object is in the {cell} ?"),
    "list": ("what objects are in the image ?", "list the objects in the image .", "which objects can you see ?"),
    "describe": (
        "describe the image .",
        "describe the image in detail .",
        "give a detailed description of the image .",
    ),
    "category": ("which of these words is a {kind} ?", "which option names a {kind} ?"),
}
POPE_TEMPLATE = "is there {np} in the image ?"  # POPE's fixed phrasing, one of the exist templates
CONTEXT_TEMPLATES = ("the {alias} is the {ref} .", "call the {ref} the {alias} .")

# Multiple-choice prompt layout (ScienceQA / SEED style); `format_mc_prompt` fills it.
# Toy models answer with the text of the right option (see oracle.answer).
MC_CONTEXT = "context : {context}"
MC_QUESTION = "question : {question}"
MC_OPTIONS = "options :"
MC_OPTION = "{letter} . {option}"
MC_INSTRUCTION = "answer with one of the options ."

# Canonical description sentences (see `describe_objects`).
DESCRIPTION_COUNT = ("there is {count} object .", "there are {count} objects .")
DESCRIPTION_OBJECT = "a {size} {color} {shape}{word} in the {cell} ."
DESCRIPTION_WORD = " with the word {word}"

# Web-caption lexicon for the raw caption corpus (CC3M / SBU / LAION stand-in).
CAPTION_FRAMES = (
    "{objects}",
    "a picture of {objects}",
    "an image of {objects}",
    "the image shows {objects}",
    "{objects} on a plain background",
    "a simple drawing of {objects}",
    "clip art of {objects}",
    "a photo with {objects}",
    "here we see {objects}",
)
CAPTION_WORD_FRAMES = ("{object} with the word {word}", "{object} that says {word}", "the word {word} on {object}")
CAPTION_PREPOSITIONS = ("on", "from", "in", "near", "next to", "at", "inside")
# fmt: off
CAPTION_ADJECTIVES = (
    "vintage", "old", "tiny", "rainy", "wooden", "sunny", "quiet", "broken", "golden", "dusty",
    "bright", "empty", "frozen", "silver", "lonely", "ancient", "paper", "plastic", "famous",
    "cozy", "foggy", "muddy", "purple", "striped", "windy", "busy", "hidden", "secret", "happy",
    "strange",
)
CAPTION_NOUNS = (
    "postcard", "photograph", "garden", "afternoon", "kitchen", "table", "window", "street",
    "poster", "notebook", "wall", "sticker", "museum", "beach", "forest", "river", "bridge",
    "village", "market", "blanket", "morning", "holiday", "classroom", "library", "painting",
    "journey", "festival", "mountain", "harbor", "grandmother",
)
# fmt: on

LM_QA_TEMPLATE = "question : {question} answer : {answer}"  # text-only pretraining of the LLMs
# Imperfect answers that judge training data grades (see oracle.score_answer).
VERBOSE_ANSWER = "the answer is {answer}"
HEDGED_ANSWER = "{answer} or {other}"

_TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
_SLOT = re.compile(r"\{(\w+)\}")


def tokenize(text: str) -> list[str]:
    """Lowercase words / numbers and single punctuation marks: the toy tokenizer's split."""
    return _TOKEN.findall(text.lower())


def normalize(text: str) -> str:
    """Canonical spacing and case: "What color is the Circle?" -> "what color is the circle ?"."""
    return " ".join(tokenize(text))


@dataclass(frozen=True)
class Ref:
    """A referring expression or counted group: constraints an object must satisfy."""

    size: str | None = None
    color: str | None = None
    shape: str | None = None
    cell: str | None = None
    alias: str | None = None

    def phrase(self, plural: bool = False) -> str:
        if self.alias:
            return self.alias
        noun = self.shape or OBJECT
        words = [self.size, self.color, PLURALS[noun] if plural else noun]
        text = " ".join(word for word in words if word)
        return f"{text} in the {self.cell}" if self.cell else text

    def matches(self, scene: dict, obj: dict) -> bool:
        return (
            (self.size is None or obj["size"] == self.size)
            and (self.color is None or obj["color"] == self.color)
            and (self.shape is None or obj["shape"] == self.shape)
            and (self.cell is None or object_cell(scene, obj) == self.cell)
        )

    def uses(self) -> set[str]:
        """Names of the constraints this expression sets."""
        return {name for name in ("size", "color", "shape", "cell", "alias") if getattr(self, name)}


@dataclass(frozen=True)
class Query:
    """A parsed question. `ref` is the object asked about (or the group counted / looked for)."""

    task: str
    template: str  # the template it matched
    ref: Ref | None = None
    other: Ref | None = None  # second object of a comparison
    direction: str | None = None  # relation: a key of DIRECTIONS
    attribute: str | None = None  # compare: color/shape/size; category: a CATEGORY_KINDS entry
    cell: str | None = None  # identity
    aliases: tuple[tuple[str, Ref], ...] = ()  # defined by a multiple-choice context
    options: tuple[str, ...] = ()  # multiple-choice options, lettered a, b, ... in order
    context: str | None = None


def with_article(phrase: str) -> str:
    return f"{'an' if phrase[0] in 'aeiou' else 'a'} {phrase}"


def object_name(obj: dict) -> str:
    """Short canonical name, unique within a scene: "red circle"."""
    return f"{obj['color']} {obj['shape']}"


def list_names(names: list[str]) -> str:
    """ "a", "a and b", "a , b and c"."""
    if len(names) <= 1:
        return "".join(names)
    return " , ".join(names[:-1]) + f" and {names[-1]}"


def describe_objects(scene: dict) -> str:
    """The canonical detail description: object count, then one sentence per object, row-major."""
    objects = sorted(scene["objects"], key=lambda obj: (obj["row"], obj["col"]))
    sentences = [DESCRIPTION_COUNT[len(objects) != 1].format(count=len(objects))]
    for obj in objects:
        word = DESCRIPTION_WORD.format(word=obj["text"]) if obj["text"] else ""
        sentences.append(
            DESCRIPTION_OBJECT.format(
                size=obj["size"], color=obj["color"], shape=obj["shape"], word=word, cell=object_cell(scene, obj)
            )
        )
    return " ".join(sentences)


def format_mc_prompt(question: str, options: list[str], context: str | None = None) -> str:
    """The single text shown to a model for a multiple-choice item (letters a, b, ...)."""
    if not 2 <= len(options) <= len(OPTION_LETTERS):
        raise ValueError(f"need 2 to {len(OPTION_LETTERS)} options, got {len(options)}")
    parts = [MC_CONTEXT.format(context=context)] if context else []
    parts.append(MC_QUESTION.format(question=question))
    parts.append(MC_OPTIONS)
    parts.extend(MC_OPTION.format(letter=letter, option=option) for letter, option in zip(OPTION_LETTERS, options))
    parts.append(MC_INSTRUCTION)
    return " ".join(parts)


# ---------------------------------------------------------------- generation


def choose_ref(scene: dict, target: dict, rng: Random, exclude: set[str] = frozenset(), by_cell: bool = False) -> Ref:
    """A random referring expression that names `target` alone and avoids the `exclude` fields.

    Excluding the asked attribute keeps questions from giving their answer away. `by_cell`
    picks among the expressions that name the target's cell where one is allowed: one object
    per cell makes them unique in every scene.
    """
    cell = object_cell(scene, target)
    shape, color, size = target["shape"], target["color"], target["size"]
    candidates = [
        Ref(shape=shape),
        Ref(color=color),
        Ref(color=color, shape=shape),
        Ref(size=size, shape=shape),
        Ref(size=size, color=color, shape=shape),
        Ref(cell=cell),
        Ref(shape=shape, cell=cell),
    ]
    valid = [
        ref
        for ref in candidates
        if not ref.uses() & exclude and [obj for obj in scene["objects"] if ref.matches(scene, obj)] == [target]
    ]
    located = [ref for ref in valid if ref.cell]
    return rng.choice(located if by_cell and located else valid)


def _random_group(scene: dict, rng: Random) -> Ref:
    """A counted group, usually built from a present object so that counts are not mostly 0."""
    source = (
        rng.choice(scene["objects"])
        if rng.random() < 0.7
        else {"size": rng.choice(SIZES), "color": rng.choice(COLORS), "shape": rng.choice(SHAPES)}
    )
    fields = rng.choice([(), ("color",), ("shape",), ("color", "shape"), ("size",), ("size", "shape")])
    return Ref(**{name: source[name] for name in fields})


def _random_exist_np(scene: dict, rng: Random) -> Ref:
    """What an existence question looks for: present about half of the time."""
    fields = rng.choice([("color", "shape"), ("color", "shape"), ("size", "color", "shape"), ("shape",), ("color",)])
    if rng.random() < 0.5:
        source = rng.choice(scene["objects"])
        return Ref(**{name: source[name] for name in fields})
    for _ in range(20):  # all candidates can be present (e.g. "a red object" among four colours)
        ref = Ref(**{name: rng.choice({"size": SIZES, "color": COLORS, "shape": SHAPES}[name]) for name in fields})
        if not any(ref.matches(scene, obj) for obj in scene["objects"]):
            break
    return ref


def question_slots(task: str, scene: dict, rng: Random, by_cell: bool = False) -> dict | None:
    """Random slot values for an answerable question of `task` about `scene` (None if impossible).

    Referring expressions and groups are `Ref`s, so callers can swap them (e.g. for an
    alias) before `render_question`. `by_cell`: see `choose_ref`.
    """
    objects = scene["objects"]
    if task in ("color", "shape", "size", "position", "text"):
        pool = [obj for obj in objects if obj["text"]] if task == "text" else objects
        if not pool:
            return None
        excluded = {ASKED_FIELD[task]} if task in ASKED_FIELD else set()
        return {"ref": choose_ref(scene, rng.choice(pool), rng, excluded, by_cell)}
    if task == "count":
        return {"group": _random_group(scene, rng)}
    if task == "exist":
        return {"np": _random_exist_np(scene, rng)}
    if task == "relation":
        target = rng.choice(objects)
        occupied = {(obj["row"], obj["col"]) for obj in objects}
        directions = list(DIRECTIONS)
        filled = [
            d for d in directions if (target["row"] + DIRECTIONS[d][0], target["col"] + DIRECTIONS[d][1]) in occupied
        ]
        direction = rng.choice(filled if filled and rng.random() < 0.7 else directions)
        return {"ref": choose_ref(scene, target, rng, by_cell=by_cell), "dir": direction}
    if task == "compare":
        if len(objects) < 2:
            return None
        first, second = rng.sample(objects, 2)
        attribute = rng.choice(COMPARE_ATTRIBUTES)
        return {
            "ref": choose_ref(scene, first, rng, {attribute}, by_cell),
            "ref2": choose_ref(scene, second, rng, {attribute}, by_cell),
            "attr": attribute,
        }
    if task == "identity":
        occupied = [object_cell(scene, obj) for obj in objects]
        cells = occupied if rng.random() < 0.8 else list(all_cell_names(scene_grid(scene)))
        return {"cell": rng.choice(cells)}
    if task in ("list", "describe"):
        return {}
    return None


def render_question(template: str, slots: dict) -> str:
    """Fill a template; `Ref` slots become phrases (groups plural, noun phrases with an article)."""
    values = {}
    for name in _SLOT.findall(template):
        value = slots[name]
        if name == "group":
            value = value.phrase(plural=True)
        elif name == "np":
            value = with_article(value.phrase())
        elif isinstance(value, Ref):
            value = value.phrase()
        values[name] = value
    return template.format(**values)


def make_question(task_type: str, scene: dict, rng: Random, by_cell: bool = False) -> str | None:
    """A random answerable question of `task_type` about `scene`, or None if there is none.
    `by_cell`: see `choose_ref`."""
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task type {task_type!r}")
    slots = question_slots(task_type, scene, rng, by_cell)
    if slots is None:
        return None
    return render_question(rng.choice(TEMPLATES[task_type]), slots)


# ---------------------------------------------------------------- parsing


_SLOT_PATTERNS = {
    "ref": r"(?P<ref>[a-z ]+?)",
    "ref2": r"(?P<ref2>[a-z ]+?)",
    "group": r"(?P<group>[a-z ]+?)",
    "np": r"(?P<np>[a-z ]+?)",
    "dir": "(?P<dir>" + "|".join(DIRECTIONS) + ")",
    "attr": "(?P<attr>" + "|".join(COMPARE_ATTRIBUTES) + ")",
    "cell": "(?P<cell>" + "|".join(ALL_CELL_NAMES) + ")",
    "kind": "(?P<kind>" + "|".join(CATEGORY_KINDS) + ")",
    "alias": "(?P<alias>" + "|".join(ALIASES) + ")",
}


def _compile(template: str) -> re.Pattern:
    pieces = _SLOT.split(template)  # literal, slot, literal, slot, ...
    pattern = "".join(
        re.escape(piece) if index % 2 == 0 else _SLOT_PATTERNS[piece] for index, piece in enumerate(pieces)
    )
    return re.compile(pattern)


_COMPILED = [(task, template, _compile(template)) for task, templates in TEMPLATES.items() for template in templates]
_COMPILED_CONTEXT = [_compile(template) for template in CONTEXT_TEMPLATES]
_MC_PATTERN = re.compile(
    r"(?:context : (?P<context>.+?) )?question : (?P<question>.+?) options : (?P<options>.+?) "
    + re.escape(MC_INSTRUCTION)
)


def parse_ref(phrase: str, plural: bool = False) -> Ref | None:
    """Parse ``[size] [color] noun [in the <cell>]`` (noun plural for groups) or an alias."""
    words = phrase.split()
    if not plural and len(words) == 1 and words[0] in ALIASES:
        return Ref(alias=words[0])
    cell = None
    if "in" in words:
        split = words.index("in")
        cell = " ".join(words[split + 2 :])
        if words[split + 1 : split + 2] != ["the"] or cell not in ALL_CELL_NAMES:
            return None
        words = words[:split]
    if not words:
        return None
    nouns = SINGULARS if plural else PLURALS
    if words[-1] not in nouns:
        return None
    noun = SINGULARS[words[-1]] if plural else words[-1]
    modifiers: dict[str, str] = {}
    for word in words[:-1]:
        field = "size" if word in SIZES else "color" if word in COLORS else None
        if field is None or field in modifiers:
            return None
        modifiers[field] = word
    return Ref(shape=None if noun == OBJECT else noun, cell=cell, **modifiers)


def _parse_np(phrase: str) -> Ref | None:
    article, _, rest = phrase.partition(" ")
    ref = parse_ref(rest) if article in ("a", "an") else None
    return None if ref is None or ref.alias else ref


def _parse_plain(text: str) -> Query | None:
    for task, template, pattern in _COMPILED:
        match = pattern.fullmatch(text)
        if not match:
            continue
        slots = match.groupdict()
        fields: dict = {}
        if "ref" in slots:
            fields["ref"] = parse_ref(slots["ref"])
        if "ref2" in slots:
            fields["other"] = parse_ref(slots["ref2"])
        if "group" in slots:
            fields["ref"] = parse_ref(slots["group"], plural=True)
        if "np" in slots:
            fields["ref"] = _parse_np(slots["np"])
        if any(value is None for value in fields.values()):
            continue
        return Query(
            task=task,
            template=template,
            direction=slots.get("dir"),
            attribute=slots.get("attr") or slots.get("kind"),
            cell=slots.get("cell"),
            **fields,
        )
    return None


def _parse_context(context: str) -> tuple[tuple[str, Ref], ...] | None:
    """Alias definitions, one sentence each ("the key is the blue square ."); None if anything else."""
    if not context.endswith(" ."):
        return None
    aliases = []
    for sentence in context[: -len(" .")].split(" . "):
        match = next(filter(None, (pattern.fullmatch(sentence + " .") for pattern in _COMPILED_CONTEXT)), None)
        ref = parse_ref(match["ref"]) if match else None
        if ref is None or ref.alias:
            return None
        aliases.append((match["alias"], ref))
    return tuple(aliases)


def _split_options(text: str) -> tuple[str, ...] | None:
    """ "a . red b . blue" -> ("red", "blue"); letters must run a, b, c, ... in order."""
    if not text.startswith("a . "):
        return None
    options, rest = [], text[len("a . ") :]
    for letter in OPTION_LETTERS[1:]:
        marker = f" {letter} . "
        if marker not in rest:
            break
        option, rest = rest.split(marker, 1)
        options.append(option)
    options.append(rest)
    if len(options) < 2 or any(not option for option in options):
        return None
    return tuple(options)


def parse_question(text: str) -> Query | None:
    """Parse a toy question (plain or in multiple-choice format); None if outside the language."""
    text = normalize(conversation.strip_image_placeholder(text))
    match = _MC_PATTERN.fullmatch(text)
    if not match:
        return _parse_plain(text)
    options = _split_options(match["options"])
    query = _parse_plain(match["question"])
    if options is None or query is None:
        return None
    aliases: tuple[tuple[str, Ref], ...] = ()
    if match["context"]:
        aliases = _parse_context(match["context"])
        if aliases is None:
            return None
    return replace(query, aliases=aliases, options=options, context=match["context"])


def task_type_of(question: str) -> str | None:
    """The task type of a question in the language, or None."""
    query = parse_question(question)
    return query.task if query else None


# ---------------------------------------------------------------- vocabulary


def _template_words(template: str) -> list[str]:
    return tokenize(_SLOT.sub(" ", template))


def toy_vocabulary() -> list[str]:
    """Every token (see `tokenize`) any toy-world text can contain, sorted.

    Covers questions, answers, descriptions, captions, multiple-choice formatting,
    judge and augment prompts, the conversation frame and numbers 0-10. Special
    tokens (the image placeholder, BOS/EOS/padding) are the tokenizer's own.
    """
    texts = [
        *(template for templates in TEMPLATES.values() for template in templates),
        POPE_TEMPLATE,
        *CONTEXT_TEMPLATES,
        MC_CONTEXT,
        MC_QUESTION,
        MC_OPTIONS,
        MC_OPTION,
        MC_INSTRUCTION,
        *DESCRIPTION_COUNT,
        DESCRIPTION_OBJECT,
        DESCRIPTION_WORD,
        *CAPTION_FRAMES,
        *CAPTION_WORD_FRAMES,
        *CAPTION_PREPOSITIONS,
        *CAPTION_ADJECTIVES,
        *CAPTION_NOUNS,
        LM_QA_TEMPLATE,
        VERBOSE_ANSWER,
        HEDGED_ANSWER,
        roles.judge_prompt("", "", ""),
        roles.augment_prompt(""),
        roles.format_judge_output(1, 10),
        conversation.SYSTEM_PROMPT,
        conversation.USER_TAG,
        conversation.ASSISTANT_TAG,
    ]
    words = [
        *SHAPES,
        *COLORS,
        *SIZES,
        *WORDS,
        *PLURALS.values(),
        *ALL_CELL_NAMES,
        *DIRECTIONS,
        *COMPARE_ATTRIBUTES,
        *CATEGORY_KINDS,
        *ALIASES,
        *OPTION_LETTERS,
        YES,
        NO,
        NOTHING,
        NO_TEXT,
        OBJECT,
        UNANSWERABLE,
        "a",
        "an",
        "and",
        ",",
        *(name for names in (*ROW_NAMES.values(), *COLUMN_NAMES.values()) for name in names),
        *(str(number) for number in range(11)),
    ]
    vocabulary = {token for text in texts for token in _template_words(text)}
    vocabulary.update(token for word in words for token in tokenize(word))
    return sorted(vocabulary)
