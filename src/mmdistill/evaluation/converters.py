"""Official benchmark files to the project's benchmark format (`<bench>_<split>.jsonl`, see docs/ARCHITECTURE.md).

One converter per benchmark the papers report, each reading the files as their authors
publish them:

* ScienceQA (`mc`): `problems.json` (`{pid: {question, choices, answer, hint, image, grade,
  subject, split}}`), images under `<split>/<pid>/image.png` -> `mc_<split>.jsonl`, text-only
  items without `image`.
* SEED-Bench (`seed`): `SEED-Bench.json` (`questions`: `question_id, question, choice_a..d,
  answer, data_id, data_type, question_type_id`; `question_type`: name to id) ->
  `seed_test.jsonl`, image questions only (dimensions 1-9).
* POPE (`pope`): `coco_pope_{random,popular,adversarial}.json`, JSON lines `question_id,
  image, text, label` -> `pope_test.jsonl`, `negative_type` from the file.
* LLaVA-Bench in-the-wild (`open`): `questions.jsonl` (`question_id, image, text, category`)
  and `answers_gpt4.jsonl` (`question_id, text`), optionally `context.jsonl` (`image, caption`)
  -> `open_test.jsonl`, GPT-4's answer as the reference and the image's caption as `caption`
  (the context an API judge is shown, as LLaVA-Bench's GPT-4 review is).

A malformed record is skipped into a `RejectLog` with its reason (written next to the
output as `<bench>_<split>.rejects.jsonl`) and counted in the returned report. Image paths
are written relative to the output file's directory, the repository's convention.

Run as `python -m mmdistill.evaluation.converters <benchmark> ...` (see `--help`).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Callable

from mmdistill.evaluation.scoring import OPTION_LETTERS
from mmdistill.io import DataError, RejectLog, read_json, write_json, write_jsonl

MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."
SCIENCEQA_SPLITS = ("train", "val", "test")  # the `split` field of problems.json
POPE_NEGATIVE_TYPES = ("random", "popular", "adversarial")
LLAVA_BENCH_CATEGORIES = {"conv": "conversation", "complex": "complex_reasoning", "detail": "detail_description"}


def multiple_choice_prompt(question: str, options: list[str], context: str = "") -> str:
    """LLaVA-1.5's multiple-choice prompt (as lmms-eval's scienceqa_img and seedbench): context, question,
    lettered options, the instruction to answer with the letter."""
    lines = ([f"Context: {context}"] if context else []) + [question]
    lines += [f"{letter.upper()}. {option}" for letter, option in zip(OPTION_LETTERS, options)]
    return "\n".join(lines + [MC_INSTRUCTION])


def _relative_image(image: Path, output_dir: Path) -> str:
    return os.path.relpath(image.resolve(), output_dir.resolve())


def _text(record: dict, key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"missing or empty {key!r}")
    return value.strip()


def _image(image_root: Path, name: str) -> Path:
    path = image_root / name
    if not path.is_file():
        raise ValueError(f"image {name!r} not found under {image_root}")
    return path


def _convert(records, convert: Callable[[Any], dict], rejects: RejectLog, source: str) -> list[dict]:
    """`convert` each record; a `ValueError` rejects it with its message as the reason."""
    items, seen = [], set()
    for record in records:
        try:
            item = convert(record)
            if item["id"] in seen:
                raise ValueError(f"duplicate id {item['id']!r}")
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            reason = f"missing key {error}" if isinstance(error, KeyError) else str(error)
            rejects.add(reason if isinstance(error, ValueError) else f"malformed record ({reason})", record, source)
            continue
        seen.add(item["id"])
        items.append(item)
    return items


def _write(items: list[dict], rejects: RejectLog, output: Path, benchmark: str) -> dict[str, Any]:
    if not items:
        raise DataError(f"{output}: no valid {benchmark} items ({len(rejects)} rejected: {rejects.counts})")
    write_jsonl(output, items)
    rejects_path = output.with_name(output.name.removesuffix(".jsonl") + ".rejects.jsonl")
    rejects.write(rejects_path)
    report = {"benchmark": benchmark, "output": str(output), "items": len(items), "rejected": len(rejects),
              "rejects": rejects.counts, "rejects_file": str(rejects_path)}
    write_json(output.with_name(output.name.removesuffix(".jsonl") + ".report.json"), report)
    return report


def scienceqa_grade(grade: str) -> str:
    """ScienceQA's grade columns: 'grade1'..'grade6' -> '1-6', 'grade7'..'grade12' -> '7-12'."""
    if not (isinstance(grade, str) and grade.startswith("grade") and grade[5:].isdigit()
            and 1 <= int(grade[5:]) <= 12):
        raise ValueError(f"grade {grade!r} is not 'grade1'..'grade12'")
    return "1-6" if int(grade[5:]) <= 6 else "7-12"


def convert_scienceqa(problems_path: str | Path, image_root: str | Path, split: str,
                      output_dir: str | Path) -> dict[str, Any]:
    """ScienceQA's `problems.json` split `split` to `mc_<split>.jsonl`.

    `context_modality` is `img` for a question with an image, `txt` for one with a text
    hint only, `no` otherwise (ScienceQA's own evaluation lets IMG and TXT overlap; here
    each item has one, so TXT counts only text-context questions without an image).
    The hint becomes the prompt's `Context:` line. Images are `<image_root>/<pid>/<image>`
    (the official `images/<split>/` folder).
    """
    if split not in SCIENCEQA_SPLITS:
        raise ValueError(f"unknown ScienceQA split {split!r}; choose from {SCIENCEQA_SPLITS}")
    problems_path, image_root, output_dir = Path(problems_path), Path(image_root), Path(output_dir)
    problems = read_json(problems_path)
    if not isinstance(problems, dict):
        raise DataError(f"{problems_path}: expected ScienceQA's object of problems keyed by id")
    output = output_dir / f"mc_{split}.jsonl"

    def convert(entry) -> dict:
        pid, problem = entry
        choices = problem.get("choices")
        if not isinstance(choices, list) or not 2 <= len(choices) <= len(OPTION_LETTERS):
            raise ValueError("'choices' must be a list of 2 to 26 options")
        answer = problem.get("answer")
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
            raise ValueError(f"'answer' {answer!r} is not an index into the {len(choices)} choices")
        subject = _text(problem, "subject")
        hint = (problem.get("hint") or "").strip()
        item = {"id": str(pid), "question": _text(problem, "question"), "options": [str(c) for c in choices],
                "answer": OPTION_LETTERS[answer].upper(), "answer_text": str(choices[answer]), "subject": subject,
                "grade": scienceqa_grade(problem.get("grade")),
                "context_modality": "img" if problem.get("image") else ("txt" if hint else "no")}
        item["prompt"] = multiple_choice_prompt(item["question"], item["options"], hint)
        if problem.get("image"):
            item["image"] = _relative_image(_image(image_root, f"{pid}/{problem['image']}"), output_dir)
        return item

    rejects = RejectLog()
    chosen = [(pid, problem) for pid, problem in problems.items()
              if not isinstance(problem, dict) or problem.get("split") == split]
    return _write(_convert(chosen, convert, rejects, str(problems_path)), rejects, output, "mc")


def convert_seed_bench(seed_json: str | Path, image_root: str | Path, output_dir: str | Path) -> dict[str, Any]:
    """SEED-Bench's `SEED-Bench.json` to `seed_test.jsonl`: its image questions (video ones are
    rejected as such), the dimension named by `question_type`, four options."""
    seed_json, image_root, output_dir = Path(seed_json), Path(image_root), Path(output_dir)
    data = read_json(seed_json)
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list) \
            or not isinstance(data.get("question_type"), dict):
        raise DataError(f"{seed_json}: expected SEED-Bench's object with 'questions' and 'question_type'")
    dimensions = {int(number): name for name, number in data["question_type"].items()}

    def convert(question) -> dict:
        if question.get("data_type") != "image":
            raise ValueError(f"data_type {question.get('data_type')!r} is not 'image'")
        dimension = dimensions.get(question.get("question_type_id"))
        if dimension is None:
            raise ValueError(f"question_type_id {question.get('question_type_id')!r} is not in 'question_type'")
        options = [_text(question, f"choice_{letter}") for letter in "abcd"]
        answer = str(question.get("answer", "")).strip().upper()
        if answer not in ("A", "B", "C", "D"):
            raise ValueError(f"'answer' {question.get('answer')!r} is not one of A-D")
        item = {"id": str(question["question_id"]), "question": _text(question, "question"), "options": options,
                "answer": answer, "answer_text": options["ABCD".index(answer)], "dimension": dimension,
                "image": _relative_image(_image(image_root, _text(question, "data_id")), output_dir)}
        item["prompt"] = multiple_choice_prompt(item["question"], options)
        return item

    rejects = RejectLog()
    items = _convert(data["questions"], convert, rejects, str(seed_json))
    return _write(items, rejects, output_dir / "seed_test.jsonl", "seed")


def convert_pope(pope_files: dict[str, str | Path], image_root: str | Path, output_dir: str | Path) -> dict[str, Any]:
    """POPE's JSON-lines files, one per negative sampling (`{"random": path, ...}`), to `pope_test.jsonl`;
    ids are `<negative type>/<question_id>`."""
    image_root, output_dir = Path(image_root), Path(output_dir)
    unknown = set(pope_files) - set(POPE_NEGATIVE_TYPES)
    if unknown or not pope_files:
        raise ValueError(f"POPE negative types {sorted(unknown) or '(none)'}; choose from {POPE_NEGATIVE_TYPES}")
    rejects, items = RejectLog(), []
    for negative_type, path in sorted(pope_files.items()):
        def convert(record, negative_type=negative_type) -> dict:
            label = _text(record, "label").lower()
            if label not in ("yes", "no"):
                raise ValueError(f"'label' {record['label']!r} is not yes or no")
            return {"id": f"{negative_type}/{record['question_id']}", "question": _text(record, "text"),
                    "answer": label, "negative_type": negative_type,
                    "image": _relative_image(_image(image_root, _text(record, "image")), output_dir)}

        items += _convert(_json_lines(Path(path), rejects), convert, rejects, str(path))
    return _write(items, rejects, output_dir / "pope_test.jsonl", "pope")


def _json_lines(path: Path, rejects: RejectLog):
    """The objects of a JSON-lines file; a line that is no JSON object is rejected, naming file and line."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                rejects.add(f"invalid JSON ({error.msg})", line.rstrip("\n"), f"{path}:{number}")
                continue
            if isinstance(record, dict):
                yield record
            else:
                rejects.add("not a JSON object", record, f"{path}:{number}")


def convert_llava_bench(questions_path: str | Path, answers_path: str | Path, image_root: str | Path,
                        output_dir: str | Path, context_path: str | Path | None = None) -> dict[str, Any]:
    """LLaVA-Bench (in-the-wild)'s `questions.jsonl` and GPT-4's `answers_gpt4.jsonl` to `open_test.jsonl`:
    the category named as ours (conv, complex, detail), GPT-4's answer as the judge's reference, and with
    `context.jsonl` the image's caption (a question whose image has no caption is then rejected)."""
    questions_path, answers_path = Path(questions_path), Path(answers_path)
    image_root, output_dir = Path(image_root), Path(output_dir)
    rejects = RejectLog()
    captions = None
    if context_path is not None:
        captions = {}
        for record in _json_lines(Path(context_path), rejects):
            if isinstance(record.get("image"), str) and isinstance(record.get("caption"), str):
                captions[record["image"]] = record["caption"].strip()
            else:
                rejects.add("context without image or caption", record, str(context_path))
    references = {}
    for record in _json_lines(answers_path, rejects):
        if "question_id" in record and isinstance(record.get("text"), str) and record["text"].strip():
            references[record["question_id"]] = record["text"].strip()
        else:
            rejects.add("answer without question_id or text", record, str(answers_path))

    def convert(record) -> dict:
        category = LLAVA_BENCH_CATEGORIES.get(record.get("category"))
        if category is None:
            raise ValueError(f"category {record.get('category')!r} is not one of {sorted(LLAVA_BENCH_CATEGORIES)}")
        if record.get("question_id") not in references:
            raise ValueError(f"no GPT-4 answer for question_id {record.get('question_id')!r}")
        item = {"id": str(record["question_id"]), "question": _text(record, "text"),
                "answer": references[record["question_id"]], "category": category,
                "image": _relative_image(_image(image_root, _text(record, "image")), output_dir)}
        if captions is not None:
            if record["image"] not in captions:
                raise ValueError(f"no caption for image {record['image']!r} in the context file")
            item["caption"] = captions[record["image"]]
        return item

    items = _convert(_json_lines(questions_path, rejects), convert, rejects, str(questions_path))
    return _write(items, rejects, output_dir / "open_test.jsonl", "open")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m mmdistill.evaluation.converters",
                                     description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="benchmark", required=True)
    science = commands.add_parser("scienceqa", help="problems.json -> mc_<split>.jsonl")
    science.add_argument("--problems", required=True)
    science.add_argument("--images", required=True, help="the official images/<split>/ folder")
    science.add_argument("--split", required=True, choices=SCIENCEQA_SPLITS)
    seed = commands.add_parser("seed", help="SEED-Bench.json -> seed_test.jsonl")
    seed.add_argument("--questions", required=True)
    seed.add_argument("--images", required=True, help="SEED-Bench-image/")
    pope = commands.add_parser("pope", help="coco_pope_<type>.json files -> pope_test.jsonl")
    for negative_type in POPE_NEGATIVE_TYPES:
        pope.add_argument(f"--{negative_type}")
    pope.add_argument("--images", required=True, help="COCO val2014/")
    bench = commands.add_parser("llava-bench", help="questions.jsonl + answers_gpt4.jsonl -> open_test.jsonl")
    bench.add_argument("--questions", required=True)
    bench.add_argument("--answers", required=True)
    bench.add_argument("--images", required=True)
    bench.add_argument("--context", help="context.jsonl: captions the API judge is shown")
    for command in (science, seed, pope, bench):
        command.add_argument("--out", required=True, help="the benchmark folder (config data.benchmarks)")
    args = parser.parse_args(argv)
    if args.benchmark == "scienceqa":
        report = convert_scienceqa(args.problems, args.images, args.split, args.out)
    elif args.benchmark == "seed":
        report = convert_seed_bench(args.questions, args.images, args.out)
    elif args.benchmark == "pope":
        files = {t: getattr(args, t) for t in POPE_NEGATIVE_TYPES if getattr(args, t)}
        report = convert_pope(files, args.images, args.out)
    else:
        report = convert_llava_bench(args.questions, args.answers, args.images, args.out, args.context)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
