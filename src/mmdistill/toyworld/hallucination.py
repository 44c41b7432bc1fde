"""Object hallucination of detail descriptions, counted exactly against the scene graph.

A CHAIR-style metric (Rohrbach et al., "Object Hallucination in Image Captioning",
EMNLP 2018) for the toy world: the oracle's own mention parser reads the objects a
description names, and the scene graph says which of them exist. See `chair`.
"""

from __future__ import annotations

from collections.abc import Sequence

from mmdistill.toyworld.language import tokenize
from mmdistill.toyworld.oracle import object_mentions

_IDENTITY = ("color", "shape")  # what makes an object in the toy world (see language.object_name)


def hallucinated_mentions(scene: dict, response: str) -> list[bool]:
    """For each object mention of `response`, in order: is it absent from `scene`?

    Mentions come from `oracle.object_mentions`; those naming neither a colour nor a
    shape ("there is 1 object .") name no object and are skipped.
    """
    flags = []
    for mention in object_mentions(tokenize(response)):
        named = {key: mention[key] for key in _IDENTITY if mention[key]}
        if named:
            flags.append(not any(all(obj[key] == value for key, value in named.items()) for obj in scene["objects"]))
    return flags


def chair(scenes: Sequence[dict], responses: Sequence[str]) -> dict[str, int | float | None]:
    """Response- and mention-level object hallucination of `responses`, each describing
    the scene at the same position of `scenes`.

    CHAIR (Rohrbach et al., 2018) counts the objects a caption mentions that are not in
    the image; LLaVA-MoD reports its two rates as response- and mention-level
    hallucination. Here:

    * an object mention is an entry of `oracle.object_mentions` (a singular shape word,
      or "object", with the colour and size words of its clause) that names a colour, a
      shape or both;
    * it is hallucinated when no object of the scene has all of the named colour and
      shape ("red circle": no red circle; "circle": no circle; "red object": nothing red).
      Object identity is colour + shape, so a wrong size, cell or word on an existing
      object is an attribute error, not a hallucination (the reference judge's
      `_description_credit` grades those);
    * every mention counts, repeats included, as in the CHAIR reference code: naming the
      same absent object twice is two hallucinated mentions (and one hallucinated response);
    * an empty or unparsable response has no mentions; it counts as a response that does
      not hallucinate.

        response_rate (CHAIR_s) = hallucinated_responses / responses
        mention_rate  (CHAIR_i) = hallucinated_mentions / mentions

    Rates are fractions, None when their denominator is 0.
    """
    if len(scenes) != len(responses):
        raise ValueError(f"{len(scenes)} scenes but {len(responses)} responses")
    flags = [hallucinated_mentions(scene, response) for scene, response in zip(scenes, responses)]
    mentions = sum(len(response_flags) for response_flags in flags)
    hallucinated = sum(sum(response_flags) for response_flags in flags)
    hallucinated_responses = sum(any(response_flags) for response_flags in flags)
    return {
        "responses": len(responses),
        "hallucinated_responses": hallucinated_responses,
        "response_rate": hallucinated_responses / len(responses) if responses else None,
        "mentions": mentions,
        "hallucinated_mentions": hallucinated,
        "mention_rate": hallucinated / mentions if mentions else None,
    }
