"""A word-level tokenizer for the toy world, saved as a `PreTrainedTokenizerFast`."""

from __future__ import annotations

from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from mmdistill.conversation import ASSISTANT_TAG, IMAGE_PLACEHOLDER, SYSTEM_PROMPT, USER_TAG

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS = [PAD, UNK, BOS, EOS, IMAGE_PLACEHOLDER]

# Renders the same text as `mmdistill.conversation.conversation_pieces` when the user's content
# items come in the template's order (`toy`: the question, then the image); a word-level
# tokenizer ignores spacing, so processor-built prompts equal piece-built ones.
CHAT_TEMPLATE = (
    "{{ '" + SYSTEM_PROMPT + "' }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}"
    "{{ ' " + USER_TAG + "' }}"
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}{{ ' " + IMAGE_PLACEHOLDER + "' }}"
    "{% else %}{{ ' ' + item['text'] }}{% endif %}"
    "{% endfor %}"
    "{{ ' " + ASSISTANT_TAG + "' }}"
    "{% else %}"
    "{% for item in message['content'] %}{{ ' ' + item['text'] }}{% endfor %}{{ '" + EOS + "' }}"
    "{% endif %}"
    "{% endfor %}"
)


def build_word_tokenizer(texts: Iterable[str], extra_words: Iterable[str] = ()) -> PreTrainedTokenizerFast:
    """Word-level vocabulary over `texts` (+ `extra_words`), whitespace and punctuation split."""
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(behavior="isolated")]
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    trainer = trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS, min_frequency=1)
    tokenizer.train_from_iterator(list(texts) + list(extra_words), trainer=trainer)
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, bos_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=PAD,
        extra_special_tokens={"image_token": IMAGE_PLACEHOLDER},
        padding_side="left",
        chat_template=CHAT_TEMPLATE,
        model_max_length=512,
    )
    return fast
