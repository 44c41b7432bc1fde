"""The unified multi-turn format of CoMD eq. (2) in a model family's chat template, and its label masks.

A conversation (V, C) with C = [(Q_1, A_1), ..., (Q_M, A_M)] is laid out as

    P  USER: V Q_1  ASSISTANT: A_1 <STOP>  USER: Q_2  ASSISTANT: A_2 <STOP> ...

with the image V placed with the first question, before it ([P, V, Q_1], eq. 2's first
option) or after it ([P, Q_1, V], its second), and left out for a text-only record.
Only answer tokens and their <STOP> are supervised, following eq. (3). `TEMPLATES`
holds the concrete layouts (`models.chat_template`): the toy world's word-level one
with the image after the question (`toy`) or before it (`toy_image_first`), LLaVA-1.5's
Vicuna v1 (`USER: <image>\\n... ASSISTANT:`, CoMD) and Qwen's ChatML (LLaVA-MoD).

Why the toy world asks first: under the causal mask an image token can attend only to
what comes before it. After the question, every image token can already check itself
against what is asked; before it, the answer position must gather the question and
search the image in one go. The toy teacher, a tiny LLM trained from scratch, answers
more held-out questions asked first (docs/TOY_TEACHER.md); real checkpoints keep the
layout they were trained on.

Ids come from tokenizing the whole text once, as a processor tokenizes a prompt at
inference; labels come from the template's pieces through the tokenizer's character
offsets. A token that crosses a piece boundary, or a prompt whose own tokenization is
not a prefix of the conversation's ids, raises instead of shifting the mask (the LLaVA
code base's known failure is a re-tokenization mismatch that silently masks a whole
sample). So the ids a model is trained on are the ids it is prompted with.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

IGNORE_INDEX = -100
IMAGE_PLACEHOLDER = "<image>"
SYSTEM_PROMPT = "a chat between a curious user and an assistant that sees the image ."
USER_TAG = "user :"
ASSISTANT_TAG = "assistant :"


@dataclass(frozen=True)
class ChatTemplate:
    """One model family's turn layout. A turn is

        user + [image + image_separator, first turn with an image] + question + assistant   (the prompt)
        (with `image_after_question`: user + question + [image_separator + image] + assistant)
        answer_prefix + answer + stop                                                    (supervised)
        turn_end                                                                         (not supervised)

    after `system` once. `stop` None means the tokenizer's EOS token.
    """

    name: str
    system: str
    user: str
    image_separator: str
    assistant: str
    answer_prefix: str
    stop: str | None
    turn_end: str
    image_after_question: bool = False

    def stop_text(self, tokenizer) -> str:
        if self.stop is not None:
            return self.stop
        if tokenizer.eos_token is None:
            raise ValueError(f"chat template {self.name!r} ends answers with the tokenizer's EOS, "
                             "but the tokenizer has none")
        return tokenizer.eos_token

    def stop_token_id(self, tokenizer) -> int:
        """The id generation stops at (and the last supervised token of every answer)."""
        stop = self.stop_text(tokenizer)
        token_id = tokenizer.convert_tokens_to_ids(stop)
        if token_id is None or token_id == tokenizer.unk_token_id:
            raise ValueError(f"chat template {self.name!r}: the tokenizer has no token {stop!r}")
        return token_id


# The toy world's word-level frame; spacing is irrelevant to its word-level tokenizer.
TOY_TEMPLATE = ChatTemplate("toy", system=SYSTEM_PROMPT, user=f" {USER_TAG} ", image_separator=" ",
                            assistant=f" {ASSISTANT_TAG}", answer_prefix=" ", stop=None, turn_end="",
                            image_after_question=True)
TEMPLATES = {
    "toy": TOY_TEMPLATE,
    "toy_image_first": replace(TOY_TEMPLATE, name="toy_image_first", image_after_question=False),
    # LLaVA-1.5's conv_vicuna_v1 (sep " ", sep2 "</s>"), what llava-1.5-*-hf and Vicuna-7B-v1.1 read.
    "vicuna_v1": ChatTemplate(
        "vicuna_v1",
        system="A chat between a curious human and an artificial intelligence assistant. "
               "The assistant gives helpful, detailed, and polite answers to the human's questions. ",
        user="USER: ", image_separator="\n", assistant=" ASSISTANT:", answer_prefix=" ", stop=None, turn_end=""),
    # Qwen's ChatML, LLaVA-MoD's student format (the stop is <|im_end|>, not Qwen's <|endoftext|> EOS).
    "chatml": ChatTemplate(
        "chatml",
        system="<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n",
        user="<|im_start|>user\n", image_separator="\n", assistant="<|im_end|>\n<|im_start|>assistant\n",
        answer_prefix="", stop="<|im_end|>", turn_end="\n"),
}
DEFAULT_TEMPLATE = "toy"
TOY_TEMPLATES = ("toy", "toy_image_first")  # the ones the toy models' word-level tokenizer can read


def get_template(name: str) -> ChatTemplate:
    if name not in TEMPLATES:
        raise ValueError(f"unknown chat template {name!r}; choose from {sorted(TEMPLATES)}")
    return TEMPLATES[name]


@dataclass(frozen=True)
class Piece:
    text: str
    supervised: bool


def strip_image_placeholder(text: str) -> str:
    """Remove LLaVA's `<image>` marker and surrounding newlines from a human turn."""
    return text.replace(IMAGE_PLACEHOLDER, " ").strip()


def conversation_pieces(questions: list[str], answers: list[str | None], template: ChatTemplate | None = None,
                        stop: str = "", image: bool = True) -> list[Piece]:
    """Eq. (2) as text pieces. A trailing `None` answer leaves an open assistant turn (a prompt).

    `stop` is the text that ends each answer (`ChatTemplate.stop_text`); `image` False lays
    out a text-only conversation.
    """
    template = template or TEMPLATES[DEFAULT_TEMPLATE]
    if len(questions) != len(answers) or not questions:
        raise ValueError("a conversation needs as many answers as questions, and at least one turn")
    pieces = [Piece(template.system, False)]
    for turn, (question, answer) in enumerate(zip(questions, answers)):
        with_image = turn == 0 and image
        if with_image and template.image_after_question:
            user_turn = f"{template.user}{question}{template.image_separator}{IMAGE_PLACEHOLDER}"
        elif with_image:
            user_turn = f"{template.user}{IMAGE_PLACEHOLDER}{template.image_separator}{question}"
        else:
            user_turn = f"{template.user}{question}"
        pieces.append(Piece(f"{user_turn}{template.assistant}", False))
        if answer is None:
            if turn != len(questions) - 1:
                raise ValueError("only the last turn may be left without an answer")
            break
        pieces.append(Piece(f"{template.answer_prefix}{answer}{stop}", True))
        if template.turn_end:
            pieces.append(Piece(template.turn_end, False))
    return pieces


def from_llava_record(record: dict) -> tuple[list[str], list[str]]:
    """Split a LLaVA-format record (`conversations` of human/gpt turns) into questions and answers."""
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns or len(turns) % 2:
        raise ValueError(f"record {record.get('id')!r}: `conversations` must hold human/gpt pairs")
    questions, answers = [], []
    for index in range(0, len(turns), 2):
        human, gpt = turns[index], turns[index + 1]
        if human.get("from") != "human" or gpt.get("from") != "gpt":
            raise ValueError(f"record {record.get('id')!r}: turn {index // 2 + 1} is not a human/gpt pair")
        questions.append(strip_image_placeholder(human["value"]))
        answers.append(gpt["value"].strip())
    return questions, answers


def _expand_images(text: str, num_image_tokens: int) -> str:
    """The text a LLaVA processor tokenizes: each `<image>` repeated once per image token."""
    return text.replace(IMAGE_PLACEHOLDER, IMAGE_PLACEHOLDER * num_image_tokens)


def encode_pieces(tokenizer, pieces: list[Piece], num_image_tokens: int) -> tuple[list[int], list[int]]:
    """Token ids of the joined text, and labels: the ids of tokens inside supervised pieces.

    Every `<image>` is expanded to `num_image_tokens` markers first, as the processor does.
    Raises `ValueError` when a token crosses a piece boundary or when the text before a
    supervised piece (a prompt) tokenizes on its own to anything but the ids' prefix.
    """
    texts = [_expand_images(piece.text, num_image_tokens) for piece in pieces]
    text = "".join(texts)
    owner: list[int] = []  # the piece of each character
    for index, piece_text in enumerate(texts):
        owner.extend([index] * len(piece_text))
    # the conversation and each prompt before an answer, in one (parallel) batch call
    answer_starts, start = [], 0
    for piece_text, piece in zip(texts, pieces):
        if piece.supervised:
            answer_starts.append((start, piece_text))
        start += len(piece_text)
    encoded = tokenizer([text] + [text[:start] for start, _ in answer_starts], add_special_tokens=True,
                        return_offsets_mapping=True)
    input_ids, offsets = list(encoded["input_ids"][0]), [tuple(span) for span in encoded["offset_mapping"][0]]
    labels = []
    for token, (start, end) in zip(input_ids, offsets):
        if end <= start:  # special tokens added by the tokenizer (BOS) cover no text
            labels.append(IGNORE_INDEX)
            continue
        first, last = owner[start], owner[end - 1]
        if first != last and pieces[first].supervised != pieces[last].supervised:
            raise ValueError(f"token {tokenizer.convert_ids_to_tokens(token)!r} crosses the boundary between "
                             f"{texts[first]!r} and {texts[last]!r}: the chat template does not fit this tokenizer")
        labels.append(token if pieces[first].supervised else IGNORE_INDEX)
    for (_, piece_text), prompt_ids in zip(answer_starts, encoded["input_ids"][1:]):
        if input_ids[:len(prompt_ids)] != list(prompt_ids):
            raise ValueError(f"the prompt before answer {piece_text!r} tokenizes differently on its own than "
                             "inside the conversation: the chat template does not fit this tokenizer")
    return input_ids, labels


def encode_conversation(tokenizer, questions, answers, num_image_tokens: int, template: ChatTemplate | None = None,
                        image: bool = True) -> tuple[list[int], list[int]]:
    template = template or TEMPLATES[DEFAULT_TEMPLATE]
    pieces = conversation_pieces(list(questions), list(answers), template, template.stop_text(tokenizer), image)
    return encode_pieces(tokenizer, pieces, num_image_tokens)


def prompt_text(question: str, template: ChatTemplate | None = None, image: bool = True) -> str:
    """A one-turn generation prompt as text with one `<image>` marker, for processors that expand it."""
    return "".join(piece.text for piece in conversation_pieces([question], [None], template, image=image))


def encode_prompt(tokenizer, question: str, num_image_tokens: int, template: ChatTemplate | None = None,
                  image: bool = True) -> list[int]:
    """Ids of a one-turn generation prompt ending with the assistant tag, tokenized as a processor does."""
    text = _expand_images(prompt_text(question, template, image), num_image_tokens)
    return list(tokenizer(text, add_special_tokens=True)["input_ids"])
