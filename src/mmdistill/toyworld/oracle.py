"""The ground-truth oracle: answers any toy question from the scene graph and grades answers.

`answer` plays the human/GPT-4 annotator (gold answers), `score_answer` plays
GPT-4-as-judge with a fixed rubric, so reference scores are exact and reproducible.
"""

from __future__ import annotations

from itertools import pairwise

from mmdistill.toyworld.language import (
    ALL_CELL_NAMES,
    DIRECTIONS,
    NO,
    NO_TEXT,
    NOTHING,
    OBJECT,
    OPTION_LETTERS,
    UNANSWERABLE,
    YES,
    Query,
    Ref,
    describe_objects,
    list_names,
    object_name,
    parse_question,
    tokenize,
)
from mmdistill.toyworld.scenes import (
    COLORS,
    COLUMN_NAMES,
    ROW_NAMES,
    SHAPES,
    SIZES,
    WORDS,
    all_cell_names,
    object_cell,
    scene_grid,
)

# UNANSWERABLE is re-exported
__all__ = ["UNANSWERABLE", "answer", "describe", "is_answerable", "object_mentions", "score_answer"]

_VALUES = {"color": COLORS, "shape": SHAPES, "size": SIZES, "text": (*WORDS, NO_TEXT)}
_KIND_VALUES = {"color": COLORS, "shape": SHAPES, "size": SIZES, "position": ALL_CELL_NAMES}
_CELL_WORDS = {word for names in (*ROW_NAMES.values(), *COLUMN_NAMES.values()) for word in names}
_FILLER = {"a", "an", "the", "."}


def _content(tokens: list[str]) -> list[str]:
    """Tokens without articles and periods, for exact comparison."""
    return [token for token in tokens if token not in _FILLER]


def describe(scene: dict) -> str:
    """Canonical detail description, e.g. "there are 2 objects . a large red circle with the
    word cat in the top left . a small blue square in the bottom right ."."""
    return describe_objects(scene)


def _resolve(scene: dict, ref: Ref, aliases: tuple[tuple[str, Ref], ...] = ()) -> dict | None:
    """The one object `ref` names, or None when it names none or several."""
    if ref.alias:
        ref = dict(aliases).get(ref.alias)
        if ref is None:
            return None
    found = [obj for obj in scene["objects"] if ref.matches(scene, obj)]
    return found[0] if len(found) == 1 else None


def _object_at(scene: dict, row: int, column: int) -> dict | None:
    return next((obj for obj in scene["objects"] if (obj["row"], obj["col"]) == (row, column)), None)


def _object_answer(scene: dict, query: Query) -> str:
    """Answer of a question about one referred object."""
    obj = _resolve(scene, query.ref, query.aliases)
    if obj is None:
        return UNANSWERABLE
    if query.task == "position":
        return object_cell(scene, obj)
    if query.task == "text":
        return obj["text"] or NO_TEXT
    if query.task == "relation":
        row_step, column_step = DIRECTIONS[query.direction]
        neighbour = _object_at(scene, obj["row"] + row_step, obj["col"] + column_step)
        return object_name(neighbour) if neighbour else NOTHING
    if query.task == "compare":
        other = _resolve(scene, query.other, query.aliases)
        if other is None:
            return UNANSWERABLE
        return YES if obj[query.attribute] == other[query.attribute] else NO
    return obj[query.task]  # color, shape, size


def _open_answer(scene: dict, query: Query) -> str:
    """The gold answer of a question without options."""
    task, objects = query.task, scene["objects"]
    if task in ("color", "shape", "size", "position", "text", "relation", "compare"):
        return _object_answer(scene, query)
    if task == "count":
        return str(sum(query.ref.matches(scene, obj) for obj in objects))
    if task == "exist":
        return YES if any(query.ref.matches(scene, obj) for obj in objects) else NO
    if task == "identity":
        if query.cell not in all_cell_names(scene_grid(scene)):
            return UNANSWERABLE
        found = [obj for obj in objects if object_cell(scene, obj) == query.cell]
        return object_name(found[0]) if found else NOTHING
    if task == "list":
        return list_names([object_name(obj) for obj in sorted(objects, key=lambda obj: (obj["row"], obj["col"]))])
    if task == "describe":
        return describe(scene)
    return UNANSWERABLE  # category questions need options


def _named_objects(text: str) -> set[tuple[str, str]]:
    """(colour, shape) pairs a list answer names."""
    return {(m["color"], m["shape"]) for m in object_mentions(tokenize(text)) if m["color"] and m["shape"]}


def _right_option(scene: dict, query: Query) -> int | None:
    """Index of the one option that is right, or None if not exactly one is."""
    if query.task == "category":
        right = [index for index, option in enumerate(query.options) if option in _KIND_VALUES[query.attribute]]
    else:
        gold = _open_answer(scene, query)
        if gold == UNANSWERABLE:
            return None
        if query.task == "list":
            right = [
                index for index, option in enumerate(query.options) if _named_objects(option) == _named_objects(gold)
            ]
        else:
            right = [index for index, option in enumerate(query.options) if option == gold]
    return right[0] if len(right) == 1 else None


def _choice_answer(scene: dict, query: Query) -> str:
    """The text of the one option that is right, or UNANSWERABLE if not exactly one is."""
    right = _right_option(scene, query)
    return UNANSWERABLE if right is None else query.options[right]


def _gold(scene: dict, query: Query | None) -> str:
    if query is None:
        return UNANSWERABLE
    return _choice_answer(scene, query) if query.options else _open_answer(scene, query)


def answer(scene: dict, question: str) -> str:
    """The gold answer (lowercase canonical words), or UNANSWERABLE.

    UNANSWERABLE covers text outside the language, references to missing or
    ambiguous objects, undefined aliases, and option lists without exactly one
    right option. Multiple-choice prompts are answered with the text of the right
    option, as written in the options (benchmark files keep the letter as "answer").
    """
    return _gold(scene, parse_question(question))


def is_answerable(scene: dict, question: str) -> bool:
    return answer(scene, question) != UNANSWERABLE


# ---------------------------------------------------------------- grading


def _cells_in(tokens: list[str]) -> list[str]:
    return [f"{a} {b}" for a, b in pairwise(tokens) if f"{a} {b}" in ALL_CELL_NAMES]


def object_mentions(tokens: list[str]) -> list[dict]:
    """Objects a free-form answer mentions.

    Each singular shape word (or "object") opens a mention; the size and colour words
    before it in its clause, and the cell, word and missing attributes after it, fill
    it in. Clauses end at ".", "," and "and". Each mention is a dict of "shape", "color",
    "size", "cell" and "text", None where the answer does not say.
    """
    mentions: list[dict] = []
    current: dict | None = None
    clause: list[str] = []
    for index, token in enumerate(tokens):
        if token in (".", ",", "and"):
            current, clause = None, []
        elif token in SHAPES or token == OBJECT:
            current = {
                "shape": token if token in SHAPES else None,
                "color": next((word for word in reversed(clause) if word in COLORS), None),
                "size": next((word for word in reversed(clause) if word in SIZES), None),
                "cell": None,
                "text": None,
            }
            mentions.append(current)
            clause = []
        elif current is None:
            clause.append(token)
        else:
            cell = " ".join(tokens[index : index + 2])
            if cell in ALL_CELL_NAMES:
                current["cell"] = cell
            elif token in WORDS:
                current["text"] = token
            elif token in COLORS and not current["color"]:
                current["color"] = token
            elif token in SIZES and not current["size"]:
                current["size"] = token
    return mentions


def _description_credit(scene: dict, mentions: list[dict]) -> float:
    """Share of object attributes described right, matching mentions to objects greedily.

    Each object counts shape, colour, size and cell (and its word when either side has
    one); extra mentioned objects enlarge the denominator, so hallucinations cost.
    """
    gold = [{**obj, "cell": object_cell(scene, obj)} for obj in scene["objects"]]
    if not gold or not mentions:
        return 0.0
    pairs = []
    for gold_index, obj in enumerate(gold):
        for mention_index, mention in enumerate(mentions):
            fields = ["shape", "color", "size", "cell"] + (["text"] if obj["text"] or mention["text"] else [])
            credit = sum(obj[name] == mention[name] for name in fields) / len(fields)
            pairs.append((-credit, gold_index, mention_index))
    used_gold, used_mentions, total = set(), set(), 0.0
    for negative_credit, gold_index, mention_index in sorted(pairs):
        if gold_index not in used_gold and mention_index not in used_mentions:
            used_gold.add(gold_index)
            used_mentions.add(mention_index)
            total -= negative_credit
    return total / max(len(gold), len(mentions))


def _scaled(fraction: float) -> int:
    """Map a credit in [0, 1] to the wrong..right range 2..10."""
    return 2 + int(8 * fraction + 0.5)


def _chosen_option(query: Query, tokens: list[str]) -> int | None:
    """Index of the option an answer names: by its text (exactly one option), else by a
    leading letter ("b", "b .", "( b )", "b . red"); None for anything else."""
    named = [index for index, option in enumerate(query.options) if _content(tokens) == _content(tokenize(option))]
    if len(named) == 1:
        return named[0]
    letters = tokens[1:] if tokens[0] == "(" else tokens
    if (
        letters
        and letters[0] in OPTION_LETTERS[: len(query.options)]
        and (len(letters) == 1 or letters[1] in (".", ")", ","))
    ):
        return OPTION_LETTERS.index(letters[0])
    return None


def _score_choice(query: Query, right: int, tokens: list[str]) -> int:
    """10 the right option's text or letter, 2 anything else."""
    return 10 if _chosen_option(query, tokens) == right else 2


def _score_open(scene: dict, query: Query, gold: str, tokens: list[str]) -> int:
    """Partial credit for an answer that is not exactly the gold one (see `score_answer`)."""
    task = query.task
    if task in ("exist", "compare"):
        return 8 if {token for token in tokens if token in (YES, NO)} == {gold} else 2
    if task == "count":
        numbers = [int(token) for token in tokens if token.isdigit()]
        if not numbers:
            return 2
        error = abs(numbers[0] - int(gold))
        return 8 if error == 0 else 5 if error == 1 else 2
    if task in _VALUES:
        named = {token for token in tokens if token in _VALUES[task]}
        return (8 if named == {gold} else 4) if gold in named else 2
    if task == "position":
        cells = set(_cells_in(tokens))
        if cells:
            if gold in cells:
                return 8 if len(cells) == 1 else 4
            halves = {word for cell in cells for word in cell.split()}
            return 5 if len(cells) == 1 and halves & set(gold.split()) else 2
        half_words = {token for token in tokens if token in _CELL_WORDS}  # e.g. only "left"
        return 5 if len(half_words) == 1 and half_words <= set(gold.split()) else 2
    mentions = object_mentions(tokens)
    if task in ("relation", "identity"):
        if gold == NOTHING:
            return 8 if NOTHING in tokens and not mentions else 2
        if not mentions:
            return 2
        color, shape = gold.split()
        first = mentions[0]
        if (first["color"], first["shape"]) == (color, shape):
            return 10 if len(mentions) == 1 else 8
        return 5 if first["color"] == color or first["shape"] == shape else 2
    if task == "list":
        named, gold_named = _named_objects(" ".join(tokens)), _named_objects(gold)
        right = len(named & gold_named)
        f1 = 2 * right / (len(named) + len(gold_named)) if named else 0.0
        return _scaled(f1)
    if task == "describe":
        return _scaled(_description_credit(scene, mentions))
    return 2


def score_answer(scene: dict, question: str, answer: str) -> int:
    """Grade `answer` from 1 to 10 against the oracle, deterministically.

    Rubric (answers are compared after `normalize`; articles and periods are ignored):

    * 1: empty answer, or "unanswerable" to an answerable question.
    * Unanswerable question: 10 for "unanswerable", 2 for anything else.
    * 10: exactly the gold answer.
    * Multiple choice: 10 the right option's text (exactly, e.g. "red" or "the red .";
      "the answer is red" is not an option's text) or its letter ("c", "c .", "( c )",
      "c . red"); 2 another option, a text matching no option or several, anything else.
    * yes/no (exist, compare): 8 right word plus extra words, 2 wrong or both words.
    * count: 8 right number plus extra words, 5 off by one, 2 otherwise.
    * color / shape / size / text: 8 gold value plus extra words, 4 gold value among
      other values of the same kind (hedging), 2 otherwise.
    * position: 8 right cell plus extra words, 4 right cell among others, 5 one cell
      half right (right row or column) or only the right row / column word, 2 otherwise.
    * relation / identity: 10 the right object (size may be added), 8 right object
      first among several, 5 colour or shape right, 2 otherwise ("nothing" expected:
      8 if "nothing" is said among other words, 2 otherwise).
    * list: 2 + 8 x F1 of the named (colour, shape) pairs, rounded.
    * describe: 2 + 8 x (share of object attributes right, see `_description_credit`).

    Worked examples, scene = large red circle "cat" top left, small blue square bottom right:
    "what color is the circle ?": "red" 10, "the answer is red" 8, "red or blue" 4, "blue" 2, "" 1.
    "how many objects are there ?": "2" 10, "3" 5, "4" 2.
    "where is the blue square ?": "bottom right" 10, "bottom left" 5, "top left" 2.
    Options green / blue / red of "what color is the circle ?": "red" 10, "c" 10, "b" 2,
    "the answer is red" 2.
    """
    query = parse_question(question)
    gold = _gold(scene, query)
    tokens = tokenize(answer)
    if not tokens:
        return 1
    if gold == UNANSWERABLE:
        return 10 if _content(tokens) == [UNANSWERABLE] else 2
    if _content(tokens) == [UNANSWERABLE]:
        return 1
    if query.options:
        return _score_choice(query, _right_option(scene, query), tokens)
    if _content(tokens) == _content(tokenize(gold)):
        return 10
    return _score_open(scene, query, gold, tokens)
