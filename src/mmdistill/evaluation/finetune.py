"""A benchmark's train split as LLaVA conversations, for downstream fine-tuning (CoMD §4.1).

CoMD fine-tunes on ScienceQA's training set (6 epochs, lr 2e-5) before testing on it.
Each item becomes a one-turn conversation whose human turn is exactly what the model
sees at evaluation (`tasks/utils.doc_to_text`: the multiple-choice `prompt`, else the
question) and whose answer is the gold option's *text* for multiple choice (its
letter where `scoring.parse_option` would read the text as another option); yes/no
and open items answer with their gold answer as written.
"""

from __future__ import annotations

from pathlib import Path

from mmdistill.conversation import IMAGE_PLACEHOLDER
from mmdistill.evaluation.runner import benchmark_spec, load_items
from mmdistill.evaluation.scoring import OPTION_LETTERS, parse_option
from mmdistill.evaluation.tasks.utils import doc_to_text


def target_text(kind: str, item: dict) -> str:
    """The answer a fine-tuned model is taught for `item`.

    Multiple choice: the gold option's text when `parse_option` reads it back as the
    gold letter, else the letter itself (an option such as "a gas" reads as option a).
    """
    answer = str(item["answer"]).strip()
    if kind == "multiple_choice":
        text = str(item["options"][OPTION_LETTERS.index(answer.lower())])
        return text if parse_option(text, item["options"]) == answer.lower() else answer.lower()
    return answer


def finetune_records(benchmark: str, data_file: str | Path) -> list[dict]:
    """The checked items of `data_file` (see `runner.load_items`) as one-turn conversations; a text-only
    item (no `image`, as many ScienceQA questions) gives a text-only conversation."""
    kind = benchmark_spec(benchmark).kind
    records = []
    for item in load_items(benchmark, data_file):
        image = item.get("image")
        marker = "" if image is None else f"{IMAGE_PLACEHOLDER}\n"
        records.append({"id": item["id"], **({} if image is None else {"image": image}),
                        "conversations": [{"from": "human", "value": f"{marker}{doc_to_text(item)}"},
                                          {"from": "gpt", "value": target_text(kind, item)}]})
    return records
