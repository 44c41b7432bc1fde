"""The real chat templates with a subword tokenizer: training ids are the processor's inference ids,
and every answer token (and its stop) is supervised.

Small BPEs are trained here with `tokenizers`, so piece boundaries fall inside merges the way
they do with real tokenizers: byte-level (Qwen's, GPT-2's) and SentencePiece-style metaspace
words (Llama's and Vicuna's), with and without a BOS.
"""

import pytest
from PIL import Image
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlavaProcessor, PreTrainedTokenizerFast

from mmdistill.conversation import (
    IGNORE_INDEX,
    IMAGE_PLACEHOLDER,
    TEMPLATES,
    ChatTemplate,
    encode_conversation,
    encode_prompt,
    get_template,
    prompt_text,
)
from mmdistill.models.toy import clip_image_processor

NUM_IMAGE_TOKENS = 4  # (16 / 8) ** 2 patches, CLS dropped
CORPUS = [
    "A chat between a curious human and an artificial intelligence assistant.",
    "The assistant gives helpful, detailed, and polite answers to the human's questions.",
    "USER: What is shown in the picture? ASSISTANT: A red bus parked next to a building.",
    "system You are a helpful assistant. user assistant",
    "How many people are there? There are two people, one holding an umbrella.",
    "Which of these states is farthest north? Answer with the option's letter. (A) Maine",
] * 20
QUESTIONS = ["What is shown in the picture?", "How many people are there?"]
ANSWERS = ["A red bus parked next to a building.", "There are two people,\none holding an umbrella."]


def bpe_tokenizer(bos: bool, eos: str, style: str = "byte_level") -> PreTrainedTokenizerFast:
    """BPE with LLaVA's and ChatML's special tokens, words split `byte_level` (GPT-2, Qwen) or at
    SentencePiece's `metaspace` (Llama); a BOS post-processor as Llama's (`bos`)."""
    specials = ["<unk>", "<s>", "</s>", "<pad>", IMAGE_PLACEHOLDER, "<|im_start|>", "<|im_end|>", "<|endoftext|>"]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    if style == "byte_level":
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
        alphabet = ["\n"]
    tokenizer.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                                              initial_alphabet=alphabet))
    if bos:
        tokenizer.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", tokenizer.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>", eos_token=eos,
        bos_token="<s>" if bos else None, extra_special_tokens={"image_token": IMAGE_PLACEHOLDER},
        additional_special_tokens=["<|im_start|>", "<|im_end|>"], padding_side="left")


# Vicuna/Llama: BOS added, EOS </s> ends answers. Qwen: no BOS, EOS <|endoftext|>, answers end at <|im_end|>.
TOKENIZERS = {"vicuna_v1": dict(bos=True, eos="</s>"), "chatml": dict(bos=False, eos="<|endoftext|>")}


@pytest.fixture(scope="module", params=[(template, style) for template in sorted(TOKENIZERS)
                                        for style in ("byte_level", "metaspace")], ids=str)
def setup(request):
    template, style = request.param
    tokenizer = bpe_tokenizer(**TOKENIZERS[template], style=style)
    processor = LlavaProcessor(image_processor=clip_image_processor(16), tokenizer=tokenizer, patch_size=8,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               image_token=IMAGE_PLACEHOLDER)
    return get_template(template), tokenizer, processor


def supervised_spans(input_ids, labels):
    spans, current = [], []
    for token, label in zip(input_ids, labels):
        if label != IGNORE_INDEX:
            assert label == token
            current.append(token)
        elif current:
            spans.append(current)
            current = []
    return spans + ([current] if current else [])


def test_the_bpe_splits_answers_into_subwords(setup):
    _, tokenizer, _ = setup
    assert len(tokenizer.tokenize(ANSWERS[1])) > len(ANSWERS[1].split())


@pytest.mark.parametrize("image", [True, False])
def test_every_answer_token_and_its_stop_is_supervised_and_nothing_else(setup, image):
    template, tokenizer, _ = setup
    input_ids, labels = encode_conversation(tokenizer, QUESTIONS, ANSWERS, NUM_IMAGE_TOKENS, template, image=image)
    stop = template.stop_text(tokenizer)
    spans = supervised_spans(input_ids, labels)
    # (a metaspace decoder drops the space that opens a sequence, hence the strip)
    assert [tokenizer.decode(span).strip() for span in spans] == [a + stop for a in ANSWERS]
    assert all(span[-1] == template.stop_token_id(tokenizer) for span in spans)
    assert input_ids.count(tokenizer.convert_tokens_to_ids(IMAGE_PLACEHOLDER)) == (NUM_IMAGE_TOKENS if image else 0)
    assert (input_ids[0] == tokenizer.bos_token_id) == (template.name == "vicuna_v1")


def test_training_ids_are_the_processors_inference_ids(setup):
    template, tokenizer, processor = setup
    image = Image.new("RGB", (16, 16), "red")
    for question, answer in zip(QUESTIONS, ANSWERS):
        inference = list(processor(images=[image], text=[prompt_text(question, template)])["input_ids"][0])
        training, labels = encode_conversation(tokenizer, [question], [answer], NUM_IMAGE_TOKENS, template)
        assert inference == encode_prompt(tokenizer, question, NUM_IMAGE_TOKENS, template)
        assert training[:len(inference)] == inference
        assert all(label == IGNORE_INDEX for label in labels[:len(inference)])
        # the answer and its stop: one supervised block right after the prompt (ChatML's closing newline is not)
        supervised = [label for label in labels if label != IGNORE_INDEX]
        assert supervised == training[len(inference):len(inference) + len(supervised)]
        assert tokenizer.decode(training[len(inference) + len(supervised):]) == template.turn_end


def test_the_prompts_are_the_families_formats(setup):
    template, _, _ = setup
    text = prompt_text("Q?", template)
    if template.name == "vicuna_v1":
        assert text.endswith("questions. USER: <image>\nQ? ASSISTANT:")
    else:
        assert text.endswith("<|im_start|>user\n<image>\nQ?<|im_end|>\n<|im_start|>assistant\n")
        assert text.startswith("<|im_start|>system\n")


def test_a_template_that_splits_a_merge_is_refused():
    tokenizer = bpe_tokenizer(bos=True, eos="</s>")
    glued = ChatTemplate("glued", system="", user="USER: ", image_separator="\n", assistant=" assist",
                         answer_prefix="", stop="</s>", turn_end="")
    assert "Ġassistant" in tokenizer.get_vocab()  # one merge over the prompt's end and the answer's start
    with pytest.raises(ValueError, match="does not fit this tokenizer"):
        encode_conversation(tokenizer, ["Q?"], ["ant: yes"], NUM_IMAGE_TOKENS, glued)


def test_unknown_template_names_the_choices():
    with pytest.raises(ValueError, match="chatml"):
        get_template("llama3")
    assert TEMPLATES["toy"].stop is None
