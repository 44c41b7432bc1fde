"""Rule script: the word-level toy tokenizer over the training texts plus the closed toy vocabulary.

Test splits are never read: `toy_vocabulary` (from the templates) already holds every word they use.
"""

from itertools import chain

from mmdistill.jobs import snakemake_job
from mmdistill.models.tokenizer import build_word_tokenizer
from mmdistill.stages import texts_of
from mmdistill.toyworld.language import toy_vocabulary

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    texts = chain.from_iterable(texts_of(path) for path in job.input.texts)
    tokenizer = build_word_tokenizer(texts, extra_words=toy_vocabulary())
    tokenizer.model_max_length = job.params["max_length"]
    tokenizer.save_pretrained(job.output[0])
    job.log.info("vocabulary of %d tokens", len(tokenizer))
