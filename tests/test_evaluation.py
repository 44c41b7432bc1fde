import json

import pytest
from conftest import sample_items, write_benchmark

from mmdistill.evaluation import evaluate, load_items, score_open_ended, summarize
from mmdistill.evaluation.intervals import bootstrap_interval, wilson_interval
from mmdistill.evaluation.scoring import (
    is_correct,
    judge_score_to_percent,
    parse_option,
    parse_yes_no,
    yes_no_statistics,
)
from mmdistill.generation import GenerationRequest, load_backend
from mmdistill.io import DataError

MAX_NEW_TOKENS = {"mc": 32, "seed": 32, "pope": 8}  # as in tasks/_multiple_choice_template_yaml, _yes_no_...


# --- intervals -------------------------------------------------------------------------

def test_wilson_interval_worked_examples():
    # 8 of 10: p = 0.8, centre = 0.8 + z²/2n over 1 + z²/n = 0.7167, half-width 0.2266.
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    # 0 of 10: the lower bound is exactly 0 and the upper z²/n / (1 + z²/n) = 0.2775.
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10)[1] == 1.0
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_bootstrap_interval():
    assert bootstrap_interval([40.0] * 5, seed=0) == (40.0, 40.0)
    values = [0.0, 100.0] * 50  # mean 50, standard error 5: about 50 ± 9.8
    low, high = bootstrap_interval(values, seed=3)
    assert bootstrap_interval(values, seed=3) == (low, high)
    assert low == pytest.approx(40.2, abs=1.5) and high == pytest.approx(59.8, abs=1.5)


# --- parsing and scoring ---------------------------------------------------------------

OPTIONS = ["red", "blue", "top left", "red circle , blue square"]


@pytest.mark.parametrize("prediction, letter", [
    # a leading option letter, as real LLaVA models answer ScienceQA
    ("b", "b"),
    ("B.", "b"),
    ("(c)", "c"),
    ("d . red circle , blue square", "d"),
    ("  (c) blue", "c"),  # the letter wins over the text after it
    ("e", None),  # not one of four options
    ("a blue", "a"),  # a leading article reads as option a (toy option texts never start with one)
    # the text of one option, as the toy models answer; compared after normalization
    ("red", "a"),
    ("Blue.", "b"),
    ("Top-Left", "c"),
    ("red circle, blue square", "d"),
    # anything else chooses nothing
    ("", None),
    ("green", None),  # no option's text
    ("red circle", None),  # part of an option is not the option
    ("the answer is red", None),  # no search inside free text
    ("the answer is b", None),
    ("red or blue", None),
])
def test_option_parsing(prediction, letter):
    assert parse_option(prediction, OPTIONS) == letter


def test_an_answer_matching_two_options_chooses_nothing():
    assert parse_option("red", ["red", "blue", "Red."]) is None
    assert parse_option("blue", ["red", "blue", "Red."]) == "b"


@pytest.mark.parametrize("prediction, yes_no", [
    ("", None), ("yes, there is", "yes"), ("No.", "no"), ("the answer is no", None), ("b", None),
])
def test_yes_no_parsing(prediction, yes_no):
    assert parse_yes_no(prediction) == yes_no


def test_multiple_choice_correctness_accepts_the_letter_or_the_option_text():
    item = sample_items("mc", 3)[2]  # options red / green / blue / yellow, gold letter c
    assert (item["answer"], item["answer_text"]) == ("c", "blue")
    for prediction, correct in [("c", True), ("C. blue", True), ("blue", True), ("Blue .", True),
                                ("b", False), ("green", False), ("the answer is blue", False), ("", False)]:
        assert is_correct("multiple_choice", item, prediction) == correct, prediction


def test_yes_no_statistics():
    golds = ["yes", "yes", "no", "no"]
    stats = yes_no_statistics(golds, ["yes", "no", "yes", "maybe"])
    assert stats == {"precision": 50.0, "recall": 50.0, "f1": 50.0, "yes_ratio": 50.0}
    assert yes_no_statistics(golds, ["no"] * 4)["precision"] is None


def per_item(score):
    """A batch judge from `score(item, prediction)`."""
    return lambda items, predictions: [{"score": score(i, p)} for i, p in zip(items, predictions)]


def test_score_open_ended_checks_the_judge():
    items = sample_items("open", 2)
    verdicts = score_open_ended(items, ["x", "y z"], per_item(lambda item, prediction: len(prediction)))
    assert [v["score"] for v in verdicts] == [1.0, 3.0]
    with pytest.raises(ValueError, match="open1"):
        score_open_ended(items, ["x", "y"], per_item(lambda item, prediction: 0 if item["id"] == "open1" else 5))
    with pytest.raises(ValueError, match="open0.*reason"):
        score_open_ended(items, ["x", "y"], per_item(lambda item, prediction: None))
    with pytest.raises(ValueError, match="1 verdicts for 2 items"):
        score_open_ended(items, ["x", "y"], lambda items, predictions: [{"score": 5}])
    assert judge_score_to_percent(1) == 0.0 and judge_score_to_percent(10) == 100.0


def test_failed_judgements_are_counted_and_left_out_of_the_mean():
    items = sample_items("open", 3)
    judge = per_item(lambda item, prediction: 10)
    failing = lambda items, predictions: [{"score": None, "reason": "unparsable"}] + judge(items[1:], predictions[1:])
    result = summarize("open", items, ["a", "b", "c"], seed=0, judge=failing)
    assert result["n"] == 2 and result["judge_failures"] == 1 and result["score"] == 100.0
    assert result["samples"][0]["judge_score"] is None and result["samples"][0]["judge"] == {"reason": "unparsable"}
    nothing = summarize("open", items, ["a", "b", "c"], seed=0,
                        judge=lambda items, predictions: [{"score": None, "reason": "x"}] * 3)
    assert nothing["n"] == 0 and nothing["score"] is None and nothing["judge_failures"] == 3


def test_summarize_pope_breakdown():
    items = sample_items("pope")
    result = summarize("pope", items, [item["answer"] for item in items[:3]] + ["", "yes", "yes"], seed=0)
    assert result["n"] == 6 and result["score"] == pytest.approx(100 * 4 / 6)
    assert set(result["by_category"]["negative_type"]) == {"random", "popular", "adversarial"}
    for entry in result["by_category"]["negative_type"].values():
        assert {"n", "score", "ci95", "precision", "recall", "f1", "yes_ratio"} <= set(entry)


def test_bad_benchmark_files_name_file_and_key(tmp_path):
    item = sample_items("mc", 1)[0]
    path = write_benchmark(tmp_path, "mc", [{k: v for k, v in item.items() if k != "grade"}])
    with pytest.raises(DataError, match=r"mc_test\.jsonl.*'grade'"):
        load_items("mc", path)
    path = write_benchmark(tmp_path, "mc", [{**item, "answer": "e"}])
    with pytest.raises(DataError, match="option letters"):
        load_items("mc", path)
    path = write_benchmark(tmp_path, "mc", [{**item, "image": "images/none.png"}])
    with pytest.raises(DataError, match=r"mc_test\.jsonl: item 1 \(id 'mc0'\): image not found: .*none\.png"):
        load_items("mc", path)
    truncated = tmp_path / "images" / "truncated.png"
    truncated.write_bytes((tmp_path / "images" / "0.png").read_bytes()[:60])
    path = write_benchmark(tmp_path, "mc", [{**item, "image": "images/truncated.png"}])
    with pytest.raises(DataError, match=r"mc_test\.jsonl: item 1 \(id 'mc0'\): image unreadable: .*truncated\.png"):
        load_items("mc", path)
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_items("gqa", path)


# --- real lmms-eval runs ---------------------------------------------------------------

def dummy_score(prediction):
    return min(10, 1 + len(prediction.split()))


def dummy_judge(items, predictions):
    return [{"score": dummy_score(prediction)} for prediction in predictions]


def half_right_benchmark(directory, benchmark, checkpoint):
    """A 6-item file whose gold answers agree with the model's greedy answers on items 0, 2, 4."""
    items = sample_items(benchmark)
    write_benchmark(directory, benchmark, items)
    backend = load_backend("hf", checkpoint, batch_size=6, seed=0, device="cpu")
    predictions = backend.generate([
        GenerationRequest(directory / item["image"], item.get("prompt") or item["question"],
                          max_new_tokens=MAX_NEW_TOKENS[benchmark]) for item in items])
    choices = ["yes", "no"] if benchmark == "pope" else ["a", "b", "c", "d"]
    for index, (item, prediction) in enumerate(zip(items, predictions)):
        said = prediction.split()[0]
        item["answer"] = said if index % 2 == 0 else choices[(choices.index(said) + 1) % len(choices)]
    return write_benchmark(directory, benchmark, items)


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory, answering_checkpoints, tiny_checkpoint):
    runs = {}
    for benchmark, checkpoint, limit in [("mc", answering_checkpoints["multiple_choice"], None),
                                         ("seed", answering_checkpoints["multiple_choice"], 4),
                                         ("pope", answering_checkpoints["yes_no"], None),
                                         ("open", tiny_checkpoint, None)]:
        directory = tmp_path_factory.mktemp(benchmark)
        data_file = half_right_benchmark(directory, benchmark, checkpoint) if benchmark != "open" else \
            write_benchmark(directory, benchmark, sample_items(benchmark))
        output_json = directory / "score.json"
        result = evaluate(checkpoint, benchmark, data_file, output_json, batch_size=4, seed=0, temperature=0.0,
                          limit=limit, judge=dummy_judge if benchmark == "open" else None, judge_name="dummy",
                          task_dir=directory / "task")
        runs[benchmark] = {"result": result, "output_json": output_json, "items": load_items(benchmark, data_file),
                           "task_dir": directory / "task"}
    return runs


@pytest.mark.parametrize("benchmark, axes", [("mc", {"subject", "context_modality", "grade"}),
                                             ("seed", {"dimension"}), ("pope", {"negative_type"}),
                                             ("open", {"category"})])
def test_score_json_structure(evaluations, benchmark, axes):
    run = evaluations[benchmark]
    result = run["result"]
    assert json.loads(run["output_json"].read_text()) == result
    assert {"model", "benchmark", "n", "score", "ci95", "by_category", "samples", "lmms_eval_version",
            "temperature"} <= set(result)
    assert result["benchmark"] == benchmark and result["lmms_eval_version"] == "0.7.3"
    assert result["n"] == len(result["samples"]) == (4 if benchmark == "seed" else 6)
    assert result["ci95"][0] <= result["score"] <= result["ci95"][1]
    assert set(result["by_category"]) == axes
    for values in result["by_category"].values():
        assert sum(entry["n"] for entry in values.values()) == result["n"]
    gold = {item["id"]: item["answer"] for item in run["items"]}
    for sample in result["samples"]:
        assert sample["answer"] == gold[sample["id"]]
        assert ("judge_score" if benchmark == "open" else "correct") in sample
    assert result["judge"] == ("dummy" if benchmark == "open" else None)
    assert result["protocol"] == "generation" and result["temperature"] == 0.0


@pytest.mark.parametrize("benchmark", ["mc", "seed", "pope"])
def test_accuracy_is_the_fraction_of_matching_samples(evaluations, benchmark):
    result = evaluations[benchmark]["result"]
    options = {item["id"]: item.get("options") for item in evaluations[benchmark]["items"]}
    for sample in result["samples"]:
        said = parse_yes_no(sample["prediction"]) if benchmark == "pope" else \
            parse_option(sample["prediction"], options[sample["id"]])
        assert sample["correct"] == (said == sample["answer"])
    assert [sample["correct"] for sample in result["samples"]] == [True, False] * (result["n"] // 2)
    assert result["score"] == pytest.approx(50.0)
    assert result["lmms_eval_metrics"]["accuracy"] * 100 == pytest.approx(result["score"])


def test_pope_reports_yes_no_statistics(evaluations):
    for entry in evaluations["pope"]["result"]["by_category"]["negative_type"].values():
        assert {"precision", "recall", "f1", "yes_ratio"} <= set(entry)


def test_open_ended_score_is_the_scaled_mean_judge_score(evaluations):
    result = evaluations["open"]["result"]
    for sample in result["samples"]:
        assert sample["judge_score"] == dummy_score(sample["prediction"])
    expected = sum(judge_score_to_percent(s["judge_score"]) for s in result["samples"]) / result["n"]
    assert result["score"] == pytest.approx(expected)


def test_per_run_task_yaml(evaluations):
    task_yaml = (evaluations["mc"]["task_dir"] / "mmdistill_mc.yaml").read_text()
    assert "include: " in task_yaml and "_multiple_choice_template_yaml" in task_yaml
    assert str((evaluations["mc"]["output_json"].parent / "mc_test.jsonl").resolve()) in task_yaml


def test_open_ended_needs_a_judge(tiny_checkpoint, benchmark_files, tmp_path):
    with pytest.raises(ValueError, match="needs a judge"):
        evaluate(tiny_checkpoint, "open", benchmark_files["open"], tmp_path / "out.json", batch_size=2, seed=0,
                 temperature=0.0)


def test_the_teacher_as_judge_through_lmms_eval(tiny_checkpoint, benchmark_files, tmp_path):
    """A model judge end to end: a random tiny model cannot write two scores, so every item is a
    counted failure and the score is None, never an invented number."""
    from mmdistill.judges import model_judge

    backend = load_backend("hf", tiny_checkpoint, batch_size=6, seed=0, device="cpu")
    judge = model_judge(backend, benchmark_files["open"].parent, temperature=0.5, max_new_tokens=4, max_retries=1)
    result = evaluate(tiny_checkpoint, "open", benchmark_files["open"], tmp_path / "out.json", batch_size=6, seed=0,
                      temperature=0.0, judge=judge, judge_name="teacher")
    assert result["judge"] == "teacher" and result["n"] == 0 and result["score"] is None
    assert result["judge_failures"] == len(result["samples"]) > 0
    for sample in result["samples"]:
        assert sample["judge_score"] is None and "unparsable after 2 attempt(s)" in sample["judge"]["reason"]


def test_scenes_add_the_hallucination_block_to_the_open_ended_json(tiny_checkpoint, tmp_path):
    """`evaluate(..., scenes=...)` writes the block computed from the logged descriptions."""
    from mmdistill.evaluation.scoring import hallucination_summary

    items = [{**item, "task": "describe" if item["category"] == "detail_description" else "list"}
             for item in sample_items("open")]
    scenes = [{"image": f"images/{index}.png", "objects": [
        {"shape": "circle", "color": "red", "size": "large", "row": 0, "col": 0, "text": None}]} for index in range(4)]
    data_file = write_benchmark(tmp_path, "open", items)
    result = evaluate(tiny_checkpoint, "open", data_file, tmp_path / "out.json", batch_size=6, seed=0,
                      temperature=0.0, judge=dummy_judge, judge_name="dummy", scenes=scenes)
    predictions = [sample["prediction"] for sample in result["samples"]]
    assert result["hallucination"] == hallucination_summary(items, predictions, scenes)
    assert result["hallucination"]["responses"] == 2
    assert json.loads((tmp_path / "out.json").read_text())["hallucination"] == result["hallucination"]
