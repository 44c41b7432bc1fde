"""lmms-eval hooks of the toy benchmark tasks (`!function utils.<name>` in the task YAMLs).

Images: a relative `image` path is resolved against
`lmms_eval_specific_kwargs["image_root"]`, which the runner sets to the directory of
the benchmark's JSONL file (the repository's convention for paths inside records);
an absolute path is used as is.

Likelihood tasks (`output_type: multiple_choice`) get, per document, one
`(log-likelihood, is_greedy)` response per choice, in the order of `doc_to_choice`
(as a string in lmms-eval 0.7.3, see `scoring.loglikelihood_of`).
"""

from pathlib import Path

from PIL import Image

from mmdistill.evaluation.scoring import answer_choices, is_correct, likelihood_prediction, loglikelihood_of


def doc_to_visual(doc, lmms_eval_specific_kwargs):
    """The item's image, none for a text-only item (`image` null or absent, as in ScienceQA)."""
    if doc.get("image") is None:
        return []
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


def doc_to_options(doc):
    return answer_choices("multiple_choice", doc)


def doc_to_yes_no(doc):
    return answer_choices("yes_no", doc)


def _likelihood_accuracy(kind, doc, results):
    prediction = likelihood_prediction(kind, doc, [loglikelihood_of(response) for response in results])
    return {"accuracy": float(is_correct(kind, doc, prediction))}


def process_multiple_choice_likelihood(doc, results):
    return _likelihood_accuracy("multiple_choice", doc, results)


def process_yes_no_likelihood(doc, results):
    return _likelihood_accuracy("yes_no", doc, results)


def process_open_ended(doc, results):
    return {"bypass": None}
