"""Evaluate a checkpoint on one toy benchmark through lmms-eval and write the score JSON.

Per run, `write_task_yaml` writes `<task_dir>/mmdistill_<benchmark>.yaml`, which
includes the benchmark kind's template from `mmdistill/evaluation/tasks/` and adds
the absolute JSONL path (`dataset_kwargs.data_files`), a datasets cache inside
`task_dir`, and the image root (the JSONL's directory, see `tasks/utils.py`).
`task_dir` is then lmms-eval's only include path. lmms-eval runs the model
`mmdistill_llava` and logs every sample; scores, intervals and per-category
breakdowns are computed here from the logged responses.

Two protocols (`PROTOCOLS`): "generation" scores the greedy reply (format and
knowledge at once); "likelihood" (multiple choice and yes/no only, SEED-Bench's way)
picks the option whose answer text the model finds likeliest after the same prompt:
the template `_<kind>_likelihood_template_yaml` (`output_type: multiple_choice`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from mmdistill.evaluation.scoring import (
    Judge,
    accuracy_summary,
    hallucination_summary,
    is_correct,
    judged_summary,
    likelihood_prediction,
    loglikelihood_of,
    mention_counts,
    score_open_ended,
    yes_no_statistics,
)
from mmdistill.conversation import DEFAULT_TEMPLATE
from mmdistill.images import decode_problem
from mmdistill.io import DataError, read_jsonl, write_json

TEMPLATE_DIR = Path(__file__).parent / "tasks"
TASK_PREFIX = "mmdistill_"
LMMS_EVAL_METRICS = ("accuracy",)  # lmms-eval's own aggregate, kept in the JSON as a cross-check
PROTOCOLS = ("generation", "likelihood")


@dataclass(frozen=True)
class BenchmarkSpec:
    kind: str  # multiple_choice | yes_no | open_ended
    axes: tuple[str, ...]  # item keys to break the score down by

    def template(self, protocol: str) -> Path:
        return TEMPLATE_DIR / f"_{self.kind}{'_likelihood' if protocol == 'likelihood' else ''}_template_yaml"


BENCHMARKS = {
    "mc": BenchmarkSpec("multiple_choice", ("subject", "context_modality", "grade")),
    "seed": BenchmarkSpec("multiple_choice", ("dimension",)),
    "pope": BenchmarkSpec("yes_no", ("negative_type",)),
    "open": BenchmarkSpec("open_ended", ("category",)),
}


def benchmark_spec(benchmark: str) -> BenchmarkSpec:
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; choose from {sorted(BENCHMARKS)}")
    return BENCHMARKS[benchmark]


def load_items(benchmark: str, data_file: str | Path) -> list[dict]:
    """Read and check a benchmark JSONL; errors name the file, the item number and the key.
    An item without `image` (or with `image: null`) is text-only, as many ScienceQA questions are."""
    spec = benchmark_spec(benchmark)
    data_file = Path(data_file)
    required = ("id", "question", "answer", *spec.axes)
    items = []
    decoded: set[str] = set()  # each image is decoded once (the preflight); a test item is never dropped
    for line, item in enumerate(read_jsonl(data_file), start=1):
        where = f"{data_file}: item {line}"
        for key in required:
            if key not in item:
                raise DataError(f"{where}: missing key {key!r}")
        image = item.get("image")  # None: a text-only item (ScienceQA has them)
        if image is not None and image not in decoded:
            problem = decode_problem(data_file.parent / image)
            if problem is not None:
                raise DataError(f"{where} (id {item['id']!r}): {problem}")
            decoded.add(image)
        answer = str(item["answer"]).strip().lower()
        if spec.kind == "multiple_choice":
            options = item.get("options")
            if not isinstance(options, list) or not 2 <= len(options) <= 26:
                raise DataError(f"{where}: 'options' must be a list of 2 to 26 options")
            letters = [chr(ord("a") + index) for index in range(len(options))]
            if answer not in letters:
                raise DataError(f"{where}: 'answer' {item['answer']!r} is not one of the option letters {letters}")
        elif spec.kind == "yes_no" and answer not in ("yes", "no"):
            raise DataError(f"{where}: 'answer' must be 'yes' or 'no', got {item['answer']!r}")
        items.append(item)
    if not items:
        raise DataError(f"{data_file}: no items")
    return items


def check_protocol(benchmark: str, protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {protocol!r} for benchmark {benchmark!r}; "
                         f"choose from {PROTOCOLS}")
    if protocol == "likelihood" and benchmark_spec(benchmark).kind == "open_ended":
        raise ValueError(f"benchmark {benchmark!r} is open-ended: it has no options to score by likelihood")


def write_task_yaml(benchmark: str, data_file: str | Path, task_dir: str | Path, protocol: str = "generation") -> str:
    """Write the per-run task YAML into `task_dir`; returns the task name."""
    check_protocol(benchmark, protocol)
    spec = benchmark_spec(benchmark)
    data_file, task_dir = Path(data_file).resolve(), Path(task_dir).resolve()
    task = f"{TASK_PREFIX}{benchmark}"
    config = {
        "task": task,
        "include": str(spec.template(protocol)),
        "dataset_kwargs": {"data_files": {"test": str(data_file)}, "cache_dir": str(task_dir / "datasets_cache")},
        "lmms_eval_specific_kwargs": {"default": {"image_root": str(data_file.parent)}},
    }
    task_dir.mkdir(parents=True, exist_ok=True)
    (task_dir / f"{task}.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return task


def run_lmms_eval(checkpoint: str | Path, task_dir: Path, task: str, batch_size: int, seed: int,
                  temperature: float | None, limit: int | None, device: str | None,
                  chat_template: str = DEFAULT_TEMPLATE, max_new_tokens: int | None = None) -> dict[str, Any]:
    """Run lmms-eval offline on one task of `task_dir`; returns its results dict (with samples).
    `temperature` None leaves the task's generation settings alone (likelihood tasks have none);
    `max_new_tokens` None keeps the task template's answer length."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.models import get_model
    from lmms_eval.tasks import TaskManager

    from mmdistill.evaluation.model import MODEL_ID, register

    register()
    model = get_model(MODEL_ID)(pretrained=str(checkpoint), batch_size=batch_size, seed=seed, device=device,
                                chat_template=chat_template)
    gen_kwargs = [] if temperature is None else [f"temperature={temperature}"]
    gen_kwargs += [] if max_new_tokens is None else [f"max_new_tokens={max_new_tokens}"]
    results = simple_evaluate(
        model=model,
        tasks=[task],
        task_manager=TaskManager("WARNING", include_path=str(task_dir), include_defaults=False),
        limit=limit,
        log_samples=True,
        gen_kwargs=",".join(gen_kwargs) or None,
        bootstrap_iters=0,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
        verbosity="WARNING",
        process_docs_parallel=1,
    )
    if results is None or task not in results.get("samples", {}):
        raise RuntimeError(f"lmms-eval returned no samples for task {task!r}")
    return results


def responses_by_item(items: Sequence[dict], samples: Sequence[dict]) -> list[list]:
    """The logged responses for each item, matched by lmms-eval's doc_id (the item's position):
    `[reply]` when generating, one `(log-likelihood, is_greedy)` per choice by likelihood."""
    responses: list[list | None] = [None] * len(items)
    for sample in samples:
        doc_id = sample["doc_id"]
        if doc_id >= len(items) or sample["doc"]["id"] != items[doc_id]["id"]:
            raise RuntimeError(f"lmms-eval sample doc_id {doc_id} (id {sample['doc']['id']!r}) "
                               "does not match the benchmark file's order")
        responses[doc_id] = list(sample["filtered_resps"])
    missing = [items[i]["id"] for i, r in enumerate(responses) if r is None]
    if missing:
        raise RuntimeError(f"lmms-eval logged no prediction for items {missing[:5]} ({len(missing)} in all)")
    return responses  # type: ignore[return-value]


def _group_summary(kind: str, items: Sequence[dict], samples: Sequence[dict], indices: list[int],
                   seed: int) -> dict[str, Any]:
    """`{"n", "score", "ci95"}` over the samples at `indices` (+ POPE statistics for yes/no)."""
    if kind == "open_ended":
        return judged_summary([samples[i]["judge_score"] for i in indices], seed=seed)
    result = accuracy_summary([samples[i]["correct"] for i in indices])
    if kind == "yes_no":
        result.update(yes_no_statistics([str(items[i]["answer"]) for i in indices],
                                        [samples[i]["prediction"] for i in indices]))
    return result


def summarize(benchmark: str, items: Sequence[dict], predictions: Sequence[str], seed: int,
              judge: Judge | None = None, scenes: Sequence[dict] | None = None) -> dict[str, Any]:
    """Score, ci95, per-category breakdown and per-sample records for one benchmark.

    With the toy `scenes`, the open-ended summary adds a "hallucination" block for its
    detail descriptions (see `scoring.hallucination_summary`), and each detail
    description's sample its "object_mentions" and "hallucinated_mentions".
    """
    spec = benchmark_spec(benchmark)
    # each sample names its categories, so that tables can pool samples across training seeds
    samples = [{"id": item["id"], "prediction": prediction, "answer": item["answer"],
                **{axis: str(item[axis]) for axis in spec.axes}} for item, prediction in zip(items, predictions)]
    if spec.kind == "open_ended":
        if judge is None:
            raise ValueError(f"benchmark {benchmark!r} is open-ended and needs a judge")
        for sample, verdict in zip(samples, score_open_ended(items, predictions, judge)):
            sample["judge_score"] = verdict.pop("score")
            if verdict:
                sample["judge"] = verdict
    else:
        for sample, item, prediction in zip(samples, items, predictions):
            sample["correct"] = is_correct(spec.kind, item, prediction)

    by_category = {}
    for axis in spec.axes:
        groups: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            groups.setdefault(str(item[axis]), []).append(index)
        by_category[axis] = {value: _group_summary(spec.kind, items, samples, indices, seed)
                             for value, indices in sorted(groups.items())}
    overall = _group_summary(spec.kind, items, samples, list(range(len(items))), seed)
    failures = {"judge_failures": overall["judge_failures"]} if spec.kind == "open_ended" else {}
    hallucination = {}
    if spec.kind == "open_ended" and scenes is not None:
        hallucination = {"hallucination": hallucination_summary(items, predictions, scenes)}
        for sample, counts in zip(samples, mention_counts(items, predictions, scenes)):
            sample.update(counts or {})
    chance = {} if spec.kind == "open_ended" else {"chance": chance_level(spec.kind, items)}
    return {"benchmark": benchmark, "n": overall["n"], "score": overall["score"], "ci95": overall["ci95"],
            **chance, **failures, **hallucination, "by_category": by_category, "samples": samples}


def chance_level(kind: str, items: Sequence[dict]) -> float:
    """The expected accuracy in % of a uniform guess: the mean of 1 / number of options (yes/no: 50)."""
    if kind == "yes_no":
        return 50.0
    return 100.0 * sum(1 / len(item["options"]) for item in items) / len(items)


def evaluate(checkpoint: str | Path, benchmark: str, data_file: str | Path, output_json: str | Path,
             batch_size: int = 32, seed: int = 0, temperature: float = 0.0, limit: int | None = None,
             judge: Judge | None = None, judge_name: str | None = None, device: str | None = None,
             task_dir: str | Path | None = None, scenes: Sequence[dict] | None = None,
             protocol: str = "generation", chat_template: str = DEFAULT_TEMPLATE,
             open_ended_max_new_tokens: int | None = None) -> dict[str, Any]:
    """Evaluate `checkpoint` on `data_file` with lmms-eval and write the score JSON to `output_json`.

    A `judge` (see `mmdistill.judges`) is required for the open-ended benchmark;
    `judge_name` is recorded in the JSON as "judge", the judge's `metadata` (if any) as
    "judge_metadata". The toy `scenes`, if given, add the open-ended benchmark's
    hallucination block (see `summarize`).
    The per-run task YAML goes to `task_dir` (a temporary directory if None).
    With `protocol` "likelihood" each sample also records its choices' "loglikelihoods"
    and the JSON's "temperature" is None (nothing is sampled). `chat_template` is the prompt
    format of the checkpoint; `open_ended_max_new_tokens` (config
    `evaluation.open_ended_max_new_tokens`) bounds open-ended answers (None: the task's 64).
    """
    spec = benchmark_spec(benchmark)
    check_protocol(benchmark, protocol)
    temperature = temperature if protocol == "generation" else None
    if spec.kind == "open_ended" and judge is None:
        raise ValueError(f"benchmark {benchmark!r} is open-ended and needs a judge")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    items = load_items(benchmark, data_file)[:limit]
    scratch = tempfile.TemporaryDirectory(prefix="mmdistill_lmms_eval_") if task_dir is None else nullcontext(task_dir)
    with scratch as run_dir:
        task = write_task_yaml(benchmark, data_file, run_dir, protocol)
        results = run_lmms_eval(checkpoint, Path(run_dir), task, batch_size, seed, temperature, limit, device,
                                chat_template, open_ended_max_new_tokens if spec.kind == "open_ended" else None)
    responses = responses_by_item(items, results["samples"][task])
    if protocol == "likelihood":
        loglikelihoods = [[loglikelihood_of(choice) for choice in response] for response in responses]
        predictions = [likelihood_prediction(spec.kind, item, values) for item, values in zip(items, loglikelihoods)]
    else:
        predictions = [str(response[0]).strip() for response in responses]
    summary = summarize(benchmark, items, predictions, seed, judge, scenes)
    if protocol == "likelihood":
        for sample, values in zip(summary["samples"], loglikelihoods):
            sample["loglikelihoods"] = values
    lmms_eval_metrics = {name: value for key, value in results["results"][task].items()
                         if (name := key.removesuffix(",none")) in LMMS_EVAL_METRICS}
    output = {
        "model": str(checkpoint),
        **summary,
        "protocol": protocol,
        "lmms_eval_version": version("lmms_eval"),
        "lmms_eval_metrics": lmms_eval_metrics,
        "temperature": temperature,
        "chat_template": chat_template,
        "judge": judge_name if spec.kind == "open_ended" else None,
    }
    if spec.kind == "open_ended" and getattr(judge, "metadata", None) is not None:
        output["judge_metadata"] = judge.metadata  # e.g. an API judge's model, served version, calls and failures
    write_json(output_json, output)
    return output
