"""Official ScienceQA, SEED-Bench, POPE and LLaVA-Bench files, made by hand in their published formats,
converted to the project's benchmark files (malformed records rejected with a reason and counted) and
scored through lmms-eval."""

import json

import pytest
from PIL import Image

from mmdistill.evaluation import evaluate, load_items
from mmdistill.evaluation.converters import (
    convert_llava_bench,
    convert_pope,
    convert_scienceqa,
    convert_seed_bench,
    main,
    multiple_choice_prompt,
)
from mmdistill.io import DataError, read_jsonl


def image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64), "red").save(path)


def json_lines(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def reasons(tmp_path, name):
    return [r["reason"] for r in read_jsonl(tmp_path / "out" / name)]


def problem(split, answer=0, image_name=None, hint="", grade="grade3", subject="natural science", choices=None):
    return {"question": "Which is a mammal?", "choices": choices or ["whale", "shark", "trout"], "answer": answer,
            "hint": hint, "image": image_name, "task": "closed choice", "grade": grade, "subject": subject,
            "topic": "biology", "category": "Classification", "skill": "Identify mammals", "lecture": "",
            "solution": "", "split": split}


@pytest.fixture
def scienceqa(tmp_path):
    image(tmp_path / "images/test/1/image.png")
    problems = {"1": problem("test", image_name="image.png", grade="grade8"),
                "2": problem("test", answer=1, hint="Sharks are fish."),
                "3": problem("test", answer=2, subject="social science"),
                "4": problem("test", answer=3),                                  # no 4th choice
                "5": problem("test", image_name="image.png"),                    # image missing
                "6": problem("test", grade="kindergarten"),
                "7": problem("train")}
    (tmp_path / "problems.json").write_text(json.dumps(problems))
    return convert_scienceqa(tmp_path / "problems.json", tmp_path / "images/test", "test", tmp_path / "out")


def test_scienceqa_items_in_our_format_with_text_only_ones(scienceqa, tmp_path):
    items = {item["id"]: item for item in load_items("mc", tmp_path / "out/mc_test.jsonl")}
    assert sorted(items) == ["1", "2", "3"]
    assert items["1"]["image"] == "../images/test/1/image.png" and "image" not in items["2"]
    assert [items[i]["context_modality"] for i in "123"] == ["img", "txt", "no"]
    assert [items[i]["grade"] for i in "123"] == ["7-12", "1-6", "1-6"]
    assert [items[i]["answer"] for i in "123"] == ["A", "B", "C"] and items["2"]["answer_text"] == "shark"
    assert items["2"]["prompt"] == ("Context: Sharks are fish.\nWhich is a mammal?\nA. whale\nB. shark\nC. trout\n"
                                    "Answer with the option's letter from the given choices directly.")
    assert scienceqa["items"] == 3 and scienceqa["rejected"] == 3
    found = reasons(tmp_path, "mc_test.rejects.jsonl")
    assert any("'answer' 3 is not an index" in r for r in found)
    assert any("not found under" in r for r in found) and any("grade 'kindergarten'" in r for r in found)


def test_seed_bench(tmp_path):
    image(tmp_path / "SEED-Bench-image/a.jpg")
    question = {"question_id": "101", "question": "What is red?", "choice_a": "a bus", "choice_b": "a cat",
                "choice_c": "a cup", "choice_d": "a hat", "answer": "C", "data_id": "a.jpg", "data_type": "image",
                "question_type_id": 1}
    data = {"question_type": {"Scene Understanding": 1, "Instance Identity": 2, "Action Recognition": 10},
            "questions": [question, {**question, "question_id": "102", "answer": "E"},
                          {**question, "question_id": "103", "data_type": "video", "question_type_id": 10},
                          {**question, "question_id": "104", "choice_d": ""}]}
    (tmp_path / "SEED-Bench.json").write_text(json.dumps(data))
    report = convert_seed_bench(tmp_path / "SEED-Bench.json", tmp_path / "SEED-Bench-image", tmp_path / "out")
    [item] = load_items("seed", tmp_path / "out/seed_test.jsonl")
    assert item["dimension"] == "Scene Understanding" and item["options"][2] == "a cup" and item["answer"] == "C"
    assert item["prompt"] == multiple_choice_prompt("What is red?", ["a bus", "a cat", "a cup", "a hat"])
    assert report["rejected"] == 3
    found = reasons(tmp_path, "seed_test.rejects.jsonl")
    assert sorted(found) == sorted(["'answer' 'E' is not one of A-D", "data_type 'video' is not 'image'",
                                    "missing or empty 'choice_d'"])


def test_pope(tmp_path):
    image(tmp_path / "val2014/COCO_val2014_000000000042.jpg")
    record = {"question_id": 1, "image": "COCO_val2014_000000000042.jpg", "text": "Is there a dog in the image?",
              "label": "yes"}
    random = json_lines(tmp_path / "coco_pope_random.json",
                        [record, {**record, "question_id": 2, "label": "no"}, "{not json",
                         {**record, "question_id": 3, "label": "maybe"}])
    adversarial = json_lines(tmp_path / "coco_pope_adversarial.json", [{**record, "label": "no"}])
    report = convert_pope({"random": random, "adversarial": adversarial}, tmp_path / "val2014", tmp_path / "out")
    items = load_items("pope", tmp_path / "out/pope_test.jsonl")
    assert [(i["id"], i["answer"], i["negative_type"]) for i in items] == [
        ("adversarial/1", "no", "adversarial"), ("random/1", "yes", "random"), ("random/2", "no", "random")]
    assert report["rejected"] == 2
    assert any(r.startswith("invalid JSON") for r in reasons(tmp_path, "pope_test.rejects.jsonl"))
    with pytest.raises(ValueError, match="unknown|choose from"):
        convert_pope({"hard": random}, tmp_path / "val2014", tmp_path / "out")


def test_llava_bench(tmp_path):
    image(tmp_path / "images/001.jpg")
    questions = json_lines(tmp_path / "questions.jsonl", [
        {"question_id": 0, "image": "001.jpg", "text": "What is the name of this dish?", "category": "conv"},
        {"question_id": 1, "image": "001.jpg", "text": "Describe the photo in detail.", "category": "detail"},
        {"question_id": 2, "image": "001.jpg", "text": "Why is it red?", "category": "poetry"},
        {"question_id": 3, "image": "001.jpg", "text": "Why is it hot?", "category": "complex"}])
    answers = json_lines(tmp_path / "answers_gpt4.jsonl", [
        {"question_id": 0, "prompt": "", "text": "Ramen.", "answer_id": "x", "model_id": "gpt-4-0314", "metadata": {}},
        {"question_id": 1, "prompt": "", "text": "A bowl of ramen on a table.", "answer_id": "y",
         "model_id": "gpt-4-0314", "metadata": {}},
        {"question_id": 2, "prompt": "", "text": "", "answer_id": "z"}])
    report = convert_llava_bench(questions, answers, tmp_path / "images", tmp_path / "out")
    items = load_items("open", tmp_path / "out/open_test.jsonl")
    assert [(i["id"], i["category"], i["answer"]) for i in items] == [
        ("0", "conversation", "Ramen."), ("1", "detail_description", "A bowl of ramen on a table.")]
    assert report["rejected"] == 3  # the empty answer, the unknown category, the question without an answer
    context = json_lines(tmp_path / "context.jsonl", [{"id": "001", "image": "001.jpg", "caption": "Ramen in a bowl."},
                                                      {"id": "002"}])
    report = convert_llava_bench(questions, answers, tmp_path / "images", tmp_path / "with_context", context)
    items = load_items("open", tmp_path / "with_context/open_test.jsonl")
    assert {item["caption"] for item in items} == {"Ramen in a bowl."} and report["rejected"] == 4


def test_nothing_valid_is_an_error_naming_the_counts(tmp_path):
    (tmp_path / "problems.json").write_text(json.dumps({"1": problem("test", answer=9)}))
    with pytest.raises(DataError, match="no valid mc items"):
        convert_scienceqa(tmp_path / "problems.json", tmp_path, "test", tmp_path / "out")


def test_converted_files_are_scored_through_lmms_eval(scienceqa, answering_checkpoints, tiny_checkpoint, tmp_path):
    """The acceptance path: official file -> converter -> lmms-eval run -> score JSON (the text-only
    ScienceQA items included)."""
    score = evaluate(answering_checkpoints["multiple_choice"], "mc", tmp_path / "out/mc_test.jsonl",
                     tmp_path / "mc.json", batch_size=4, seed=0, protocol="likelihood")
    assert score["n"] == 3 and set(score["by_category"]["context_modality"]) == {"img", "txt", "no"}
    test_seed_bench(tmp_path / "seed")
    score = evaluate(answering_checkpoints["multiple_choice"], "seed", tmp_path / "seed/out/seed_test.jsonl",
                     tmp_path / "seed.json", batch_size=4, seed=0, protocol="likelihood")
    assert score["n"] == 1 and list(score["by_category"]["dimension"]) == ["Scene Understanding"]
    test_pope(tmp_path / "pope")
    score = evaluate(answering_checkpoints["yes_no"], "pope", tmp_path / "pope/out/pope_test.jsonl",
                     tmp_path / "pope.json", batch_size=4, seed=0, protocol="generation")
    assert score["n"] == 3 and set(score["by_category"]["negative_type"]) == {"random", "adversarial"}
    test_llava_bench(tmp_path / "bench")
    judge = lambda items, predictions: [{"score": 7.0} for _ in items]  # noqa: E731
    score = evaluate(tiny_checkpoint, "open", tmp_path / "bench/out/open_test.jsonl", tmp_path / "open.json",
                     batch_size=2, seed=0, judge=judge, judge_name="fixed")
    assert score["n"] == 2 and score["score"] == pytest.approx(100 * 6 / 9)


def test_the_command_line(tmp_path, capsys):
    image(tmp_path / "val2014/a.jpg")
    random = json_lines(tmp_path / "coco_pope_random.json",
                        [{"question_id": 1, "image": "a.jpg", "text": "Is there a cat?", "label": "no"}])
    main(["pope", "--random", str(random), "--images", str(tmp_path / "val2014"), "--out", str(tmp_path / "out")])
    assert json.loads(capsys.readouterr().out)["items"] == 1
    assert json.loads((tmp_path / "out/pope_test.report.json").read_text())["rejected"] == 0
