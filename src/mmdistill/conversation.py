"""The unified multi-turn format of CoMD eq. (2), and label masks built from its pieces.

A conversation (V, C) with C = [(Q_1, A_1), ..., (Q_M, A_M)] is laid out as

    P  USER: V Q_1  ASSISTANT: A_1 <STOP>  USER: Q_2  ASSISTANT: A_2 <STOP> ...

with the image V placed with the first question ([P, V, Q_1], the first option of
eq. 2). Only answer tokens and their <STOP> (the tokenizer's EOS) are supervised,
following eq. (3).

Labels are built from the token ids of each piece, tokenized separately and
concatenated, so the mask cannot drift from the text (the LLaVA code base's known
failure is a re-tokenization mismatch that silently masks a whole sample).
"""

from __future__ import annotations

from dataclasses import dataclass

IGNORE_INDEX = -100
IMAGE_PLACEHOLDER = "<image>"
SYSTEM_PROMPT = "a chat between a curious user and an assistant that sees the image ."
USER_TAG = "user :"
ASSISTANT_TAG = "assistant :"


@dataclass(frozen=True)
class Piece:
    text: str
    supervised: bool


def strip_image_placeholder(text: str) -> str:
    """Remove LLaVA's `<image>` marker and surrounding newlines from a human turn."""
    return text.replace(IMAGE_PLACEHOLDER, " ").strip()


def conversation_pieces(questions: list[str], answers: list[str | None]) -> list[Piece]:
    """Eq. (2) as text pieces. A trailing `None` answer leaves an open assistant turn (a prompt)."""
    if len(questions) != len(answers) or not questions:
        raise ValueError("a conversation needs as many answers as questions, and at least one turn")
    pieces = [Piece(SYSTEM_PROMPT, False)]
    for turn, (question, answer) in enumerate(zip(questions, answers)):
        image = f" {IMAGE_PLACEHOLDER}" if turn == 0 else ""
        pieces.append(Piece(f" {USER_TAG}{image} {question} {ASSISTANT_TAG}", False))
        if answer is None:
            if turn != len(questions) - 1:
                raise ValueError("only the last turn may be left without an answer")
            break
        pieces.append(Piece(f" {answer}", True))
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


def encode_pieces(tokenizer, pieces: list[Piece], num_image_tokens: int) -> tuple[list[int], list[int]]:
    """Token ids and labels: each piece tokenized on its own, the image marker expanded.

    Supervised pieces are followed by the EOS token (<STOP>), which is supervised too.
    """
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_PLACEHOLDER)
    input_ids: list[int] = [tokenizer.bos_token_id]
    labels: list[int] = [IGNORE_INDEX]
    for piece in pieces:
        ids: list[int] = []
        for part_index, part in enumerate(piece.text.split(IMAGE_PLACEHOLDER)):
            if part_index:
                ids.extend([image_id] * num_image_tokens)
            if part.strip():
                ids.extend(tokenizer.encode(part, add_special_tokens=False))
        if piece.supervised:
            ids.append(tokenizer.eos_token_id)
            labels.extend(ids)
        else:
            labels.extend([IGNORE_INDEX] * len(ids))
        input_ids.extend(ids)
    return input_ids, labels


def encode_conversation(tokenizer, questions, answers, num_image_tokens: int) -> tuple[list[int], list[int]]:
    return encode_pieces(tokenizer, conversation_pieces(list(questions), list(answers)), num_image_tokens)


def encode_prompt(tokenizer, question: str, num_image_tokens: int) -> list[int]:
    """Ids of a one-turn generation prompt ending with the assistant tag."""
    input_ids, _ = encode_pieces(tokenizer, conversation_pieces([question], [None]), num_image_tokens)
    return input_ids


def prompt_text(question: str) -> str:
    """The same prompt as text with one `<image>` marker, for processors that expand it."""
    return "".join(piece.text for piece in conversation_pieces([question], [None])).strip()
