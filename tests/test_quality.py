"""The teacher measured against the oracle: order-averaged judging, position bias, image sensitivity."""

import pytest

from mmdistill.conversation import from_llava_record
from mmdistill.generation import GenerationBackend
from mmdistill.quality import answer_diagnostics, judge_agreement, question_validity
from mmdistill.report import summary_markdown
from mmdistill.roles import judge_prompt
from mmdistill.toyworld import oracle
from mmdistill.toyworld.corpora import make_augment_data
from mmdistill.toyworld.scenes import generate_scenes


class PromptTable(GenerationBackend):
    """Answers each request with `respond(image, question)`."""

    def __init__(self, respond):
        self.respond = respond

    def generate(self, requests):
        return [self.respond(str(request.image), request.question) for request in requests]


def judge_record(question, answers, scores):
    return {"image": "images/a.png", "question": question, "answers": list(answers), "scores": list(scores)}


def test_order_averaged_agreement_and_position_bias_on_a_worked_example():
    records = [judge_record("q1", ("good", "bad"), (9, 2)),   # oracle prefers answer 1
               judge_record("q2", ("bad", "good"), (2, 9)),   # oracle prefers answer 2
               judge_record("q3", ("same", "same"), (5, 5))]  # no better answer: not a decided pair
    # A judge that likes "good" (6) over "bad" (3) but adds 3 to whatever stands first.
    value = {"good": 6, "bad": 3, "same": 4}
    prompts = {judge_prompt(q, first, second): (first, second) for q in ("q1", "q2", "q3")
               for first, second in (("good", "bad"), ("bad", "good"), ("same", "same"))}

    def respond(image, prompt):
        first, second = prompts[prompt]
        return f"{value[first] + 3} {value[second]}"

    result = judge_agreement(PromptTable(respond), records, "root", 0.0, 8)
    assert result["decided_pairs"] == 2 and result["preference_agreement"] == 1.0
    assert result["parse_rate"] == 1.0
    assert result["position_bias"] == pytest.approx(3.0)
    # Order-averaged scores: good (6+3 + 6)/2 = 7.5 against 9, bad (3+3 + 3)/2 = 4.5 against 2, same 5.5 against 5.
    assert result["mean_abs_score_error"] == pytest.approx((1.5 + 2.5 + 2.5 + 1.5 + 0.5 + 0.5) / 6)


def test_a_position_only_judge_agrees_on_no_pair_and_unparsable_judgements_are_misses():
    records = [judge_record("q1", ("good", "bad"), (9, 2)), judge_record("q2", ("x", "y"), (1, 10))]
    always_first = judge_agreement(PromptTable(lambda image, prompt: "9 1"), records, "root", 0.0, 8)
    assert always_first["preference_agreement"] == 0.0 and always_first["position_bias"] == pytest.approx(8.0)
    broken = judge_agreement(PromptTable(lambda image, prompt: "nine" if "q2" in prompt else "9 1"), records,
                             "root", 0.0, 8)
    assert broken["parse_rate"] == 0.5 and len(broken["unparsable_examples"]) == 1
    assert broken["preference_agreement"] == 0.0


def test_answer_diagnostics_separate_a_seeing_model_from_a_blind_one():
    scenes = [{**scene, "image": f"images/{scene['scene_id']}.png"}
              for scene in generate_scenes(12, seed=3, split="bench_test", min_objects=2)]
    by_image = {f"root/{scene['image']}": scene for scene in scenes}
    seeing = PromptTable(lambda image, question: oracle.answer(by_image[image], question))
    blind = PromptTable(lambda image, question: "no")
    sees = answer_diagnostics(seeing, scenes, "root", seed=0, questions_per_scene=3, max_new_tokens=8)
    assert sees["questions"] == 36 and sees["accuracy"] == 1.0
    assert 0.3 < sees["image_sensitivity"] <= 1.0 and sees["swapped_accuracy"] < 1.0
    ignores = answer_diagnostics(blind, scenes, "root", seed=0, questions_per_scene=3, max_new_tokens=8)
    assert ignores["image_sensitivity"] == 0.0 and ignores["accuracy"] == ignores["swapped_accuracy"]
    assert sum(row["questions"] for row in sees["by_task"].values()) == 36
    quality = {"answers": sees, "judge": {"items": 2, "decided_pairs": 2, "parse_rate": 1.0,
                                          "preference_agreement": None, "position_bias": None},
               "augmentor": {"items": 1, "answerable_share": 1.0, "same_task_type_share": 1.0}}
    filter_report = {"raw_pairs": 1, "rejected_pairs": {"total": 0}, "unique_phrases": 1, "skipped_phrases": 0,
                     "kept_pairs": 1}
    text = summary_markdown({}, quality, filter_report)
    assert "| answerer | 36 | answers equal to the oracle's | 100.0% |" in text
    assert "order-averaged preference agrees with oracle | n/a |" in text


def test_augmentor_shares_on_a_worked_example_and_its_unanswerable_questions_are_kept():
    scenes = [{**scene, "image": f"images/{scene['scene_id']}.png"}
              for scene in generate_scenes(3, seed=5, split="bench_test", min_objects=2)]
    records = make_augment_data(scenes, seed=0, per_scene=1)
    assert len(records) == 3
    gold = [from_llava_record(record)[1][0] for record in records]
    outputs = [gold[0],                            # answerable, same type, new
               "what does the weather say ?",      # no such question in the toy world
               records[2]["source_question"]]      # the source itself: answerable, same type, not new
    output_of = {f"root/{record['image']}": output for record, output in zip(records, outputs)}
    result = question_validity(PromptTable(lambda image, question: output_of[image]), records,
                               {scene["image"]: scene for scene in scenes}, "root", temperature=0.5, max_new_tokens=16)
    assert result["items"] == 3
    assert result["answerable_share"] == pytest.approx(2 / 3)
    assert result["novel_share"] == pytest.approx(2 / 3)
    assert result["same_task_type_share"] == pytest.approx(2 / 3)
    assert [example["generated"] for example in result["unanswerable_examples"]] == ["what does the weather say ?"]
    assert len(result["examples"]) == 3
