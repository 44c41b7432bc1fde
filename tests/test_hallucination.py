"""CHAIR-style object hallucination of detail descriptions, on hand-made scenes and descriptions."""

import pytest

from mmdistill.evaluation import summarize
from mmdistill.evaluation.intervals import wilson_interval
from mmdistill.judges import reference_judge
from mmdistill.toyworld.hallucination import chair, hallucinated_mentions
from mmdistill.toyworld.oracle import describe

# top left: large red circle with "cat"; top right: small blue square; bottom right: small red triangle.
SCENE = {
    "scene_id": "h0",
    "image": "images/h0.png",
    "objects": [
        {"shape": "circle", "color": "red", "size": "large", "row": 0, "col": 0, "text": "cat"},
        {"shape": "square", "color": "blue", "size": "small", "row": 0, "col": 1, "text": None},
        {"shape": "triangle", "color": "red", "size": "small", "row": 1, "col": 1, "text": None},
    ],
}
# bottom left: small yellow square; top right: large green triangle.
OTHER = {
    "scene_id": "h1",
    "image": "images/h1.png",
    "objects": [
        {"shape": "square", "color": "yellow", "size": "small", "row": 1, "col": 0, "text": None},
        {"shape": "triangle", "color": "green", "size": "large", "row": 0, "col": 1, "text": "sun"},
    ],
}
ONE_ABSENT = ("there are 3 objects . a large red circle in the top left . a green square in the top right . "
              "a small red triangle in the bottom right .")


@pytest.mark.parametrize("response, flags", [
    (describe(SCENE), [False, False, False]),  # the count sentence names no object
    (ONE_ABSENT, [False, True, False]),
    # wrong size, cell and word on an existing object: attribute errors, not hallucinations
    ("a small red circle with the word map in the bottom left .", [False]),
    ("a circle and a green object .", [False, True]),  # shape only / colour only
    ("a circle that is green .", [True]),  # a colour after the shape counts too
    ("there is 1 object . a large object in the top left .", []),  # neither colour nor shape
    ("a green square . a green square .", [True, True]),  # repeats count each time
    ("", []),
    ("? ? unanswerable", []),
    ("red circles everywhere", []),  # plurals are no singular mention
])
def test_mentions_and_their_absence(response, flags):
    assert hallucinated_mentions(SCENE, response) == flags


def test_chair_rates():
    result = chair([SCENE], [ONE_ABSENT])
    assert result == {"responses": 1, "hallucinated_responses": 1, "response_rate": 1.0,
                      "mentions": 3, "hallucinated_mentions": 1, "mention_rate": pytest.approx(1 / 3)}
    twice = chair([SCENE, SCENE], ["a green square . a green square .", describe(SCENE)])
    assert (twice["hallucinated_responses"], twice["response_rate"]) == (1, 0.5)
    assert (twice["hallucinated_mentions"], twice["mentions"], twice["mention_rate"]) == (2, 5, 0.4)


def test_chair_without_mentions_or_responses():
    empty = chair([SCENE, OTHER], ["", "nothing to see"])
    assert empty["responses"] == 2 and empty["response_rate"] == 0.0
    assert empty["mentions"] == 0 and empty["mention_rate"] is None
    assert chair([], [])["response_rate"] is None
    with pytest.raises(ValueError, match="1 scenes but 2 responses"):
        chair([SCENE], ["a", "b"])


def item(item_id, scene, task, question, category):
    return {"id": item_id, "image": scene["image"], "task": task, "question": question, "category": category,
            "answer": "gold"}


def open_items():
    return [
        item("d0", SCENE, "describe", "describe the image .", "detail_description"),
        item("d1", OTHER, "describe", "describe the image in detail .", "detail_description"),
        item("d2", SCENE, "describe", "give a detailed description of the image .", "detail_description"),
        item("c0", SCENE, "color", "what color is the circle ?", "conversation"),
    ]


def test_open_ended_summary_carries_the_hallucination_block():
    scenes = [SCENE, OTHER]
    predictions = [ONE_ABSENT, describe(OTHER), "", "a green circle ."]  # c0 is no description
    result = summarize("open", open_items(), predictions, seed=0, judge=reference_judge(scenes), scenes=scenes)
    block = result["hallucination"]
    assert {key: block[key] for key in ("responses", "hallucinated_responses", "mentions",
                                        "hallucinated_mentions")} == {"responses": 3, "hallucinated_responses": 1,
                                                                      "mentions": 5, "hallucinated_mentions": 1}
    assert block["response_rate"] == pytest.approx(100 / 3) and block["mention_rate"] == pytest.approx(20.0)
    assert block["response_ci95"] == pytest.approx([100 * bound for bound in wilson_interval(1, 3)])
    assert block["mention_ci95"] == pytest.approx([100 * bound for bound in wilson_interval(1, 5)])
    # per sample, so that tables can pool the counts over training seeds; each sample names its category
    counts = [(s.get("object_mentions"), s.get("hallucinated_mentions")) for s in result["samples"]]
    described = [count for count in counts if count != (None, None)]
    assert len(described) == 3 and counts[3] == (None, None)
    assert sum(m for m, _ in described) == 5 and sum(h for _, h in described) == 1
    assert [s["category"] for s in result["samples"]] == [item["category"] for item in open_items()]


def test_hallucination_block_needs_scenes_and_describe_items():
    scenes = [SCENE, OTHER]
    judge = reference_judge(scenes)
    assert "hallucination" not in summarize("open", open_items(), ["x"] * 4, seed=0, judge=judge)
    block = summarize("open", open_items()[3:], ["a green circle ."], seed=0, judge=judge, scenes=scenes)[
        "hallucination"]
    assert block["responses"] == block["mentions"] == 0
    assert block["response_rate"] is block["response_ci95"] is block["mention_rate"] is block["mention_ci95"] is None
    unknown = {**open_items()[0], "id": "d9", "image": "images/h9.png"}
    with pytest.raises(KeyError, match="d9.*images/h9.png"):
        summarize("open", [unknown], ["a circle ."], seed=0, judge=lambda items, predictions: [{"score": 5}],
                  scenes=scenes)
