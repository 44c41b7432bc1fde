"""Label masks of the unified format (CoMD eq. 2-3): every answer token supervised, nothing else."""

import pytest

from mmdistill.conversation import (
    IGNORE_INDEX,
    conversation_pieces,
    encode_conversation,
    encode_prompt,
    from_llava_record,
    get_template,
    prompt_text,
)
from mmdistill.models.tokenizer import build_word_tokenizer

TEXTS = [
    "what color is the circle ? red . how many objects are there ? 2 is there a square ? no",
    "a chat between a curious user and an assistant that sees the image . user : assistant :",
]
NUM_IMAGE_TOKENS = 4


@pytest.fixture(scope="module")
def tokenizer():
    return build_word_tokenizer(TEXTS)


def test_only_answers_and_stop_tokens_are_supervised(tokenizer):
    questions = ["what color is the circle ?", "how many objects are there ?", "is there a square ?"]
    answers = ["red .", "2", "no"]
    input_ids, labels = encode_conversation(tokenizer, questions, answers, NUM_IMAGE_TOKENS)
    assert len(input_ids) == len(labels)
    supervised = [token for token, label in zip(input_ids, labels) if label != IGNORE_INDEX]
    expected = []
    for answer in answers:
        expected += tokenizer.encode(answer, add_special_tokens=False) + [tokenizer.eos_token_id]
    assert supervised == expected
    assert all(label == token for token, label in zip(input_ids, labels) if label != IGNORE_INDEX)
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    image_positions = [i for i, token in enumerate(input_ids) if token == image_id]
    assert len(image_positions) == NUM_IMAGE_TOKENS
    assert all(labels[i] == IGNORE_INDEX for i in image_positions)
    assert labels[0] == IGNORE_INDEX and input_ids[0] == tokenizer.bos_token_id


def test_image_comes_with_the_first_question_only(tokenizer):
    pieces = conversation_pieces(["q one ?", "q two ?"], ["a", "b"])
    texts = [p.text for p in pieces]
    assert "<image>" in texts[1] and "q one" in texts[1]
    assert sum("<image>" in t for t in texts) == 1


def test_prompt_ends_with_open_assistant_turn(tokenizer):
    prompt = encode_prompt(tokenizer, "what color is the circle ?", NUM_IMAGE_TOKENS)
    full, _ = encode_conversation(tokenizer, ["what color is the circle ?"], ["red"], NUM_IMAGE_TOKENS)
    assert full[: len(prompt)] == prompt
    assert full[len(prompt):] == tokenizer.encode("red", add_special_tokens=False) + [tokenizer.eos_token_id]


def test_llava_record_parsing_and_errors():
    record = {"id": "x", "image": "a.png", "conversations": [
        {"from": "human", "value": "<image>\nwhat color is the circle ?"}, {"from": "gpt", "value": "red"}]}
    assert from_llava_record(record) == (["what color is the circle ?"], ["red"])
    with pytest.raises(ValueError, match="'x'"):
        from_llava_record({**record, "conversations": record["conversations"][:1]})
    swapped = {**record, "conversations": list(reversed(record["conversations"]))}
    with pytest.raises(ValueError, match="turn 1"):
        from_llava_record(swapped)


def test_only_last_turn_may_be_open():
    with pytest.raises(ValueError):
        conversation_pieces(["a ?", "b ?"], [None, "x"])


@pytest.mark.parametrize("template", ["toy", "toy_image_first"])
def test_the_toy_templates_place_the_image_after_or_before_the_first_question(tokenizer, template):
    """Eq. 2's two layouts, [P, Q_1, V] (`toy`) and [P, V, Q_1] (`toy_image_first`): BOS, each piece's
    words, the image marker expanded once in the first turn, EOS after each answer."""
    questions, answers = ["what color is the circle ?", "how many objects are there ?"], ["red .", "2"]
    image = [tokenizer.convert_tokens_to_ids("<image>")] * NUM_IMAGE_TOKENS

    def words(text):
        return tokenizer.encode(text, add_special_tokens=False)

    system = words("a chat between a curious user and an assistant that sees the image .")
    expected_ids, expected_labels = [tokenizer.bos_token_id] + system, [IGNORE_INDEX] * (1 + len(system))
    for turn, (question, answer) in enumerate(zip(questions, answers)):
        if turn == 0 and template == "toy":
            prompt = words(f"user : {question}") + image + words("assistant :")
        elif turn == 0:
            prompt = words("user :") + image + words(f"{question} assistant :")
        else:
            prompt = words(f"user : {question} assistant :")
        reply = words(answer) + [tokenizer.eos_token_id]
        expected_ids += prompt + reply
        expected_labels += [IGNORE_INDEX] * len(prompt) + reply
    assert encode_conversation(tokenizer, questions, answers, NUM_IMAGE_TOKENS, get_template(template)) == (
        expected_ids, expected_labels)


def test_an_unknown_template_is_named():
    with pytest.raises(ValueError, match="'toy_image_last'.*toy_image_first"):
        get_template("toy_image_last")


def test_the_tokenizers_chat_template_renders_the_toy_prompt(tokenizer):
    """`apply_chat_template` with the content in the toy order (question, then image) gives the training prompt."""
    messages = [{"role": "user", "content": [{"type": "text", "text": "is there a square ?"}, {"type": "image"}]}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    assert tokenizer(rendered)["input_ids"] == tokenizer(prompt_text("is there a square ?"))["input_ids"]
