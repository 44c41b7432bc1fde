"""lmms-eval hooks of the toy benchmark tasks (`!function utils.<name>` in the task YAMLs).

Images: a relative `image` path is resolved against
`lmms_eval_specific_kwargs["image_root"]`, which the runner sets to the directory of
the benchmark's JSONL file (the repository's convention for paths inside records);
an absolute path is used as is.
"""

from pathlib import Path

from PIL import Image

from mmdistill.evaluation.scoring import is_correct


def doc_to_visual(doc, lmms_eval_specific_kwargs):
    path = Path(lmms_eval_specific_kwargs["image_root"]) / doc["image"]
    with Image.open(path) as image:
        return [image.convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    """The text the model sees: the full multiple-choice `prompt` if present, else the `question`."""
    return doc.get("prompt") or doc["question"]


def doc_to_target(doc):
    return doc["answer"]


def process_multiple_choice(doc, results):
    return {"accuracy": float(is_correct("multiple_choice", doc, results[0]))}


def process_yes_no(doc, results):
    return {"accuracy": float(is_correct("yes_no", doc, results[0]))}


def process_open_ended(doc, results):
    return {"bypass": None}
