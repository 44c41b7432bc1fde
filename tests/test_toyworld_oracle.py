"""The oracle on a hand-built scene: gold answers for every task type, refusals, the grading rubric."""

from __future__ import annotations

import pytest

from mmdistill.toyworld.benchmarks import format_mc_prompt
from mmdistill.toyworld.oracle import (
    UNANSWERABLE,
    answer,
    describe,
    is_answerable,
    score_answer,
)

# top left: large red circle with "cat"; top right: small blue square;
# bottom right: small red triangle; bottom left: empty.
SCENE = {
    "scene_id": "hand-0",
    "split": "test",
    "objects": [
        {"shape": "circle", "color": "red", "size": "large", "row": 0, "col": 0, "text": "cat"},
        {"shape": "square", "color": "blue", "size": "small", "row": 0, "col": 1, "text": None},
        {"shape": "triangle", "color": "red", "size": "small", "row": 1, "col": 1, "text": None},
    ],
}
DESCRIPTION = (
    "there are 3 objects . a large red circle with the word cat in the top left . "
    "a small blue square in the top right . a small red triangle in the bottom right ."
)

GOLD = [
    ("what color is the circle ?", "red"),
    ("what is the color of the object in the top right ?", "blue"),
    ("what shape is the blue object ?", "square"),
    ("which shape does the large object have ?", "circle"),
    ("what size is the red circle ?", "large"),
    ("is the triangle small or large ?", "small"),
    ("how many red objects are there ?", "2"),
    ("how many small objects are in the image ?", "2"),
    ("count the triangles .", "1"),
    ("how many green squares are there ?", "0"),
    ("how many objects are there ?", "3"),
    ("is there a blue square ?", "yes"),
    ("is there a green circle in the image ?", "no"),
    ("does the image contain a large triangle ?", "no"),
    ("is there a red object in the bottom right ?", "yes"),
    ("where is the blue square ?", "top right"),
    ("which corner is the red triangle in ?", "bottom right"),
    ("what word is written on the red circle ?", "cat"),
    ("what does the blue square say ?", "none"),
    ("what is to the left of the blue square ?", "red circle"),
    ("which object is below the square ?", "red triangle"),
    ("what is to the left of the red triangle ?", "nothing"),
    ("name the object above the circle .", "nothing"),
    ("are the red circle and the red triangle the same color ?", "yes"),
    ("is the blue square the same size as the triangle ?", "yes"),
    ("do the circle and the square have the same shape ?", "no"),
    ("what object is in the bottom left ?", "nothing"),
    ("what is in the top left ?", "red circle"),
    ("what objects are in the image ?", "red circle , blue square and red triangle"),
    ("describe the image .", DESCRIPTION),
]


@pytest.mark.parametrize("question, expected", GOLD)
def test_gold_answers_for_every_task_type(question, expected):
    assert answer(SCENE, question) == expected
    assert is_answerable(SCENE, question)


def test_questions_are_parsed_robustly_to_case_and_spacing():
    assert answer(SCENE, "What COLOR is the  circle?") == "red"
    assert answer(SCENE, "<image>\nwhere is the blue square?") == "top right"
    assert answer(SCENE, "what is to the left of the blue square?") == "red circle"


def test_describe_is_canonical_row_major():
    assert describe(SCENE) == DESCRIPTION
    single = {**SCENE, "objects": SCENE["objects"][1:2]}
    assert describe(single) == "there is 1 object . a small blue square in the top right ."


@pytest.mark.parametrize(
    "question",
    [
        "",
        "what is the meaning of life ?",
        "what color is the red object ?",  # ambiguous: two red objects
        "what color is the small object ?",  # ambiguous: two small objects
        "what color is the green circle ?",  # missing object
        "where is the yellow triangle ?",  # missing object
        "what is to the left of the green square ?",  # missing object
        "what color is the key ?",  # alias without a defining context
        "what is in the middle center ?",  # not a cell of a 2x2 grid
        "which of these words is a color ?",  # category questions need options
        "what colour is the circle ?",  # British spelling is outside the language
        "what color is the circle in the image ?",
        "what color is the large red blue circle ?",
    ],
)
def test_unanswerable_questions(question):
    assert answer(SCENE, question) == UNANSWERABLE
    assert not is_answerable(SCENE, question)


def test_multiple_choice_prompts_are_answered_with_the_option_text():
    colors = ["green", "blue", "red", "yellow"]
    assert answer(SCENE, format_mc_prompt("what color is the circle ?", colors)) == "red"
    assert (
        answer(SCENE, format_mc_prompt("which of these words is a color ?", ["circle", "red", "large", "top left"]))
        == "red"
    )
    with_context = format_mc_prompt(
        "what color is the key ?", colors, context="the key is the object in the top right ."
    )
    assert answer(SCENE, with_context) == "blue"
    assert (
        answer(SCENE, format_mc_prompt("what color is the key ?", colors, context="the key is the red object ."))
        == UNANSWERABLE
    )
    assert answer(SCENE, format_mc_prompt("what color is the circle ?", ["green", "blue"])) == UNANSWERABLE
    assert answer(SCENE, format_mc_prompt("what color is the circle ?", ["red", "blue", "red"])) == UNANSWERABLE
    lists = ["blue square and red triangle", "red triangle , blue square and red circle"]
    # order-free: the option as written, not the canonical list "red circle , blue square and red triangle"
    assert answer(SCENE, format_mc_prompt("what objects are in the image ?", lists)) == lists[1]


@pytest.mark.parametrize(
    "question, response, score",
    [
        ("what color is the circle ?", "red", 10),
        ("what color is the circle ?", "Red.", 10),
        ("what color is the circle ?", "the answer is red", 8),
        ("what color is the circle ?", "red or blue", 4),
        ("what color is the circle ?", "blue", 2),
        ("what color is the circle ?", "", 1),
        ("what color is the circle ?", "unanswerable", 1),
        ("how many red objects are there ?", "2", 10),
        ("how many red objects are there ?", "3", 5),
        ("how many red objects are there ?", "1", 5),
        ("how many red objects are there ?", "4", 2),
        ("how many red objects are there ?", "there are 2", 8),
        ("is there a blue square ?", "yes", 10),
        ("is there a blue square ?", "the answer is yes", 8),
        ("is there a blue square ?", "no", 2),
        ("where is the blue square ?", "top right", 10),
        ("where is the blue square ?", "bottom right", 5),
        ("where is the blue square ?", "right", 5),
        ("where is the blue square ?", "bottom left", 2),
        ("what is to the left of the blue square ?", "the red circle", 10),
        ("what is to the left of the blue square ?", "large red circle", 10),
        ("what is to the left of the blue square ?", "red square", 5),
        ("what is to the left of the blue square ?", "green triangle", 2),
        ("what is to the left of the blue square ?", "nothing", 2),
        ("what is in the bottom left ?", "nothing", 10),
        ("what is in the bottom left ?", "red circle", 2),
        ("what objects are in the image ?", "blue square , red triangle and red circle", 10),
        ("what objects are in the image ?", "red circle and blue square", 8),  # F1 0.8: 2 + 6.4
        ("what objects are in the image ?", "green circle", 2),
        ("describe the image .", DESCRIPTION, 10),
        # one of three objects left out: 2/3 of the attributes
        (
            "describe the image .",
            "a large red circle with the word cat in the top left . a small blue square in the top right .",
            7,
        ),
        # the circle's colour wrong: 4/5 + 1 + 1 over 3 objects
        ("describe the image .", DESCRIPTION.replace("large red circle", "large green circle"), 9),
        ("describe the image .", "a photo of a cat", 2),
        ("what color is the red object ?", "unanswerable", 10),
        ("what color is the red object ?", "red", 2),
        ("what color is the red object ?", "", 1),
    ],
)
def test_score_rubric_worked_examples(question, response, score):
    assert score_answer(SCENE, question, response) == score


@pytest.mark.parametrize(
    "response, score",
    [
        ("red", 10),  # the right option's text, as toy models answer
        ("Red.", 10),
        ("the red", 10),  # articles and periods are ignored
        ("c", 10),  # the right letter, as real LLaVA models answer
        ("c . red", 10),
        ("(c)", 10),
        ("a", 2),  # a wrong letter
        ("blue", 2),  # a wrong option
        ("purple", 2),  # no option
        ("the answer is red", 2),  # not exactly an option's text
        ("red or blue", 2),
        ("", 1),
        ("unanswerable", 1),
    ],
)
def test_score_multiple_choice(response, score):
    prompt = format_mc_prompt("what color is the circle ?", ["green", "blue", "red", "yellow"])
    assert score_answer(SCENE, prompt, response) == score


def test_score_multiple_choice_text_of_two_options_is_wrong():
    # options b and d are both "large": only one option is right, and "large" names two
    prompt = format_mc_prompt("what color is the circle ?", ["green", "large", "red", "large"])
    assert answer(SCENE, prompt) == "red"
    assert score_answer(SCENE, prompt, "large") == 2
    assert score_answer(SCENE, prompt, "red") == score_answer(SCENE, prompt, "c") == 10


def test_scores_are_in_range_and_deterministic():
    responses = ["", "red", "2", "yes", "top left", "red circle", DESCRIPTION, "a . b", "( ( (", "unanswerable"]
    for question, _ in GOLD:
        for response in responses:
            score = score_answer(SCENE, question, response)
            assert 1 <= score <= 10 and score == score_answer(SCENE, question, response)
